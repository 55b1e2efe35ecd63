#!/usr/bin/env python3
"""An independent reader of GPTQ / AutoAWQ checkpoint folders (lowbit-quantize --export gptq|awq).

Written from the published packing descriptions, not from lowbit's code:
  GPTQ (AutoGPTQ's QuantLinear.pack, GPTQModel): qweight int32 [in*bits/32, out]; the codes of
  one output column, input channel 0 first, form a little-endian bit stream over the column's
  words (word 0's bit 0 first), `bits` bits per code (3-bit codes straddle words). qzeros int32
  [groups, out*bits/32], the same stream along the output channels; "gptq" (v1) checkpoints
  store zero - 1, "gptq_v2" the zero. scales fp16 [groups, out]; g_idx int32 [in] = the group
  of each input channel. w[o, i] = scales[g, o] * (q[o, i] - zero[g, o]) with g = g_idx[i].
  AutoAWQ GEMM (awq/utils/packing_utils.py): qweight int32 [in, out/8] and qzeros int32
  [groups, out/8]: nibble j (bits 4j..4j+3) of word k, reordered by AWQ_REVERSE_ORDER =
  [0, 4, 1, 5, 2, 6, 3, 7] (channel 8k + m is nibble AWQ_REVERSE_ORDER[m]); w as above, the
  zero stored as is.

As a module: load(dir) -> (cfg, weights) with llama.cpp's tensor names and row order (q / k
rows permuted as convert_hf_to_gguf.py does), the input pipeline_ref.py's forward takes
(pipeline_ref.py --hf-int32 DIR). As a script: checks a folder and prints what it holds.

Needs numpy and safetensors (pinned in scripts/fetch-assets).
"""
import json
import os
import sys

import numpy as np

AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def bit_stream_codes(words, bits, count):
    """words uint32 [n, w] (each row one little-endian bit stream) -> codes [n, count]."""
    n = words.shape[0]
    b = np.unpackbits(np.ascontiguousarray(words.astype('<u4')).view(np.uint8).reshape(n, -1), axis=1, bitorder='little')
    b = b[:, :count * bits].reshape(n, count, bits).astype(np.int64)
    return (b << np.arange(bits)).sum(axis=2)


def dequant_gptq(t, prefix, bits, group_size, checkpoint):
    qweight = t[prefix + '.qweight'].view(np.uint32)
    qzeros = t[prefix + '.qzeros'].view(np.uint32)
    scales = t[prefix + '.scales'].astype(np.float32)
    in_f, out_f = qweight.shape[0] * 32 // bits, qweight.shape[1]
    q = bit_stream_codes(qweight.T, bits, in_f)                      # [out, in]
    z = bit_stream_codes(qzeros, bits, out_f)                        # [groups, out]
    if checkpoint == 'gptq':
        z = z + 1
    g_idx = t.get(prefix + '.g_idx')
    g = np.asarray(g_idx, dtype=np.int64) if g_idx is not None else np.arange(in_f) // (group_size if group_size > 0 else in_f)
    if q.max() >= 2 ** bits or z.min() < 0 or z.max() > 2 ** bits - 1:
        sys.exit(f'int32_checkpoint: {prefix}: codes or zero points outside [0, {2 ** bits - 1}]')
    return (scales[g, :].T * (q - z[g, :].T)).astype(np.float32)     # [out, in]


