"""Depthwise convolution for the elastic networks ('SAME' padding).

Kept as the elastic package's entry point; the implementations (including the
``toeplitz`` matrix form that ``auto`` picks for small inputs on the CPU) live
in :mod:`supernet.ops.depthwise`.
"""

from __future__ import annotations

import jax

from supernet.ops.depthwise import IMPLEMENTATIONS, depthwise_conv

DW_IMPLEMENTATIONS = IMPLEMENTATIONS


def dw_conv(x: jax.Array, kernel: jax.Array, stride: int = 1,
            impl: str = "auto") -> jax.Array:
  """'SAME' depthwise convolution of NHWC ``x`` with a ``(k, k, 1, C)`` kernel.

  Args:
    x: ``(N, H, W, C)`` input.
    kernel: ``(k, k, 1, C)`` kernel.
    stride: spatial stride.
    impl: one of :data:`supernet.ops.depthwise.IMPLEMENTATIONS`.

  Returns:
    ``(N, ceil(H / stride), ceil(W / stride), C)``.
  """
  return depthwise_conv(x, kernel, stride, 1, "SAME", impl)
