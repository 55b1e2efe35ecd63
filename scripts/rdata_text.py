#!/usr/bin/env python3
"""Extract character vectors from an R package's lazy-load data (data/Rdata.rdb + .rdx).

Python 3 standard library only, so scripts/fetch-assets needs no R installation.

Format (R Internals, "Lazy loading" and "Serialization formats"):
  Rdata.rdx  gzip'ed R serialization of list(variables = list(name = c(offset, length)), ...)
  Rdata.rdb  at each offset: 4-byte big-endian uncompressed size, then a zlib stream holding
             the XDR serialization ("X\\n") of one object.
Only what character-vector data sets need is decoded: STRSXP/CHARSXP, the pairlists and
symbols of attributes, integer/real/logical vectors, generic lists and back-references.
Anything else raises an error rather than guessing.

Usage: rdata_text.py <data dir> <object name> <output.txt>     (one element per line)
       rdata_text.py <data dir> --list
"""
import gzip
import struct
import sys
import zlib

NILVALUE, REFSXP, NILSXP = 254, 255, 0
SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 1, 2, 9, 10, 13, 14, 16, 19
GLOBALENV, EMPTYENV, BASEENV, MISSINGARG, BASENAMESPACE = 253, 242, 241, 251, 247


class Reader:
    def __init__(self, data):
        if data[:2] != b"X\n":
            raise ValueError("not an XDR R serialization (expected 'X\\n')")
        self.d, self.o, self.refs = data, 2, []
        version = self.int()
        self.int()  # writer's R version
        self.int()  # minimal reader version
        if version == 3:
            n = self.int()
            self.o += n  # native encoding name
        elif version != 2:
            raise ValueError(f"unsupported serialization version {version}")

    def int(self):
        if self.o + 4 > len(self.d):
            raise ValueError("truncated serialization")
        v = struct.unpack_from(">i", self.d, self.o)[0]
        self.o += 4
        return v

    def bytes(self, n):
        if n < 0 or self.o + n > len(self.d):
            raise ValueError("truncated serialization")
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def item(self):
        flags = self.int()
        t, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if t in (NILVALUE, GLOBALENV, EMPTYENV, BASEENV, MISSINGARG, BASENAMESPACE):
            return None
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == SYMSXP:
            name = self.item()
            self.refs.append(("sym", name))
            return ("sym", name)
        if t == LISTSXP:  # pairlist: attr?, tag?, car, cdr
            out = []
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                out.append((tag[1] if tag else None, self.item()))
                nxt = self.int()
                t, has_attr, has_tag = nxt & 0xFF, bool(nxt & (1 << 9)), bool(nxt & (1 << 10))
                if t == NILVALUE:
                    return out
                if t != LISTSXP:
                    raise ValueError(f"pairlist tail of type {t} not supported")
        if t == CHARSXP:
            n = self.int()
            return None if n == -1 else self.bytes(n).decode("utf-8")
        if t in (LGLSXP, INTSXP):
            n = self.int()
            v = list(struct.unpack_from(f">{n}i", self.bytes(4 * n)))
        elif t == REALSXP:
            n = self.int()
            v = list(struct.unpack_from(f">{n}d", self.bytes(8 * n)))
        elif t == STRSXP:
            n = self.int()
            v = [self.item() for _ in range(n)]
        elif t == VECSXP:
            n = self.int()
            v = [self.item() for _ in range(n)]
        else:
            raise ValueError(f"R object type {t} not supported by this decoder")
        if has_attr:
            attrs = self.item()
            names = dict(attrs).get("names") if attrs else None
            if t == VECSXP and names:
                return dict(zip(names, v))
        return v


def load_index(data_dir):
    with gzip.open(f"{data_dir}/Rdata.rdx", "rb") as f:
        idx = Reader(f.read()).item()
    return {name: (int(pos[0]), int(pos[1])) for name, pos in idx["variables"].items()}


def load_object(data_dir, name):
    index = load_index(data_dir)
    if name not in index:
        raise KeyError(f"{name} not in {sorted(index)}")
    off, length = index[name]
    with open(f"{data_dir}/Rdata.rdb", "rb") as f:
        f.seek(off)
        blob = f.read(length)
    size = struct.unpack(">I", blob[:4])[0]
    raw = zlib.decompress(blob[4:])
    if len(raw) != size:
        raise ValueError(f"{name}: decompressed {len(raw)} bytes, index says {size}")
    return Reader(raw).item()


def main(argv):
    if len(argv) == 3 and argv[2] == "--list":
        for name in sorted(load_index(argv[1])):
            print(name)
        return 0
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    lines = load_object(argv[1], argv[2])
    if not isinstance(lines, list) or not all(isinstance(s, str) or s is None for s in lines):
        raise ValueError(f"{argv[2]} is not a character vector")
    with open(argv[3], "w", encoding="utf-8") as f:
        for s in lines:
            f.write(("" if s is None else s) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
