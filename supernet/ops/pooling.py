"""Max and average pooling with a per-backend implementation.

On XLA:CPU a ``reduce_window`` runs slowly and the gradient of a max pool
(``select_and_scatter``) much more so: in a DARTS mixed op at 32x32x16, batch
16, the 3x3 max pool took 10 ms of the edge's 65 ms forwards and backwards.
The ``shift`` forms compute the same pooling from shifted windows of the
padded input, which XLA fuses into one elementwise loop, with backward
passes written as such loops too (no scatter). Accelerators keep the native
``reduce_window`` (``auto``).

Both forms give the same forward values (max exactly; average to float
rounding). Gradients agree except where a max-pool window holds several
equal maxima: the native gradient goes to one of them, ``shift`` splits it
equally among them (the total is the same).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from supernet.errors import UserError
from supernet.ops.depthwise import shift_depthwise_conv, tap_windows, windowed_size

POOL_IMPLEMENTATIONS = ("auto", "native", "shift")
Pads = tuple[tuple[int, int], tuple[int, int]]


def resolve_pool_impl(impl: str) -> str:
  """The concrete implementation ``auto`` stands for on this backend."""
  if impl not in POOL_IMPLEMENTATIONS:
    raise UserError(f"unknown pooling implementation {impl!r}; valid: "
                    f"{list(POOL_IMPLEMENTATIONS)}")
  if impl != "auto":
    return impl
  return "shift" if jax.default_backend() == "cpu" else "native"


def _windows(xp: jax.Array, window: int, strides: int, out_h: int,
             out_w: int):
  for _, _, w in tap_windows(xp, window, window, 1, strides, out_h, out_w):
    yield w


def _out_size(padded: int, window: int, strides: int) -> int:
  return windowed_size(padded, window, 1, strides)


def _pad(x: jax.Array, pads: Pads, value: float) -> jax.Array:
  return jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def shift_max_pool(x: jax.Array, window: int, strides: int, pads: Pads
                   ) -> jax.Array:
  """Max pooling of NHWC ``x`` over ``window x window``, padding with -inf.

  Args:
    x: ``(N, H, W, C)``.
    window: window size (square).
    strides: stride (both dimensions).
    pads: ``((top, bottom), (left, right))``.

  Returns:
    ``(N, H', W', C)``.
  """
  return _max_forward(x, window, strides, pads)


def _max_forward(x, window, strides, pads):
  xp = _pad(x, pads, -jnp.inf)
  out_h = _out_size(xp.shape[1], window, strides)
  out_w = _out_size(xp.shape[2], window, strides)
  out = None
  for w in _windows(xp, window, strides, out_h, out_w):
    out = w if out is None else jnp.maximum(out, w)
  return out


def _max_fwd(x, window, strides, pads):
  # The plain forward, not shift_max_pool itself (see depthwise._shift_fwd:
  # residuals get misaligned under second-order AD inside a scan otherwise).
  out = _max_forward(x, window, strides, pads)
  return out, (x, out)


def _max_bwd(window, strides, pads, residuals, g):
  x, out = residuals
  xp = _pad(x, pads, -jnp.inf)
  hp, wp = xp.shape[1:3]
  out_h, out_w = out.shape[1:3]
  # Ties share the gradient: count the maxima of each window.
  count = None
  for w in _windows(xp, window, strides, out_h, out_w):
    hit = (w == out).astype(g.dtype)
    count = hit if count is None else count + hit
  share = g / count
  # Position y of the padded input received window value t of output o when
  # y = o * strides + t; with the output arrays dilated by the stride and
  # padded to the input's extent, every tap is a shifted window again, and
  # y gets share[o] wherever it equals out[o].
  gh, gw = (out_h - 1) * strides + 1, (out_w - 1) * strides + 1
  config = ((0, 0, 0), (window - 1, hp - gh, strides - 1),
            (window - 1, wp - gw, strides - 1), (0, 0, 0))
  share_full = lax.pad(share, jnp.zeros((), g.dtype), config)
  out_full = lax.pad(out, jnp.array(jnp.nan, out.dtype), config)
  dxp = None
  for s_w, o_w in zip(_windows(share_full, window, 1, hp, wp),
                      _windows(out_full, window, 1, hp, wp)):
    term = jnp.where(xp == o_w, s_w, 0.0)
    dxp = term if dxp is None else dxp + term
  (pt, pb), (pl, pr) = pads
  return (dxp[:, pt:hp - pb, pl:wp - pr, :].astype(x.dtype),)


shift_max_pool.defvjp(_max_fwd, _max_bwd)


@functools.lru_cache(maxsize=64)
def _valid_counts(height: int, width: int, window: int, strides: int,
                  pads: Pads) -> np.ndarray:
  """Number of real (unpadded) inputs under each output window."""
  ones = np.pad(np.ones((height, width), np.float32), pads)
  out_h = _out_size(ones.shape[0], window, strides)
  out_w = _out_size(ones.shape[1], window, strides)
  counts = np.zeros((out_h, out_w), np.float32)
  for i in range(window):
    for j in range(window):
      counts += ones[i:i + (out_h - 1) * strides + 1:strides,
                     j:j + (out_w - 1) * strides + 1:strides]
  return counts


def shift_avg_pool(x: jax.Array, window: int, strides: int, pads: Pads,
                   count_include_pad: bool = True) -> jax.Array:
  """Average pooling as a depthwise convolution with an all-ones kernel.

  The gradient comes from :func:`~supernet.ops.depthwise.shift_depthwise_conv`
  (its kernel gradient is dead code here and removed by XLA).

  Args:
    x: ``(N, H, W, C)``.
    window: window size (square).
    strides: stride (both dimensions).
    pads: ``((top, bottom), (left, right))`` zero padding.
    count_include_pad: divide by the window size (True) or by the number of
      unpadded inputs of each window (False, the DARTS pooling).

  Returns:
    ``(N, H', W', C)``.
  """
  ones = jnp.ones((window, window, 1, x.shape[-1]), x.dtype)
  total = shift_depthwise_conv(x, ones, strides, 1, pads)
  if count_include_pad:
    return total / (window * window)
  counts = _valid_counts(x.shape[1], x.shape[2], window, strides, pads)
  return total / jnp.asarray(counts, x.dtype)[None, :, :, None]


def _explicit(padding: str | Sequence[tuple[int, int]]) -> Pads:
  if isinstance(padding, str):
    if padding != "VALID":
      raise ValueError(f"pooling padding must be VALID or explicit pairs, "
                       f"got {padding!r}")
    return ((0, 0), (0, 0))
  return tuple(tuple(int(v) for v in p) for p in padding)  # type: ignore


def max_pool(x: jax.Array, window: int, strides: int,
             padding: str | Sequence[tuple[int, int]] = "VALID",
             impl: str = "auto") -> jax.Array:
  """``nn.max_pool`` (square window, same stride both ways), per backend."""
  pads = _explicit(padding)
  if resolve_pool_impl(impl) == "native":
    return nn.max_pool(x, (window, window), (strides, strides), padding=pads)
  return shift_max_pool(x, window, strides, pads)


def avg_pool(x: jax.Array, window: int, strides: int,
             padding: str | Sequence[tuple[int, int]] = "VALID",
             count_include_pad: bool = True, impl: str = "auto") -> jax.Array:
  """``nn.avg_pool`` (square window, same stride both ways), per backend."""
  pads = _explicit(padding)
  if resolve_pool_impl(impl) == "native":
    return nn.avg_pool(x, (window, window), (strides, strides), padding=pads,
                       count_include_pad=count_include_pad)
  return shift_avg_pool(x, window, strides, pads, count_include_pad)
