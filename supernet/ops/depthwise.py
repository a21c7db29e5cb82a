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
    kernel -- C times the multiply-adds, but on the dense convolution path.
  * ``shift``: a sum of ``kh*kw`` shifted, strided windows times the kernel
    taps, with a hand-written backward pass (:func:`shift_depthwise_conv`):
    elementwise loops and one variadic reduction, all fused by XLA:CPU.
  * ``toeplitz``: each channel's convolution as a ``(H'W', HW)`` matrix built
    from the kernel and constant 0/1 shift matrices, applied with one batched
    matrix product (memory and constants grow as ``(HW)^2``: tiny maps only).
  * ``auto``: ``native`` on accelerators; on the CPU ``toeplitz`` for maps of
    at most :data:`TOEPLITZ_MAX_POSITIONS` positions and
    :data:`TOEPLITZ_MAX_CHANNELS` channels, else ``shift``.

Measured on 2 AMD EPYC cores (jaxlib 0.10.2), a DARTS ``sep_conv_5x5``
(ReLU, two depthwise-pointwise-BN units) forwards and backwards at batch 16:
32x32x16 shift 6.0 ms, dense 17.9, toeplitz 175, native ~60; 8x8x64 shift
2.6, toeplitz 5.8, dense 13.9; at 4x4x16 (batch 64) toeplitz 0.7, shift 1.6.

Cost models count multiply-accumulates from the ``native`` form.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.ad_checkpoint import checkpoint_name

from supernet.errors import UserError

IMPLEMENTATIONS = ("auto", "native", "dense", "shift", "toeplitz")
TOEPLITZ_MAX_POSITIONS = 16
TOEPLITZ_MAX_CHANNELS = 64


def resolve_impl(impl: str, channels: int, positions: int = 0) -> str:
  """The concrete implementation ``auto`` stands for on the current backend."""
  if impl not in IMPLEMENTATIONS:
    raise UserError(f"unknown depthwise implementation {impl!r}; valid: "
                    f"{list(IMPLEMENTATIONS)}")
  if impl != "auto":
    return impl
  if jax.default_backend() != "cpu":
    return "native"
  if (0 < positions <= TOEPLITZ_MAX_POSITIONS
      and channels <= TOEPLITZ_MAX_CHANNELS):
    return "toeplitz"
  return "shift"


@functools.lru_cache(maxsize=256)
def shift_matrices(height: int, width: int, kh: int, kw: int, strides: int,
                   dilation: int, pads: tuple[tuple[int, int], ...]
                   ) -> np.ndarray:
  """0/1 array ``(H'W', HW, kh*kw)``: output position, input position, tap."""
  (pt, pb), (pl, pr) = pads
  oh = (height + pt + pb - ((kh - 1) * dilation + 1)) // strides + 1
  ow = (width + pl + pr - ((kw - 1) * dilation + 1)) // strides + 1
  s = np.zeros((oh * ow, height * width, kh * kw), np.float32)
  for oy in range(oh):
    for ox in range(ow):
      for i in range(kh):
        for j in range(kw):
          y = oy * strides + i * dilation - pt
          x = ox * strides + j * dilation - pl
          if 0 <= y < height and 0 <= x < width:
            s[oy * ow + ox, y * width + x, i * kw + j] = 1.0
  return s


