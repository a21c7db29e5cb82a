"""``supernet train --config CFG --arch RUN/arch.json --workdir RUN2``.

Trains the network of a derived architecture from scratch (DARTS / NB201
spaces) and writes metrics, plots, checkpoints and ``results.json`` to the
workdir; re-running the same command resumes. A config whose space is
elastic (``elastic_mbv``, ``elastic_vit``) trains the whole elastic supernet
instead (``supernet.elastic.train``), and then needs no ``--arch``.
"""

from __future__ import annotations

import argparse
import time

from supernet.config import load_config
from supernet.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``train`` options to ``parser``."""
  parser.add_argument("--config", required=True,
                      help="training config file, optionally with :variant")
  parser.add_argument("--arch", help="arch.json of the architecture to train "
                      "(e.g. a search's RUN/arch.json)")
  parser.add_argument("--workdir", required=True, help="run directory")
  parser.add_argument("--no-progress", action="store_true",
                      help="no progress bar")


def _train_elastic(config, args: argparse.Namespace) -> int:
  if args.arch:
    raise UserError("an elastic supernet trains all its sub-networks: drop "
                    "--arch (pick one later with 'supernet extract')")
  try:
    from supernet.elastic.train import train_and_evaluate
  except ModuleNotFoundError as e:
    if e.name != "supernet.elastic.train":
      raise
    raise UserError("elastic supernet training is not available in this "
                    "installation (supernet.elastic.train)") from None
  train_and_evaluate(config, args.workdir)
  return 0


def run(args: argparse.Namespace) -> int:
  """Runs ``supernet train``; returns the exit status."""
  from supernet.train.config import ELASTIC_SPACES
  config = load_config(args.config, args.config_overrides)
  if "space" not in config or "name" not in config.space:
    raise UserError(f"config {args.config} has no space.name")
  if config.space.name in ELASTIC_SPACES:
    return _train_elastic(config, args)
  if not args.arch:
    raise UserError("--arch ARCH.json is required (the architecture to "
                    "train, e.g. a search run's arch.json)")
  from supernet.spaces import load_arch, make_space
  from supernet.train import check_train_config, train_and_evaluate
  check_train_config(config)
  arch = load_arch(args.arch, make_space(config.space.name))
  t0 = time.time()
  results = train_and_evaluate(config, args.workdir, arch,
                               progress=not args.no_progress)
  print(f"training finished in {time.time() - t0:.1f} s: test accuracy "
        f"{results['test_accuracy']:.4f} ({results['test_correct']}/"
        f"{results['test_examples']}), {results['params']:,} parameters")
  print(f"  results.json     {args.workdir}/results.json")
  print(f"  next: supernet export --workdir {args.workdir} --out EXPORT")
  return 0
