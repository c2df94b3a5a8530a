#!/usr/bin/env python3
"""Plots `kvcache bench --json` results as SVG (no dependencies).

  build/bin/kvcache bench -m MODEL --depth 0,1024,4096 --kv-types f16,q8,q4 --json bench.json
  scripts/plot_bench.py bench.json            # writes bench-depth.svg and bench-cache.svg

1. decode tokens/s against KV depth, one line per cache configuration (with the roofline);
2. generation time against new tokens, with and without the KV cache (log-log).
"""
import json
import math
import os
import sys

W, H, L, R, T, B = 720, 440, 70, 190, 40, 60
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def scale(v, lo, hi, a, b, log=False):
    if log:
        v, lo, hi = math.log10(v), math.log10(lo), math.log10(hi)
    return a + (b - a) * ((v - lo) / (hi - lo) if hi > lo else 0.5)


def svg(title, xlabel, ylabel, series, logx=False, logy=False, hline=None):
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts] + ([hline[1]] if hline else [])
    x0, x1 = min(xs), max(xs)
    if logy:
        ys = [y for y in ys if y > 0]
    y0, y1 = (min(ys), max(ys)) if logy else (0, max(ys) * 1.1)
    if logx and x0 <= 0:
        x0 = 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2 - R / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{(L + W - R) / 2}" y="{H - 20}" text-anchor="middle">{xlabel}</text>',
           f'<text x="18" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 {(T + H - B) / 2})">{ylabel}</text>']
    ticks = sorted(set(xs))
    for x in ticks:
        px = scale(max(x, x0), x0, x1, L, W - R, logx)
        out.append(f'<text x="{px}" y="{H - B + 16}" text-anchor="middle">{x:g}</text>')
    for i in range(6):
        v = y0 + (y1 - y0) * i / 5 if not logy else 10 ** (math.log10(y0) + (math.log10(y1) - math.log10(y0)) * i / 5)
        py = scale(v, y0, y1, H - B, T, logy)
        out.append(f'<line x1="{L - 4}" y1="{py}" x2="{W - R}" y2="{py}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{py + 4}" text-anchor="end">{v:.3g}</text>')
    if hline:
        py = scale(hline[1], y0, y1, H - B, T, logy)
        out.append(f'<line x1="{L}" y1="{py}" x2="{W - R}" y2="{py}" stroke="gray" stroke-dasharray="6,4"/>')
        out.append(f'<text x="{W - R + 6}" y="{py + 4}" fill="gray">{hline[0]}</text>')
    for i, (name, pts) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        p = [(scale(max(x, x0), x0, x1, L, W - R, logx), scale(y, y0, y1, H - B, T, logy))
             for x, y in pts if y > 0 or not logy]
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, " ".join(f"{a:.1f},{b:.1f}" for a, b in p)))
        for a, b in p:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{c}"/>')
        out.append(f'<rect x="{W - R + 10}" y="{T + 18 * i}" width="12" height="12" fill="{c}"/>')
        out.append(f'<text x="{W - R + 28}" y="{T + 18 * i + 10}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    stem = os.path.splitext(path)[0]
    data = json.load(open(path))
    model = os.path.basename(data["model"])
    by_kv = {}
    for d in data["depth"]:
        by_kv.setdefault(d["kv"], []).append((d["depth"], d["tg_tok_s"]))
    if by_kv:
        roof = ("roofline @0", data["roofline_tok_s"]) if data.get("roofline_tok_s") else None
        open(stem + "-depth.svg", "w").write(svg(
            f"Decode speed vs KV depth ({model}, {data['threads']} threads)", "KV depth (tokens)",
            "tokens/s (median)", [(k, sorted(v)) for k, v in by_kv.items()], hline=roof))
        print(f"wrote {stem}-depth.svg")
    rows = data.get("cache_table", [])
    if rows:
        series = [("with KV cache", [(r["new_tokens"], r["cached_s"]["mean"]) for r in rows]),
                  ("without (recompute)", [(r["new_tokens"], r["uncached_s"]["mean"]) for r in rows])]
        open(stem + "-cache.svg", "w").write(svg(
            f"Generation time, cached vs recomputed ({model})", "new tokens", "seconds (mean)",
            series, logx=True, logy=True))
        print(f"wrote {stem}-cache.svg")


if __name__ == "__main__":
    main()
