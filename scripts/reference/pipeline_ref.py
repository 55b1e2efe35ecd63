#!/usr/bin/env python3
"""An end-to-end NumPy reference of sequential GPTQ / RTN on a llama GGUF, written apart from
lowbit (it shares only gptq_ref.py's float64 layer algorithm), to tell a defect in lowbit's
pipeline from a difference of protocol.

    python scripts/reference/pipeline_ref.py --method gptq --bits 3 --group 128 \
        --tokenizer HF_DIR/tokenizer.json [--gguf FILE] [--calib valid.txt] [--eval test.txt]

What it does, each step as GPTQ's llama.py (IST-DASLab/gptq) does it:
  model       the GGUF read and dequantized by the PyPI `gguf` package (gguf.quants.dequantize);
              RMSNorm, ggml's NORM RoPE on the GGUF row order (pairs 2i, 2i+1), GQA attention with
              a causal mask, SwiGLU MLP, tied head; float32 forward.
  tokens      the PyPI `tokenizers` package on tokenizer.json (scripts/make-hf-reference writes one
              from the GGUF); the whole file encoded at once, no BOS, as lowbit-quantize does.
  calibration lowbit's windows: (windows + held_out) windows of ctx tokens evenly spaced over the
              calibration text (stride (N - ctx) / (n - 1)), the first `windows` of them used.
  sequential  block by block on the quantized model's activations; inside a block q/k/v (one
              Hessian), then o on the attention output of the quantized q/k/v, then gate/up, then
              down on silu(Q_gate x) * (Q_up x) ("true sequential"); H = 2/n X^T X.
  evaluation  non-overlapping windows of ctx tokens from the start of the evaluation text, every
              window from an empty cache, natural-log perplexity over ctx - 1 predictions each.
  --hf-int32  instead of the GGUF, a GPTQ / AutoAWQ folder written by lowbit-quantize --export
              gptq|awq, dequantized by int32_checkpoint.py (from the published packing), --method
              float: the folder's perplexity on the same windows, with no lowbit code involved.
Scales are float64 (the PyTorch reference keeps fp32; --fp16-scales rounds them as lowbit stores).
Needs numpy, gguf and tokenizers (measured with numpy 2.2.6, gguf 0.17.1, tokenizers 0.23.3 in a
venv). On 2 cores: float 2.5 min, GPTQ 3-bit g128 with 32 windows 4.5 min (2.5 of them the evaluation).

Measured (2026-12-04, docs/results.md "An independent end-to-end pipeline"): float 26.150, RTN3 g128
116.285, GPTQ3 g128 70.420 (float64 scales) / 63.625 (--fp16-scales) on lowbit's 32 windows.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gptq_ref  # noqa: E402


def load_gguf(path):
    import gguf
    r = gguf.GGUFReader(path)

    def meta(key):
        f = r.fields[key]
        return f.parts[f.data[0]][0]

    cfg = {
        'n_layer': int(meta('llama.block_count')),
        'n_embd': int(meta('llama.embedding_length')),
        'n_head': int(meta('llama.attention.head_count')),
        'n_head_kv': int(meta('llama.attention.head_count_kv')),
        'rope_base': float(meta('llama.rope.freq_base')),
        'eps': float(meta('llama.attention.layer_norm_rms_epsilon')),
    }
    w = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w[t.name] = a.reshape([int(d) for d in t.shape[::-1]])
    if 'output.weight' not in w:
        w['output.weight'] = w['token_embd.weight']
    return cfg, w


def rmsnorm(x, g, eps):
    return (x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + eps)).astype(np.float32) * g


def rope_tables(T, d, base):
    inv = base ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def rope(x, cos, sin):
    """ggml NORM mode on [B, T, H, d]: (x[2i], x[2i+1]) rotated by pos * base^(-2i/d)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def attention_core(h, wq, wk, wv, cfg, tabs):
    """h [B, T, n_embd] (normed) -> the attention output before attn_output, [B, T, n_embd]."""
    B, T, _ = h.shape
    nh, nkv = cfg['n_head'], cfg['n_head_kv']
    d = cfg['n_embd'] // nh
    q = (h @ wq.T).reshape(B, T, nh, d)
    k = (h @ wk.T).reshape(B, T, nkv, d)
    v = (h @ wv.T).reshape(B, T, nkv, d)
    q, k = rope(q, *tabs), rope(k, *tabs)
    rep = nh // nkv
    k = np.repeat(k, rep, axis=2)
    v = np.repeat(v, rep, axis=2)
    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    out = np.empty((B, T, nh, d), dtype=np.float32)
    for b in range(B):
        qh, kh, vh = q[b].transpose(1, 0, 2), k[b].transpose(1, 0, 2), v[b].transpose(1, 0, 2)
        s = qh @ kh.transpose(0, 2, 1) / np.float32(np.sqrt(d)) + mask  # [h, t, s]
        s -= s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        out[b] = (p @ vh).transpose(1, 0, 2)
    return out.reshape(B, T, nh * d)


