#!/usr/bin/env python3
"""Bar chart of a bench/peer_ggml CSV (lowbit's GEMV vs ggml's, one process): for each batch
size m, one group of bars per shape, one bar per kernel and type, height = speedup over ggml's
fastest q4_K at that shape and m (the CSV's speedup_vs_q4_K column; higher is faster).

    python scripts/plot_peer_ggml.py peer_ggml.csv peer_ggml.png [--m 1,8]

Needs matplotlib. The PNG carries no version metadata, so the same CSV gives the same bytes on
the same matplotlib. Lines starting with '#' (the bench's header) are skipped.
"""
import argparse
import csv
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("out")
    ap.add_argument("--m", default="", help="batch sizes to plot (default: every m in the CSV)")
    a = ap.parse_args()
    with open(a.csv) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    if not rows:
        sys.exit(f"plot_peer_ggml: no rows in {a.csv}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = sorted({int(r["m"]) for r in rows})
    if a.m:
        ms = [int(v) for v in a.m.split(",")]
    shapes = list(dict.fromkeys(f'{r["rows"]}x{r["cols"]}' for r in rows))
    series = list(dict.fromkeys(f'{r["kernel"]} {r["type"]} ({float(r["bits_per_weight"]):.2f} b/w)' for r in rows))
    fig, axes = plt.subplots(len(ms), 1, figsize=(11, 3.6 * len(ms)), squeeze=False)
    width = 0.8 / len(series)
    colors = plt.get_cmap("tab20").colors
    for ax, m in zip(axes[:, 0], ms):
        for k, s in enumerate(series):
            xs, ys = [], []
            for i, sh in enumerate(shapes):
                for r in rows:
                    name = f'{r["kernel"]} {r["type"]} ({float(r["bits_per_weight"]):.2f} b/w)'
                    if name == s and f'{r["rows"]}x{r["cols"]}' == sh and int(r["m"]) == m:
                        xs.append(i + (k - (len(series) - 1) / 2) * width)
                        ys.append(float(r["speedup_vs_q4_K"]))
            ax.bar(xs, ys, width, label=s, color=colors[k % len(colors)])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(shapes)))
        ax.set_xticklabels(shapes)
        ax.set_ylabel(f"speed vs ggml q4_K, m = {m}")
        ax.grid(axis="y", alpha=0.3)
    threads = rows[0]["threads"]
    axes[0, 0].set_title(f"GEMV/GEMM, {threads} threads, same process (bench/peer_ggml); higher is faster")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, ncol=4, loc="lower center")
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.savefig(a.out, metadata={"Software": None})


if __name__ == "__main__":
    main()
