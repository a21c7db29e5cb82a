"""Strategies: interface invariants, resumption, optima of a toy space,
constraints, the one-shot adapter and the no-recompile guard."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import pytest

from supernet.errors import UserError
from supernet.evaluators.predictor import mlp_predictor
from supernet.spaces.base import Arch, SearchSpace
from supernet.strategies import (
    STRATEGIES,
    OneShot,
    StrategyEntry,
    constrained_evolution,
    grid_search,
    make_strategy,
    max_cost,
    random_search,
    regularized_evolution,
    reinforce,
    run_oneshot,
    run_search,
    state_from_json,
    state_to_json,
)
from supernet.strategies.controller import controller_fns
from supernet.strategies.grid import position_to_tokens
from supernet.strategies.runner import load_checkpoint, save_checkpoint

CARDS = (4, 3, 4, 3)
TARGET = (2, 1, 3, 0)


@dataclasses.dataclass(frozen=True)
class ToyArch(Arch):
  tokens: tuple[int, ...]
  space: ClassVar[str] = "toy"

  def to_json(self) -> dict[str, Any]:
    return {"space": self.space, "tokens": list(self.tokens)}


class ToySpace(SearchSpace):
  """144 architectures; tokens are the architecture."""

  name: ClassVar[str] = "toy"

  def cardinalities(self) -> tuple[int, ...]:
    return CARDS

  def encode(self, arch: Arch) -> tuple[int, ...]:
    return tuple(arch.tokens)

  def decode(self, tokens: Sequence[int]) -> ToyArch:
    return ToyArch(tuple(int(t) for t in tokens))

  def arch_from_json(self, doc: dict[str, Any]) -> ToyArch:
    return ToyArch(tuple(doc["tokens"]))


class ToyEvaluator:
  """Accuracy peaks at TARGET (100) and falls with each wrong token; the
  cost is the token sum."""

  def __init__(self):
    self.num_queries = 0
    self.seen: list[ToyArch] = []

  def evaluate(self, archs):
    self.num_queries += len(archs)
    self.seen += list(archs)
    out = []
    for a in archs:
      wrong = sum(abs(t - g) for t, g in zip(a.tokens, TARGET))
      out.append({"accuracy": 100.0 - 7.0 * wrong + 0.1 * a.tokens[0],
                  "cost": float(sum(a.tokens))})
    return out


def toy_cost(arch: ToyArch) -> float:
  return float(sum(arch.tokens))


SPACE = ToySpace()
# Small settings shared by every test, so REINFORCE compiles once per session.
FACTORIES = {
    "grid": lambda c=None: grid_search(order="strided", constraint=c),
    "random": lambda c=None: random_search(constraint=c),
    "rea": lambda c=None: regularized_evolution(8, 4, constraint=c),
    "ce": lambda c=None: constrained_evolution(8, mutate_prob=0.4,
                                               constraint=c),
    "reinforce": lambda c=None: reinforce(learning_rate=0.1, hidden_size=16,
                                          constraint=c),
}


def _run(strategy, budget, seed=0, run=None):
  return run_search(strategy, SPACE, ToyEvaluator(), budget,
                    jax.random.key(seed), run=run)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_ask_is_pure_and_deterministic_from_key(name):
  strategy = FACTORIES[name]()
  state = strategy.init(jax.random.key(1), SPACE)
  key = jax.random.key(7)
  first = strategy.ask(state, key)
  assert first and first == strategy.ask(state, key)  # ask changes nothing
  again = strategy.init(jax.random.key(1), SPACE)
  assert strategy.ask(again, key) == first
  a = _run(strategy, 30, seed=3)
  b = _run(strategy, 30, seed=3)
  assert a.archs == b.archs and a.results == b.results


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_serialises_and_resumes_on_the_same_trajectory(name, tmp_path):
  strategy = FACTORIES[name]()
  whole = _run(strategy, 26, seed=5)
  # Interrupted after a whole batch (ce asks 8, then 6 at a time), as a
  # checkpoint written after a tell is.
  part = _run(strategy, 14, seed=5)
  # A JSON round trip of the state alone...
  doc = json.loads(json.dumps(state_to_json(part.state)))
  template = strategy.init(jax.random.key(0), SPACE)
  restored = state_from_json(doc, template)
  assert jax.tree_util.tree_structure(restored) == \
      jax.tree_util.tree_structure(part.state)
  # ...and of the whole run through a checkpoint file.
  path = str(tmp_path / "state.json")
  save_checkpoint(path, part)
  resumed = _run(strategy, 26, seed=5,
                 run=load_checkpoint(path, template, SPACE))
  assert resumed.archs == whole.archs
  assert resumed.results == whole.results


@pytest.mark.parametrize("name,budget", [("grid", 144), ("random", 200),
                                         ("rea", 60), ("ce", 60),
                                         ("reinforce", 80)])
def test_finds_the_optimum_of_a_toy_space(name, budget):
  run = _run(FACTORIES[name](), budget, seed=2)
  best, _ = run.best()
  assert best.tokens == TARGET


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_constraint_is_never_violated(name):
  limit = 5.0
  checked = []

  def constraint(arch):
    checked.append(arch)
    return toy_cost(arch) <= limit

  evaluator = ToyEvaluator()
  run = run_search(FACTORIES[name](constraint), SPACE, evaluator, 40,
                   jax.random.key(4))
  assert len(evaluator.seen) == len(run.archs) > 0
  assert all(toy_cost(a) <= limit for a in evaluator.seen)
  assert checked  # the constraint was consulted
  # The constrained optimum (tokens summing to at most 5 closest to TARGET)
  # is found by the evolutions.
  if name in ("rea", "ce"):
    assert max(r["accuracy"] for r in run.results) == pytest.approx(
        100.0 - 7.0 * 1 + 0.2)


def test_unsatisfiable_constraint_is_a_user_error():
  never = max_cost(toy_cost, -1.0, "cost")
  with pytest.raises(UserError, match="constraint"):
    _run(regularized_evolution(8, 4, constraint=never, max_tries=50), 5)


def test_grid_follows_enumerate_and_strides_cover_every_point():
  sequential = _run(grid_search(), 200)
  assert sequential.archs == list(SPACE.enumerate())  # stops when exhausted
  assert position_to_tokens(17, CARDS) == SPACE.encode(sequential.archs[17])
  strided = _run(grid_search(order="strided"), 144)
  assert len(set(strided.archs)) == 144
  shuffled = _run(grid_search(order="shuffled"), 144)
  assert len(set(shuffled.archs)) == 144


def test_a_batch_can_be_told_in_part():
  strategy = constrained_evolution(8)
  state = strategy.init(jax.random.key(0), SPACE)
  archs = strategy.ask(state, jax.random.key(1))
  assert len(archs) == 8  # the first generation, as one batch
  state = strategy.tell(state, archs[:3], ToyEvaluator().evaluate(archs[:3]))
  assert len(strategy.ask(state, jax.random.key(2))) == 5  # fills it up


def test_reinforce_update_compiles_once():
  run = _run(FACTORIES["reinforce"](), 12, seed=9)
  _run(FACTORIES["reinforce"](), 12, seed=10)  # another search, same config
  fns = controller_fns(CARDS, 16, 2.5, 5.0)
  sample_jit, update_jit, _ = fns.jitted
  assert update_jit._cache_size() == 1
  assert sample_jit._cache_size() == 1
  assert run.state.num_told == 12


def test_registry_builds_by_name_and_rejects_unknowns():
  s = make_strategy("regularized_evolution",
                    {"population_size": 6, "sample_size": 2})
  assert len(_run(s, 10).archs) == 10
  with pytest.raises(UserError, match="valid strategies"):
    make_strategy("evolution")
  with pytest.raises(UserError, match="population_size"):
    make_strategy("regularized_evolution", {"populaton_size": 6})
  with pytest.raises(UserError, match="sample_size"):
    make_strategy("regularized_evolution", {"population_size": 3,
                                            "sample_size": 5})


def test_oneshot_adapter_scores_what_the_search_returns(monkeypatch):
  calls = []

  def stand_in(config, space, key):
    """A test double of the differentiable search: returns its derived
    architecture with its own (supernet) accuracy."""
    calls.append(config.epochs)
    return [(space.decode(TARGET), {"accuracy": 55.0, "epochs": config.epochs})]

  monkeypatch.setitem(STRATEGIES, "fake_darts",
                      StrategyEntry("oneshot", stand_in))
  oneshot = make_strategy("fake_darts", {"epochs": 3})
  assert isinstance(oneshot, OneShot)
  run = run_oneshot(oneshot, SPACE, ToyEvaluator(), jax.random.key(0))
  assert calls == [3]
  arch, result = run.best()
  assert arch.tokens == TARGET
  assert result["accuracy"] == pytest.approx(100.2)  # the common evaluator
  assert result["search_accuracy"] == 55.0  # the search's own figure
  with pytest.raises(UserError, match="constraint"):
    make_strategy("fake_darts", {}, constraint=lambda a: True)


def test_evolution_with_a_predictor_is_resumable_and_finds_the_optimum(
    tmp_path):
  strategy = regularized_evolution(
      8, 4, screen_size=4,
      predictor=mlp_predictor(hidden_sizes=(16,), steps=30))
  whole = _run(strategy, 30, seed=1)
  assert whole.best()[0].tokens == TARGET
  part = _run(strategy, 15, seed=1)
  path = str(tmp_path / "state.json")
  save_checkpoint(path, part)
  template = strategy.init(jax.random.key(0), SPACE)
  resumed = _run(strategy, 30, seed=1,
                 run=load_checkpoint(path, template, SPACE))
  assert resumed.archs == whole.archs
