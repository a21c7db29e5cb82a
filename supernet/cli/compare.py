"""``supernet compare``: search strategies side by side, one report.

  supernet compare --config experiments/configs/compare_nb201.py[:smoke] \\
      --workdir OUT [--config.budget=50]
"""

from __future__ import annotations

import argparse
import shlex

from supernet.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the verb's arguments."""
  parser.add_argument("--config", required=True,
                      help="comparison config: path.py[:variant]")
  parser.add_argument("--workdir", required=True,
                      help="report directory (new, empty, or this config's)")
  parser.add_argument("--no-progress", action="store_true",
                      help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
  """Runs the comparison and prints a summary; returns the exit status."""
  config = load_config(args.config, args.config_overrides)
  # Imported here: JAX and matplotlib load only when the verb runs.
  from supernet.strategies.compare import run_comparison, summary_lines
  words = ["supernet", "compare", "--config", args.config, "--workdir",
           args.workdir]
  words += [f"--config.{k}={v}" for k, v in args.config_overrides]
  command = " ".join(shlex.quote(w) for w in words)
  result = run_comparison(config, args.workdir, command=command,
                          progress=not args.no_progress)
  print("\n".join(summary_lines(result)))
  return 0
