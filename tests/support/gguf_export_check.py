#!/usr/bin/env python3
"""Independent check of lowbit-quantize's GGUF export (tests/tools_gguf_export_test.cpp).

Uses the `gguf` PyPI package (llama.cpp's gguf-py: GGUFReader, and gguf.quants, numpy ports of
ggml's reference quantizers and dequantizers), none of lowbit's code:
  rtn:  every block linear's bytes == gguf.quants.quantize(input float32 weights, type);
  gptq: every block linear dequantized by gguf.quants == the float32 weights lowbit says it
        multiplies by (written by the test as an F32 GGUF), exactly;
  both: every other tensor is the input's bytes, every input metadata key is there with the
        same value (general.file_type excepted, which must be the type's llama_ftype).

Usage: gguf_export_check.py INPUT.gguf EXPORT.gguf TYPE rtn
       gguf_export_check.py INPUT.gguf EXPORT.gguf TYPE gptq DEQUANTIZED_F32.gguf
Exit 0 when every check holds; 1 with the first difference printed.
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.quants import dequantize, quantize

FTYPE = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9, "Q8_0": 7}
LINEARS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def is_linear(name):
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "blk" and parts[2] in LINEARS and parts[3] == "weight"


def field_value(f):
    return [bytes(f.parts[i]) for i in f.data]


def main():
    inp, exp, tname, method = sys.argv[1:5]
    qtype = T[tname]
    a, b = GGUFReader(inp), GGUFReader(exp)
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    if set(ta) != set(tb):
        sys.exit(f"tensor names differ: {sorted(set(ta) ^ set(tb))}")
    deq = {t.name: t for t in GGUFReader(sys.argv[5]).tensors} if method == "gptq" else {}
    n_lin = 0
    for name, t in tb.items():
        src = ta[name]
        if list(t.shape) != list(src.shape):
            sys.exit(f"{name}: shape {list(t.shape)} != input {list(src.shape)}")
        raw = np.asarray(t.data).view(np.uint8).reshape(-1)
        if not is_linear(name):
            if t.tensor_type != src.tensor_type or not np.array_equal(raw, np.asarray(src.data).view(np.uint8).reshape(-1)):
                sys.exit(f"{name}: not the input's bytes")
            continue
        n_lin += 1
        if t.tensor_type != qtype:
            sys.exit(f"{name}: type {t.tensor_type.name}, expected {tname}")
        rows, cols = int(t.shape[1]), int(t.shape[0])
        if method == "rtn":
            w = dequantize(np.asarray(src.data), src.tensor_type).reshape(rows, cols).astype(np.float32)
            ref = quantize(w, qtype).view(np.uint8).reshape(-1)
            if not np.array_equal(raw, ref):
                bad = int(np.flatnonzero(raw != ref)[0])
                sys.exit(f"{name}: byte {bad} is {raw[bad]}, gguf.quants.quantize gives {ref[bad]}")
        else:
            got = dequantize(raw.reshape(rows, -1), qtype).reshape(rows, cols)
            want = np.asarray(deq[name].data).reshape(rows, cols)
            if not np.array_equal(got, want):
                i = np.unravel_index(np.argmax(got != want), got.shape)
                sys.exit(f"{name}: element {i} dequantizes to {got[i]}, lowbit multiplies by {want[i]}")
    if n_lin == 0:
        sys.exit("no block linears in the export")
    for key, f in a.fields.items():
        if key.startswith("GGUF.") or key == "general.file_type":
            continue
        g = b.fields.get(key)
        if g is None:
            sys.exit(f"metadata {key} missing from the export")
        if g.types != f.types or field_value(g) != field_value(f):
            sys.exit(f"metadata {key} differs")
    ft = b.fields.get("general.file_type")
    if ft is None or int(ft.parts[ft.data[0]][0]) != FTYPE[tname]:
        sys.exit(f"general.file_type is not {FTYPE[tname]}")
    print(f"ok: {exp}: {n_lin} {tname} linears ({method}), metadata and other tensors as the input")


if __name__ == "__main__":
    main()
