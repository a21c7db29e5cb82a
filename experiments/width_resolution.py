"""Width x resolution study of MobileNetV2: MFLOPs are not latency.

    python experiments/width_resolution.py --out DIR [--batch B] [--runs N]

For a grid of width multipliers x input resolutions of MobileNetV2 (1000
classes, torchvision channel rounding), prints and writes ``DIR/table.csv``
with columns width, resolution, mflops (= MACs / 1e6 per image, the
MobileNet papers' "MFLOPs"), params, activation_bytes (XLA temp + output),
latency_ms (median on the current JAX backend), and ``DIR/latency_vs_mflops.png``:
latency against MFLOPs with pairs of near-equal MFLOPs (within
``--mflops-tol``) and different latency joined and labelled (``w0.3-r160``).

About the seed's pairs (w0.3-r160, w0.4-r112, w0.7-r96 at ~32 MFLOPs): our
MobileNetV2 gives 29.4, 22.5 and 32.9 MFLOPs for them (checked against an
analytic count). The first and last roughly reproduce ~32; w0.4-r112 does
not, in any standard MobileNetV2 rounding we tried (torchvision, Keras,
unrounded channels, width-scaled last conv: 14.6-22.5), so that seed figure
belongs to another network variant or resolution; w0.5-r128 (32.6) is ours
near 32. The seed configurations are always in the grid and labelled.

With the defaults (30 configurations) it ran in 2m19s on 2 CPU cores shared
with other jobs (load ~7.5), mostly XLA compilations. Wall-clock latency on
such a busy CPU is noisy; ``--clock process`` (this process's CPU time)
gives stable timings there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

SEED_CONFIGS = ((0.3, 160), (0.4, 112), (0.7, 96))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True, help="output directory")
  p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
  p.add_argument("--runs", type=int, default=10,
                 help="timed runs per configuration (default 10)")
  p.add_argument("--warmup", type=int, default=2, help="untimed runs")
  p.add_argument("--widths", type=float, nargs="+",
                 default=[0.3, 0.4, 0.5, 0.7, 1.0])
  p.add_argument("--resolutions", type=int, nargs="+",
                 default=[96, 112, 128, 160, 192, 224])
  p.add_argument("--mflops-tol", type=float, default=0.05,
                 help="near-equal MFLOPs: relative difference (default 0.05)")
  p.add_argument("--latency-tol", type=float, default=0.10,
                 help="different latency: relative difference (default 0.10)")
  p.add_argument("--clock", default="wall", choices=("wall", "process"))
  return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  from supernet.costs import studies  # heavy: after argument parsing
  os.makedirs(args.out, exist_ok=True)
  widths = sorted(set(args.widths) | {w for w, _ in SEED_CONFIGS})
  resolutions = sorted(set(args.resolutions) | {r for _, r in SEED_CONFIGS})
  start = time.perf_counter()
  rows = studies.width_resolution_grid(
      widths, resolutions, batch=args.batch, warmup=args.warmup,
      runs=args.runs, clock=args.clock, progress=True)
  pairs = studies.near_equal_mflops_pairs(rows, args.mflops_tol,
                                          args.latency_tol)
  csv_path = os.path.join(args.out, "table.csv")
  png_path = os.path.join(args.out, "latency_vs_mflops.png")
  studies.write_csv(rows, csv_path, studies.WIDTH_RESOLUTION_COLUMNS)
  studies.plot_latency_vs_mflops(rows, pairs, png_path,
                                 highlight=SEED_CONFIGS)
  print(f"{'config':>11} {'MFLOPs':>8} {'params':>10} {'act MiB':>8} "
        f"{'latency ms':>10}")
  for r in rows:
    print(f"{studies.config_label(r['width'], r['resolution']):>11} "
          f"{r['mflops']:>8.1f} {r['params']:>10,} "
          f"{r['activation_bytes'] / 2**20:>8.2f} {r['latency_ms']:>10.2f}")
  print(f"\n{len(pairs)} pairs within {args.mflops_tol:.0%} MFLOPs and "
        f">= {args.latency_tol:.0%} apart in latency; largest gaps:")
  for fast, slow in pairs[:10]:
    print(f"  {studies.config_label(fast['width'], fast['resolution'])} "
          f"({fast['mflops']:.1f} MFLOPs, {fast['latency_ms']:.2f} ms) vs "
          f"{studies.config_label(slow['width'], slow['resolution'])} "
          f"({slow['mflops']:.1f} MFLOPs, {slow['latency_ms']:.2f} ms)")
  print(f"\nwrote {csv_path} and {png_path} in "
        f"{time.perf_counter() - start:.0f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
