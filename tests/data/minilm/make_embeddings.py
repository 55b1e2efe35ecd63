#!/usr/bin/env python3
"""Writes embeddings.tsv: all-MiniLM-L6-v2 sentence embeddings of a few real sentences from an
independent float64 NumPy implementation of the BERT encoder + mean pooling + L2 normalize
(sentence-transformers' Transformer, Pooling(mean), Normalize), reading model.safetensors
with a hand-written header parser. Token ids come from Hugging Face `tokenizers` with the
model's tokenizer.json. tests/slow/minilm_real_model_test.cpp checks lowbit's float32
encoder (tools/minilm/bert.hpp) against every row.

Usage (from the repository root, after scripts/fetch-assets --minilm):
  python3 -m venv /tmp/minilm-venv && /tmp/minilm-venv/bin/pip install tokenizers==0.23.3 numpy
  /tmp/minilm-venv/bin/python tests/data/minilm/make_embeddings.py
Output columns: text TAB ids (space-separated) TAB embedding (384 numbers, %.9e).
"""
import json
import math
import os
import pathlib
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

root = pathlib.Path(__file__).resolve().parents[3]
assets = pathlib.Path(os.environ.get("LOWBIT_ASSETS", root / "assets"))
model_dir = assets / "all-MiniLM-L6-v2"
wikitext = root / "data" / "wikitext-2" / "test.txt"
out_path = pathlib.Path(__file__).resolve().parent / "embeddings.tsv"


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype=dtypes[info["dtype"]]).reshape(info["shape"]).astype(np.float64)
    return out


cfg = json.loads((model_dir / "config.json").read_text())
w = read_safetensors(model_dir / "model.safetensors")
eps = cfg["layer_norm_eps"]
heads = cfg["num_attention_heads"]


def layer_norm(x, g, b):  # x [tokens, hidden]
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def linear(x, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


erf = np.vectorize(math.erf)


def embed(ids):
    T = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T] + \
        w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q, k, v = (linear(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
        d = q.shape[1] // heads
        ctx = np.zeros_like(q)
        for h in range(heads):
            s = slice(h * d, (h + 1) * d)
            a = q[:, s] @ k[:, s].T / math.sqrt(d)  # [query, key]
            a = np.exp(a - a.max(axis=1, keepdims=True))
            a /= a.sum(axis=1, keepdims=True)
            ctx[:, s] = a @ v[:, s]
        x = layer_norm(x + linear(ctx, p + "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"])
        u = linear(x, p + "intermediate.dense")
        u = 0.5 * u * (1.0 + erf(u / math.sqrt(2.0)))
        x = layer_norm(x + linear(u, p + "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    e = x.mean(axis=0)
    return e / max(np.linalg.norm(e), 1e-12)


tk = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
tk.no_padding()
tk.enable_truncation(max_length=256)
lines = [l.strip() for l in wikitext.read_text(encoding="utf-8").split("\n")]
paras = [l for l in lines if len(l) > 200 and not l.startswith("=")]
texts = ["This is an example sentence.", "Each sentence is converted.", "The quick brown fox jumps over the lazy dog!",
         paras[3].split(" . ")[0] + " .", paras[40], (paras[10] + " ") * 8]  # the last one is truncated to 256
with open(out_path, "w", encoding="utf-8", newline="\n") as f:
    f.write(f"# all-MiniLM-L6-v2 sentence embeddings, float64 NumPy {np.__version__} reference; made by make_embeddings.py\n")
    for t in texts:
        ids = tk.encode(t).ids
        e = embed(ids)
        f.write(f"{t}\t{' '.join(map(str, ids))}\t{' '.join(f'{v:.9e}' for v in e)}\n")
        print(len(ids), e[:4], file=sys.stderr)
print(f"wrote {out_path}", file=sys.stderr)