def silu(x):
    return x / (1.0 + np.exp(-x))


def block_forward(x, w, l, cfg, tabs):
    p = f'blk.{l}.'
    h = rmsnorm(x, w[p + 'attn_norm.weight'], cfg['eps'])
    a = attention_core(h, w[p + 'attn_q.weight'], w[p + 'attn_k.weight'], w[p + 'attn_v.weight'], cfg, tabs)
    x = x + a @ w[p + 'attn_output.weight'].T
    h = rmsnorm(x, w[p + 'ffn_norm.weight'], cfg['eps'])
    m = silu(h @ w[p + 'ffn_gate.weight'].T) * (h @ w[p + 'ffn_up.weight'].T)
    return x + m @ w[p + 'ffn_down.weight'].T


def hessian_of(X):
    Xd = X.reshape(-1, X.shape[-1]).astype(np.float64)
    return 2.0 / Xd.shape[0] * (Xd.T @ Xd)


def quantize_block(x, w, l, cfg, tabs, a):
    """Sequential quantization of block l on its inputs x [B, T, n_embd]; writes w in place."""
    p = f'blk.{l}.'
    sr = gptq_ref.fp16 if a.fp16_scales else None

    def q(names, X):
        H = hessian_of(X) if a.method == 'gptq' else None
        for n in names:
            W = w[p + n + '.weight']
            if a.method == 'gptq':
                Q, _ = gptq_ref.gptq(W, H, a.bits, a.group, scale_round=sr)
            else:
                Q = gptq_ref.rtn(W, a.bits, a.group, sr)
            w[p + n + '.weight'] = Q.astype(np.float32)

    h = rmsnorm(x, w[p + 'attn_norm.weight'], cfg['eps'])
    q(['attn_q', 'attn_k', 'attn_v'], h)
    att = attention_core(h, w[p + 'attn_q.weight'], w[p + 'attn_k.weight'], w[p + 'attn_v.weight'], cfg, tabs)
    q(['attn_output'], att)
    x1 = x + att @ w[p + 'attn_output.weight'].T
    h2 = rmsnorm(x1, w[p + 'ffn_norm.weight'], cfg['eps'])
    q(['ffn_gate', 'ffn_up'], h2)
    m = silu(h2 @ w[p + 'ffn_gate.weight'].T) * (h2 @ w[p + 'ffn_up.weight'].T)
    q(['ffn_down'], m)
    return x1 + m @ w[p + 'ffn_down.weight'].T


