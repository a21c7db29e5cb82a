"""Shared pytest fixtures (kept minimal)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from supernet.xla_flags import apply_cpu_flags

# The suite runs JAX as the `supernet` command does (and subprocesses
# inherit the flags); this must happen before JAX starts its CPU client.
apply_cpu_flags()


@pytest.fixture(scope="session")
def digits_data_dir(tmp_path_factory) -> str:
  """A tfds data dir with the embedded digits prepared (once per session)."""
  from supernet.data import sources  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  builder = sources.get_builder("digits", data_dir)
  sources.ensure_prepared(builder, "digits", data_dir)
  return data_dir


@pytest.fixture
def run_with_cpu_devices() -> Callable[..., subprocess.CompletedProcess]:
  """Runs Python code in a fresh process that sees ``n`` fake CPU devices.

  XLA reads ``--xla_force_host_platform_device_count`` only when JAX first
  initialises, so the test process itself (one device) cannot change it.
  """

  def run(code: str, n: int = 4, timeout: float = 120
          ) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") +
                          f" --xla_force_host_platform_device_count={n}"))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)

  return run
