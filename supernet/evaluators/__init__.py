"""Evaluators: interchangeable ``evaluate(archs) -> list[dict]`` objects.

:data:`EVALUATORS` maps a name to ``"module:factory"``; each factory takes the
``config.evaluator`` section and the space. Supernet weight-sharing and
short-training evaluators register here too.
"""

from __future__ import annotations

import importlib
from typing import Any

import ml_collections

from supernet.errors import UserError
from supernet.evaluators.base import Evaluator, Result
from supernet.spaces.base import SearchSpace

EVALUATORS: dict[str, str] = {
    "nb201": "supernet.evaluators.nb201:Nb201Evaluator.from_config",
    "supernet": "supernet.evaluators.supernet_eval:SupernetEvaluator.from_config",
    "proxy": "supernet.evaluators.proxy:ProxyEvaluator.from_config",
}


def make_evaluator(config: ml_collections.ConfigDict, space: SearchSpace
                   ) -> Evaluator:
  """Builds the evaluator named ``config.name``.

  Args:
    config: the ``evaluator`` section of an experiment config.
    space: the search space the evaluator scores.

  Returns:
    A fresh evaluator (its query count at 0).
  """
  name = config.get("name")
  if name not in EVALUATORS:
    raise UserError(f"unknown evaluator {name!r}; valid evaluators: "
                    f"{sorted(EVALUATORS)}")
  module_name, _, attr = EVALUATORS[name].partition(":")
  obj: Any = importlib.import_module(module_name)
  for part in attr.split("."):
    obj = getattr(obj, part)
  return obj(config, space)


__all__ = ["EVALUATORS", "Evaluator", "Result", "make_evaluator"]
