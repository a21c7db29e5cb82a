"""Every depthwise/pointwise implementation computes the same function."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from supernet.ops.depthwise import PointwiseConv, depthwise_conv, resolve_impl


@pytest.mark.parametrize("impl", ["dense", "shift", "toeplitz"])
@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("padding", ["SAME", "sym"])
def test_depthwise_impls_match_native(impl, size, stride, dilation, padding):
  x = jax.random.normal(jax.random.key(0), (2, size, size, 6))
  k = jax.random.normal(jax.random.key(1), (5, 5, 1, 6))
  pad = padding if padding == "SAME" else ((2 * dilation,) * 2,) * 2
  want = depthwise_conv(x, k, stride, dilation, pad, impl="native")
  got = depthwise_conv(x, k, stride, dilation, pad, impl=impl)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel,stride,dilation,size", [
    (3, 2, 1, 8), (5, 1, 1, 9), (5, 2, 2, 9), (3, 1, 2, 7)])
def test_depthwise_gradients_match_native(kernel, stride, dilation, size):
  x = jax.random.normal(jax.random.key(0), (2, size, size, 4))
  k = jax.random.normal(jax.random.key(1), (kernel, kernel, 1, 4))
  pad = ((dilation * (kernel - 1) // 2,) * 2,) * 2

  def loss(impl):
    return jax.grad(lambda x, k: (jnp.sin(depthwise_conv(
        x, k, stride, dilation, pad, impl)) ** 2).sum(), argnums=(0, 1))(x, k)

  want = loss("native")
  for impl in ("dense", "shift", "toeplitz"):
    for g, w in zip(loss(impl), want):
      np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


def test_shift_second_derivatives_match_native():
  """The ``exact`` hypergradient differentiates through the weight gradient:
  the hand-written backward pass of ``shift`` must itself differentiate
  correctly (a Hessian-vector product against the native form)."""
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
  k = jax.random.normal(jax.random.key(1), (3, 3, 1, 3))
  v = jax.random.normal(jax.random.key(2), k.shape)

  def hvp(impl):
    def grad_k(x, k):
      return jax.grad(lambda k: (jnp.sin(depthwise_conv(
          x, k, 2, 1, "SAME", impl)) ** 2).sum())(k)
    return jax.grad(lambda x, k: (grad_k(x, k) * v).sum(), argnums=(0, 1))(
        x, k)

  for g, w in zip(hvp("shift"), hvp("native")):
    np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("in_scan", [False, True])
def test_shift_second_derivatives_inside_a_scan(in_scan):
  """Second-order AD of the custom VJP inside ``lax.scan`` (the scanned
  DARTS cell under the exact hypergradient): a regression test for
  residuals that arrived misaligned when the forward rule called the
  custom_vjp function itself."""
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
  k = jax.random.normal(jax.random.key(1), (2, 3, 3, 1, 3))

  def outer(impl):
    def loss(k):
      def step(total, kk):
        y = depthwise_conv(x, kk, 1, 1, ((1, 1), (1, 1)), impl)
        return total + jnp.sum(jnp.sin(y) ** 2), None
      if in_scan:
        return jax.lax.scan(step, 0.0, k)[0]
      return step(0.0, k[0])[0] + step(0.0, k[1])[0]
    return jax.grad(lambda a: jnp.sum(jax.grad(loss)(k * a) ** 2))(1.0)

  np.testing.assert_allclose(outer("shift"), outer("native"), rtol=1e-4)


def test_auto_choice_on_cpu():
  assert resolve_impl("auto", 16, 16) == "toeplitz"
  assert resolve_impl("auto", 128, 16) == "shift"
  assert resolve_impl("auto", 16, 8 * 8) == "shift"
  assert resolve_impl("auto", 512, 32 * 32) == "shift"
  assert resolve_impl("native", 16, 64) == "native"


def test_pointwise_conv_equals_flax_conv():
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 5))
  for strides in (1, 2):
    conv = nn.Conv(7, (1, 1), (strides, strides), padding="VALID",
                   use_bias=False)
    v = conv.init(jax.random.key(1), x)
    got = PointwiseConv(7, strides).apply(v, x)
    np.testing.assert_allclose(got, conv.apply(v, x), atol=1e-5, rtol=1e-5)


def test_pointwise_matmul_gradients_match_autodiff_to_second_order():
  from supernet.ops.depthwise import pointwise_matmul
  x = jax.random.normal(jax.random.key(0), (40, 5))
  k = jax.random.normal(jax.random.key(1), (5, 7), x.dtype)
  t = jax.random.normal(jax.random.key(2), (40, 7), x.dtype)

  def loss(f):
    return lambda x, k: jnp.sum(jnp.tanh(f(x, k)) * t)
  plain = lambda x, k: x @ k  # noqa: E731
  np.testing.assert_allclose(pointwise_matmul(x, k), plain(x, k), rtol=1e-6)
  for got, want in zip(jax.grad(loss(pointwise_matmul), (0, 1))(x, k),
                       jax.grad(loss(plain), (0, 1))(x, k)):
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
  # Gradient of a gradient (what the exact hypergradient takes).
  def outer(f):
    return lambda x, k: jnp.sum(jax.grad(loss(f), 1)(x, k) ** 2)
  for got, want in zip(jax.grad(outer(pointwise_matmul), (0, 1))(x, k),
                       jax.grad(outer(plain), (0, 1))(x, k)):
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