def dequant_awq(t, prefix, group_size):
    qweight = t[prefix + '.qweight'].view(np.uint32)
    qzeros = t[prefix + '.qzeros'].view(np.uint32)
    scales = t[prefix + '.scales'].astype(np.float32)
    shifts = np.arange(0, 32, 4, dtype=np.uint32)

    def unpack(words):  # [r, out/8] -> [r, out]
        nib = ((words[:, :, None] >> shifts) & 0xF).reshape(words.shape[0], -1)
        out = words.shape[1] * 8
        order = (np.arange(out).reshape(-1, 8)[:, AWQ_REVERSE_ORDER]).reshape(-1)
        return nib[:, order].astype(np.int64)

    q = unpack(qweight)                                              # [in, out]
    z = unpack(qzeros)                                               # [groups, out]
    in_f = q.shape[0]
    g = np.arange(in_f) // (group_size if group_size > 0 else in_f)
    return (scales[g, :] * (q - z[g, :])).T.astype(np.float32)       # [out, in]


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf permute(): Hugging Face row layout -> GGUF's."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load(folder):
    from safetensors.numpy import load_file
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        c = json.load(f)
    qc = c['quantization_config']
    method, bits, gs = qc['quant_method'], int(qc['bits']), int(qc['group_size'])
    checkpoint = qc.get('checkpoint_format', 'gptq') if method == 'gptq' else 'awq'
    t = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith('.safetensors'):
            t.update(load_file(os.path.join(folder, name)))
    nh, nkv = c['num_attention_heads'], c.get('num_key_value_heads', c['num_attention_heads'])
    cfg = {'n_layer': c['num_hidden_layers'], 'n_embd': c['hidden_size'], 'n_head': nh, 'n_head_kv': nkv,
           'rope_base': float(c.get('rope_theta', 10000.0)), 'eps': float(c['rms_norm_eps'])}
    names = {'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
             'self_attn.o_proj': 'attn_output', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up',
             'mlp.down_proj': 'ffn_down'}
    w = {'token_embd.weight': t['model.embed_tokens.weight'].astype(np.float32),
         'output_norm.weight': t['model.norm.weight'].astype(np.float32)}
    w['output.weight'] = t['lm_head.weight'].astype(np.float32) if 'lm_head.weight' in t else w['token_embd.weight']
    for l in range(cfg['n_layer']):
        p = f'model.layers.{l}.'
        w[f'blk.{l}.attn_norm.weight'] = t[p + 'input_layernorm.weight'].astype(np.float32)
        w[f'blk.{l}.ffn_norm.weight'] = t[p + 'post_attention_layernorm.weight'].astype(np.float32)
        for hf, gg in names.items():
            prefix = p + hf
            m = dequant_gptq(t, prefix, bits, gs, checkpoint) if method == 'gptq' else dequant_awq(t, prefix, gs)
            if gg == 'attn_q':
                m = permute(m, nh)
            elif gg == 'attn_k':
                m = permute(m, nkv)
            w[f'blk.{l}.{gg}.weight'] = m
        for extra in ('q_proj.bias', 'k_proj.bias', 'v_proj.bias', 'q_norm.weight'):
            if p + 'self_attn.' + extra in t:
                sys.exit(f'int32_checkpoint: {p}self_attn.{extra}: biases and q/k norms are not in this forward')
    return cfg, w, {'method': method, 'bits': bits, 'group_size': gs, 'checkpoint': checkpoint, 'tensors': len(t)}


def main():
    import argparse
    ap = argparse.ArgumentParser(description='Decode a GPTQ / AutoAWQ folder; optionally compare with expected weights.')
    ap.add_argument('dir')
    ap.add_argument('--compare', metavar='FILE.safetensors',
                    help='float32 weights in llama.cpp names and row order (blk.L.attn_q.weight, ...) that every '
                         'block linear must decode to exactly')
    a = ap.parse_args()
    cfg, w, info = load(a.dir)
    lin = sorted(k for k in w if k.startswith('blk.') and not k.endswith('norm.weight'))
    print(f"{a.dir}: {info['method']} {info['bits']}-bit group_size {info['group_size']} "
          f"({info['checkpoint']}), {info['tensors']} tensors, {len(lin)} linears decoded; config {cfg}")
    if a.compare:
        from safetensors.numpy import load_file
        ref = load_file(a.compare)
        missing = [k for k in ref if k not in w]
        if missing:
            sys.exit(f'int32_checkpoint: {len(missing)} expected tensors not in the folder, e.g. {missing[0]}')
        worst = max(float(np.abs(w[k] - ref[k]).max()) if w[k].shape == ref[k].shape else float('inf') for k in ref)
        print(f'compared {len(ref)} linears with {a.compare}: max |difference| {worst:g}')
        if worst != 0.0:
            sys.exit('int32_checkpoint: the folder does not decode to the expected weights')


if __name__ == '__main__':
    main()
