"""``supernet bench`` on a gradient-search config: its figures and bad input."""

import json
import os

import pytest

from supernet.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CIFAR-10's shape is known without the dataset; the smoke network is tiny.
CONFIG = os.path.join(ROOT, "experiments", "configs",
                      "nb201_cifar10.py") + ":smoke"


def test_bench_reports_compile_and_step_figures(capsys):
  rc = main(["bench", "--config", CONFIG, "--mode", "first", "--batch", "4",
             "--steps", "5", "--json"])
  assert rc == 0
  out = capsys.readouterr().out.strip().splitlines()
  assert len(out) == 1  # --json prints the JSON and nothing else
  r = json.loads(out[0])
  assert (r["config"], r["mode"], r["batch"], r["steps"]) == (
      "nb201", "first", 4, 5)
  assert r["input_shape"] == [32, 32, 3]
  assert 0 < r["trace_lower_s"] < r["compile_s"]
  assert r["xla_compile_s"] == pytest.approx(
      r["compile_s"] - r["trace_lower_s"], abs=2e-3)
  assert 0 < r["step_ms_min"] <= r["step_ms_median"] <= r["step_ms_max"]
  assert r["images_per_s"] == pytest.approx(
      4 / (r["step_ms_median"] / 1e3), rel=1e-2)
  assert r["peak_bytes_xla"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--mode", "fourth"], "unknown search.hypergradient 'fourth'"),
    (["--steps", "3"], "--steps must be at least 5"),
    (["--batch", "0"], "--batch must be positive"),
    (["--config.model.channelz=3"], "config key 'model.channelz' does not"),
])
def test_bench_bad_input_is_one_line_exit_2(argv, message, capsys):
  rc = main(["bench", "--config", CONFIG, "--json"] + argv)
  err = capsys.readouterr().err.strip()
  assert rc == 2
  assert len(err.splitlines()) == 1 and message in err, err
