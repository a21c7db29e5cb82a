"""``supernet evaluate --export EXPORT [--split test] [--dataset NAME] ...``.

Loads only the export directory (no model code is built), reads a split of
the dataset its metadata names (or ``--dataset``), normalises it with the
export's mean/std, runs the ``jax.export`` function and prints JSON with
``accuracy``, ``examples``, ``split`` and ``dataset``. On the training run's
test split it reproduces ``results.json``'s ``test_accuracy`` exactly (same
images, normalisation, function and batch size).
"""

from __future__ import annotations

import argparse
import json

from supernet.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``evaluate`` options to ``parser``."""
  parser.add_argument("--export", required=True, help="export directory")
  parser.add_argument("--split", default="test", help="train or test "
                      "(default test)")
  parser.add_argument("--dataset", help="dataset name (default: the one in "
                      "the export's metadata)")
  parser.add_argument("--data-dir", help="tfds data directory")
  parser.add_argument("--batch", type=int, help="batch size (default: the "
                      "training run's eval batch size)")


def _data_config(meta: dict, args: argparse.Namespace):
  import ml_collections

  from supernet.data import validate_data_config, with_defaults
  data = dict(meta.get("data") or {"name": meta["dataset"]})
  if args.dataset and args.dataset != data.get("name"):
    data["name"] = args.dataset
    h, w, _ = meta["input_shape"]
    # Another dataset is resized to the network's input once, at load time.
    data["image_size"] = h if h == w else 0
  if args.data_dir is not None:
    data["data_dir"] = args.data_dir
  config = ml_collections.ConfigDict(data)
  validate_data_config(config)
  return with_defaults(config)


def run(args: argparse.Namespace) -> int:
  """Runs ``supernet evaluate``; prints JSON, returns the exit status."""
  if args.config_overrides:
    raise UserError("evaluate takes no --config.* overrides")
  from supernet.data import load_split_arrays
  from supernet.export import count_correct, load_export
  exp = load_export(args.export)
  meta = exp.metadata
  data = _data_config(meta, args)
  batch = args.batch or int(meta.get("eval_batch_size", 256))
  if batch < 1:
    raise UserError(f"--batch must be >= 1, got {batch}")
  images, labels = load_split_arrays(data, args.split)
  if tuple(images.shape[1:]) != exp.input_shape:
    raise UserError(f"dataset {data.name!r} gives images of shape "
                    f"{tuple(images.shape[1:])}, the export takes "
                    f"{exp.input_shape}")
  num_classes = len(meta["class_names"])
  if len(labels) and int(labels.max()) >= num_classes:
    raise UserError(f"dataset {data.name!r} has labels up to "
                    f"{int(labels.max())}, the export has {num_classes} "
                    "classes")
  correct, examples = count_correct(exp.call, exp.preprocess(images), labels,
                                    batch)
  print(json.dumps({
      "accuracy": correct / max(examples, 1), "correct": correct,
      "examples": examples, "split": args.split, "dataset": data.name,
      "export": args.export, "batch": batch}))
  return 0
