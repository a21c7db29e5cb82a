"""Tabular NAS-Bench-201 evaluator: a lookup, counted as a query."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections

from supernet.benchmarks.nb201 import Nb201Table, load_nb201
from supernet.errors import UserError
from supernet.evaluators.base import Result
from supernet.spaces.base import Arch, SearchSpace


class Nb201Evaluator:
  """Looks up test accuracy and device latency of NAS-Bench-201 cells.

  Each result holds ``accuracy`` (percent, on ``dataset``), ``latency_ms`` (on
  ``device``), ``index`` (the benchmark index) and one field per extra cost
  function.
  """

  def __init__(self, table: Nb201Table, dataset: str = "cifar10",
               device: str = "pixel3",
               costs: Mapping[str, Callable[[Arch], float]] | None = None):
    """Builds the evaluator.

    Args:
      table: the benchmark table (``load_nb201()``).
      dataset: ``cifar10``, ``cifar100`` or ``imagenet16``.
      device: a latency column of the table (e.g. ``pixel3``).
      costs: extra ``name -> cost(arch)`` functions added to each result.
    """
    self.table = table
    self.dataset = dataset
    self.device = device
    self._accuracy = table.accuracy_column(dataset)
    self._latency = table.latency_column(device)
    self._costs = dict(costs or {})
    self.num_queries = 0

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, space: SearchSpace
                  ) -> Nb201Evaluator:
    """Builds the evaluator of ``config.evaluator``-style fields.

    Args:
      config: ``dataset``, ``device`` and ``data_path`` (empty for the table
        shipped in the package; else a shipped-format file or a directory of
        the original CSVs).
      space: the search space; must be ``nb201``.

    Returns:
      The evaluator.
    """
    if space.name != "nb201":
      raise UserError(f"the nb201 evaluator needs the nb201 space, not "
                      f"{space.name!r}")
    table = load_nb201(config.get("data_path") or None)
    return cls(table, config.get("dataset", "cifar10"),
               config.get("device", "pixel3"))

  def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
    """Results of ``archs`` (see the class doc); counts one query each."""
    out = []
    for arch in archs:
      i = self.table.index(arch)
      result: dict[str, Any] = {"accuracy": float(self._accuracy[i]),
                                "latency_ms": float(self._latency[i]),
                                "index": i}
      for name, cost in self._costs.items():
        result[name] = float(cost(arch))
      out.append(result)
    self.num_queries += len(archs)
    return out
