"""Config sections shared by experiment configs (DARTS defaults, data).

Config files in experiments/configs import these so every experiment states
the same defaults the same way; they are plain ConfigDict builders.
"""

import ml_collections


def darts_optim(epochs_hint: int = 50) -> ml_collections.ConfigDict:
  """DARTS defaults: SGD for weights, Adam for architecture parameters."""
  del epochs_hint
  return ml_collections.ConfigDict({
      "weights": {"lr": 0.025, "lr_min": 0.001, "momentum": 0.9,
                  "weight_decay": 3e-4, "grad_clip": 5.0},
      "arch": {"lr": 3e-4, "b1": 0.5, "b2": 0.999, "weight_decay": 1e-3},
  })


def gradient_search(epochs: int) -> ml_collections.ConfigDict:
  """A gradient-based search section (DARTS first order by default)."""
  return ml_collections.ConfigDict({
      "strategy": "gradient",
      "hypergradient": "first",   # first | second | exact
      "mixing": "softmax",        # softmax | gumbel | pc_darts | sigmoid
      "pc_k": 4,                  # PC-DARTS partial-channel K
      "tau_max": 10.0,            # GDAS temperature annealing
      "tau_min": 0.1,
      "epochs": epochs,
      "warmup_epochs": 0,         # epochs of weight-only training first
      "fd_epsilon": 0.01,         # second order: eps = fd_epsilon / ||v||
  })


def data(name: str, **overrides) -> ml_collections.ConfigDict:
  """The data section: ``supernet.data`` defaults with ``overrides``."""
  from supernet.data import data_config_defaults
  cfg = data_config_defaults()
  cfg.name = name
  for k, v in overrides.items():
    cfg[k] = v
  return cfg
