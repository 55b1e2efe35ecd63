#!/usr/bin/env python3
"""Bits/weight vs perplexity: every row of a lowbit-quantize --sweep CSV (and llama.cpp's types
from docs/peers.md) on one log-scale plot, with the Pareto frontier drawn through the rows no
other row beats at fewer or equal bits.

    python scripts/plot_frontier.py [--csv docs/results.csv] [--peers docs/peers.md]
                                    [--out docs/frontier.png] [--max-ppl 200] [--only spqr,gptq,...]

Needs matplotlib (pinned in docs/results.md's command: matplotlib==3.11.2). The PNG carries no
date or version metadata, so the same CSV gives the same bytes on the same matplotlib.
Rows above --max-ppl or --max-bits are left off the plot and listed on stdout (2-bit rows break
the scale); only the frontier's points are labelled.
"""
import argparse
import csv
import os
import re
import sys


def load_rows(path):
    with open(path, newline='') as f:
        return [r for r in csv.DictReader(f)]


def load_peers(path):
    """(label, avg bits, ppl) of every row of the peers table (| type | avg bits | types | ppl | delta |)."""
    if not path or not os.path.exists(path):
        return []
    out = []
    for line in open(path, encoding='utf-8'):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 5 or not re.match(r'^Q\d|^IQ', cells[0]):
            continue
        try:
            out.append((cells[0].replace('`', ''), float(cells[1]), float(cells[3])))
        except ValueError:
            continue
    return out


def family(method):
    return method.split('@', 1)[0]


def pareto(points):
    """Points (bits, ppl, ...) not beaten by one with fewer-or-equal bits and lower ppl."""
    best, front = float('inf'), []
    for p in sorted(points, key=lambda p: (p[0], p[1], p[2])):
        if p[1] < best:
            front.append(p)
            best = p[1]
    return front


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--csv', default=os.path.join(root, 'docs', 'results.csv'))
    ap.add_argument('--peers', default=os.path.join(root, 'docs', 'peers.md'), help="'' for none")
    ap.add_argument('--out', default=os.path.join(root, 'docs', 'frontier.png'))
    ap.add_argument('--max-ppl', type=float, default=200.0)
    ap.add_argument('--max-bits', type=float, default=6.2)
    ap.add_argument('--only', default='', help='comma-separated method families to plot (default all)')
    ap.add_argument('--title', default='SmolLM2-135M, WikiText-2 test (64 x 512 tokens)')
    a = ap.parse_args()

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = load_rows(a.csv)
    only = {s for s in a.only.split(',') if s}
    floats = {float(r['ppl_float']) for r in rows}
    pts, dropped = [], []
    for r in rows:
        if only and family(r['method']) not in only:
            continue
        p = (float(r['avg_bits']), float(r['ppl']), r['method'], r['bits'], r['group'], r['axis'])
        (dropped if p[1] > a.max_ppl or p[0] > a.max_bits else pts).append(p)
    # Q4_1 is the reference file itself (llama-quantize gives back its every value): it is the
    # float model, not a competitor, so it is not a peer point.
    peers = [] if only else [p for p in load_peers(a.peers)
                             if not p[0].startswith('Q4_1') and p[1] <= a.max_bits and p[2] <= a.max_ppl]

    fams = sorted({family(p[2]) for p in pts})
    cmap = plt.get_cmap('tab10')
    markers = {'oc': 'o', 'ic': 's', 'adaptive': 'D'}
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    front = pareto([(p[0], p[1], f"{p[2]} {p[3]}b {'pc' if p[4] == '0' else 'g' + p[4]} {p[5]}") for p in pts] +
                   [(b, ppl, name) for name, b, ppl in peers])
    for i, fam in enumerate(fams):
        first = True
        for p in (p for p in pts if family(p[2]) == fam):
            # hollow: a variant of the method's default (act-order, AWQ's old inputs), not a budget
            variant = '@' in p[2] and fam not in ('owq', 'spqr')
            ax.scatter(p[0], p[1], color=cmap(i % 10), marker=markers.get(p[5], 'o'),
                       facecolors='none' if variant else cmap(i % 10), s=42, zorder=3,
                       label=fam if first else None)
            first = False
    if peers:
        ax.scatter([p[1] for p in peers], [p[2] for p in peers], marker='x', color='black', s=30, zorder=3,
                   label='llama.cpp (llama-quantize)')
    for b, ppl, name in front:  # only the frontier is labelled: the rest reads off the legend
        ax.annotate(name, (b, ppl), fontsize=7, xytext=(4, 3), textcoords='offset points')
    ax.plot([p[0] for p in front], [p[1] for p in front], color='gray', lw=1, ls='-', zorder=2,
            label='Pareto frontier')
    for fl in sorted(floats):
        ax.axhline(fl, color='gray', ls='--', lw=0.8)
        ax.annotate(f'float {fl:.3f}', (ax.get_xlim()[0], fl), fontsize=7, xytext=(2, 2), textcoords='offset points')
    ax.set_yscale('log')
    ax.set_xlabel('bits per weight (block linears: codes + stats + outliers)')
    ax.set_ylabel('perplexity (log scale)')
    ax.set_title(a.title, fontsize=10)
    ax.grid(True, which='both', lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc='upper right', title='filled: default; hollow: @variant\no oc, s ic, D adaptive groups',
              title_fontsize=6)
    fig.tight_layout()
    fig.savefig(a.out, metadata={'Software': None})
    print(f'wrote {a.out}: {len(pts)} rows' + (f', {len(peers)} llama.cpp types' if peers else ''))
    for p in dropped:
        print(f'  left off (ppl {p[1]:.1f}, {p[0]:.3f} bits: outside the plot): {p[2]} {p[3]}-bit group {p[4]} {p[5]}')
    print('Pareto frontier:', '; '.join(f'{name} ({b:.3f} b, {ppl:.2f})' for b, ppl, name in front))
    return 0


if __name__ == '__main__':
    sys.exit(main())
