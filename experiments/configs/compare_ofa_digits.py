"""Search strategies side by side on the elastic MobileNet of ``ofa_digits``.

    supernet train --config experiments/configs/ofa_digits.py --workdir RUN
    supernet compare --config experiments/configs/compare_ofa_digits.py \\
        --workdir OUT --config.evaluator.run_dir=RUN

Variant ``smoke`` pairs with ``ofa_digits.py:smoke`` (its smaller space) and
a tiny budget. Every strategy gets the same budget of evaluated sub-networks
and the same seeds; each evaluation is the weight-sharing test accuracy of a
sub-network of the trained supernet after its own BatchNorm re-calibration
(``supernet`` evaluator, masked/vmapped population path). The space must be
the one the run was trained with: it is read from ``ofa_digits.py``.
"""

import importlib.util
import os

import ml_collections

VARIANTS = ("default", "smoke")


def _ofa_config(arg: str | None) -> ml_collections.ConfigDict:
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "ofa_digits.py")
  spec = importlib.util.spec_from_file_location("_ofa_digits", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The comparison config; ``arg`` is one of ``VARIANTS``."""
  variant = arg or "default"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; valid: {list(VARIANTS)}")
  ofa = _ofa_config("smoke" if variant == "smoke" else None)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_seeds = 3
  c.budget = 40          # evaluated sub-networks per search
  c.space = ofa.space
  c.evaluator = ml_collections.ConfigDict({
      "name": "supernet",
      "run_dir": "",      # a `supernet train --config ofa_digits.py` run
      "bn_batches": 4,    # training batches for BN re-calibration
      "eval_batches": 0,  # 0 = the whole test split
      "chunk": 8,         # sub-networks evaluated together
  })
  c.strategies = ml_collections.ConfigDict()
  c.strategies.random = {"strategy": "random", "hparams": {}}
  c.strategies.rea = {"strategy": "regularized_evolution",
                      "hparams": {"population_size": 10, "sample_size": 4}}
  c.strategies.constrained_evolution = {
      "strategy": "constrained_evolution",
      "hparams": {"population_size": 10, "parent_ratio": 0.25,
                  "mutation_ratio": 0.5, "mutate_prob": 0.3}}
  c.strategies.reinforce = {
      "strategy": "reinforce",
      "hparams": {"learning_rate": 0.05, "entropy_weight": 1e-3,
                  "baseline_decay": 0.9, "hidden_size": 32}}
  c.run_strategies = ("random", "rea", "constrained_evolution", "reinforce")
  # No cost of this space is registered in strategies.constraints.COSTS yet.
  c.constrained = ml_collections.ConfigDict({"enabled": False})
  if variant == "smoke":
    c.num_seeds = 1
    c.budget = 10
    c.evaluator.bn_batches = 2
    c.strategies.rea.hparams.population_size = 4
    c.strategies.rea.hparams.sample_size = 2
    c.strategies.constrained_evolution.hparams.population_size = 4
  return c
