#!/usr/bin/env python3
"""Writes blocks.tsv: random GGUF quantization blocks and their dequantized floats.

The reference is the `gguf` Python package (gguf.quants.dequantize, numpy), independent of
lowbit's C++ reader (include/lowbit/io/gguf.hpp); tests/io_gguf_test.cpp reads every row
back through the reader and must reproduce the floats.

Blocks are random bytes (fixed seed), except the fp16 scale fields, which are set to finite
halves of both signs, so every code, scale, min and high-bit pattern is exercised without
NaN or infinity (a random fp16 field would often be one).

Usage (from the repository root):
  pip install --user gguf==0.19.0 numpy
  python3 tests/data/gguf_blocks/make_blocks.py
Output columns: type name TAB ggml type id TAB weights TAB block bytes (hex) TAB floats
(space-separated, %.9g, which round-trips float32 exactly).
"""
import importlib.metadata
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# type -> byte offsets of its fp16 fields (ggml-common.h block layouts)
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.IQ4_NL: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = 3  # per type: enough to catch a wrong stride between blocks

rng = np.random.default_rng(20261123)
out = pathlib.Path(__file__).resolve().parent / "blocks.tsv"
lines = [f"# gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}; written by make_blocks.py"]
for qtype, halves in HALF_FIELDS.items():
    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
    for b in range(BLOCKS):
        for off in halves:
            h = np.float16(rng.uniform(0.002, 0.5) * (1 if b != 1 else -1))  # block 1: negative scales
            raw[b, off:off + 2] = np.frombuffer(h.tobytes(), dtype=np.uint8)
    y = dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
    assert y.size == BLOCKS * block and np.all(np.isfinite(y))
    lines.append("\t".join([qtype.name, str(int(qtype)), str(y.size), raw.tobytes().hex(),
                            " ".join(f"{v:.9g}" for v in y)]))
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out} ({len(lines) - 1} types)")
