"""Latency measured on the current JAX backend.

The function is compiled first (compile time reported separately), run
``warmup`` times, then timed ``runs`` times, each run ending in
``jax.block_until_ready`` so asynchronous dispatch is not mistaken for
speed. The median is the figure to use: on a shared CPU the mean is pulled
by other processes.

Two clocks:
  * ``wall`` (default): wall-clock time, i.e. latency as a user sees it.
  * ``process``: CPU time consumed by this process during the call
    (``time.process_time``). Other processes' load does not inflate it, so it
    is the stable choice on a shared CPU; it equals latency only when the
    computation runs single-threaded on the host (with several XLA threads it
    is their total work), and it means nothing for accelerators, where the
    host mostly waits -- so it is refused there.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from supernet.errors import UserError
from supernet.spaces.base import numpy_rng


def device_info() -> dict[str, Any]:
  """Backend, device kind and versions of the current default device.

  Returns:
    ``{"backend", "device_kind", "device_count", "jax_version",
    "jaxlib_version"}``.
  """
  device = jax.devices()[0]
  return {"backend": jax.default_backend(), "device_kind": device.device_kind,
          "device_count": jax.device_count(), "jax_version": jax.__version__,
          "jaxlib_version": jaxlib.__version__}


def materialize(tree: Any, key: jax.Array) -> Any:
  """Concrete arrays for every ``ShapeDtypeStruct`` leaf of ``tree``.

  Values are drawn on the host (no per-shape compilation): small normal
  noise, except BatchNorm variances (leaves named ``var``), which are ones.
  Concrete leaves are kept. Good enough for timing; not an initialiser.

  Args:
    tree: a pytree of arrays and/or ``jax.ShapeDtypeStruct``.
    key: PRNG key.

  Returns:
    The same structure with arrays on the default device.
  """
  rng = numpy_rng(key)

  def fill(path, leaf):
    if not isinstance(leaf, jax.ShapeDtypeStruct):
      return leaf
    name = str(getattr(path[-1], "key", "")) if path else ""
    if name == "var":
      return jnp.ones(leaf.shape, leaf.dtype)
    if not jnp.issubdtype(leaf.dtype, jnp.floating):
      return jnp.zeros(leaf.shape, leaf.dtype)
    value = rng.standard_normal(leaf.shape, dtype=np.float32) * 0.05
    return jnp.asarray(value, dtype=leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, tree)


CLOCKS: dict[str, Callable[[], float]] = {
    "wall": time.perf_counter,
    "process": time.process_time,
}


def check_clock(clock: str) -> Callable[[], float]:
  """The timer of ``clock``; ``process`` only on the CPU backend."""
  if clock not in CLOCKS:
    raise UserError(f"unknown clock {clock!r}; valid: {sorted(CLOCKS)}")
  if clock == "process" and jax.default_backend() != "cpu":
    raise UserError(f"clock 'process' measures host CPU time and is "
                    f"meaningless on the {jax.default_backend()} backend; use "
                    f"'wall'")
  return CLOCKS[clock]


def time_compiled(compiled: Callable[..., Any], args: tuple[Any, ...],
                  warmup: int = 3, runs: int = 20, clock: str = "wall"
                  ) -> list[float]:
  """Milliseconds of ``runs`` calls after ``warmup`` untimed calls.

  Args:
    compiled: a compiled (or jitted) function.
    args: concrete arguments.
    warmup: untimed calls first.
    runs: timed calls, each ended by ``block_until_ready``.
    clock: ``"wall"`` or ``"process"`` (see the module docstring).

  Returns:
    The ``runs`` durations in milliseconds, in call order.
  """
  timer = check_clock(clock)
  for _ in range(warmup):
    jax.block_until_ready(compiled(*args))
  times = []
  for _ in range(runs):
    start = timer()
    jax.block_until_ready(compiled(*args))
    times.append((timer() - start) * 1e3)
  return times


def summarize(times: list[float]) -> dict[str, float]:
  """Median/min/max/mean milliseconds of a list of timings."""
  return {"median_ms": statistics.median(times), "min_ms": min(times),
          "max_ms": max(times), "mean_ms": statistics.fmean(times),
          "runs": len(times)}


def measure_latency(fn: Callable[..., Any], *args: Any, warmup: int = 3,
                    runs: int = 20, key: jax.Array | None = None,
                    compiled: Any = None, clock: str = "wall"
                    ) -> dict[str, Any]:
  """Measures ``fn(*args)`` on the current backend.

  Args:
    fn: a JAX function (jitted here; pass ``compiled`` to reuse one).
    *args: arguments; ``ShapeDtypeStruct`` leaves are filled with random
      values (:func:`materialize`), so abstract parameters can be timed.
    warmup: untimed runs after compilation.
    runs: timed runs (each ends in ``block_until_ready``).
    key: PRNG key for :func:`materialize` (default ``jax.random.key(0)``).
    compiled: ``jax.jit(fn).lower(*args).compile()`` if already at hand.
    clock: ``"wall"`` (latency) or ``"process"`` (CPU time; see the module
      docstring).

  Returns:
    ``{"median_ms", "min_ms", "max_ms", "mean_ms", "runs", "warmup",
    "compile_ms", "clock", "backend", "device_kind", ...}`` (``compile_ms``
    is 0 when ``compiled`` was given).
  """
  if runs < 1 or warmup < 0:
    raise UserError(f"latency needs runs >= 1 and warmup >= 0, got runs={runs}"
                    f" warmup={warmup}")
  check_clock(clock)
  key = jax.random.key(0) if key is None else key
  args = materialize(args, key)
  compile_ms = 0.0
  if compiled is None:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_ms = (time.perf_counter() - start) * 1e3
  times = time_compiled(compiled, args, warmup, runs, clock)
  return {**summarize(times), "warmup": warmup, "compile_ms": compile_ms,
          "clock": clock, **device_info()}
