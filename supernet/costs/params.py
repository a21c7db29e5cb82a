"""Parameter counts of a pytree (the ``params`` collection of a network)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import jax


def _key_name(entry: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def count_params(params: Any, exclude: Iterable[str] = ()) -> int:
  """Number of scalars in ``params`` (arrays or ``ShapeDtypeStruct``s).

  Args:
    params: a pytree, typically ``variables["params"]`` (so BatchNorm scale
      and bias count, running statistics do not). Abstract leaves from
      ``jax.eval_shape`` work: only shapes are read.
    exclude: names of subtrees to leave out; a leaf is skipped when any key
      on its path equals one of them (e.g. ``("auxiliary",)`` for an
      auxiliary head that inference does not run).

  Returns:
    The total element count.
  """
  exclude = frozenset(exclude)
  total = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if exclude and any(_key_name(k) in exclude for k in path):
      continue
    total += math.prod(getattr(leaf, "shape", ()))
  return total
