"""``supernet export --workdir RUN2 --out EXPORT [--overwrite]``.

Writes the trained network of a ``supernet train`` run as an export
directory (see :mod:`supernet.export`): ``arch.json``, ``weights.msgpack``,
``metadata.json`` and ``model.jax_export``, from the newest checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os

from supernet.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``export`` options to ``parser``."""
  parser.add_argument("--workdir", required=True,
                      help="run directory of 'supernet train'")
  parser.add_argument("--out", required=True, help="export directory")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace a non-empty --out")


def _read_json(path: str, what: str):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f"{what} {path} is missing") from None
  except (json.JSONDecodeError, UnicodeDecodeError):
    raise UserError(f"{what} {path} is corrupt (not valid JSON)") from None


def export_run(workdir: str, out: str, overwrite: bool = False) -> dict:
  """Exports the newest checkpoint of a training run; returns the metadata.

  Args:
    workdir: a ``supernet train`` run directory.
    out: the export directory to write.
    overwrite: replace a non-empty ``out``.

  Returns:
    The export's metadata document.
  """
  from supernet import export
  from supernet.rundir import read_run_config
  from supernet.train.config import ELASTIC_SPACES, train_value

  out_abs, run_abs = os.path.abspath(out), os.path.abspath(workdir)
  if run_abs == out_abs or run_abs.startswith(out_abs + os.sep):
    raise UserError(f"--out {out} would replace the run directory "
                    f"{workdir}; choose another --out")
  export.check_out_dir(out, overwrite)
  config = read_run_config(workdir)
  run_info = os.path.join(workdir, "run.json")
  if os.path.isfile(run_info):
    command = _read_json(run_info, "run file").get("command")
    if command != "train":
      raise UserError(f"{workdir} is a '{command}' run; export a "
                      "'supernet train' run (train the derived arch first)")
  if config.space.name in ELASTIC_SPACES:
    raise UserError(f"{workdir} trained an elastic supernet; export one of "
                    "its sub-networks with 'supernet extract'")
  ckpt_dir = os.path.join(workdir, "checkpoints")
  from supernet.rundir import Checkpoints
  if not os.path.isdir(ckpt_dir):
    raise UserError(f"{workdir} has no checkpoint yet (no {ckpt_dir}); "
                    "train at least one epoch first")
  checkpoints = Checkpoints(ckpt_dir)
  step = checkpoints.latest_step()
  if step is None:
    raise UserError(f"{workdir} has no complete checkpoint in {ckpt_dir}; "
                    "train at least one epoch first")

  import numpy as np

  from supernet.models import build_network
  from supernet.spaces import load_arch, make_space
  from supernet.train import (
      abstract_train_state,
      check_train_config,
      inference_variables,
      make_optimizer,
  )

  check_train_config(config)
  arch = load_arch(os.path.join(workdir, "arch.json"),
                   make_space(config.space.name))
  info = _read_json(os.path.join(workdir, "dataset_info.json"),
                    "dataset info")
  module, input_shape = build_network(config, arch)
  # The optimiser state's structure does not depend on steps per epoch.
  tx, _ = make_optimizer(config, 1)
  target = {"state": abstract_train_state(module, tx, input_shape),
            "epoch": np.zeros((), np.int32)}
  try:
    tree = checkpoints.restore(step, target)
  except UserError as e:
    raise UserError(f"the weights in {workdir} do not fit its arch.json and "
                    f"config: {e}") from None
  finally:
    checkpoints.close()
  variables = inference_variables(module, tree["state"], input_shape)

  from supernet.data import with_defaults
  data = with_defaults(config.data)
  metadata = export.dataset_metadata(info, data)
  results_path = os.path.join(workdir, "results.json")
  epoch = int(tree["epoch"])
  epochs = int(train_value(config, "epochs"))
  metadata.update({
      "config": config.to_dict(), "space": config.space.name,
      "eval_batch_size": int(data.eval_batch_size),
      "epoch": epoch, "epochs": epochs, "step": int(step),
      "source_workdir": os.path.abspath(workdir),
  })
  if os.path.isfile(results_path) and epoch == epochs:
    results = _read_json(results_path, "results file")
    metadata["test_accuracy"] = results.get("test_accuracy")
  path = export.write_export(out, arch=arch, module=module,
                             variables=variables, input_shape=input_shape,
                             metadata=metadata, overwrite=overwrite)
  return export.read_metadata(path)


def run(args: argparse.Namespace) -> int:
  """Runs ``supernet export``; returns the exit status."""
  if args.config_overrides:
    raise UserError("export takes no --config.* overrides (the run's config "
                    "is used)")
  meta = export_run(args.workdir, args.out, args.overwrite)
  if meta["epoch"] < meta["epochs"]:
    print(f"note: training stopped at epoch {meta['epoch']} of "
          f"{meta['epochs']}; exported that checkpoint")
  print(f"exported {args.workdir} (epoch {meta['epoch']}, "
        f"{meta['num_params']:,} parameters) to {args.out}")
  print(f"  evaluate it: supernet evaluate --export {args.out}")
  return 0
