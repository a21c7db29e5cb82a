"""``supernet extract``: export one sub-network of an elastic training run.

    supernet extract --workdir RUN --arch ARCH.json --out EXPORT

Restores the run's newest checkpoint, re-calibrates BatchNorm for the
architecture (MobileNet; the ViT has none), slices its weights into a
standalone static network (a MobileNet or a ViT, by the run's space) and
writes an export directory (architecture, weights, metadata, ``jax.export``
artifact) that ``supernet evaluate --export`` reads. Bad input (an arch
outside the run's space or of another family, a workdir that did not train
an elastic supernet, an existing --out) is a one-line error before anything
is written. ``supernet sample --config CFG`` prints architectures to choose
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
  import os

  from supernet.elastic.extract import extract_from_run
  from supernet.errors import UserError
  from supernet.export import check_out_dir, write_export

  if args.config_overrides:
    raise UserError("extract takes the run's own config; --config.* "
                    "overrides are not allowed")
  out_abs, run_abs = os.path.abspath(args.out), os.path.abspath(args.workdir)
  if run_abs == out_abs or run_abs.startswith(out_abs + os.sep):
    raise UserError(f"--out {args.out} would replace the run directory "
                    f"{args.workdir}; choose another --out")
  check_out_dir(args.out, args.overwrite)  # fail before the slow part
  out = extract_from_run(args.workdir, args.arch, args.bn_batches)
  write_export(args.out, arch=out["arch"], module=out["module"],
               variables=out["variables"], input_shape=out["input_shape"],
               metadata=out["metadata"], overwrite=args.overwrite)
  meta = out["metadata"]
  print(f"exported {out['arch'].dumps()} to {args.out}: test accuracy "
        f"{meta['test_accuracy']:.4f}, {meta['macs'] / 1e6:.3f} MMACs, "
        f"{meta['params']} params")
  return 0
