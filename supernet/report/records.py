"""What a report is made of: searches (one per strategy and seed) and
experiments (a group of searches under the same budget and constraint)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from supernet.spaces.base import Arch


def arch_label(arch: Arch) -> str:
  """A one-line name of ``arch``: the benchmark string when it has one."""
  cell = getattr(arch, "cell", None)
  return cell if isinstance(cell, str) else arch.dumps()


@dataclasses.dataclass
class SearchRecord:
  """One search: every evaluated architecture, in order.

  Attributes:
    label: the strategy's name in the experiment (config entry).
    strategy: the registered strategy name.
    seed: the seed of this search.
    archs: ``arch_label`` of each evaluated architecture.
    results: the evaluator's result dict of each.
    wall_s: wall-clock seconds of the whole search.
  """

  label: str
  strategy: str
  seed: int
  archs: list[str]
  results: list[dict[str, Any]]
  wall_s: float

  @classmethod
  def from_search(cls, label: str, strategy: str, seed: int,
                  archs: Sequence[Arch], results: Sequence[dict[str, Any]],
                  wall_s: float) -> SearchRecord:
    """Builds a record from the architectures and results of a search."""
    return cls(label, strategy, seed, [arch_label(a) for a in archs],
               [dict(r) for r in results], float(wall_s))

  @property
  def accuracy(self) -> np.ndarray:
    """Accuracy of each evaluation."""
    return np.asarray([r["accuracy"] for r in self.results], np.float64)

  @property
  def best(self) -> int:
    """Position of the most accurate evaluation (first on ties)."""
    return int(np.argmax(self.accuracy))

  @property
  def best_accuracy(self) -> float:
    """Accuracy of the architecture the search found."""
    return float(self.accuracy[self.best]) if self.results else float("nan")

  def cost(self, field: str) -> np.ndarray:
    """A cost field of each evaluation (NaN where missing)."""
    return np.asarray([r.get(field, np.nan) for r in self.results], np.float64)


@dataclasses.dataclass
class Reference:
  """A known architecture to compare with (e.g. the table's optimum).

  Attributes:
    accuracy: its accuracy.
    arch: its label.
    cost: its cost (e.g. latency), or NaN.
  """

  accuracy: float
  arch: str
  cost: float = float("nan")


@dataclasses.dataclass
class Experiment:
  """Searches compared under the same budget (and constraint).

  Attributes:
    name: short id, used in file names and the CSV ``experiment`` column.
    title: section heading.
    records: the searches.
    cost_field: result field shown as the cost (e.g. ``latency_ms``).
    cost_label: axis/column label of that cost.
    optimum: the best architecture of the space (under the constraint), when
      known exactly.
    limit: the constraint's cost limit, if any.
    published: registered strategy name -> published ``(mean, std)``.
    published_note: where the published figures come from and how they
      differ.
    background: ``(cost[n], accuracy[n])`` of the whole space, when known.
    tolerance: gap to the optimum a search must close to count as a success.
  """

  name: str
  title: str
  records: list[SearchRecord]
  cost_field: str = "latency_ms"
  cost_label: str = "latency (ms)"
  optimum: Reference | None = None
  limit: float | None = None
  published: dict[str, tuple[float, float]] = dataclasses.field(
      default_factory=dict)
  published_note: str = ""
  background: tuple[np.ndarray, np.ndarray] | None = None
  tolerance: float = 0.5

  def labels(self) -> list[str]:
    """Strategy labels in order of first appearance."""
    return list(dict.fromkeys(r.label for r in self.records))

  def by_label(self, label: str) -> list[SearchRecord]:
    """The searches of one strategy."""
    return [r for r in self.records if r.label == label]
