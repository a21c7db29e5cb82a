"""Kill ``search`` / ``train`` after their first checkpoint, resume, compare.

Each command runs three times in a subprocess: uninterrupted; killed with
SIGKILL as soon as its first checkpoint is complete; re-run with the same
command and workdir. The resumed run must end bitwise equal to the
uninterrupted one (arch.json, final checkpoint, metrics.csv without its
wall-clock columns). A persistent compile cache (shared with
tests/test_cli_train.py) lets the later runs skip compilation.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from test_cli_train import smoke_train_args, smoke_train_run

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CONFIGS = os.path.join(ROOT, "experiments", "configs")
WALL_CLOCK = {"wall_s", "epoch_s", "train_time_s", "epoch_time_s"}


def _env(tmp_path_factory) -> dict:
  cache = tmp_path_factory.getbasetemp() / "jax_cache"
  return dict(os.environ, JAX_PLATFORMS="cpu", SUPERNET_JAX_CACHE=str(cache))


def _command(args):
  args = list(args)
  if "--no-progress" not in args:
    args.append("--no-progress")
  return [sys.executable, "-m", "supernet", *args]


def _run(args, env, timeout=900):
  proc = subprocess.run(_command(args), env=env, capture_output=True,
                        text=True, timeout=timeout, cwd=ROOT, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _complete_steps(workdir):
  ckpt = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt):
    return []
  # orbax renames a finished step's temporary directory to its number.
  return sorted(int(n) for n in os.listdir(ckpt) if n.isdigit())


def _run_and_kill_after_first_checkpoint(args, workdir, env, timeout=900):
  proc = subprocess.Popen(_command(args), env=env, cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + timeout
  try:
    while not _complete_steps(workdir):
      if proc.poll() is not None:
        pytest.fail("the run ended before its first checkpoint: "
                    + proc.stderr.read().decode()[-2000:])
      if time.time() > deadline:
        pytest.fail("no checkpoint within the time limit")
      time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
  finally:
    proc.wait()
    proc.stderr.close()
  assert proc.returncode == -signal.SIGKILL
  return _complete_steps(workdir)


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.csv"), newline="") as f:
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK}
            for row in csv.DictReader(f)]


def _final_checkpoint(workdir):
  import orbax.checkpoint as ocp  # noqa: PLC0415 - heavy
  step = _complete_steps(workdir)[-1]
  path = os.path.join(workdir, "checkpoints", str(step), "default")
  return step, ocp.StandardCheckpointer().restore(path)


def _results(workdir):
  with open(os.path.join(workdir, "results.json")) as f:
    return {k: v for k, v in json.load(f).items() if k not in WALL_CLOCK}


def _assert_same_run(a, b, files):
  for name in files:
    with open(os.path.join(a, name), "rb") as fa, open(
        os.path.join(b, name), "rb") as fb:
      assert fa.read() == fb.read(), name
  if os.path.exists(os.path.join(a, "results.json")):
    assert _results(a) == _results(b)
  assert _metrics(a) == _metrics(b)
  step_a, tree_a = _final_checkpoint(a)
  step_b, tree_b = _final_checkpoint(b)
  assert step_a == step_b
  assert jax.tree.structure(tree_a) == jax.tree.structure(tree_b)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(
      np.asarray(x), np.asarray(y)), tree_a, tree_b)


def _check_kill_and_resume(args_for, tmp_path, env, epochs, done, files,
                           full=None):
  if full is None:
    full = str(tmp_path / "full")
    _run(args_for(full), env)
  resumed = str(tmp_path / "resumed")
  steps = _run_and_kill_after_first_checkpoint(args_for(resumed), resumed,
                                               env)
  assert not os.path.exists(os.path.join(resumed, done)), (
      "the killed run finished before it was killed")
  assert len(steps) < epochs
  proc = _run(args_for(resumed), env)
  assert "resuming" in proc.stdout
  _assert_same_run(full, resumed, files)


@pytest.mark.slow
def test_train_resumes_bitwise(tmp_path, tmp_path_factory, digits_data_dir):
  env = _env(tmp_path_factory)
  # The uninterrupted run is the one tests/test_cli_train.py exports (made
  # once per session); its compiled programs are in the shared cache.
  full, arch, _ = smoke_train_run(tmp_path_factory, digits_data_dir)

  def args_for(workdir):
    return smoke_train_args(workdir, arch, digits_data_dir)

  _check_kill_and_resume(args_for, tmp_path, env, 3, "results.json",
                         ["arch.json"], full=full)


@pytest.mark.slow
def test_search_resumes_bitwise(tmp_path, tmp_path_factory, digits_data_dir):
  env = _env(tmp_path_factory)
  config = os.path.join(CONFIGS, "darts_digits.py") + ":smoke"

  def args_for(workdir):
    # One (reduction) cell: tracing and compiling a DARTS supernet step take
    # minutes per cell on 2 CPU cores; resuming does not depend on depth.
    return ["search", "--config", config, "--workdir", workdir,
            f"--config.data.data_dir={digits_data_dir}",
            "--config.search.epochs=3", "--config.model.layers=1"]

  _check_kill_and_resume(args_for, tmp_path, env, 3, "arch.json",
                         ["arch.json"])
