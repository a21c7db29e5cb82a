"""XLA:CPU flags the supernets run faster with, set before JAX starts.

jaxlib 0.10 compiles CPU loop and reduction fusions with its new MLIR
"fusion emitters" by default. On the shifted-window depthwise convolutions,
pooling and BatchNorm of a DARTS mixed op, the classic LLVM emitters
generate much faster code: measured on 2 AMD EPYC cores (AVX-512), one
normal search cell at batch 16, 32x32, C=16, forwards and backwards 383 ->
328 ms (architecture gradient only: 281 -> 198 ms), and the first-order
CIFAR-10 search step 3.0-3.8 s -> 2.3 s.

XLA reads ``XLA_FLAGS`` once, when its CPU client starts, and aborts on a
flag it does not know; so the flags are only added for jaxlib versions they
were measured on, never over a value the user set, and not at all with
``SUPERNET_XLA_CPU_FLAGS=off``. The ``supernet`` command and the test suite
apply them; a script that imports the library can call
:func:`apply_cpu_flags` before its first JAX computation.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import MutableMapping

# flag -> value; each was measured to help (see the module docstring).
CPU_FLAGS: dict[str, str] = {"xla_cpu_use_fusion_emitters": "false"}
# (major, minor) jaxlib releases these flags exist in and were measured on.
TESTED_JAXLIB = ((0, 10),)
DISABLE_VARIABLE = "SUPERNET_XLA_CPU_FLAGS"


def _jaxlib_release() -> tuple[int, int] | None:
  try:
    version = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return None
  parts = version.split(".")
  try:
    return int(parts[0]), int(parts[1])
  except (IndexError, ValueError):
    return None


def apply_cpu_flags(environ: MutableMapping[str, str] | None = None,
                    release: tuple[int, int] | None = None) -> list[str]:
  """Adds :data:`CPU_FLAGS` to ``XLA_FLAGS`` where it is safe to.

  Args:
    environ: the environment to change (``os.environ`` by default).
    release: jaxlib ``(major, minor)``; read from the installed package by
      default.

  Returns:
    The flags added (empty when disabled, on an untested jaxlib, or when the
    user already set each of them). Must run before JAX starts its CPU
    client to take effect.
  """
  environ = os.environ if environ is None else environ
  if environ.get(DISABLE_VARIABLE, "").lower() == "off":
    return []
  release = _jaxlib_release() if release is None else release
  if release not in TESTED_JAXLIB:
    return []
  current = environ.get("XLA_FLAGS", "")
  added = [f"--{name}={value}" for name, value in CPU_FLAGS.items()
           if f"--{name}=" not in current and f"--{name} " not in current]
  if added:
    environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added