def perplexity(ids, w, cfg, ctx, windows):
    tabs = rope_tables(ctx, cfg['n_embd'] // cfg['n_head'], cfg['rope_base'])
    nll, n = 0.0, 0
    for k in range(windows):
        win = ids[k * ctx:(k + 1) * ctx]
        x = w['token_embd.weight'][win][None]
        for l in range(cfg['n_layer']):
            x = block_forward(x, w, l, cfg, tabs)
        h = rmsnorm(x[0], w['output_norm.weight'], cfg['eps'])
        logits = (h @ w['output.weight'].T).astype(np.float64)
        mx = logits.max(axis=1, keepdims=True)
        lse = mx[:, 0] + np.log(np.exp(logits - mx).sum(axis=1))
        tgt = np.asarray(win[1:])
        nll += float(np.sum(lse[:-1] - logits[np.arange(ctx - 1), tgt]))
        n += ctx - 1
    return float(np.exp(nll / n)), n


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, '..', '..'))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--gguf', default=os.path.join(root, 'assets', 'SmolLM2-135M-Instruct.Q4_1.gguf'))
    ap.add_argument('--tokenizer', required=True, help='tokenizer.json (scripts/make-hf-reference writes one)')
    ap.add_argument('--calib', default=os.path.join(root, 'data', 'wikitext-2', 'valid.txt'))
    ap.add_argument('--eval', default=os.path.join(root, 'data', 'wikitext-2', 'test.txt'))
    ap.add_argument('--method', choices=['float', 'rtn', 'gptq'], default='gptq')
    ap.add_argument('--bits', type=int, default=3)
    ap.add_argument('--group', type=int, default=128)
    ap.add_argument('--ctx', type=int, default=512)
    ap.add_argument('--calib-windows', type=int, default=32)
    ap.add_argument('--held-out', type=int, default=4)
    ap.add_argument('--eval-windows', type=int, default=64)
    ap.add_argument('--fp16-scales', action='store_true')
    ap.add_argument('--hf-int32', metavar='DIR',
                    help='evaluate a GPTQ / AutoAWQ folder (lowbit-quantize --export gptq|awq), read by int32_checkpoint.py')
    ap.add_argument('--dump-ids', help='write the calibration and evaluation ids (one per line) under this prefix')
    a = ap.parse_args()

    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(a.tokenizer)

    def encode(path):
        with open(path, encoding='utf-8') as f:
            return tok.encode(f.read(), add_special_tokens=False).ids

    t0 = time.time()
    if a.hf_int32:
        import int32_checkpoint
        if a.method != 'float':
            sys.exit('pipeline_ref: --hf-int32 evaluates the folder as it is; use --method float')
        cfg, w, info = int32_checkpoint.load(a.hf_int32)
        a.gguf = a.hf_int32 + f" ({info['method']} {info['bits']}-bit, {info['checkpoint']})"
    else:
        cfg, w = load_gguf(a.gguf)
    cal, ev = encode(a.calib), encode(a.eval)
    n = a.calib_windows + a.held_out
    stride = (len(cal) - a.ctx) // (n - 1) if n > 1 else 0
    calib = np.array([cal[k * stride:k * stride + a.ctx] for k in range(a.calib_windows)], dtype=np.int64)
    if a.dump_ids:
        for name, ids in (('calib', calib.reshape(-1)), ('eval', ev)):
            with open(f'{a.dump_ids}.{name}.txt', 'w') as f:
                f.write('\n'.join(str(int(i)) for i in ids) + '\n')
    print(f'model {a.gguf}: {cfg}; calibration {len(cal)} tokens, {a.calib_windows} windows (stride {stride}); '
          f'evaluation {len(ev)} tokens ({time.time() - t0:.0f} s)', flush=True)
    if a.method != 'float':
        tabs = rope_tables(a.ctx, cfg['n_embd'] // cfg['n_head'], cfg['rope_base'])
        x = w['token_embd.weight'][calib]
        for l in range(cfg['n_layer']):
            x = quantize_block(x, w, l, cfg, tabs, a)
            print(f'  block {l} quantized ({time.time() - t0:.0f} s)', flush=True)
    ppl, preds = perplexity(ev, w, cfg, a.ctx, a.eval_windows)
    what = f'{a.hf_int32} as read by int32_checkpoint.py' if a.hf_int32 else f'{a.method} {a.bits}-bit g{a.group}'
    print(f'{what}: perplexity {ppl:.3f} ({a.eval_windows} windows x {a.ctx}, '
          f'{preds} predictions, {time.time() - t0:.0f} s)', flush=True)


if __name__ == '__main__':
    main()
