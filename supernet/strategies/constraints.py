"""Hard constraints built from cost functions.

A constraint is any ``constraint(arch) -> bool``; every strategy accepts one
and never evaluates a candidate that fails it. Build them from a generic cost
function (params, MACs, measured latency: whatever ``cost(arch) -> float``
the cost model provides) or from a NAS-Bench-201 device latency column.

:data:`COSTS` names the cost functions a config can refer to
(``constraint.cost``); the cost model registers params, MACs and measured
latency here when it lands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

from supernet.benchmarks.nb201 import Nb201Table, load_nb201
from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace
from supernet.strategies.base import Constraint

CostFn = Callable[[Arch], float]


@dataclasses.dataclass(frozen=True)
class MaxCost:
  """``cost(arch) <= limit`` as a constraint with a readable name.

  Attributes:
    cost: the cost function.
    limit: the largest allowed cost.
    name: what the cost is, for reports (e.g. ``latency_ms[pixel3]``).
  """

  cost: CostFn
  limit: float
  name: str = "cost"

  def __call__(self, arch: Arch) -> bool:
    return self.cost(arch) <= self.limit

  def __str__(self) -> str:
    return f"{self.name} <= {self.limit:g}"


@dataclasses.dataclass(frozen=True)
class AllOf:
  """All of several constraints (e.g. a latency and a parameter budget)."""

  constraints: tuple[Constraint, ...]

  def __call__(self, arch: Arch) -> bool:
    return all(c(arch) for c in self.constraints)

  def __str__(self) -> str:
    return " and ".join(str(c) for c in self.constraints)


def max_cost(cost: CostFn, limit: float, name: str = "cost") -> MaxCost:
  """The constraint ``cost(arch) <= limit``.

  Args:
    cost: any cost function of an architecture (params, MACs, latency...).
    limit: the largest allowed value.
    name: what the cost is, for reports.

  Returns:
    The constraint.
  """
  return MaxCost(cost, float(limit), name)


def all_of(*constraints: Constraint) -> AllOf:
  """The constraint that every one of ``constraints`` holds."""
  return AllOf(tuple(constraints))


def nb201_latency_cost(device: str, table: Nb201Table | None = None) -> CostFn:
  """``arch -> latency (ms)`` on a NAS-Bench-201 device column.

  Args:
    device: a latency column (e.g. ``pixel3``; see ``table.devices``).
    table: the benchmark table (default: the shipped one).

  Returns:
    The cost function.
  """
  table = table or load_nb201()
  column = table.latency_column(device)

  def latency_ms(arch: Arch) -> float:
    return float(column[table.index(arch)])

  return latency_ms


def latency_constraint(device: str, max_latency_ms: float,
                       table: Nb201Table | None = None) -> MaxCost:
  """``latency_ms <= max_latency_ms`` on a NAS-Bench-201 device column.

  Args:
    device: a latency column (e.g. ``pixel3``).
    max_latency_ms: the latency budget.
    table: the benchmark table (default: the shipped one).

  Returns:
    The constraint.
  """
  return max_cost(nb201_latency_cost(device, table), max_latency_ms,
                  f"latency_ms[{device}]")


def _nb201_latency(config: ml_collections.ConfigDict, space: SearchSpace
                   ) -> tuple[CostFn, str]:
  if space.name != "nb201":
    raise UserError(f"cost 'nb201_latency' needs the nb201 space, not "
                    f"{space.name!r}")
  device = config.get("device", "")
  table = load_nb201(config.get("data_path") or None)
  return nb201_latency_cost(device, table), f"latency_ms[{device}]"


# name -> builder(constraint config, space) -> (cost function, its name).
COSTS: dict[str, Callable[[Any, SearchSpace], tuple[CostFn, str]]] = {
    "nb201_latency": _nb201_latency,
}


def make_constraint(config: ml_collections.ConfigDict | None,
                    space: SearchSpace) -> Constraint | None:
  """The constraint of a config section, or ``None``.

  Args:
    config: ``cost`` (a name in :data:`COSTS`, or ``none``/empty), ``limit``
      and whatever the cost needs (``device``, ``data_path`` for
      ``nb201_latency``).
    space: the search space.

  Returns:
    ``cost(arch) <= limit``, or ``None`` when no cost is named.
  """
  if config is None or config.get("cost", "none") in ("", "none", None):
    return None
  name = config.get("cost")
  if name not in COSTS:
    raise UserError(f"unknown constraint cost {name!r}; valid costs: "
                    f"{sorted(COSTS)} (or 'none')")
  limit = config.get("limit")
  if isinstance(limit, bool) or not isinstance(limit, (int, float)):
    raise UserError(f"constraint limit must be a number, got {limit!r}")
  cost, what = COSTS[name](config, space)
  return max_cost(cost, limit, what)
