"""Peak activation memory of an inference function.

Two methods, and every result says which one produced it:

* ``xla``: compile the function and read XLA's buffer assignment
  (``compiled.memory_analysis()``). Activation bytes = ``temp_size_in_bytes``
  (the scratch buffers XLA allocates for intermediates, already packed by
  liveness and fusion) + ``output_size_in_bytes``. Arguments (weights and
  the input) are reported but not included. This is what the device really
  allocates, but it needs a compilation.
* ``jaxpr_liveness``: an analytic upper-bound-style estimate without
  compiling: walk the jaxpr in order, keep every intermediate alive from its
  definition to its last use, and report the largest total of simultaneously
  live intermediates (inputs and weights excluded; nested calls add their own
  internal peak). It knows nothing of fusion (which removes intermediates)
  nor of backend scratch space (e.g. convolution workspaces), so it can land
  on either side of the XLA figure; use it when compiling is too costly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
from jax.extend import core as jcore

from supernet.errors import UserError

METHODS = ("xla", "jaxpr_liveness")


def _nbytes(aval: Any) -> int:
  shape = getattr(aval, "shape", None)
  dtype = getattr(aval, "dtype", None)
  if shape is None or dtype is None:
    return 0
  return math.prod(shape) * jax.numpy.dtype(dtype).itemsize


def _sub_jaxprs(eqn: Any) -> list[jcore.Jaxpr]:
  subs = []
  for value in eqn.params.values():
    for v in value if isinstance(value, (tuple, list)) else (value,):
      if isinstance(v, jcore.ClosedJaxpr):
        subs.append(v.jaxpr)
      elif isinstance(v, jcore.Jaxpr):
        subs.append(v)
  return subs


def _liveness_peak(jaxpr: jcore.Jaxpr) -> int:
  """Peak bytes of live intermediates (and outputs) of ``jaxpr``."""
  last_use: dict[Any, int] = {}
  for i, eqn in enumerate(jaxpr.eqns):
    for v in eqn.invars:
      if isinstance(v, jcore.Var):
        last_use[v] = i
  end = len(jaxpr.eqns)
  for v in jaxpr.outvars:
    if isinstance(v, jcore.Var):
      last_use[v] = end
  live: dict[Any, int] = {}
  peak = 0
  for i, eqn in enumerate(jaxpr.eqns):
    outs = sum(_nbytes(v.aval) for v in eqn.outvars)
    inner = max((_liveness_peak(s) for s in _sub_jaxprs(eqn)), default=0)
    peak = max(peak, sum(live.values()) + max(outs, inner))
    for v in eqn.outvars:
      if last_use.get(v, -1) > i:
        live[v] = _nbytes(v.aval)
    for v in eqn.invars:
      if isinstance(v, jcore.Var) and last_use.get(v) == i:
        live.pop(v, None)
  return peak


def activation_bytes(fn: Callable[..., Any], *args: Any,
                     method: str = "xla", compiled: Any = None
                     ) -> dict[str, Any]:
  """Peak activation memory of ``fn(*args)``.

  Args:
    fn: the inference function (e.g. ``lambda v, x: model.apply(v, x,
      train=False)``).
    *args: its arguments (arrays or ``jax.ShapeDtypeStruct`` pytrees).
    method: ``"xla"`` or ``"jaxpr_liveness"`` (see the module docstring).
    compiled: an already compiled ``jax.jit(fn).lower(*args).compile()`` to
      reuse (``xla`` only), saving a compilation.

  Returns:
    ``{"bytes": int, "method": str, ...}``; for ``xla`` also ``temp_bytes``,
    ``output_bytes`` (summed into ``bytes``) and ``argument_bytes`` (not
    summed). If the backend gives no memory analysis, falls back to
    ``jaxpr_liveness`` and says so in ``method``.
  """
  if method not in METHODS:
    raise UserError(f"unknown activation-memory method {method!r}; valid: "
                    f"{list(METHODS)}")
  if method == "xla":
    if compiled is None:
      compiled = jax.jit(fn).lower(*args).compile()
    stats = compiled.memory_analysis()
    if stats is not None:
      temp = int(stats.temp_size_in_bytes)
      out = int(stats.output_size_in_bytes)
      return {"bytes": temp + out, "method": "xla:temp+output",
              "temp_bytes": temp, "output_bytes": out,
              "argument_bytes": int(stats.argument_size_in_bytes)}
  closed = jax.make_jaxpr(fn)(*args)
  result = {"bytes": _liveness_peak(closed.jaxpr), "method": "jaxpr_liveness"}
  if method == "xla":
    result["method"] = "jaxpr_liveness (backend has no XLA memory analysis)"
  return result
