#!/usr/bin/env python3
"""Writes expected.tsv: token ids of real sentences from an independent tokenizer.

The reference is Hugging Face `tokenizers` (Rust), built from the SAME vocabulary and merges
that SmolLM2's GGUF file carries (read with the `gguf` package), with SmolLM2's published
pre-tokenizer: Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False)]
and its 17 control tokens as special added tokens. lowbit's C++ tokenizer must reproduce
every row (tests/tokenizer_test.cpp).

Texts: sentences of WikiText-2 test (spread evenly over the file), passages of Pride and
Prejudice (scripts/fetch-assets), and tokenizer edge cases (contractions, digits,
whitespace runs, non-Latin scripts, special tokens).

Usage (from the repository root, after scripts/fetch-assets):
  python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers==0.23.3 gguf==0.19.0
  /tmp/tokvenv/bin/python tests/data/tokenizer/make_expected.py
Output columns: parse_special (0/1) TAB text (\\\\, \\t, \\n, \\r escaped) TAB ids (space-separated).
"""
import importlib.metadata
import os
import pathlib
import sys

import gguf
import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

root = pathlib.Path(__file__).resolve().parents[3]
assets = pathlib.Path(os.environ.get("LOWBIT_ASSETS", root / "assets"))
model = assets / "SmolLM2-135M-Instruct.Q4_1.gguf"
wikitext = root / "data" / "wikitext-2" / "test.txt"
if not wikitext.exists():
    wikitext = pathlib.Path(os.environ["LOWBIT_WIKITEXT"])
austen = assets / "text" / "austen-evaluation.txt"
out_path = pathlib.Path(__file__).resolve().parent / "expected.tsv"


def field_strings(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def field_ints(reader, key):
    f = reader.fields[key]
    return [int(f.parts[i][0]) for i in f.data]


reader = gguf.GGUFReader(str(model))
tokens = field_strings(reader, "tokenizer.ggml.tokens")
merges = [tuple(m.split(" ")) for m in field_strings(reader, "tokenizer.ggml.merges")]
types = field_ints(reader, "tokenizer.ggml.token_type")
assert bytes(reader.fields["tokenizer.ggml.pre"].parts[-1]).decode() == "smollm"


def build(with_special):
    tk = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tk.decoder = decoders.ByteLevel()
    if with_special:
        tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                               for t, ty in zip(tokens, types) if ty == 3])
    return tk


plain, special = build(False), build(True)

# ---- texts ----
texts = []
lines = [l.rstrip("\n") for l in wikitext.read_text(encoding="utf-8").split("\n")]
paragraphs = [l for l in lines if l.strip() and not l.strip().startswith("=")]
headings = [l for l in lines if l.strip().startswith("=")]
sentences = []
for p in paragraphs:
    for s in p.split(" . "):
        s = s.strip()
        if 20 <= len(s) <= 400:
            sentences.append(s + " .")
step = len(sentences) // 250
texts += [(0, sentences[i * step]) for i in range(250)]
texts += [(0, headings[i * (len(headings) // 10)]) for i in range(10)]
texts += [(0, paragraphs[7]), (0, paragraphs[100] + "\n" + paragraphs[101])]  # raw lines, leading space kept

novel = austen.read_text(encoding="utf-8")
passages = [p for p in novel.split("\n\n") if len(p.strip()) > 40]
pstep = len(passages) // 100
texts += [(0, passages[i * pstep]) for i in range(100)]
texts += [(0, novel[20000:23000])]  # a long stretch with blank lines and wrapped lines

edge = [
    "Hello world", "  leading spaces", "trailing   ", "tabs\tand\nnewlines\n\n", "a\r\nb",
    "numbers 1234567 and 3.14 and 1,000,000", "in 1990s, 2nd, 3rd 100%",
    "don't I'll we've they're she'd it's O'Neil 'quoted' DON'T rock'n'roll",
    "émigré naïve café Ünïcödé", "日本語のテキスト", "Ελληνικά και русский", "emoji 😀👍🏽 ok",
    "a\u00a0b x\u2003y z\u3000w", "१२३ digits ٤٥٦", "½ ⅓ Ⅻ ²", "end\u0085next", "", " ", "\n", "it's  ",
    "--- ... !!! ???", "a  b   c    d", "x \n y \n\n z", "    indented code();", "$10.99 & #hashtag @user",
    "<|im_start|>user\nHi there<|im_end|>\n", "<|endoftext|>", "text<|im_end|>more<reponame>x",
]
texts += [(0, e) for e in edge]
texts += [(1, e) for e in edge if "<" in e]
texts += [(1, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n")]


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


n_tokens = 0
with open(out_path, "w", encoding="utf-8", newline="\n") as f:
    f.write(f"# expected SmolLM2 token ids: HF tokenizers {tokenizers.__version__}, gguf {importlib.metadata.version('gguf')}; "
            "made by make_expected.py\n")
    for flag, text in texts:
        tk = special if flag else plain
        ids = tk.encode(text, add_special_tokens=False).ids
        assert tk.decode(ids, skip_special_tokens=False) == text or flag, text
        n_tokens += len(ids)
        f.write(f"{flag}\t{esc(text)}\t{' '.join(map(str, ids))}\n")
print(f"wrote {out_path}: {len(texts)} texts, {n_tokens} tokens, {out_path.stat().st_size} bytes", file=sys.stderr)
