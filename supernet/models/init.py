"""Fast initialisation of large supernets.

``jax.jit(model.init)`` of a DARTS supernet lowers to ~10k operations (one
truncated-normal sampler per kernel, hundreds of kernels), which XLA:CPU takes
minutes to compile; eager ``init`` pays a compile per distinct shape. Here
parameter shapes come from ``jax.eval_shape`` (tracing only) and values from
one truncated-normal draw for all kernels together, which compiles once.

The values follow flax's default initialisers, which every network in
``supernet.models`` uses: kernels ``lecun_normal`` (truncated normal, fan-in
scaling over all but the last axis), biases and BatchNorm offsets zero,
BatchNorm scales and running variances one, running means zero. They are
equal in distribution to ``model.init``, not bitwise (different streams).
"""

from __future__ import annotations

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
  kernels = sorted(path for path in flat if _leaf_kind(path) == "kernel")
  sizes = [int(np.prod(flat[path].shape)) for path in kernels]
  # One draw for every kernel, so one compilation whatever the shapes.
  draws = np.asarray(_sample(key, sum(sizes)))
  out = {}
  offset = 0
  for path, size in zip(kernels, sizes):
    leaf = flat[path]
    values = draws[offset:offset + size].reshape(leaf.shape)
    offset += size
    out[path] = jnp.asarray((values * _kernel_std(path, leaf.shape))
                            .astype(leaf.dtype))
  for path, leaf in flat.items():
    kind = _leaf_kind(path)
    if kind != "kernel":
      fill = 0.0 if kind == "zeros" else 1.0
      out[path] = jnp.asarray(np.full(leaf.shape, fill, leaf.dtype))
  return flax.traverse_util.unflatten_dict(out)


def _kernel_std(path: tuple[str, ...], shape: tuple[int, ...]) -> float:
  """lecun_normal's std for one kernel; ``stacked_*`` scopes add axes.

  ``nn.scan`` over modules named ``stacked_*`` stacks each kernel along a
  leading axis per scan; those axes are not part of the fan-in.
  """
  stacked = sum(1 for name in path if name.startswith("stacked"))
  kernel_shape = shape[stacked:]
  fan_in = (int(np.prod(kernel_shape[:-1])) if len(kernel_shape) > 1
            else 1)
  return float(np.sqrt(1.0 / fan_in) / _TRUNCATED_STD)


@jax.jit(static_argnums=1)
def _sample(key, n):
  return jax.random.truncated_normal(key, -2.0, 2.0, (n,), jnp.float32)
