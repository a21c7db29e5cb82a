"""Error of the latency lookup table on random MobileNetV2-style architectures.

    python experiments/latency_lut_error.py [--archs 30] [--resolution 224]
        [--runs 20] [--clock wall|process] [--cache PATH] [--seed 0]

Builds (once; cached per device and JAX version) the per-block latency table
of the space (kernel {3,5,7} x expand {3,4,6} per block, elastic depth),
then prints predicted against measured latency of ``--archs`` random
architectures and the mean absolute percentage error. The same as
``supernet profile --lut-error``.
"""

from __future__ import annotations

import sys

from supernet.cli import main as supernet_main


def main(argv: list[str] | None = None) -> int:
  import argparse
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--archs", type=int, default=30)
  p.add_argument("--resolution", type=int, default=224)
  p.add_argument("--batch", type=int, default=1)
  p.add_argument("--runs", type=int, default=20)
  p.add_argument("--clock", default="wall", choices=("wall", "process"))
  p.add_argument("--cache", help="table cache file")
  p.add_argument("--seed", type=int, default=0, help="sampling seed")
  p.add_argument("--json", action="store_true")
  args = p.parse_args(argv)
  cli = ["profile", "--lut-error", "--lut-archs", str(args.archs),
         "--resolution", str(args.resolution), "--batch", str(args.batch),
         "--runs", str(args.runs), "--clock", args.clock,
         "--seed", str(args.seed)]
  cli += ["--lut-cache", args.cache] if args.cache else []
  cli += ["--json"] if args.json else []
  return supernet_main(cli)


if __name__ == "__main__":
  sys.exit(main())
