"""Fast initialisation of large supernets.

``jax.jit(model.init)`` of a DARTS supernet lowers to ~10k operations (one
truncated-normal sampler per kernel, hundreds of kernels), which XLA:CPU takes
minutes to compile; eager ``init`` pays a compile per distinct shape. Here
parameter shapes come from ``jax.eval_shape`` (tracing only) and values from
one sampler per *distinct shape*, which compiles in seconds.

The values follow flax's default initialisers, which every network in
``supernet.models`` uses: kernels ``lecun_normal`` (truncated normal, fan-in
scaling over all but the last axis), biases and BatchNorm offsets zero,
BatchNorm scales and running variances one, running means zero. They are
equal in distribution to ``model.init``, not bitwise (different streams).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

# lecun_normal = variance_scaling(1, fan_in, truncated_normal): the normal is
# truncated at +-2 std, whose std is this fraction of the untruncated one.
_TRUNCATED_STD = 0.87962566103423978

_ZEROS = ("bias", "mean")
_ONES = ("scale", "var")


def _leaf_kind(path: tuple[str, ...]) -> str:
  name = path[-1]
  if name == "kernel":
    return "kernel"
  if name in _ZEROS:
    return "zeros"
  if name in _ONES:
    return "ones"
  raise ValueError(f"fast_init does not know how to initialise {'/'.join(path)}"
                   "; use model.init")


def fast_init(model: flax.linen.Module, key: jax.Array, *args: Any,
              **kwargs: Any) -> dict[str, Any]:
  """Variables of ``model`` with flax's default initialisers, compiled fast.

  Args:
    model: a flax module whose parameters are all ``kernel``/``bias``/
      ``scale`` leaves with default initialisers (true of every network in
      ``supernet.models``).
    key: PRNG key.
    *args: sample inputs of ``model.init`` (shapes only matter).
    **kwargs: keyword arguments of ``model.init``.

  Returns:
    The variables dict (``params`` and, if any, ``batch_stats``).
  """
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args,
                                             **kwargs))
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes))
  by_shape: dict[tuple, list] = defaultdict(list)
  out = {}
  for path, leaf in flat.items():
    kind = _leaf_kind(path)
    if kind == "kernel":
      by_shape[(tuple(leaf.shape), str(leaf.dtype))].append(path)
    else:
      fill = 0.0 if kind == "zeros" else 1.0
      out[path] = jnp.full(leaf.shape, fill, leaf.dtype)
  for i, ((shape, dtype), paths) in enumerate(sorted(by_shape.items())):
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    std = np.sqrt(1.0 / fan_in) / _TRUNCATED_STD
    draws = _sample(jax.random.fold_in(key, i), len(paths), shape, dtype)
    for j, path in enumerate(paths):
      out[path] = draws[j] * std
  return flax.traverse_util.unflatten_dict(out)


@jax.jit(static_argnums=(1, 2, 3))
def _sample(key, n, shape, dtype):
  return jax.random.truncated_normal(key, -2.0, 2.0, (n,) + shape,
                                     jnp.dtype(dtype))
