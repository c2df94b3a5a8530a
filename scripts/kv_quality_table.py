#!/usr/bin/env python3
"""Builds the KV cache quality and memory table (docs/KV_QUALITY.md).

For each model and cache configuration, runs `kvcache verify --text` (the candidate cache reads the
text one token per step; the reference is f32 with full recomputation) and tabulates perplexity,
its change, mean KL, top-1 agreement and the bytes the cache holds per token.

Usage: scripts/kv_quality_table.py [--bin build/bin/kvcache] [--out docs/KV_QUALITY.md]
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

CONFIGS = [
    ("f32", "--kv-type f32"),
    ("f16", "--kv-type f16"),
    ("bf16", "--kv-type bf16"),
    ("q8 (per-token)", "--kv-type q8"),
    ("q4 per-token, no residual", "--kv-type q4 --kv-residual 0"),
    ("q4 per-token, residual 128", "--kv-type q4 --kv-residual 128"),
    ("q4 KIVI, residual 32", "--kv-type q4 --kv-grouping kivi --kv-residual 32"),
    ("q4 KIVI, residual 128", "--kv-type q4 --kv-grouping kivi --kv-residual 128"),
    ("q2 per-token, no residual", "--kv-type q2 --kv-residual 0"),
    ("q2 per-token, residual 128", "--kv-type q2 --kv-residual 128"),
    ("q2 KIVI, residual 32", "--kv-type q2 --kv-grouping kivi --kv-residual 32"),
    ("q2 KIVI, residual 128", "--kv-type q2 --kv-grouping kivi --kv-residual 128"),
    ("K q8 / V q4, no residual", "--kv-type-k q8 --kv-type-v q4 --kv-residual 0"),
    ("f32, window 128", "--kv-type f32 --kv-window 128"),
    ("f32, window 64", "--kv-type f32 --kv-window 64"),
    ("f32, window 64 + 4 sinks", "--kv-type f32 --kv-window 64 --kv-sinks 4"),
    ("q4 KIVI r32, window 128", "--kv-type q4 --kv-grouping kivi --kv-residual 32 --kv-window 128"),
]

MODELS = ["stories260K.gguf", "stories-distill-h32.gguf"]
HEADLINE = ["q8 (per-token)", "q4 per-token, no residual", "q4 KIVI, residual 32",
            "q2 per-token, no residual", "q2 KIVI, residual 32"]


def run(binary, model, text, flags):
    cmd = [binary, "verify", "-m", model, "--text", text, "-t", "1"] + flags.split()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 2):
        return None, out.stderr.strip()
    s = out.stdout
    ppl = re.search(r"reference ([\d.]+)\s+candidate ([\d.]+)", s)
    kl = re.search(r"mean KL ([\d.e+-]+) nats\s+top-1 agreement ([\d.]+)%", s)
    kv = re.search(r"(\d+) tokens in (\d+) bytes", s)
    return dict(ppl_ref=float(ppl.group(1)), ppl=float(ppl.group(2)), kl=float(kl.group(1)),
                top1=float(kl.group(2)), tokens=int(kv.group(1)), bytes=int(kv.group(2))), None


def storage_bytes_per_token(binary, model, flags):
    """Per-token storage bytes from `kvcache memory` (residual ring and window excluded)."""
    keep = []
    toks = flags.split()
    i = 0
    while i < len(toks):
        if toks[i] in ("--kv-window", "--kv-sinks"):
            i += 2
            continue
        keep.append(toks[i])
        i += 1
    out = subprocess.run([binary, "memory", "-m", model, "-c", "1"] + keep,
                         capture_output=True, text=True).stdout
    m = re.search(r"per token: ([\d,]+) bytes", out)
    return m.group(1) if m else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "kvcache"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "KV_QUALITY.md"))
    ap.add_argument("--text", default=os.path.join(SHARED, "eval", "tinystories-like.txt"))
    args = ap.parse_args()
    if not os.path.exists(args.text):
        sys.exit(f"missing {args.text}: the quality table needs ../shared")
    lines = ["# KV cache quality and memory", "",
             "Produced by `scripts/kv_quality_table.py` (re-run it to refresh). Each row runs",
             "`kvcache verify --text ../shared/eval/tinystories-like.txt` with the flags shown: the",
             "candidate cache reads the text one token per step (as in decode, in segments of the",
             "model's context, each starting with BOS); the reference keeps f32 K/V and recomputes.",
             "KL is KL(reference || candidate) per token, in nats. *KV bytes* is what the cache",
             "holds at the end of the longest segment (storage blocks + f32 residual ring; windows",
             "and sinks hold only their tokens); *vs f16* divides it by an f16 cache's bytes there.",
             "*Storage B/token* is the long-context cost per token without the fixed residual ring",
             "(from `kvcache memory`).", ""]
    for model in MODELS:
        path = os.path.join(SHARED, "models", model)
        lines += [f"## {model}", "",
                  "| cache | flags | perplexity | change | mean KL | top-1 | KV bytes | vs f16 | storage B/token |",
                  "|---|---|---|---|---|---|---|---|---|"]
        f16_bytes = None
        rows = []
        for name, flags in CONFIGS:
            r, err = run(args.bin, path, args.text, flags)
            if r is None:
                rows.append(f"| {name} | `{flags}` | error: {err} | | | | | |")
                continue
            bpt = storage_bytes_per_token(args.bin, path, flags)
            if name == "f16":
                f16_bytes = r["bytes"]
            rows.append((name, flags, r, bpt))
            print(f"{model} {name}: ppl {r['ppl']:.4f} kl {r['kl']:.6f} top1 {r['top1']:.2f}% "
                  f"{r['bytes']} B held, {bpt} B/token", file=sys.stderr)
        # Headline: perplexity change and storage against f16 for the main low-bit settings.
        f16_bpt = next((int(b.replace(",", "")) for n, _, _, b in (x for x in rows if not isinstance(x, str))
                        if n == "f16"), None)
        heads = []
        for row in rows:
            if isinstance(row, str) or row[0] not in HEADLINE:
                continue
            name, _, r, bpt = row
            size = f", {int(bpt.replace(',', '')) / f16_bpt:.2f}x f16 storage" if f16_bpt and bpt != "?" else ""
            heads.append(f"{name}: {100.0 * (r['ppl'] / r['ppl_ref'] - 1):+.3f}% perplexity, "
                         f"KL {r['kl']:.6f}, top-1 {r['top1']:.2f}%{size}")
        lines += ["Headline: " + "; ".join(heads) + ".", ""]
        for row in rows:
            if isinstance(row, str):
                lines.append(row)
                continue
            name, flags, r, bpt = row
            change = 100.0 * (r["ppl"] / r["ppl_ref"] - 1)
            ratio = f"{r['bytes'] / f16_bytes:.2f}x" if f16_bytes else ""
            lines.append(f"| {name} | `{flags}` | {r['ppl']:.4f} | {change:+.3f}% | {r['kl']:.6f} | "
                         f"{r['top1']:.2f}% | {r['bytes']:,} | {ratio} | {bpt} |")
        lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
