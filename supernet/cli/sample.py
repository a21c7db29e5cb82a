"""``supernet sample``: print architectures of a config's search space.

    supernet sample --config CFG [--n K] [--seed S] [--largest | --smallest]

Prints one ``arch.json`` document per line (uniform samples from the seed, or
the largest / smallest architecture), ready for ``supernet extract --arch``.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True,
                      help="experiment config, path.py[:variant]")
  parser.add_argument("--n", type=int, default=1,
                      help="number of random architectures (default 1)")
  parser.add_argument("--seed", type=int, default=0, help="sampling seed")
  which = parser.add_mutually_exclusive_group()
  which.add_argument("--largest", action="store_true",
                     help="print the largest architecture only")
  which.add_argument("--smallest", action="store_true",
                     help="print the smallest architecture only")


def run(args: argparse.Namespace) -> int:
  import jax

  from supernet.config import load_config
  from supernet.errors import UserError
  from supernet.spaces import make_space

  if args.n < 1:
    raise UserError(f"--n must be at least 1, got {args.n}")
  config = load_config(args.config, args.config_overrides)
  if "space" not in config or "name" not in config.space:
    raise UserError(f"config {args.config} has no space.name")
  space = make_space(config.space.name, config.space)
  if args.largest:
    archs = [space.largest()]
  elif args.smallest:
    archs = [space.smallest()]
  else:
    archs = space.sample_many(jax.random.key(args.seed), args.n)
  for arch in archs:
    print(arch.dumps())
  return 0
