"""Multiply-accumulate counts from a traced jaxpr (no compilation, no FLOPs).

``count_macs(fn, *args)`` traces ``fn`` with :func:`jax.make_jaxpr` (abstract
``ShapeDtypeStruct`` arguments are fine) and sums, from shapes alone:

* ``conv_general_dilated``: output elements x input channels per group x
  kernel taps. A depthwise convolution counts ``H'W'C k^2`` only in its
  native grouped form; trace networks with ``depthwise_impl='native'`` (the
  ``dense`` CPU form multiplies by zeros C times, ``shift`` uses no conv).
* ``dot_general``: output elements x contracted size. Attention's ``q k^T``
  and ``weights v`` are dot_generals, so its O(N^2 d) term is counted.

Nested jaxprs are followed: jit/pjit, custom_jvp/custom_vjp, remat,
``scan`` (times its length), ``cond`` (the most expensive branch) and
``while`` (body counted once: its trip count is not static). Equations whose
results never reach the outputs are skipped (dead-code elimination, recursing
into calls), so ``fn`` may compute an auxiliary head it then drops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.extend import core as jcore


def _open(jaxpr: Any) -> jcore.Jaxpr:
  return jaxpr.jaxpr if isinstance(jaxpr, jcore.ClosedJaxpr) else jaxpr


def _sub_jaxprs(eqn: Any) -> list[jcore.Jaxpr]:
  subs = []
  for value in eqn.params.values():
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
      if isinstance(v, (jcore.ClosedJaxpr, jcore.Jaxpr)):
        subs.append(_open(v))
  return subs


def conv_macs(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
              out_shape: Sequence[int], rhs_spec: Sequence[int]) -> int:
  """MACs of one convolution from its shapes.

  Args:
    lhs_shape: input shape (unused; kept for symmetry and readability).
    rhs_shape: kernel shape.
    out_shape: output shape.
    rhs_spec: the kernel's ``(out_feature, in_feature, *spatial)`` dims.

  Returns:
    ``prod(out_shape) * in_features_per_group * prod(kernel_spatial)``.
  """
  del lhs_shape
  in_per_group = rhs_shape[rhs_spec[1]]
  taps = math.prod(rhs_shape[d] for d in rhs_spec[2:])
  return math.prod(out_shape) * in_per_group * taps


def dot_macs(lhs_shape: Sequence[int], out_shape: Sequence[int],
             lhs_contracting: Sequence[int]) -> int:
  """MACs of one ``dot_general``: output elements x contracted size."""
  return math.prod(out_shape) * math.prod(lhs_shape[d]
                                          for d in lhs_contracting)


def _eqn_macs(eqn: Any) -> dict[str, int]:
  name = eqn.primitive.name
  if name == "conv_general_dilated":
    lhs, rhs = eqn.invars[0].aval, eqn.invars[1].aval
    out = eqn.outvars[0].aval
    spec = eqn.params["dimension_numbers"].rhs_spec
    return {name: conv_macs(lhs.shape, rhs.shape, out.shape, spec)}
  if name == "dot_general":
    (lhs_c, _), _ = eqn.params["dimension_numbers"]
    return {name: dot_macs(eqn.invars[0].aval.shape,
                           eqn.outvars[0].aval.shape, lhs_c)}
  return {}


def _add(a: dict[str, int], b: dict[str, int], times: int = 1) -> None:
  for k, v in b.items():
    a[k] = a.get(k, 0) + v * times


def _jaxpr_macs(jaxpr: jcore.Jaxpr, used_outputs: Sequence[bool] | None
                ) -> dict[str, int]:
  """MACs per primitive of the equations of ``jaxpr`` that reach outputs."""
  if used_outputs is None:
    used_outputs = [True] * len(jaxpr.outvars)
  needed = {v for v, u in zip(jaxpr.outvars, used_outputs)
            if u and isinstance(v, jcore.Var)}
  totals: dict[str, int] = {}
  for eqn in reversed(jaxpr.eqns):
    outs_used = [v in needed for v in eqn.outvars]
    if not any(outs_used) and not eqn.effects:
      continue
    needed.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    _add(totals, _eqn_macs(eqn))
    subs = _sub_jaxprs(eqn)
    if not subs:
      continue
    name = eqn.primitive.name
    if name == "scan":
      _add(totals, _jaxpr_macs(subs[0], None), eqn.params["length"])
    elif name == "cond":
      branches = [_jaxpr_macs(b, None) for b in subs]
      _add(totals, max(branches, key=lambda d: sum(d.values())))
    elif len(subs) == 1 and len(subs[0].outvars) == len(eqn.outvars):
      # A call (jit, custom_jvp/vjp, remat): outputs map one to one.
      _add(totals, _jaxpr_macs(subs[0], outs_used))
    else:  # while (cond + body, each once) and anything else: count all.
      for sub in subs:
        _add(totals, _jaxpr_macs(sub, None))
  return totals


def macs_by_primitive(fn: Callable[..., Any], *args: Any, **kwargs: Any
                      ) -> dict[str, int]:
  """MACs of ``fn(*args, **kwargs)`` split by primitive.

  Args:
    fn: a JAX-traceable function.
    *args: its arguments (arrays or ``jax.ShapeDtypeStruct`` pytrees).
    **kwargs: static keyword arguments passed through.

  Returns:
    ``{"conv_general_dilated": n, "dot_general": m}`` (keys present only when
    non-zero).
  """
  closed = jax.make_jaxpr(lambda *a: fn(*a, **kwargs))(*args)
  return _jaxpr_macs(closed.jaxpr, None)


def count_macs(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
  """Total conv + dot_general multiply-accumulates of ``fn(*args)``.

  Args:
    fn: a JAX-traceable function (e.g. ``lambda v, x: model.apply(v, x,
      train=False)``).
    *args: its arguments (arrays or ``jax.ShapeDtypeStruct`` pytrees); only
      shapes are used, nothing is compiled or run.
    **kwargs: static keyword arguments passed through.

  Returns:
    The MAC count (an int; MFLOPs in the MobileNet sense = MACs / 1e6).
  """
  return sum(macs_by_primitive(fn, *args, **kwargs).values())
