"""The shift pooling forms agree with flax's reduce_window pooling."""

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from supernet.errors import UserError
from supernet.ops import pooling

PADS = ((1, 1), (1, 1))


def _input(shape, seed=0):
  # Distinct values, so a max-pool window has one maximum and the native
  # and shift gradients must agree exactly.
  n = int(np.prod(shape))
  perm = np.random.default_rng(seed).permutation(n).astype(np.float32)
  return jnp.asarray(perm.reshape(shape) / n)


@pytest.mark.parametrize("strides,size", [(1, 8), (2, 8), (2, 7), (1, 5)])
def test_max_pool_matches_native(strides, size):
  x = _input((2, size, size, 3))
  native = partial(nn.max_pool, window_shape=(3, 3),
                   strides=(strides, strides), padding=PADS)
  shift = partial(pooling.shift_max_pool, window=3, strides=strides,
                  pads=PADS)
  np.testing.assert_array_equal(shift(x), native(x))
  g = _input(native(x).shape, seed=1)
  _, vjp_n = jax.vjp(native, x)
  _, vjp_s = jax.vjp(shift, x)
  np.testing.assert_allclose(vjp_s(g)[0], vjp_n(g)[0], rtol=1e-6, atol=1e-6)


def test_max_pool_ties_share_the_gradient():
  x = jnp.ones((1, 3, 3, 1))
  g = jax.grad(lambda v: pooling.shift_max_pool(v, 3, 1, ((0, 0), (0, 0)))
               .sum())(x)
  np.testing.assert_allclose(g, np.full((1, 3, 3, 1), 1 / 9), rtol=1e-6)


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("strides,size", [(1, 8), (2, 8), (2, 7)])
def test_avg_pool_matches_native(strides, size, include):
  x = _input((2, size, size, 4))
  native = partial(nn.avg_pool, window_shape=(3, 3),
                   strides=(strides, strides), padding=PADS,
                   count_include_pad=include)
  shift = partial(pooling.shift_avg_pool, window=3, strides=strides,
                  pads=PADS, count_include_pad=include)
  np.testing.assert_allclose(shift(x), native(x), rtol=1e-5, atol=1e-6)
  g = _input(native(x).shape, seed=1)
  _, vjp_n = jax.vjp(native, x)
  _, vjp_s = jax.vjp(shift, x)
  np.testing.assert_allclose(vjp_s(g)[0], vjp_n(g)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_second_order_matches_native(kind):
  """Exact hypergradients differentiate through the pooling's backward."""
  x = _input((1, 6, 6, 2))
  w = _input((1, 6, 6, 2), seed=2)
  if kind == "max":
    native = partial(nn.max_pool, window_shape=(3, 3), strides=(1, 1),
                     padding=PADS)
    shift = partial(pooling.shift_max_pool, window=3, strides=1, pads=PADS)
  else:
    native = partial(nn.avg_pool, window_shape=(3, 3), strides=(2, 2),
                     padding=PADS, count_include_pad=False)
    shift = partial(pooling.shift_avg_pool, window=3, strides=2, pads=PADS,
                    count_include_pad=False)

  def hvp(fn):
    # The gradient of a squared pooling, differentiated along w.
    def loss(v):
      return jnp.sum(fn(v * v) ** 2)

    return jax.grad(lambda v: jnp.vdot(jax.grad(loss)(v), w))(x)

  np.testing.assert_allclose(hvp(shift), hvp(native), rtol=1e-4, atol=1e-5)


def test_wrappers_dispatch_and_reject_unknown():
  x = _input((1, 4, 4, 1))
  for impl in ("native", "shift", "auto"):
    np.testing.assert_allclose(
        pooling.avg_pool(x, 3, 1, PADS, count_include_pad=False, impl=impl),
        nn.avg_pool(x, (3, 3), (1, 1), padding=PADS, count_include_pad=False),
        rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        pooling.max_pool(x, 3, 2, PADS, impl=impl),
        nn.max_pool(x, (3, 3), (2, 2), padding=PADS))
  assert pooling.resolve_pool_impl("auto") == "shift"  # CPU in the tests
  with pytest.raises(UserError, match="unknown pooling implementation"):
    pooling.resolve_pool_impl("fft")


def test_max_pool_second_order_inside_a_scan():
  """Regression: second-order AD of the custom VJP inside ``lax.scan``."""
  x = _input((2, 6, 6, 2))
  scale = _input((2, 1, 1, 2), seed=3) + 0.5

  def outer(pool):
    def loss(s):
      def step(total, ss):
        return total + jnp.sum(jnp.sin(pool(x * ss)) ** 2), None
      return jax.lax.scan(step, 0.0, s)[0]
    return jax.grad(lambda a: jnp.sum(jax.grad(loss)(scale * a) ** 2))(1.0)

  np.testing.assert_allclose(
      outer(partial(pooling.shift_max_pool, window=3, strides=1, pads=PADS)),
      outer(partial(nn.max_pool, window_shape=(3, 3), strides=(1, 1),
                    padding=PADS)), rtol=1e-4)
