"""Depthwise convolution with a per-backend implementation.

XLA:CPU runs a grouped convolution (``feature_group_count = C``) an order of
magnitude slower than a dense one, so on the CPU we compute the same result
another way; on GPU/TPU the native grouped convolution is fastest. Every
implementation takes the same kernel, shaped ``(kh, kw, 1, C)`` like flax's
grouped ``nn.Conv``, so parameters (and checkpoints) do not depend on the
choice, and results agree to float tolerance (tested).

Implementations:
  * ``native``: ``lax.conv_general_dilated`` with ``feature_group_count=C``.
  * ``dense``: a dense convolution with a block-diagonal ``(kh, kw, C, C)``
    kernel -- C times the multiply-adds, but on the fast dense path.
  * ``shift``: a sum of ``kh*kw`` shifted, strided slices times the kernel taps
    (elementwise work only; good for wide layers on the CPU).
  * ``auto``: ``native`` on accelerators; on the CPU ``dense`` up to
    :data:`DENSE_MAX_CHANNELS` channels, else ``shift``.

Cost models count multiply-accumulates from the ``native`` form.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from supernet.errors import UserError

IMPLEMENTATIONS = ("auto", "native", "dense", "shift")
DENSE_MAX_CHANNELS = 128


def resolve_impl(impl: str, channels: int) -> str:
  """The concrete implementation ``auto`` stands for on the current backend."""
  if impl not in IMPLEMENTATIONS:
    raise UserError(f"unknown depthwise implementation {impl!r}; valid: "
                    f"{list(IMPLEMENTATIONS)}")
  if impl != "auto":
    return impl
  if jax.default_backend() != "cpu":
    return "native"
  return "dense" if channels <= DENSE_MAX_CHANNELS else "shift"


def _same_padding(size: int, kernel: int, stride: int, dilation: int
                  ) -> tuple[int, int]:
  """TF/flax 'SAME' padding for one spatial dimension."""
  effective = (kernel - 1) * dilation + 1
  out = -(-size // stride)
  total = max((out - 1) * stride + effective - size, 0)
  return total // 2, total - total // 2


def depthwise_conv(x: jax.Array, kernel: jax.Array, strides: int = 1,
                   dilation: int = 1,
                   padding: str | Sequence[tuple[int, int]] = "SAME",
                   impl: str = "auto") -> jax.Array:
  """Depthwise 2D convolution of NHWC ``x`` with kernel ``(kh, kw, 1, C)``.

  Args:
    x: input, shape ``(N, H, W, C)``.
    kernel: one ``kh x kw`` filter per channel, shape ``(kh, kw, 1, C)``.
    strides: spatial stride (same in both dimensions).
    dilation: kernel dilation (same in both dimensions).
    padding: ``"SAME"``, ``"VALID"`` or explicit ``((top, bottom), (left,
      right))`` pairs.
    impl: one of :data:`IMPLEMENTATIONS`.

  Returns:
    ``(N, H', W', C)`` output, identical (to float tolerance) for every impl.
  """
  kh, kw, one, channels = kernel.shape
  if one != 1 or x.shape[-1] != channels:
    raise ValueError(f"depthwise kernel {kernel.shape} does not fit input "
                     f"{x.shape}")
  if isinstance(padding, str):
    if padding == "SAME":
      pads = (_same_padding(x.shape[1], kh, strides, dilation),
              _same_padding(x.shape[2], kw, strides, dilation))
    elif padding == "VALID":
      pads = ((0, 0), (0, 0))
    else:
      raise ValueError(f"unknown padding {padding!r}")
  else:
    pads = tuple(tuple(p) for p in padding)
  impl = resolve_impl(impl, channels)
  dn = ("NHWC", "HWIO", "NHWC")
  if impl == "native":
    return lax.conv_general_dilated(
        x, kernel, (strides, strides), pads, rhs_dilation=(dilation, dilation),
        dimension_numbers=dn, feature_group_count=channels)
  if impl == "dense":
    eye = jnp.eye(channels, dtype=kernel.dtype)
    full = kernel * eye  # (kh, kw, 1, C) * (C, C) -> (kh, kw, C, C) diagonal
    return lax.conv_general_dilated(
        x, full, (strides, strides), pads, rhs_dilation=(dilation, dilation),
        dimension_numbers=dn)
  # shift: accumulate kh*kw strided slices of the padded input.
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  out_h = (xp.shape[1] - ((kh - 1) * dilation + 1)) // strides + 1
  out_w = (xp.shape[2] - ((kw - 1) * dilation + 1)) // strides + 1
  out = None
  for i in range(kh):
    for j in range(kw):
      patch = lax.slice(
          xp, (0, i * dilation, j * dilation, 0),
          (xp.shape[0], i * dilation + (out_h - 1) * strides + 1,
           j * dilation + (out_w - 1) * strides + 1, channels),
          (1, strides, strides, 1))
      term = patch * kernel[i, j, 0]
      out = term if out is None else out + term
  return out


class DepthwiseConv(nn.Module):
  """Flax depthwise convolution whose parameter matches ``nn.Conv`` grouped.

  Attributes:
    kernel_size: spatial size of the (square) kernel.
    strides: stride.
    dilation: kernel dilation.
    padding: ``"SAME"``, ``"VALID"`` or explicit pairs.
    use_bias: add a per-channel bias.
    impl: depthwise implementation (see module docstring).
  """

  kernel_size: int
  strides: int = 1
  dilation: int = 1
  padding: str | Sequence[tuple[int, int]] = "SAME"
  use_bias: bool = False
  impl: str = "auto"
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    kernel = self.param("kernel", self.kernel_init,
                        (self.kernel_size, self.kernel_size, 1, channels))
    dtype = self.dtype or x.dtype
    y = depthwise_conv(x.astype(dtype), kernel.astype(dtype), self.strides,
                       self.dilation, self.padding, self.impl)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (channels,)).astype(dtype)
    return y
