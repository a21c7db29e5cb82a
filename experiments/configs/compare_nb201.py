"""Search strategies side by side on NAS-Bench-201 (``supernet compare``).

  supernet compare --config experiments/configs/compare_nb201.py[:VARIANT] \\
      --workdir OUT

Variants: ``cifar10`` (default), ``cifar100``, ``imagenet16`` (the benchmark's
accuracy column), and ``smoke`` (2 seeds x 20 evaluations, seconds).

Every strategy gets the same budget of evaluated architectures and the same
seeds. Hyper-parameters were tuned on CIFAR-10 with seeds 1000-1019, not the
reported seeds, each within a few runs (population and tournament size;
controller learning rate, entropy weight and baseline decay).

The gradient-based search (``darts``, first-order DARTS) is a one-shot
entry: each seed trains a small NB201 supernet on the embedded digits
(``nb201_digits.py``, 4 epochs; the only dataset available offline, so a
proxy task for the CIFAR column it is judged on) and the cell derived after
every epoch is looked up in the table, 4 evaluations a seed. It runs all 20
seeds: the step compiles once per process (30-90 s on 2 cores, seconds
from the compilation cache), then a search takes ~4 s; the whole comparison
stays well under 5 minutes. ``strategies.<label>.num_seeds`` would run an
expensive entry on the first seeds only.

The constrained part searches again under ``latency on constrained.device <=
constrained.limit`` ms (a NAS-Bench-201 latency column; 15 ms on a Pixel 3
keeps 73% of the cells, while the unconstrained best takes 26 ms) and reports
the exact optimum under the constraint from the table.
"""

import os

import ml_collections

VARIANTS = ("cifar10", "cifar100", "imagenet16", "smoke")


def _sibling(name: str) -> str:
  # Absolute: the comparison may run from any directory.
  return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


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
  # The gradient-based search (first-order DARTS), a one-shot entry: it
  # trains an NB201 supernet on the embedded digits (see module doc) and
  # the cell it derives after each epoch is looked up in the table.
  c.strategies.darts = {
      "strategy": "darts",
      "hparams": {"search_config": _sibling("nb201_digits.py"),
                  "overrides": {"search": {"epochs": 4}},
                  "every_epoch": True},
      "num_seeds": None,  # all seeds (~4 s a search once compiled)
      "note": ("first-order DARTS searched on 8x8 digits (the offline "
               "dataset; a proxy task, not CIFAR), 4 epochs of an 8-channel "
               "one-cell-per-stage supernet; the cell derived after each "
               "epoch is one table query, so `evaluations` = 4."),
  }

  # Labels of ``strategies`` to compare, in report order.
  c.run_strategies = ("grid", "random", "rea", "constrained_evolution",
                      "reinforce", "darts")

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
    # Seconds, not the minute compiling the DARTS supernet takes.
    c.run_strategies = ("grid", "random", "rea", "constrained_evolution",
                        "reinforce")
    c.strategies.rea.hparams.population_size = 5
    c.strategies.rea.hparams.sample_size = 3
    c.strategies.constrained_evolution.hparams.population_size = 8
    c.strategies.rea_predictor.hparams.population_size = 5
    c.strategies.rea_predictor.hparams.sample_size = 3
  return c
