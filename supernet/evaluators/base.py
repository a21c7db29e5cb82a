"""What an evaluator is: ``evaluate(archs) -> list[dict]`` plus a query count.

Evaluators are interchangeable behind this small protocol: a tabular benchmark
lookup, supernet weight-sharing accuracy, or a short training run. Every result
dict has at least ``accuracy`` (percent); cost fields (``latency_ms``,
``params``, ...) are added when the evaluator knows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from supernet.spaces.base import Arch

Result = dict[str, Any]


class Evaluator(Protocol):
  """Scores architectures.

  Attributes:
    num_queries: architectures evaluated so far by this evaluator.
  """

  num_queries: int

  def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
    """Results of ``archs``, in order; each has at least ``accuracy``."""
    ...
