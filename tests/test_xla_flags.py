"""The XLA:CPU flags are added only where they are known to exist."""

from supernet import xla_flags


def test_added_on_a_tested_jaxlib():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  added = xla_flags.apply_cpu_flags(env, release=(0, 10))
  assert added == ["--xla_cpu_use_fusion_emitters=false"]
  assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=4 "
                              "--xla_cpu_use_fusion_emitters=false")
  # Idempotent: a second call adds nothing.
  assert xla_flags.apply_cpu_flags(env, release=(0, 10)) == []


def test_user_value_untested_jaxlib_and_opt_out_are_respected():
  env = {"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}
  assert xla_flags.apply_cpu_flags(env, release=(0, 10)) == []
  assert env["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
  env = {}
  assert xla_flags.apply_cpu_flags(env, release=(0, 99)) == []
  assert "XLA_FLAGS" not in env  # XLA aborts on a flag it does not know
  env = {"SUPERNET_XLA_CPU_FLAGS": "off"}
  assert xla_flags.apply_cpu_flags(env, release=(0, 10)) == []
  assert "XLA_FLAGS" not in env


def test_the_installed_jaxlib_accepts_the_flags(run_with_cpu_devices):
  # conftest applied them to this process; a fresh JAX must start with them.
  import os
  assert "--xla_cpu_use_fusion_emitters=false" in os.environ.get(
      "XLA_FLAGS", "") or xla_flags._jaxlib_release() not in (
          xla_flags.TESTED_JAXLIB)
  result = run_with_cpu_devices(
      "import jax, jax.numpy as jnp; print(float(jnp.ones(3).sum()))", n=1)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "3.0"