def _same_padding(size: int, kernel: int, stride: int, dilation: int
                  ) -> tuple[int, int]:
  """TF/flax 'SAME' padding for one spatial dimension."""
  effective = (kernel - 1) * dilation + 1
  out = -(-size // stride)
  total = max((out - 1) * stride + effective - size, 0)
  return total // 2, total - total // 2


def windowed_size(padded: int, kernel: int, dilation: int, strides: int
                  ) -> int:
  """Output length of a (dilated, strided) window sliding over ``padded``."""
  return (padded - ((kernel - 1) * dilation + 1)) // strides + 1


def tap_windows(xp: jax.Array, kh: int, kw: int, dilation: int, strides: int,
                out_h: int, out_w: int):
  """Yields ``(i, j, window)``: the (strided) input window under tap (i, j).

  Shared by the shift depthwise convolution and the shift pooling
  (:mod:`supernet.ops.pooling`).
  """
  n, _, _, c = xp.shape
  for i in range(kh):
    for j in range(kw):
      y0, x0 = i * dilation, j * dilation
      yield i, j, lax.slice(
          xp, (0, y0, x0, 0),
          (n, y0 + (out_h - 1) * strides + 1, x0 + (out_w - 1) * strides + 1,
           c), (1, strides, strides, 1))


def _correlate(xp: jax.Array, kernel: jax.Array, dilation: int, strides: int,
               out_h: int, out_w: int) -> jax.Array:
  """``sum_t window_t(xp) * kernel[t]``: one fused elementwise loop."""
  kh, kw = kernel.shape[:2]
  out = None
  for i, j, window in tap_windows(xp, kh, kw, dilation, strides, out_h,
                                  out_w):
    term = window * kernel[i, j, 0]
    out = term if out is None else out + term
  return out


def _pad_nhwc(x: jax.Array, pads) -> jax.Array:
  return jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def shift_depthwise_conv(x: jax.Array, kernel: jax.Array, strides: int,
                         dilation: int, pads: tuple[tuple[int, int], ...]
                         ) -> jax.Array:
  """Depthwise convolution as a sum of shifted windows (the ``shift`` form).

  XLA:CPU fuses the forward pass into one elementwise loop. The backward
  pass is written by hand because autodiff of the slices gives one padded
  full-size tensor per tap, and one reduction per tap for the kernel:
  here the input gradient is the same shifted-window correlation of the
  (stride-dilated) output gradient with the flipped kernel, and the kernel
  gradient is one variadic reduction with ``kh * kw`` accumulators, a single
  pass over the input and the output gradient (5-6x faster for a 5x5
  kernel on XLA:CPU than per-tap reductions).

  Args:
    x: ``(N, H, W, C)``.
    kernel: ``(kh, kw, 1, C)``.
    strides: spatial stride.
    dilation: kernel dilation.
    pads: explicit ``((top, bottom), (left, right))`` padding.

  Returns:
    ``(N, H', W', C)``.
  """
  return _shift_forward(x, kernel, strides, dilation, pads)


def _shift_forward(x, kernel, strides, dilation, pads):
  xp = _pad_nhwc(x, pads)
  kh, kw = kernel.shape[:2]
  return _correlate(xp, kernel, dilation, strides,
                    windowed_size(xp.shape[1], kh, dilation, strides),
                    windowed_size(xp.shape[2], kw, dilation, strides))


def _shift_fwd(x, kernel, strides, dilation, pads):
  # The plain forward, not shift_depthwise_conv itself: a custom_vjp forward
  # that calls its own custom_vjp function and closes over a constant (the
  # pad value) gets misaligned residuals when differentiated twice inside a
  # scan (JAX 0.10; the exact hypergradient does exactly that).
  return _shift_forward(x, kernel, strides, dilation, pads), (x, kernel)


def _shift_bwd(strides, dilation, pads, residuals, g):
  x, kernel = residuals
  kh, kw = kernel.shape[:2]
  xp = _pad_nhwc(x, pads)
  hp, wp = xp.shape[1:3]
  out_h, out_w = g.shape[1:3]
  # Kernel: dk[t, c] = sum_{n,h,w} window_t(xp)[n,h,w,c] * g[n,h,w,c], all
  # taps in one variadic reduce (one loop, kh*kw accumulators). It sums over
  # (H, W) into (N, C) partial sums, then over N: XLA:CPU parallelises a
  # reduction over its output's outer axis, and a (C,) output leaves it
  # none. Measured on 2 CPU cores: one 5x5 kernel gradient (16x32x32x16)
  # 2.35 -> 1.75 ms; the first-order DARTS CIFAR-10 search step at batch 16
  # 2.55 -> 2.43 s and 2.52 -> 2.36 s (two interleaved A/B runs).
  products = tuple(window * g for _, _, window in tap_windows(
      xp, kh, kw, dilation, strides, out_h, out_w))
  sums = lax.reduce(products, tuple(jnp.zeros((), g.dtype) for _ in products),
                    lambda a, b: tuple(u + v for u, v in zip(a, b)), (1, 2))
  dk = jnp.stack(sums).sum(1)  # (taps, N, C) -> (taps, C)
  dk = dk.reshape(kernel.shape).astype(kernel.dtype)
  # Input: tap (i, j) sent window_t(xp) to the output, so the padded input
  # receives g shifted back by (i, j) * dilation: a stride-1 correlation of
  # g (dilated by the stride, zero-padded to the padded input's extent) with
  # the flipped kernel.
  gh, gw = (out_h - 1) * strides + 1, (out_w - 1) * strides + 1
  zero = jnp.zeros((), g.dtype)
  g_full = lax.pad(g, zero, ((0, 0, 0),
                             ((kh - 1) * dilation, hp - gh, strides - 1),
                             ((kw - 1) * dilation, wp - gw, strides - 1),
                             (0, 0, 0)))
  dxp = _correlate(g_full, kernel[::-1, ::-1].astype(g.dtype), dilation, 1,
                   hp, wp)
  (pt, pb), (pl, pr) = pads
  return dxp[:, pt:hp - pb, pl:wp - pr, :].astype(x.dtype), dk


shift_depthwise_conv.defvjp(_shift_fwd, _shift_bwd)


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
  impl = resolve_impl(impl, channels, x.shape[1] * x.shape[2])
  dn = ("NHWC", "HWIO", "NHWC")
  if impl == "toeplitz":
    n, h, w, _ = x.shape
    s = shift_matrices(h, w, kh, kw, strides, dilation, pads)
    oh = (h + sum(pads[0]) - ((kh - 1) * dilation + 1)) // strides + 1
    toeplitz = jnp.einsum("oit,tc->coi", jnp.asarray(s, x.dtype),
                          kernel.reshape(kh * kw, channels).astype(x.dtype))
    y = jnp.einsum("nic,coi->noc", x.reshape(n, h * w, channels), toeplitz)
    return y.reshape(n, oh, -1, channels)
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
  return shift_depthwise_conv(x, kernel, strides, dilation, pads)


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
    return checkpoint_name(y, "conv_output")


@jax.custom_vjp
def pointwise_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """``x @ kernel`` for ``(positions, C_in)`` and ``(C_in, C_out)`` arrays.

  The same product with the gradients written out: ``dx = g @ kernel.T``
  and ``dkernel = einsum("pc,pd->cd", x, g)``. Inside a DARTS mixed op,
  autodiff's version of the weight gradient made XLA:CPU transpose the
  output gradient to ``(C_out, positions)`` in the fusion that computes it
  from the BatchNorm backward (2-2.6 ms per 1x1 convolution at
  16x32x32x16, against 0.25 ms for the whole contraction without it); this
  form keeps it in place. Measured on 2 CPU cores: one mixed op forwards and
  backwards 36-40 -> 30-33 ms (alternating runs); the CIFAR-10 search step
  at batch 16 4.85 and 5.03 s in two runs against 5.44 s without it (runs
  differ by ~10% on that machine). Same arithmetic, and differentiable
  twice (the backward is plain JAX), as the exact hypergradient needs.
  """
  return x @ kernel


def _pointwise_fwd(x, kernel):
  # The plain product, not pointwise_matmul itself (see _shift_fwd).
  return x @ kernel, (x, kernel)


def _pointwise_bwd(residuals, g):
  x, kernel = residuals
  return g @ kernel.T, jnp.einsum("pc,pd->cd", x, g)


pointwise_matmul.defvjp(_pointwise_fwd, _pointwise_bwd)


class PointwiseConv(nn.Module):
  """A 1x1 convolution computed as a matrix product over the channel axis.

  Same parameter as ``nn.Conv(features, (1, 1))`` (``kernel`` shaped
  ``(1, 1, C_in, C_out)``), so checkpoints do not depend on it. XLA lowers a
  ``dot_general`` to one library call and compiles it far faster than a
  convolution (the DARTS supernet has hundreds of 1x1 convolutions), and the
  result is the same to float tolerance.

  Attributes:
    features: output channels.
    strides: spatial stride (a strided slice before the product).
    use_bias: add a bias.
  """

  features: int
  strides: int = 1
  use_bias: bool = False
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init,
                        (1, 1, x.shape[-1], self.features))
    if self.strides > 1:
      x = x[:, ::self.strides, ::self.strides, :]
    n, h, w, c = x.shape
    y = pointwise_matmul(x.reshape(n * h * w, c),
                         kernel[0, 0].astype(x.dtype)).reshape(n, h, w, -1)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return checkpoint_name(y, "conv_output")
