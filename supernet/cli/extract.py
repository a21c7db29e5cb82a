"""``supernet extract``: export one sub-network of an elastic training run.

    supernet extract --workdir RUN --arch ARCH.json --out EXPORT

Restores the run's newest checkpoint, re-calibrates BatchNorm for the
architecture, slices its weights into a standalone static network and writes
an export directory (architecture, weights, metadata, ``jax.export``
artifact). ``supernet sample --config CFG`` prints architectures to choose
from; ``RUN/subnets.csv`` lists the evaluated ones.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", required=True,
                      help="run directory of `supernet train` (elastic)")
  parser.add_argument("--arch", required=True, help="arch.json of the subnet")
  parser.add_argument("--out", required=True, help="export directory")
  parser.add_argument("--bn-batches", type=int, default=None,
                      help="training batches for BN re-calibration "
                      "(default: the run's evaluate.bn_batches)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an existing export directory")


def run(args: argparse.Namespace) -> int:
  from supernet.elastic.extract import extract_from_run
  from supernet.export import write_export

  if args.config_overrides:
    from supernet.errors import UserError
    raise UserError("extract takes the run's own config; --config.* "
                    "overrides are not allowed")
  out = extract_from_run(args.workdir, args.arch, args.bn_batches)
  write_export(args.out, arch=out["arch"], module=out["module"],
               variables=out["variables"], input_shape=out["input_shape"],
               metadata=out["metadata"], overwrite=args.overwrite)
  meta = out["metadata"]
  print(f"exported {out['arch'].dumps()} to {args.out}: test accuracy "
        f"{meta['test_accuracy']:.4f}, {meta['macs'] / 1e6:.3f} MMACs, "
        f"{meta['params']} params")
  return 0
