"""Search strategies side by side on NAS-Bench-201 (``supernet compare``).

  supernet compare --config experiments/configs/compare_nb201.py[:VARIANT] \\
      --workdir OUT

Variants: ``cifar10`` (default), ``cifar100``, ``imagenet16`` (the benchmark's
accuracy column), and ``smoke`` (2 seeds x 20 evaluations, seconds).

Every strategy gets the same budget of evaluated architectures and the same
seeds. Hyper-parameters were tuned on CIFAR-10 with seeds 1000-1019, not the
reported seeds, each within a few runs (population and tournament size;
controller learning rate, entropy weight and baseline decay).

The constrained part searches again under ``latency on constrained.device <=
constrained.limit`` ms (a NAS-Bench-201 latency column; 15 ms on a Pixel 3
keeps 73% of the cells, while the unconstrained best takes 26 ms) and reports
the exact optimum under the constraint from the table.
"""

import ml_collections

VARIANTS = ("cifar10", "cifar100", "imagenet16", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The comparison config; ``arg`` is one of ``VARIANTS``."""
  variant = arg or "cifar10"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; valid: {list(VARIANTS)}")
  c = ml_collections.ConfigDict()
  c.seed = 0            # searches use seeds seed .. seed + num_seeds - 1
  c.num_seeds = 20
  c.budget = 100        # evaluated architectures per search

  c.space = ml_collections.ConfigDict({"name": "nb201"})
  c.evaluator = ml_collections.ConfigDict({
      "name": "nb201",
      "dataset": "cifar10" if variant == "smoke" else variant,
      "device": "pixel3",   # latency column shown in the report
      "data_path": "",      # "" = table shipped in the package; else a
                            # shipped-format file or a directory holding the
                            # original CSVs (e.g. ../shared/data/nb201)
  })

  # label -> registered strategy and its hyper-parameters.
  c.strategies = ml_collections.ConfigDict()
  c.strategies.grid = {"strategy": "grid",
                       "hparams": {"order": "strided", "stride": 0}}
  c.strategies.random = {"strategy": "random", "hparams": {}}
  c.strategies.rea = {"strategy": "regularized_evolution",
                      "hparams": {"population_size": 20, "sample_size": 10}}
  c.strategies.constrained_evolution = {
      "strategy": "constrained_evolution",
      "hparams": {"population_size": 20, "parent_ratio": 0.25,
                  "mutation_ratio": 0.5, "mutate_prob": 0.3}}
  c.strategies.reinforce = {
      "strategy": "reinforce",
      "hparams": {"learning_rate": 0.05, "entropy_weight": 1e-3,
                  "baseline_decay": 0.9, "hidden_size": 32}}
  # Regularised evolution that pre-screens mutants with an MLP accuracy
  # predictor trained on what was evaluated (off by default: retraining after
  # every evaluation makes it ~50x slower than plain evolution on a table).
  c.strategies.rea_predictor = {
      "strategy": "regularized_evolution",
      "hparams": {"population_size": 20, "sample_size": 10, "screen_size": 8,
                  "predictor": {"hidden_sizes": (64, 64), "steps": 300}}}
  # The gradient-based search joins as a one-shot entry once
  # supernet.search.darts provides run_oneshot, e.g.:
  # c.strategies.darts = {"strategy": "darts", "hparams": {...}}
  # and "darts" added to run_strategies.

  # Labels of ``strategies`` to compare, in report order.
  c.run_strategies = ("grid", "random", "rea", "constrained_evolution",
                      "reinforce")

  c.constrained = ml_collections.ConfigDict({
      "enabled": True,
      "cost": "nb201_latency",
      "device": "pixel3",
      "limit": 15.0,        # ms
      "tolerance": 0.5,     # accuracy points from the constrained optimum
      "strategies": ("grid", "random", "rea", "constrained_evolution",
                     "reinforce"),
  })

  if variant == "smoke":
    c.num_seeds = 2
    c.budget = 20
    c.strategies.rea.hparams.population_size = 5
    c.strategies.rea.hparams.sample_size = 3
    c.strategies.constrained_evolution.hparams.population_size = 8
    c.strategies.rea_predictor.hparams.population_size = 5
    c.strategies.rea_predictor.hparams.sample_size = 3
  return c
