#!/usr/bin/env python3
"""Makes the real-layer fixture of tests/gptq_real_layer_test.cpp from a lowbit-quantize dump.

    LOWBIT_DUMP_DIR=/tmp/dump LOWBIT_DUMP_BLOCKS=0 \
        lowbit-quantize --method gptq --bits 3 --group 128 --skip-float --quiet
    tests/data/gptq_layer/make_layer.py /tmp/dump

The layer is SmolLM2-135M-Instruct (assets/, Q4_1 dequantized) block 0 attn_output, 576 x 576,
with the calibration inputs it sees in the default protocol (32 windows x 512 tokens of
WikiText-2 valid, q/k/v already quantized with GPTQ 3-bit g128): its inputs have outlier
channels (H_jj up to 130x the mean) and row 260 has weights of 2.3 on them, which is where a
wrong update shows first. Written (little-endian float32):
  W.f32          64 rows (every 9th row, and row 260) x 576 columns, row-major
  H.f32          H = 2/n X Xᵀ over all 16384 tokens, computed in float64, upper triangle row by
                 row (576·577/2 values)
  reference.tsv  scripts/reference/gptq_ref.py's float64 GPTQ on (W, H) (scales rounded to
                 fp16 as lowbit stores them): bits, group, relative output error
                 tr(D H Dᵀ)/tr(W H Wᵀ) with D = W − Q, loss, and RTN's relative error.
"""
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', '..', '..', 'scripts', 'reference'))
import gptq_ref as g  # noqa: E402


def main():
    dump = sys.argv[1]
    W = np.load(os.path.join(dump, 'blk0.attn_output.W.npy')).astype(np.float32)
    X = np.load(os.path.join(dump, 'blk0.attn_out.X.npy')).astype(np.float64)
    rows = sorted(set(range(0, 576, 9)[:63]) | {260})
    assert len(rows) == 64
    Ws = np.ascontiguousarray(W[rows])
    H = 2.0 / X.shape[1] * (X @ X.T)
    H32 = H.astype(np.float32)
    iu = np.triu_indices(H.shape[0])
    Ws.astype('<f4').tofile(os.path.join(here, 'W.f32'))
    H32[iu].astype('<f4').tofile(os.path.join(here, 'H.f32'))
    # The reference runs on exactly what the test reads: the float32 values.
    Hr = np.zeros(H.shape)
    Hr[iu] = H32[iu]
    Hr = Hr + np.triu(Hr, 1).T
    Wd = Ws.astype(np.float64)
    with open(os.path.join(here, 'reference.tsv'), 'w') as f:
        f.write('# bits\tgroup\trel_error\tloss\trtn_rel_error  (make_layer.py; float64 GPTQ, fp16 scales)\n')
        for bits in (3, 4):
            Q, loss = g.gptq(Wd, Hr, bits, 128, scale_round=g.fp16)
            e = g.rel_output_error(Wd, Q, Hr)
            er = g.rel_output_error(Wd, g.rtn(Wd, bits, 128, g.fp16), Hr)
            f.write(f'{bits}\t128\t{e:.12e}\t{loss:.12e}\t{er:.12e}\n')
            print(bits, e, loss, er)


if __name__ == '__main__':
    main()
