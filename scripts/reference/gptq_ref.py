#!/usr/bin/env python3
"""Float64 numpy reference of GPTQ (IST-DASLab/gptq, gptq.py GPTQ.fasterquant + quant.py
Quantizer, min-max, asymmetric, per-row), and a comparison against lowbit's layer dumps.

  # dump layers from a real run (tools/lowbit-quantize/adapters.hpp, maybe_dump_job):
  LOWBIT_DUMP_DIR=/tmp/dump LOWBIT_DUMP_BLOCKS=0,20 lowbit-quantize --method gptq --bits 3 ...
  # compare every dumped linear with the reference:
  scripts/reference/gptq_ref.py /tmp/dump --bits 3 --group 128

The reference, exactly as gptq.py (fp64 instead of fp32):
  H = 2/n X Xᵀ; dead inputs (H_jj = 0): H_jj = 1, W[:, j] = 0; H += 0.01·mean(diag H)·I;
  U = chol(H⁻¹) upper; blocks of 128 columns; at (i1+i) % g == 0 the group's (scale, zero)
  per row from W[:, i1+i : i1+i+g] (the block-updated matrix); q = clamp(round(w/scale) + zero,
  0, maxq); w_hat = scale·(q − zero); the error spread with U; lazy batch update after a block.
  Range: [min(w, 0), max(w, 0)], all-zero rows get [−1, 1]; zero = round(−min/scale).
"""
import argparse
import glob
import os
import sys

import numpy as np


def find_params(x, maxq, scale_round=None):
    """Per-row (scale, zero) of x [rows, n] (quant.py Quantizer.find_params, perchannel, asym)."""
    xmin = np.minimum(x.min(axis=1), 0.0)
    xmax = np.maximum(x.max(axis=1), 0.0)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = np.where(both0, -1.0, xmin)
    xmax = np.where(both0, 1.0, xmax)
    scale = (xmax - xmin) / maxq
    if scale_round is not None:
        scale = scale_round(scale)
    zero = np.round(-xmin / scale)
    return scale, zero


def quantize(x, scale, zero, maxq):
    q = np.clip(np.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def hessian(X):
    """H = 2/n X Xᵀ of X [in, tokens], fp64."""
    Xd = X.astype(np.float64)
    return 2.0 / Xd.shape[1] * (Xd @ Xd.T)


def gptq(W, H, bits, group, blocksize=128, percdamp=0.01, scale_round=None):
    """GPTQ of W [rows, cols] with Hessian H [cols, cols]; returns (Q, loss)."""
    W = W.astype(np.float64).copy()
    H = H.astype(np.float64).copy()
    rows, cols = W.shape
    maxq = 2 ** bits - 1
    g = cols if group <= 0 else group
    scale, zero = find_params(W, maxq, scale_round)  # per channel: fitted up front
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H[np.diag_indices(cols)] += percdamp * np.mean(np.diag(H))
    L = np.linalg.cholesky(H)
    Linv = np.linalg.inv(L)
    Hinv = Linv.T @ Linv
    U = np.linalg.cholesky(Hinv).T  # upper, UᵀU = H⁻¹
    Q = np.zeros_like(W)
    loss = 0.0
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].copy()
        Err1 = np.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            w = W1[:, i]
            d = U1[i, i]
            if group > 0 and (i1 + i) % group == 0:
                # As the reference: W, which inside a block lacks the block's own updates
                # (the same as W1[:, i:] when group == blocksize, since then i == 0).
                scale, zero = find_params(W[:, i1 + i:i1 + i + g], maxq, scale_round)
            q = quantize(w, scale, zero, maxq)
            Q[:, i1 + i] = q
            loss += 0.5 * np.sum((w - q) ** 2) / d ** 2
            err = (w - q) / d
            W1[:, i:] -= np.outer(err, U1[i, i:])
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return Q, loss


def rtn(W, bits, group, scale_round=None):
    W = W.astype(np.float64)
    maxq = 2 ** bits - 1
    g = W.shape[1] if group <= 0 else group
    Q = np.empty_like(W)
    for c0 in range(0, W.shape[1], g):
        s, z = find_params(W[:, c0:c0 + g], maxq, scale_round)
        Q[:, c0:c0 + g] = quantize(W[:, c0:c0 + g], s[:, None], z[:, None], maxq)
    return Q


def fp16(x):
    return x.astype(np.float16).astype(np.float64)


def rel_output_error(W, Q, G):
    """‖(W − Q) X‖² / ‖W X‖² with G = X Xᵀ."""
    W = W.astype(np.float64)
    D = W - Q.astype(np.float64)
    return float(np.einsum('ij,jk,ik->', D, G, D) / np.einsum('ij,jk,ik->', W, G, W))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dump', help='LOWBIT_DUMP_DIR of a lowbit-quantize run')
    ap.add_argument('--bits', type=int, required=True)
    ap.add_argument('--group', type=int, default=128)
    ap.add_argument('--fp16-scales', action='store_true', help='round scales to fp16 as lowbit stores them')
    a = ap.parse_args()
    taps = {'attn_q': 'attn_in', 'attn_k': 'attn_in', 'attn_v': 'attn_in', 'attn_output': 'attn_out',
            'ffn_gate': 'ffn_in', 'ffn_up': 'ffn_in', 'ffn_down': 'ffn_act'}
    sr = fp16 if a.fp16_scales else None
    grams = {}
    print(f"{'layer':<20} {'rtn':>9} {'ref gptq':>9} {'lowbit':>9} {'lb/ref':>7} {'codes≠':>7}")
    for wf in sorted(glob.glob(os.path.join(a.dump, 'blk*.W.npy'))):
        name = os.path.basename(wf)[:-len('.W.npy')]
        blk, slot = name.split('.', 1)
        xf = os.path.join(a.dump, f'{blk}.{taps[slot]}.X.npy')
        W = np.load(wf)
        Ql = np.load(os.path.join(a.dump, name + '.Q.npy')).astype(np.float64)
        if xf not in grams:
            X = np.load(xf).astype(np.float64)
            grams[xf] = X @ X.T
        G = grams[xf]
        H = 2.0 * G / 1.0
        Qr, _ = gptq(W, H, a.bits, a.group, scale_round=sr)
        e_rtn = rel_output_error(W, rtn(W, a.bits, a.group, sr), G)
        e_ref = rel_output_error(W, Qr, G)
        e_lb = rel_output_error(W, Ql, G)
        diff = np.mean(np.abs(Ql - Qr) > 1e-6 * np.abs(Qr).max())
        print(f"{name:<20} {e_rtn:9.5f} {e_ref:9.5f} {e_lb:9.5f} {e_lb / e_ref:7.3f} {diff:7.3%}")
        sys.stdout.flush()


if __name__ == '__main__':
    main()
