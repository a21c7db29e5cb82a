"""The DARTS candidate operations, in NHWC, numerically like the DARTS code.

Each operation is ReLU -> conv(s) -> BatchNorm ("ReLU-Conv-BN"), with the
symmetric padding of the PyTorch reference (so published weights port and
shapes match at even sizes). ``affine=False`` BatchNorm (no scale/offset) is
what the search network uses; evaluation networks use ``affine=True``.
BatchNorm follows PyTorch's defaults: momentum 0.1 (flax 0.9) and eps 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.ops import pooling
from supernet.ops.depthwise import DepthwiseConv, PointwiseConv

BN_MOMENTUM = 0.9   # PyTorch momentum 0.1
BN_EPSILON = 1e-5


def batch_norm(train: bool, affine: bool, name: str | None = None
               ) -> nn.BatchNorm:
  """BatchNorm with the DARTS settings; ``affine=False`` has no parameters."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                      epsilon=BN_EPSILON, use_scale=affine, use_bias=affine,
                      name=name)


def _pad(k: int, dilation: int = 1) -> tuple[tuple[int, int], tuple[int, int]]:
  p = dilation * (k - 1) // 2
  return ((p, p), (p, p))


class ReLUConvBN(nn.Module):
  """ReLU, k x k convolution, BatchNorm."""

  out_channels: int
  kernel_size: int
  strides: int = 1
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.relu(x)
    if self.kernel_size == 1:  # the cells' preprocessing: a matmul
      x = PointwiseConv(self.out_channels, self.strides, name="Conv_0")(x)
    else:
      x = nn.Conv(self.out_channels, (self.kernel_size, self.kernel_size),
                  (self.strides, self.strides),
                  padding=_pad(self.kernel_size), use_bias=False)(x)
    return batch_norm(train, self.affine)(x)


class DilConv(nn.Module):
  """ReLU, dilated depthwise k x k, pointwise 1 x 1, BatchNorm."""

  out_channels: int
  kernel_size: int
  strides: int
  dilation: int
  affine: bool = True
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.relu(x)
    x = DepthwiseConv(self.kernel_size, self.strides, self.dilation,
                      padding=_pad(self.kernel_size, self.dilation),
                      impl=self.depthwise_impl)(x)
    x = PointwiseConv(self.out_channels, name="Conv_0")(x)
    return batch_norm(train, self.affine)(x)


class SepConv(nn.Module):
  """Two stacked (depthwise k x k, pointwise) units, as in the DARTS code."""

  out_channels: int
  kernel_size: int
  strides: int
  affine: bool = True
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, train: bool):
    c_in = x.shape[-1]
    x = DilConv(c_in, self.kernel_size, self.strides, 1, self.affine,
                self.depthwise_impl)(x, train)
    return DilConv(self.out_channels, self.kernel_size, 1, 1, self.affine,
                   self.depthwise_impl)(x, train)


class FactorizedReduce(nn.Module):
  """Halves the resolution with two offset stride-2 1x1 convolutions."""

  out_channels: int
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool):
    if self.out_channels % 2:
      raise ValueError("FactorizedReduce needs an even number of channels")
    x = nn.relu(x)
    half = self.out_channels // 2
    a = PointwiseConv(half, 2, name="Conv_0")(x)
    b = PointwiseConv(half, 2, name="Conv_1")(x[:, 1:, 1:, :])
    if b.shape[1:3] != a.shape[1:3]:  # odd sizes: pad like a 'same' reduction
      b = jnp.pad(b, ((0, 0), (0, a.shape[1] - b.shape[1]),
                      (0, a.shape[2] - b.shape[2]), (0, 0)))
    return batch_norm(train, self.affine)(jnp.concatenate([a, b], axis=-1))


def max_pool_3x3(x: jax.Array, strides: int, impl: str = "auto"
                 ) -> jax.Array:
  """3x3 max pooling, padding 1 (padded cells never win).

  ``impl`` picks the pooling implementation (``supernet.ops.pooling``):
  shifted windows on CPU, ``reduce_window`` on accelerators.
  """
  return pooling.max_pool(x, 3, strides, ((1, 1), (1, 1)), impl=impl)


def avg_pool_3x3(x: jax.Array, strides: int, impl: str = "auto"
                 ) -> jax.Array:
  """3x3 average pooling, padding 1, padded cells not counted."""
  return pooling.avg_pool(x, 3, strides, ((1, 1), (1, 1)),
                          count_include_pad=False, impl=impl)


class Zero(nn.Module):
  """The ``none`` operation: zeros of the output shape."""

  strides: int = 1

  def __call__(self, x, train: bool):
    del train
    return jnp.zeros_like(x[:, ::self.strides, ::self.strides, :])


class Identity(nn.Module):

  def __call__(self, x, train: bool):
    del train
    return x


class Pool(nn.Module):
  """A 3x3 pooling, optionally followed by BatchNorm (the search's MixedOp)."""

  kind: str
  strides: int
  bn: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    fn = max_pool_3x3 if self.kind == "max" else avg_pool_3x3
    x = fn(x, self.strides)
    return batch_norm(train, affine=False)(x) if self.bn else x


def make_op(name: str, channels: int, strides: int, affine: bool,
            depthwise_impl: str = "auto", pool_bn: bool = False,
            op_name: str | None = None) -> Callable:
  """Builds the DARTS operation ``name`` mapping C channels to C channels.

  Args:
    name: one of ``supernet.spaces.darts.PRIMITIVES``.
    channels: input and output channels.
    strides: 1, or 2 on the edges of a reduction cell leaving its inputs.
    affine: BatchNorm with scale/offset (evaluation) or without (search).
    depthwise_impl: depthwise convolution implementation.
    pool_bn: follow pooling by an affine-free BatchNorm (the search MixedOp).
    op_name: flax module name.

  Returns:
    A flax module called as ``op(x, train)``.
  """
  kw = {"name": op_name}
  if name == "none":
    return Zero(strides, **kw)
  if name in ("max_pool_3x3", "avg_pool_3x3"):
    return Pool(name[:3], strides, pool_bn, **kw)
  if name == "skip_connect":
    return (Identity(**kw) if strides == 1
            else FactorizedReduce(channels, affine, **kw))
  if name in ("sep_conv_3x3", "sep_conv_5x5"):
    return SepConv(channels, int(name[-1]), strides, affine, depthwise_impl,
                   **kw)
  if name in ("dil_conv_3x3", "dil_conv_5x5"):
    return DilConv(channels, int(name[-1]), strides, 2, affine, depthwise_impl,
                   **kw)
  raise ValueError(f"unknown DARTS op {name!r}")
