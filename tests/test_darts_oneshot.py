"""The gradient search in the comparison, and its expected-latency penalty."""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from supernet.benchmarks.nb201 import load_nb201
from supernet.config import load_config
from supernet.errors import UserError
from supernet.evaluators import make_evaluator
from supernet.search import darts
from supernet.spaces import Nb201Space
from supernet.spaces.nb201 import EDGES, OPS
from supernet.strategies import OneShot
from supernet.strategies.registry import make_strategy
from supernet.strategies.runner import run_oneshot

ROOT = os.path.join(os.path.dirname(__file__), "..")
COMPARE = os.path.join(ROOT, "experiments", "configs", "compare_nb201.py")
SEARCH = os.path.join(ROOT, "experiments", "configs", "nb201_digits.py")


def _op_latency(seed: int = 0) -> darts.OpLatency:
  rng = np.random.default_rng(seed)
  per_op = rng.uniform(0.0, 5.0, (len(EDGES), len(OPS))).astype(np.float32)
  per_op[:, 0] = 0.0
  return darts.OpLatency(1.5, per_op, 1.0, "test")


def test_expected_latency_gradient_is_the_analytic_one():
  lat = _op_latency()
  alphas = {"cell": jax.random.normal(jax.random.key(0),
                                      (len(EDGES), len(OPS)))}
  p = np.asarray(jax.nn.softmax(alphas["cell"], axis=-1), np.float64)
  per_op = lat.per_op_ms.astype(np.float64)
  np.testing.assert_allclose(darts.expected_latency(alphas, lat),
                             1.5 + (p * per_op).sum(), rtol=1e-6)
  # d/da_ej sum_k p_ek L_ek = p_ej (L_ej - sum_k p_ek L_ek).
  analytic = p * (per_op - (p * per_op).sum(-1, keepdims=True))
  grad = jax.grad(darts.expected_latency)(alphas, lat)["cell"]
  np.testing.assert_allclose(grad, analytic, rtol=1e-5, atol=1e-6)


def test_penalty_transform_adds_the_weighted_gradient():
  lat = _op_latency(1)
  alphas = {"cell": 0.1 * jax.random.normal(jax.random.key(1),
                                            (len(EDGES), len(OPS)))}
  hypergrad = {"cell": jnp.full_like(alphas["cell"], 0.25)}
  tx = darts.latency_penalty(0.3, lat)
  updates, _ = tx.update(hypergrad, tx.init(alphas), alphas)
  want = 0.25 + 0.3 * jax.grad(darts.expected_latency)(alphas, lat)["cell"]
  np.testing.assert_allclose(updates["cell"], want, rtol=1e-6)
  with pytest.raises(ValueError, match="alphas"):
    tx.update(hypergrad, tx.init(alphas))

  # In front of the architecture optimiser, alone it lowers E[latency].
  chained = optax.chain(tx, optax.adam(0.05))
  state, a = chained.init(alphas), alphas
  zero = {"cell": jnp.zeros_like(alphas["cell"])}
  for _ in range(20):
    u, state = chained.update(zero, state, a)
    a = optax.apply_updates(a, u)
  assert darts.expected_latency(a, lat) < darts.expected_latency(alphas,
                                                                 lat) - 0.5


def test_per_op_latency_fits_the_nb201_column():
  fit = darts.nb201_op_latency("pixel3")
  assert fit.per_op_ms.shape == (len(EDGES), len(OPS))
  assert (fit.per_op_ms[:, 0] == 0).all()  # "none" is the reference
  assert fit.r2 > 0.85
  assert darts.nb201_op_latency("eyeriss").r2 > 0.999
  # The additive model predicts whole cells to about a millisecond.
  table = load_nb201()
  column = table.latency_column("pixel3")
  errors = []
  for index in range(0, 15625, 611):
    arch = table.arch(index)
    onehot = np.eye(len(OPS))[[OPS.index(op) for op in arch.ops]]
    predicted = darts.expected_latency({"cell": 50.0 * onehot}, fit)
    errors.append(abs(float(predicted) - column[index]))
  assert np.mean(errors) < 2.0


@pytest.mark.parametrize("section,space,match", [
    ({"weight": -1.0, "device": "pixel3"}, "nb201", ">= 0"),
    ({"weight": 0.1, "device": "pixel9"}, "nb201", "pixel3"),
    ({"weight": 0.1, "device": "pixel3"}, "darts", "nb201 space"),
])
def test_bad_penalty_config_fails_with_one_line(section, space, match):
  config = ml_collections.ConfigDict({
      "space": {"name": space},
      "search": {"latency_penalty": {"data_path": "", **section}}})
  with pytest.raises(UserError, match=match):
    darts.penalty_op_latency(config)


def test_penalty_off_leaves_the_search_untouched():
  config = ml_collections.ConfigDict({"space": {"name": "nb201"},
                                      "search": {}})
  assert darts.penalty_op_latency(config) is None
  config.search.latency_penalty = {"weight": 0.0, "device": "nowhere"}
  assert darts.penalty_op_latency(config) is None


def test_compare_config_runs_the_real_gradient_search():
  config = load_config(COMPARE)
  assert "darts" in config.run_strategies
  entry = config.strategies.darts
  oneshot = make_strategy(entry.strategy, entry.hparams)
  assert isinstance(oneshot, OneShot) and oneshot.run is darts.run_oneshot
  search = load_config(oneshot.config.search_config,
                       darts._flat_overrides(oneshot.config.overrides))
  assert search.space.name == "nb201" and search.search.epochs == 4
  # The smoke comparison stays seconds long: no supernet to compile.
  assert "darts" not in load_config(COMPARE + ":smoke").run_strategies


@pytest.mark.slow
def test_run_oneshot_searches_and_shares_one_compilation(digits_data_dir):
  # XLA:CPU compiles the NB201 supernet step in 30-60 s; the second seed
  # reuses it and the search itself takes about a second.
  space = Nb201Space()
  evaluator = make_evaluator(ml_collections.ConfigDict(
      {"name": "nb201", "dataset": "cifar10", "device": "pixel3",
       "data_path": ""}), space)
  oneshot = make_strategy("darts", {
      "search_config": SEARCH + ":smoke", "every_epoch": True,
      "overrides": {"data": {"data_dir": digits_data_dir},
                    "search": {"epochs": 2,
                               "latency_penalty": {"weight": 0.05}}}})
  run_oneshot(oneshot, space, evaluator, jax.random.key(0))
  start = time.perf_counter()
  run = run_oneshot(oneshot, space, evaluator, jax.random.key(1))
  assert time.perf_counter() - start < 20.0
  assert len(run.archs) == 2 and run.wall_s > 0  # one cell per epoch
  for arch, result in zip(run.archs, run.results):
    space.validate(arch)
    assert 0 < result["accuracy"] <= 100 and result["latency_ms"] >= 0
    assert 0.0 <= result["search_val_acc"] <= 1.0
    assert "search_expected_latency_ms" in result
  assert [r["search_epoch"] for r in run.results] == [1, 2]
