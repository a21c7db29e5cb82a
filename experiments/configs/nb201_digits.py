"""DARTS search in the NAS-Bench-201 space on the embedded default (digits).

    supernet search --config experiments/configs/nb201_digits.py --workdir RUN
    supernet search --config experiments/configs/nb201_digits.py:smoke ...

The benchmark's skeleton shrunk for 8x8 digits and 2 CPU cores (8 channels,
one cell per stage: 8x8 -> 4x4 -> 2x2), first-order DARTS. The derived cell
is a NAS-Bench-201 cell, so its CIFAR accuracy can be read from the table;
this is what the ``darts`` entry of ``compare_nb201.py`` runs (with fewer
epochs). On 2 CPU cores an epoch takes about a second; compiling the step
takes 30-90 s, once per process (and is then in the compilation cache).
Digits are a proxy task: the cell that ranks well on 8x8 digits need not
be the best on CIFAR.

Hardware-aware search: ``search.latency_penalty.weight > 0`` adds the
differentiable expected latency ``sum_e softmax(alpha_e) . L_e`` (ms, per-op
latencies ``L`` fitted to a NAS-Bench-201 device column, see
``supernet.search.darts.nb201_op_latency``) times ``weight`` to the
architecture loss (ProxylessNAS / FBNet). Variant ``pixel3`` sets 0.006:
over seeds 0-4 with 4 epochs, the derived cells' Pixel 3 latency (table)
fell from 13.8 ms (no penalty) to 8.0 ms; 0.02 already drives most edges to
``none`` (1.7 ms, 36% CIFAR-10 accuracy).
"""

import ml_collections

from supernet import presets

VARIANTS = ("default", "pixel3", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The search config; ``arg`` is one of ``VARIANTS``."""
  variant = arg or "default"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; valid: {list(VARIANTS)}")
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "nb201"})
  c.data = presets.data("digits", image_size=0, pad=1, flip=False,
                       batch_size=64, train_portion=0.5)
  c.model = ml_collections.ConfigDict({
      "channels": 8, "cells_per_stage": 1, "depthwise_impl": "auto"})
  c.search = presets.gradient_search(epochs=10)
  c.search.latency_penalty = ml_collections.ConfigDict({
      "weight": 0.0,        # 0 = off; per ms of expected latency
      "device": "pixel3",   # NAS-Bench-201 latency column
      "data_path": "",      # "" = the table shipped in the package
  })
  c.optim = presets.darts_optim()
  c.optim.weights.lr = 0.05
  c.optim.arch.lr = 3e-3   # few steps per epoch on 1.4k images: a larger lr
  if variant == "pixel3":
    c.search.latency_penalty.weight = 0.006
  elif variant == "smoke":
    c.model.channels = 4
    c.search.epochs = 1
    c.data.batch_size = 128
  return c
