"""Compound scaling (EfficientNet) of a small MobileNet on the embedded digits.

    supernet search --config experiments/configs/compound_scaling_digits.py \\
        --workdir RUN
    supernet search --config experiments/configs/compound_scaling_digits.py:smoke ...

The base network is one architecture of an elastic MobileNet space (three
stages of MBConv blocks, channels multiples of 8). Step 1 trains each grid
point ``(alpha, beta, gamma)`` with ``alpha * beta^2 * gamma^2`` within 10% of
2 at ``phi = 1`` (the ``proxy`` evaluator: a standalone network trained from
scratch for a few epochs); step 2 scales the best triple to ``phi = 1..max_phi``
and compares with depth-only, width-only and resolution-only scaling at
matched MACs. Digits images are 8x8; larger resolutions are bilinear
up-samplings, so resolution scaling adds compute but little information here.
"""

import ml_collections

from supernet.data import data_config_defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The compound-scaling config; ``arg`` is ``None`` or ``smoke``."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({
      "name": "elastic_mbv",
      "stem_width": 8,
      "stem_stride": 1,
      "stage_widths": (8, 16, 24),
      "stage_strides": (1, 2, 1),
      "depths": (1, 2),
      "kernels": (3, 5),
      "expands": (2, 3),
      "widths": (1.0,),
      "resolutions": (8,),
      "head_width": 64,
      "channel_divisor": 8,
  })
  data = data_config_defaults()
  data.update({"name": "digits", "image_size": 0, "pad": 1, "flip": False,
               "batch_size": 64, "eval_batch_size": 128})
  c.evaluator = ml_collections.ConfigDict({
      "name": "proxy", "data": data, "epochs": 3, "learning_rate": 0.01,
      "seed": 0})
  c.search = ml_collections.ConfigDict()
  c.search.strategy = "compound_scaling"
  c.search.base_arch = {"space": "elastic_mbv", "resolution": 8, "width": 1.0,
                        "depths": [1, 1, 1], "kernels": [[3], [3], [3]],
                        "expands": [[3], [3], [3]]}
  c.search.compound = ml_collections.ConfigDict({
      "alphas": (1.0, 1.4, 2.0),
      "betas": (1.0, 1.2, 1.4),
      "gammas": (1.0, 1.2, 1.4),
      "target": 2.0,
      "tolerance": 0.1,
      "max_phi": 3,
      "max_multiplier": 8.0,
      "divisor": 8,
      "profile": True,      # params / traced MACs with supernet.costs
      "latency": True,      # measured on this machine (batch 1, median)
      "latency_runs": 10,
  })
  if arg == "smoke":
    c.evaluator.epochs = 1
    c.search.compound.max_phi = 1
    c.search.compound.latency = False
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
