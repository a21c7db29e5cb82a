"""Layers whose weights have the largest shape and are sliced per call.

Each layer serves both views of the supernet with the same parameters:

* discrete: the input already has the sub-network's channels; the layer uses
  the first ``C_in`` input and first ``C_out`` output channels of its weights;
* masked: the input has the largest channel count (inactive channels are
  zero); the layer computes everything and the caller's mask zeroes the
  channels the sub-network does not have.

BatchNorm keeps running statistics with the largest shape and, when the
``bn_moments`` collection is mutable, records the batch moments of the current
call (BN re-calibration averages them over batches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

MOMENTS = "bn_moments"


def relu6(x: jax.Array) -> jax.Array:
  return jnp.clip(x, 0.0, 6.0)


def resize_images(x: jax.Array, resolution: int) -> jax.Array:
  """Bilinear resize of NHWC images to ``resolution`` (no-op if equal).

  Every view and the extracted network resize with this one function, so a
  sub-network sees the same pixels wherever it runs.
  """
  if x.shape[1] == resolution and x.shape[2] == resolution:
    return x
  return jax.image.resize(x, (x.shape[0], resolution, resolution, x.shape[3]),
                          method="bilinear")


def to_canvas(x: jax.Array, resolution: int, canvas: int) -> jax.Array:
  """Resizes images to ``resolution`` and zero-pads them to ``canvas``.

  The masked view runs every resolution on a ``canvas x canvas`` grid with the
  image in the top-left corner and zeros elsewhere; with spatial masks after
  every layer this computes exactly what the network computes at
  ``resolution`` (see :class:`~supernet.elastic.mbv.ElasticMobileNet`).
  """
  x = resize_images(x, resolution)
  pad = canvas - resolution
  return jnp.pad(x, ((0, 0), (0, pad), (0, pad), (0, 0)))


def spatial_mask(size: int, valid: jax.Array) -> jax.Array:
  """``(size, size, 1)`` 0/1 mask of the top-left ``valid x valid`` square."""
  inside = (jnp.arange(size) < valid).astype(jnp.float32)
  return (inside[:, None] * inside[None, :])[:, :, None]


def centre(kernel: jax.Array, size: int) -> jax.Array:
  """The centre ``size x size`` taps of a ``(k, k, ...)`` kernel."""
  start = (kernel.shape[0] - size) // 2
  return kernel[start:start + size, start:start + size]


def kernel_for_size(kernel: jax.Array, size: int,
                    sizes: Sequence[int],
                    transforms: Mapping[int, jax.Array] | None = None
                    ) -> jax.Array:
  """The depthwise kernel a ``size x size`` sub-network uses.

  Without transforms it is the centre of the largest kernel. With OFA kernel
  transformation matrices, each smaller size is a learned linear map (shared
  by every channel) of the centre of the next larger size's kernel, applied
  from the largest size down.

  Args:
    kernel: ``(K, K, 1, C)`` largest kernel.
    size: the wanted kernel size (one of ``sizes``).
    sizes: the kernel choices, ascending; ``sizes[-1] == K``.
    transforms: ``{k: (k*k, k*k) matrix}`` for every ``k`` below ``K``.

  Returns:
    ``(size, size, 1, C)`` kernel.
  """
  current = kernel
  for k in sorted((s for s in sizes if size <= s < kernel.shape[0]),
                  reverse=True):
    current = centre(current, k)
    if transforms is not None:
      c = current.shape[-1]
      flat = current.reshape(k * k, c)
      current = (transforms[k] @ flat).reshape(k, k, 1, c)
  return current


def padded_kernels(kernel: jax.Array, sizes: Sequence[int],
                   transforms: Mapping[int, jax.Array] | None = None
                   ) -> jax.Array:
  """Every choice's kernel zero-padded to ``K x K``: ``(len(sizes), K, K, 1, C)``.

  A ``k x k`` 'SAME' convolution equals the ``K x K`` one with the kernel
  zero-padded around its centre (odd sizes, so the padding is symmetric), which
  lets the masked view pick a kernel size with a one-hot weighted sum.
  """
  big = kernel.shape[0]
  out = []
  for k in sizes:
    small = kernel_for_size(kernel, k, sizes, transforms)
    p = (big - k) // 2
    out.append(jnp.pad(small, ((p, p), (p, p), (0, 0), (0, 0))))
  return jnp.stack(out)


def conv2d(x: jax.Array, kernel: jax.Array, strides: int = 1) -> jax.Array:
  """'SAME' NHWC convolution; a 1x1 unstrided one as a matrix product.

  XLA:CPU differentiates a matrix product several times faster than a 1x1
  convolution, and MBConv blocks are mostly 1x1 convolutions.
  """
  if kernel.shape[:2] == (1, 1) and strides == 1:
    return jnp.einsum("nhwc,cd->nhwd", x, kernel[0, 0])
  return lax.conv_general_dilated(x, kernel, (strides, strides), "SAME",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


class ElasticConv(nn.Module):
  """Dense convolution (no bias) with weights ``(k, k, in_features, features)``.

  Attributes:
    in_features: largest input channel count.
    features: largest output channel count.
    kernel_size: square kernel size.
    strides: stride.
  """

  in_features: int
  features: int
  kernel_size: int = 1
  strides: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, out_channels: int | None = None
               ) -> jax.Array:
    """Convolves ``x`` (its channels: the first ``x.shape[-1]`` inputs).

    Args:
      x: NHWC input.
      out_channels: output channels to compute (discrete view); ``None`` for
        all of them (masked view).

    Returns:
      NHWC output.
    """
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.he_normal(),
                        (k, k, self.in_features, self.features))
    kernel = kernel[:, :, :x.shape[-1], :out_channels or self.features]
    return conv2d(x, kernel.astype(x.dtype), self.strides)


class ElasticBatchNorm(nn.Module):
  """BatchNorm over the first ``C`` channels of ``features``.

  Same variables and inference formula as ``flax.linen.BatchNorm`` (params
  ``scale``/``bias``, ``batch_stats`` ``mean``/``var``), so sliced variables
  load into a standard BatchNorm unchanged.

  Attributes:
    features: largest channel count.
    momentum: running-average momentum.
    epsilon: added to the variance.
  """

  features: int
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool,
               mask: jax.Array | None = None,
               spatial: jax.Array | None = None) -> jax.Array:
    """Normalises ``x``.

    Args:
      x: NHWC input whose channels are the first ``x.shape[-1]`` of the layer.
      train: use batch statistics (and update the running ones when the
        ``batch_stats`` collection is mutable).
      mask: masked view: ``(features,)`` 0/1 mask applied to the output (and
        to which running statistics change).
      spatial: masked view: ``(H, W, 1)`` 0/1 mask of the positions that
        exist at the sub-network's resolution; batch statistics count only
        those, and the output is zero elsewhere.

    Returns:
      The normalised ``x`` (masked channels and positions exactly zero).
    """
    f = self.features
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (f,))[:c]
    bias = self.param("bias", nn.initializers.zeros, (f,))[:c]
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (f,), jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (f,), jnp.float32)
    if train:
      axes = tuple(range(x.ndim - 1))
      if spatial is None:
        mean = jnp.mean(x, axes)
        var = jnp.mean(jnp.square(x - mean), axes)
      else:
        count = x.shape[0] * jnp.sum(spatial)
        mean = jnp.sum(x * spatial, axes) / count
        var = jnp.sum(jnp.square((x - mean) * spatial), axes) / count
      if not self.is_initializing():
        if self.is_mutable_collection("batch_stats"):
          m = self.momentum
          ra_mean.value = self._merge(ra_mean.value,
                                      m * ra_mean.value[:c] + (1 - m) * mean,
                                      mask)
          ra_var.value = self._merge(ra_var.value,
                                     m * ra_var.value[:c] + (1 - m) * var, mask)
        if self.is_mutable_collection(MOMENTS):
          mom_mean = self.variable(MOMENTS, "mean", lambda: ra_mean.value)
          mom_var = self.variable(MOMENTS, "var", lambda: ra_var.value)
          mom_mean.value = self._merge(ra_mean.value, mean, mask)
          mom_var.value = self._merge(ra_var.value, var, mask)
    else:
      mean, var = ra_mean.value[:c], ra_var.value[:c]
    mul = lax.rsqrt(var + self.epsilon) * scale
    y = (x - mean) * mul + bias
    if mask is not None:
      y = y * mask
    return y if spatial is None else y * spatial

  @staticmethod
  def _merge(old: jax.Array, new: jax.Array, mask: jax.Array | None
             ) -> jax.Array:
    """``new`` on the channels this call used, ``old`` on the others."""
    if mask is None:
      return old.at[:new.shape[0]].set(new)
    return jnp.where(mask > 0, new, old)
