"""``supernet search --config CFG --workdir RUN``: run an architecture search.

The config's ``search.strategy`` picks the loop: ``gradient`` (DARTS, GDAS,
PC-DARTS over a supernet) or a black-box strategy (random, evolution, RL...)
run by :mod:`supernet.strategies.runner`. Either way the best architecture is
written to ``RUN/arch.json``. Re-running the same command resumes.
"""

from __future__ import annotations

import argparse
import os
import time

from supernet.config import load_config
from supernet.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True,
                      help="config file, optionally with :variant")
  parser.add_argument("--workdir", required=True, help="run directory")
  parser.add_argument("--no-progress", action="store_true",
                      help="no progress bar")


def run(args: argparse.Namespace) -> int:
  config = load_config(args.config, args.config_overrides)
  if "search" not in config or "strategy" not in config.search:
    raise UserError(f"config {args.config} has no search.strategy")
  t0 = time.time()
  if config.search.strategy == "gradient":
    from supernet.search.darts import run_search, search_summary
    arch = run_search(config, args.workdir, progress=not args.no_progress)
    written = search_summary(args.workdir)
  elif config.search.strategy in ("compound_scaling", "space_selection"):
    if config.search.strategy == "compound_scaling":
      from supernet.strategies.compound import OUTPUTS
      from supernet.strategies.compound import run_compound_scaling as fn
    else:
      from supernet.strategies.space_selection import OUTPUTS
      from supernet.strategies.space_selection import run_space_selection as fn
    arch = fn(config, args.workdir)
    written = {n: os.path.join(args.workdir, n) for n in OUTPUTS}
  else:
    from supernet.strategies.runner import run_strategy_search
    arch = run_strategy_search(config, args.workdir)
    written = {"arch.json": os.path.join(args.workdir, "arch.json")}
  print(f"search finished in {time.time() - t0:.1f} s")
  print(f"derived architecture: {arch.dumps()}")
  for name, path in written.items():
    print(f"  {name:16s} {path}")
  return 0
