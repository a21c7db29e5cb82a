"""The training state (a pytree) and the variables an exported network keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


@flax.struct.dataclass
class TrainState:
  """Everything a training step reads and writes.

  Attributes:
    step: optimiser steps taken so far (int32 scalar).
    params: the ``params`` collection (with the auxiliary head, if any).
    batch_stats: BatchNorm running statistics (``{}`` without BatchNorm).
    opt_state: the optax state of ``params``.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: optax.OptState

  def variables(self) -> dict[str, Any]:
    """``{"params", "batch_stats"}`` as ``module.apply`` takes them."""
    out = {"params": self.params}
    if self.batch_stats:
      out["batch_stats"] = self.batch_stats
    return out


def _init_rngs(key: jax.Array) -> dict[str, jax.Array]:
  k_params, k_dropout = jax.random.split(key)
  return {"params": k_params, "dropout": k_dropout}


def _init_state(module: nn.Module, tx: optax.GradientTransformation,
                input_shape: Sequence[int], key: jax.Array) -> TrainState:
  # A batch of 2: BatchNorm in training mode needs a variance.
  sample = jnp.zeros((2, *input_shape), jnp.float32)
  variables = module.init(_init_rngs(key), sample, train=True)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx.init(params))


def create_train_state(module: nn.Module, tx: optax.GradientTransformation,
                       input_shape: Sequence[int], key: jax.Array
                       ) -> TrainState:
  """Initialises weights (with ``train=True``, so auxiliary heads exist).

  Args:
    module: the network; called as ``module.apply(v, x, train=...)``.
    tx: the weight optimiser.
    input_shape: ``(H, W, C)`` of one example.
    key: the initialisation key.

  Returns:
    A fresh state at step 0 (replicate it for data parallelism).
  """
  return jax.jit(lambda k: _init_state(module, tx, input_shape, k))(key)


def abstract_train_state(module: nn.Module, tx: optax.GradientTransformation,
                         input_shape: Sequence[int]) -> TrainState:
  """Shapes and dtypes of :func:`create_train_state`'s result (no compute).

  Used as the restore target of a checkpoint when only the weights are
  wanted (export), so nothing is initialised or compiled.
  """
  return jax.eval_shape(
      lambda k: _init_state(module, tx, input_shape, k), jax.random.key(0))


def inference_structure(module: nn.Module, input_shape: Sequence[int]
                        ) -> dict[str, Any]:
  """Shapes of the variables ``module.apply(v, x, train=False)`` reads.

  Args:
    module: the network.
    input_shape: ``(H, W, C)`` of one example.

  Returns:
    A pytree of ``jax.ShapeDtypeStruct`` (``params``, ``batch_stats``...);
    training-only parts such as an auxiliary head are absent.
  """
  sample = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  return jax.eval_shape(
      lambda k, x: module.init(_init_rngs(k), x, train=False),
      jax.random.key(0), sample)


def select_like(tree: Any, structure: Any) -> Any:
  """The sub-tree of nested dict ``tree`` with the keys of ``structure``.

  Drops what inference does not use (an auxiliary head's parameters) so an
  export holds only the network it runs.
  """
  if isinstance(structure, dict):
    return {k: select_like(tree[k], v) for k, v in structure.items()
            if isinstance(tree, dict) and k in tree}
  return tree


def inference_variables(module: nn.Module, state: TrainState,
                        input_shape: Sequence[int]) -> dict[str, Any]:
  """The trained variables inference needs, as host NumPy arrays.

  Args:
    module: the network.
    state: a training state.
    input_shape: ``(H, W, C)`` of one example.

  Returns:
    ``{"params": ..., "batch_stats": ...}`` without training-only heads.
  """
  structure = flax.core.unfreeze(inference_structure(module, input_shape))
  variables = jax.tree.map(np.asarray, flax.core.unfreeze(state.variables()))
  return select_like(variables, structure)


def count_params(tree: Any) -> int:
  """Number of scalars in a pytree of arrays (or shape structs)."""
  return int(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree)))
