"""The cotangent barrier is the identity in value and in every derivative."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from supernet.errors import UserError
from supernet.ops.barrier import cotangent_barrier, resolve_barrier_impl


def _f(x, impl):
  return jnp.sum(jnp.sin(cotangent_barrier(x * x, impl)) ** 2)


def test_values_and_gradients_are_the_identitys():
  x = jax.random.normal(jax.random.key(0), (2, 3, 3, 4))
  np.testing.assert_array_equal(cotangent_barrier(x, "cond"), x)
  want = jax.jit(jax.grad(lambda x: _f(x, "none")))(x)
  got = jax.jit(jax.grad(lambda x: _f(x, "cond")))(x)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_forward_over_reverse_through_the_barrier():
  # What the exact hypergradient does: a JVP of a gradient whose backward
  # pass holds the barrier.
  x = jax.random.normal(jax.random.key(0), (2, 3, 3, 4))
  v = jax.random.normal(jax.random.key(1), x.shape)

  def hvp(impl):
    return jax.jvp(jax.grad(lambda x: _f(x, impl)), (x,), (v,))[1]

  np.testing.assert_allclose(jax.jit(lambda: hvp("cond"))(),
                             jax.jit(lambda: hvp("none"))(), rtol=1e-5,
                             atol=1e-6)


def test_a_nan_cotangent_passes_unchanged():
  g = jnp.full((3, 2), jnp.nan).at[1, 1].set(2.0)
  _, vjp = jax.vjp(lambda x: cotangent_barrier(x, "cond"), jnp.ones((3, 2)))
  (back,) = vjp(g)
  np.testing.assert_array_equal(np.isnan(back), np.isnan(g))
  assert float(back[1, 1]) == 2.0


def test_the_barrier_reaches_xla_on_cpu():
  # The conditional is the fusion boundary; JAX must not fold it away.
  x = jnp.ones((4, 4))
  hlo = jax.jit(jax.grad(lambda x: _f(x, "auto"))).lower(x).compile(
  ).as_text()
  assert resolve_barrier_impl("auto") == "cond"  # the tests run on the CPU
  assert " conditional(" in hlo


def test_unknown_impl_is_a_user_error():
  with pytest.raises(UserError, match="unknown cotangent barrier"):
    cotangent_barrier(jnp.ones(2), "fence")
