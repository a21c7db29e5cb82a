"""Train a NAS-Bench-201 cell from scratch on the embedded default (digits).

    supernet train --config experiments/configs/nb201_digits_train.py \
        --arch RUN/arch.json --workdir RUN2

The benchmark's skeleton shrunk for 8x8 digits and 2 CPU cores: 16 channels,
2 cells per stage (8x8 -> 4x4 -> 2x2), SGD with a cosine schedule.
"""

import ml_collections

from supernet import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "nb201"})
  c.data = presets.data("digits", image_size=0, pad=1, flip=False,
                       batch_size=64)
  c.model = ml_collections.ConfigDict({
      "channels": 16, "cells_per_stage": 2, "auxiliary": False,
      "drop_path_prob": 0.0, "dropout": 0.0, "depthwise_impl": "auto",
      "num_classes": 10, "input_shape": (8, 8, 1)})
  c.train = ml_collections.ConfigDict({
      "epochs": 15, "optimizer": "sgd", "lr": 0.05, "lr_min": 0.0,
      "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
      "schedule": "cosine", "decay_rate": 0.97, "decay_epochs": 1,
      "warmup_epochs": 0, "grad_clip": 5.0, "label_smoothing": 0.0,
      "eval_every": 1, "log_every": 5})
  if arg == "smoke":
    c.model.channels = 4
    c.model.cells_per_stage = 1
    c.train.epochs = 2
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
