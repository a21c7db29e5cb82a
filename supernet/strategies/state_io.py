"""Strategy states to and from JSON.

A state's pytree structure is fixed by the strategy and the space, so a saved
state is only its list of leaves; restoring puts them back into the structure
of a fresh ``strategy.init(key, space)``. Arrays keep dtype and shape exactly
(float32 values are exact in JSON doubles), so a resumed search follows the
same trajectory as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from supernet.errors import UserError


def _leaf_to_json(leaf: Any) -> Any:
  if isinstance(leaf, (np.ndarray, np.generic, jax.Array)):
    array = np.asarray(leaf)
    return {"dtype": array.dtype.name, "shape": list(array.shape),
            "data": array.ravel().tolist()}
  if isinstance(leaf, (bool, int, float, str)) or leaf is None:
    return leaf
  raise TypeError(f"strategy state leaf of type {type(leaf).__name__} is not "
                  "serialisable")


def _leaf_from_json(doc: Any, like: Any) -> Any:
  if isinstance(like, (np.ndarray, np.generic, jax.Array)):
    if not isinstance(doc, dict) or set(doc) != {"dtype", "shape", "data"}:
      raise UserError("saved strategy state does not match the strategy "
                      "(expected an array)")
    array = np.asarray(doc["data"], dtype=doc["dtype"]).reshape(doc["shape"])
    if isinstance(like, jax.Array):
      return jnp.asarray(array)
    return array if isinstance(like, np.ndarray) else array[()]
  if isinstance(like, bool):
    return bool(doc)
  if isinstance(like, int):
    return int(doc)
  if isinstance(like, float):
    return float(doc)
  return doc


def state_to_json(state: Any) -> dict[str, Any]:
  """A JSON-serialisable document of ``state`` (its leaves in order).

  Args:
    state: a strategy state.

  Returns:
    ``{"leaves": [...]}``, to be restored with :func:`state_from_json`.
  """
  leaves = jax.tree_util.tree_leaves(state)
  return {"leaves": [_leaf_to_json(x) for x in leaves]}


def state_from_json(doc: dict[str, Any], template: Any) -> Any:
  """Rebuilds a state saved with :func:`state_to_json`.

  Args:
    doc: the saved document.
    template: a state of the same strategy and space (e.g. a fresh
      ``init``), giving the structure and the leaf types.

  Returns:
    The saved state.
  """
  like, treedef = jax.tree_util.tree_flatten(template)
  leaves = doc.get("leaves") if isinstance(doc, dict) else None
  if not isinstance(leaves, list) or len(leaves) != len(like):
    raise UserError("saved strategy state does not match the strategy "
                    f"(expected {len(like)} leaves)")
  return jax.tree_util.tree_unflatten(
      treedef, [_leaf_from_json(d, x) for d, x in zip(leaves, like)])
