"""Regularised evolution on NAS-Bench-201 (``supernet search``).

  supernet search --config experiments/configs/nb201_rea.py[:VARIANT] \\
      --workdir RUN

Writes ``RUN/config.json``, ``RUN/history.csv``, ``RUN/arch.json`` and
``RUN/best_so_far.png``; rerunning on the same workdir resumes from
``RUN/strategy_state.json``.

Variants: ``cifar10`` (default), ``cifar100``, ``imagenet16``, ``pixel3``
(CIFAR-10 under latency <= 15 ms on a Pixel 3) and ``smoke`` (20 evaluations).
"""

import ml_collections

VARIANTS = ("cifar10", "cifar100", "imagenet16", "pixel3", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The search config; ``arg`` is one of ``VARIANTS``."""
  variant = arg or "cifar10"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; valid: {list(VARIANTS)}")
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "nb201"})
  c.evaluator = ml_collections.ConfigDict({
      "name": "nb201",
      "dataset": variant if variant in ("cifar100", "imagenet16") else
                 "cifar10",
      "device": "pixel3",
      "data_path": "",  # "" = the table shipped in the package
  })
  c.search = ml_collections.ConfigDict({
      "strategy": "regularized_evolution",
      "hparams": {"population_size": 20, "sample_size": 10},
      "budget": 100,          # evaluated architectures
      "checkpoint_every": 10,  # tells between saved strategy states
      # cost: "none" or a name in supernet.strategies.COSTS.
      "constraint": {"cost": "none", "device": "pixel3", "limit": 15.0},
  })
  if variant == "pixel3":
    c.search.constraint.cost = "nb201_latency"
  if variant == "smoke":
    c.search.budget = 20
    c.search.hparams.population_size = 5
    c.search.hparams.sample_size = 3
  return c
