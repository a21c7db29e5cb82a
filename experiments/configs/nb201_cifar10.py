"""DARTS-style search in the NAS-Bench-201 space on CIFAR-10.

The benchmark's skeleton (C=16, 5 cells per stage), DARTS optimiser
defaults, 50 epochs, batch 64. The derived cell can be looked up in the
shipped NB201 table (see ``supernet compare``).
"""

import ml_collections

from supernet import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "nb201"})
  c.data = presets.data("cifar10", pad=4, flip=True, batch_size=64,
                       train_portion=0.5)
  c.model = ml_collections.ConfigDict({
      "channels": 16, "cells_per_stage": 5, "depthwise_impl": "auto"})
  c.search = presets.gradient_search(epochs=50)
  c.optim = presets.darts_optim()
  if arg == "smoke":
    c.model.channels = 4
    c.model.cells_per_stage = 1
    c.search.epochs = 1
    c.data.batch_size = 16
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
