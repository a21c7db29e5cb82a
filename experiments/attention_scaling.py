"""Attention cost against sequence length: MACs (traced) and latency.

    python experiments/attention_scaling.py --out DIR [--dim 192] [--runs 10]

Stacks ``--layers`` pre-norm Transformer blocks of width ``--dim`` and, for
each sequence length N, counts MACs by tracing (the two N x N attention
products are ``2 N^2 d`` per block, the rest ``N (4 d^2 + 2 d h)``) and
measures the median latency on the current JAX backend. Writes
``DIR/table.csv`` and ``DIR/attention_scaling.png`` (log-log). Well under a
minute on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True, help="output directory")
  p.add_argument("--tokens", type=int, nargs="+",
                 default=[64, 128, 256, 512, 1024, 2048])
  p.add_argument("--dim", type=int, default=192, help="model width")
  p.add_argument("--heads", type=int, default=3, help="attention heads")
  p.add_argument("--layers", type=int, default=2, help="stacked blocks")
  p.add_argument("--batch", type=int, default=1)
  p.add_argument("--runs", type=int, default=10, help="timed runs")
  p.add_argument("--warmup", type=int, default=2, help="untimed runs")
  p.add_argument("--clock", default="wall", choices=("wall", "process"))
  return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  from supernet.costs import studies  # heavy: after argument parsing
  os.makedirs(args.out, exist_ok=True)
  start = time.perf_counter()
  rows = studies.attention_scaling(
      args.tokens, args.dim, args.heads, args.layers, args.batch, args.warmup,
      args.runs, args.clock, progress=True)
  csv_path = os.path.join(args.out, "table.csv")
  png_path = os.path.join(args.out, "attention_scaling.png")
  studies.write_csv(rows, csv_path, studies.ATTENTION_COLUMNS)
  studies.plot_attention_scaling(rows, png_path)
  print(f"{'N':>6} {'MMACs':>10} {'attn MMACs':>11} {'attn share':>10} "
        f"{'latency ms':>10}")
  for r in rows:
    print(f"{r['tokens']:>6} {r['macs'] / 1e6:>10.1f} "
          f"{r['attention_macs'] / 1e6:>11.1f} "
          f"{r['attention_macs'] / r['macs']:>10.1%} {r['latency_ms']:>10.2f}")
  print(f"\nwrote {csv_path} and {png_path} in "
        f"{time.perf_counter() - start:.0f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
