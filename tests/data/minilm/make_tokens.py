#!/usr/bin/env python3
"""Writes tokens.tsv: all-MiniLM-L6-v2 token ids of real sentences from an independent
tokenizer, Hugging Face `tokenizers` (Rust) loading the tokenizer.json that ships with the
model (scripts/fetch-assets --minilm extracts it). lowbit's C++ WordPiece tokenizer
(tools/minilm/wordpiece.hpp) must reproduce every row (tests/minilm_tokenizer_test.cpp).

Texts: sentences of WikiText-2 test spread evenly over the file, passages of Pride and
Prejudice, and edge cases (accents, CJK, punctuation, control characters, long words).
Rows with max_length 0 are encoded without truncation; the others with sentence-transformers'
truncation (max_length ids including [CLS] and [SEP]).

Usage (from the repository root, after scripts/fetch-assets --minilm):
  python3 -m venv /tmp/minilm-venv && /tmp/minilm-venv/bin/pip install tokenizers==0.23.3
  /tmp/minilm-venv/bin/python tests/data/minilm/make_tokens.py
Output columns: max_length TAB text (\\\\, \\t, \\n, \\r, \\xNN escaped) TAB ids (space-separated).
Not covered (not modelled by the C++ tokenizer): added tokens such as "[MASK]" typed in the text.
"""
import os
import pathlib
import sys

import tokenizers
from tokenizers import Tokenizer

root = pathlib.Path(__file__).resolve().parents[3]
assets = pathlib.Path(os.environ.get("LOWBIT_ASSETS", root / "assets"))
wikitext = root / "data" / "wikitext-2" / "test.txt"
if not wikitext.exists():
    wikitext = pathlib.Path(os.environ["LOWBIT_WIKITEXT"])
austen = assets / "text" / "austen-evaluation.txt"
out_path = pathlib.Path(__file__).resolve().parent / "tokens.tsv"

tk = Tokenizer.from_file(str(assets / "all-MiniLM-L6-v2" / "tokenizer.json"))
tk.no_padding()

texts = []
lines = [l.rstrip("\n") for l in wikitext.read_text(encoding="utf-8").split("\n")]
paragraphs = [l for l in lines if l.strip() and not l.strip().startswith("=")]
sentences = []
for p in paragraphs:
    for s in p.split(" . "):
        s = s.strip()
        if 20 <= len(s) <= 400:
            sentences.append(s + " .")
step = len(sentences) // 250
texts += [(0, sentences[i * step]) for i in range(250)]
# every WikiText-2 test line with a non-ASCII character (accents, scripts, symbols)
texts += [(0, l) for l in sorted({l.strip() for l in lines if any(ord(c) > 127 for c in l)})[:60]]
novel = austen.read_text(encoding="utf-8")
passages = [p for p in novel.split("\n\n") if len(p.strip()) > 40]
pstep = len(passages) // 100
texts += [(0, passages[i * pstep]) for i in range(100)]
texts += [(128, passages[i * pstep]) for i in range(0, 100, 10)]
texts += [(256, novel[20000:23000]), (128, novel[30000:33000]), (2, "two ids only")]
edge = [
    "Hello World", "HELLO, World!!", "don't stop-believing; 3.14 + 2 = 5.14?", "émigré naïve Café Ünïcödé ÅNGSTRÖM",
    "日本語のテキスト 中文字符", "Ελληνικά Σίσυφος και РУССКИЙ", "한국어 텍스트", "emoji 😀👍🏽 ok", "a\u00a0b x\u2003y z\u3000w",
    "tabs\tand\nnewlines\r\n", "ctrl\x00\x07\x1b chars\u200b\u200d zero-width", "soft\u00adhyphen", "İstanbul ǅ ﬁ ß ẞ",
    "x" * 101, "y" * 100, "supercalifragilisticexpialidocious antidisestablishmentarianism", "", "   ", "¿Qué? ¡Sí! «quote» „low“",
    "$10.99 & #hashtag @user ~tilde^ `tick` |pipe| \\back", "½ ⅓ Ⅻ ² ³ µ", "combining e\u0301 a\u0308 o\u0302",
]
texts += [(0, e) for e in edge]


def esc(s):
    s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 else c for c in s)


n_tokens = 0
with open(out_path, "w", encoding="utf-8", newline="\n") as f:
    f.write(f"# expected all-MiniLM-L6-v2 token ids: HF tokenizers {tokenizers.__version__}; made by make_tokens.py\n")
    for max_length, text in texts:
        if max_length:
            tk.enable_truncation(max_length=max_length)
        else:
            tk.no_truncation()
        ids = tk.encode(text).ids
        n_tokens += len(ids)
        f.write(f"{max_length}\t{esc(text)}\t{' '.join(map(str, ids))}\n")
print(f"wrote {out_path}: {len(texts)} texts, {n_tokens} tokens, {out_path.stat().st_size} bytes", file=sys.stderr)
