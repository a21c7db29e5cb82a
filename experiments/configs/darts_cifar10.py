"""The DARTS paper's CIFAR-10 search (for an accelerator).

8 cells, 16 initial channels, batch 64, 50 epochs, half of the training set
for the weights and half for the architecture, DARTS optimiser defaults.
``--config.search.hypergradient=second`` gives DARTS (2nd order),
``--config.search.mixing=gumbel`` GDAS, ``=pc_darts`` PC-DARTS.
"""

import ml_collections

from supernet import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 2
  c.space = ml_collections.ConfigDict({"name": "darts"})
  c.data = presets.data("cifar10", pad=4, flip=True, batch_size=64,
                       train_portion=0.5)
  c.model = ml_collections.ConfigDict({
      "channels": 16, "layers": 8, "stem_multiplier": 3,
      "depthwise_impl": "auto", "remat": True})
  c.search = presets.gradient_search(epochs=50)
  c.optim = presets.darts_optim()
  if arg == "smoke":
    c.model.channels = 4
    c.model.layers = 3
    c.search.epochs = 1
    c.data.batch_size = 16
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
