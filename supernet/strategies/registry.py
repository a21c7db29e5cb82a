"""The registry of strategies by name, and building one from a config.

Two kinds of entries:

* ``iterative``: a factory ``(**hparams, constraint=...) -> Strategy``
  (``init/ask/tell``);
* ``oneshot``: a function ``run(config, space, key) -> list[(arch, result)]``
  that searches by itself and returns its history, such as the differentiable
  (DARTS) search; it is compared on the same evaluator (see ``runner``).

Targets are ``"module:function"`` strings imported on use (or callables), so a
strategy's heavy dependencies load only when it runs.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import ml_collections

from supernet.errors import UserError
from supernet.strategies.base import Constraint, OneShot, Strategy

ITERATIVE = "iterative"
ONESHOT = "oneshot"


class StrategyEntry(NamedTuple):
  """One registered strategy.

  Attributes:
    kind: ``iterative`` or ``oneshot``.
    target: ``"module:function"`` or the function itself.
  """

  kind: str
  target: str | Callable[..., Any]


STRATEGIES: dict[str, StrategyEntry] = {
    "grid": StrategyEntry(ITERATIVE, "supernet.strategies.grid:grid_search"),
    "random": StrategyEntry(
        ITERATIVE, "supernet.strategies.random_search:random_search"),
    "regularized_evolution": StrategyEntry(
        ITERATIVE,
        "supernet.strategies.regularized_evolution:regularized_evolution"),
    "constrained_evolution": StrategyEntry(
        ITERATIVE,
        "supernet.strategies.constrained_evolution:constrained_evolution"),
    "reinforce": StrategyEntry(ITERATIVE,
                               "supernet.strategies.reinforce:reinforce"),
    # The differentiable search of ``supernet.search.darts`` (hparams:
    # ``search_config``, ``overrides``, ``every_epoch``), compared through
    # the one-shot adapter of ``runner``.
    "darts": StrategyEntry(ONESHOT, "supernet.search.darts:run_oneshot"),
}


def _resolve(name: str, target: str | Callable[..., Any]) -> Callable[..., Any]:
  if callable(target):
    return target
  module_name, _, attr = target.partition(":")
  try:
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
      obj = getattr(obj, part)
  except (ImportError, AttributeError) as e:
    raise UserError(f"strategy {name!r} is not available: cannot load "
                    f"{target} ({e})") from None
  return obj


def _plain(value: Any) -> Any:
  if isinstance(value, ml_collections.ConfigDict):
    return value.to_dict()
  return value


def strategy_kind(name: str) -> str:
  """``iterative`` or ``oneshot``; unknown names list the valid ones."""
  if name not in STRATEGIES:
    raise UserError(f"unknown strategy {name!r}; valid strategies: "
                    f"{sorted(STRATEGIES)}")
  return STRATEGIES[name].kind


def make_strategy(name: str, hparams: Mapping[str, Any] | None = None,
                  constraint: Constraint | None = None) -> Strategy | OneShot:
  """Builds the strategy registered as ``name``.

  Args:
    name: a key of :data:`STRATEGIES`.
    hparams: hyper-parameters (keyword arguments of the factory; for a
      one-shot strategy, the config section passed to its ``run``). A
      ``predictor`` mapping becomes ``mlp_predictor(**predictor)``.
    constraint: hard constraint (iterative strategies only).

  Returns:
    A :class:`Strategy` or a :class:`OneShot`.
  """
  kind = strategy_kind(name)
  fn = _resolve(name, STRATEGIES[name].target)
  if kind == ONESHOT:
    if constraint is not None:
      raise UserError(f"one-shot strategy {name!r} takes no hard constraint")
    config = (hparams if isinstance(hparams, ml_collections.ConfigDict)
              else ml_collections.ConfigDict(dict(hparams or {})))
    return OneShot(run=fn, config=config)
  kwargs = {k: _plain(v) for k, v in dict(hparams or {}).items()}
  valid = [p for p in inspect.signature(fn).parameters if p != "constraint"]
  unknown = sorted(set(kwargs) - set(valid))
  if unknown:
    raise UserError(f"strategy {name!r} has no hyper-parameter(s) {unknown}; "
                    f"valid: {valid}")
  if kwargs.get("predictor") is not None:
    from supernet.evaluators.predictor import mlp_predictor
    spec = kwargs["predictor"]
    if not isinstance(spec, Mapping):
      raise UserError("predictor must be a mapping of mlp_predictor "
                      "hyper-parameters (or None)")
    try:
      kwargs["predictor"] = mlp_predictor(**spec)
    except TypeError as e:
      raise UserError(f"predictor: {e}") from None
  try:
    return fn(**kwargs, constraint=constraint)
  except TypeError as e:
    raise UserError(f"strategy {name!r}: {e}") from None
