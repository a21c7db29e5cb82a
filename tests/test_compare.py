"""The ``compare`` verb, the one-shot slot, and ``run_strategy_search``."""

from __future__ import annotations

import csv
import json
import os

import jax
import pytest

from supernet.cli import main
from supernet.config import load_config
from supernet.errors import UserError
from supernet.evaluators import make_evaluator
from supernet.rundir import RunDir
from supernet.spaces import Nb201Space, load_arch
from supernet.strategies import STRATEGIES, StrategyEntry, run_search
from supernet.strategies.compare import run_comparison
from supernet.strategies.runner import (
    CHECKPOINT_FILE,
    run_strategy_search,
    save_checkpoint,
    strategy_from_config,
)

ROOT = os.path.join(os.path.dirname(__file__), "..")
COMPARE = os.path.join(ROOT, "experiments", "configs", "compare_nb201.py")
REA = os.path.join(ROOT, "experiments", "configs", "nb201_rea.py")


def _one_line_error(capsys) -> str:
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "\n" not in err, err
  return err


def test_compare_smoke_writes_the_report(tmp_path, capsys):
  out = str(tmp_path / "out")
  assert main(["compare", "--config", COMPARE + ":smoke", "--workdir", out,
               "--no-progress"]) == 0
  printed = capsys.readouterr().out
  assert "optimum of the table: 94.37" in printed
  for name in ("report.md", "results.csv", "histories.csv", "config.json",
               "curves_unconstrained.png", "pareto_unconstrained.png",
               "curves_constrained.png", "pareto_constrained.png"):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  with open(os.path.join(out, "results.csv")) as f:
    rows = list(csv.DictReader(f))
  assert {"strategy", "seed", "best_accuracy", "evaluations", "wall_s",
          "best_arch", "best_latency_ms"} <= set(rows[0])
  # 5 strategies x 2 seeds, unconstrained and under the latency budget.
  assert len(rows) == 20
  assert {r["strategy"] for r in rows} == {
      "grid", "random", "rea", "constrained_evolution", "reinforce"}
  assert all(int(r["evaluations"]) == 20 for r in rows)
  for r in rows:
    if r["experiment"] == "constrained":
      assert float(r["max_latency_ms_evaluated"]) <= 15.0
  report = open(os.path.join(out, "report.md")).read()
  assert "94.37" in report and "93.92 ± 0.30" in report
  assert "under the constraint: **94.06**" in report

  # Another config's results are never overwritten.
  before = os.path.getmtime(os.path.join(out, "report.md"))
  assert main(["compare", "--config", COMPARE + ":smoke", "--workdir", out,
               "--config.budget=10", "--no-progress"]) == 2
  assert "different config" in _one_line_error(capsys)
  assert os.path.getmtime(os.path.join(out, "report.md")) == before


@pytest.mark.parametrize("args,expected", [
    ([":smoke", "--config.strategies.rea.strategy=evolution"],
     "valid strategies"),
    ([":smoke", "--config.strategies.rea.hparams.sample_size=50"],
     "sample_size"),
    ([":smoke", "--config.evaluator.device=pixel9"], "pixel3"),
    ([":smoke", "--config.constrained.strategies=('rae',)"], "'rae'"),
    ([":smoke", "--config.budget=0"], "budget"),
    ([":smoke", "--config.strategies.darts.num_seeds=3",
      "--config.run_strategies=('random','darts')"], "exceeds num_seeds=2"),
    ([":smoke", "--config.budgett=5"], "does not exist"),
    ([":cifar11"], "unknown variant"),
])
def test_bad_config_input_exits_2_with_one_line(tmp_path, capsys, args,
                                                 expected):
  out = str(tmp_path / "out")
  argv = ["compare", "--config", COMPARE + args[0], "--workdir", out,
          "--no-progress", *args[1:]]
  assert main(argv) == 2
  assert expected in _one_line_error(capsys)
  assert not os.path.exists(out)  # nothing written


def test_compare_refuses_a_non_empty_unrelated_workdir(tmp_path, capsys):
  (tmp_path / "notes.txt").write_text("mine")
  assert main(["compare", "--config", COMPARE + ":smoke", "--workdir",
               str(tmp_path), "--no-progress"]) == 2
  assert "not empty" in _one_line_error(capsys)


def test_a_oneshot_search_takes_its_slot_in_the_comparison(tmp_path,
                                                           monkeypatch):
  def stand_in(config, space, key):
    """Test double of supernet.search.darts: derives one architecture."""
    del key
    return [(space.decode([config.op] * 6), {"accuracy": 60.0})]

  monkeypatch.setitem(STRATEGIES, "fake_darts",
                      StrategyEntry("oneshot", stand_in))
  config = load_config(COMPARE + ":smoke")
  config.strategies.darts = {"strategy": "fake_darts", "hparams": {"op": 3},
                             "num_seeds": 1, "note": "a stand-in"}
  config.run_strategies = ("random", "darts")
  config.constrained.enabled = False
  result = run_comparison(config, str(tmp_path / "out"), progress=False)
  (exp,) = result.experiments
  # num_seeds runs the first seed(s) of the comparison only.
  darts = exp.by_label("darts")
  assert [r.seed for r in darts] == [0] and len(darts[0].results) == 1
  assert len(exp.by_label("random")) == 2
  report = open(tmp_path / "out" / "report.md").read()
  assert "darts runs the first 1 of them" in report
  assert "darts: a stand-in" in report
  all_conv3 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
               "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
  assert darts[0].archs == [all_conv3]
  assert darts[0].results[0]["search_accuracy"] == 60.0
  with open(tmp_path / "out" / "results.csv") as f:
    assert "darts" in {r["strategy"] for r in csv.DictReader(f)}


def test_run_strategy_search_writes_the_run_and_resumes(tmp_path):
  config = load_config(REA + ":smoke")
  whole = str(tmp_path / "whole")
  arch = run_strategy_search(config, whole)
  for name in ("config.json", "history.csv", "arch.json", "best_so_far.png",
               CHECKPOINT_FILE):
    assert os.path.isfile(os.path.join(whole, name)), name
  assert load_arch(os.path.join(whole, "arch.json")) == arch
  history = open(os.path.join(whole, "history.csv")).read()
  assert history.count("\n") == 21  # header + 20 evaluations

  # A run interrupted after 7 evaluations continues on the same trajectory.
  part = str(tmp_path / "part")
  RunDir(part, config, "search").close()
  space = Nb201Space()
  strategy = strategy_from_config(config, space)
  run = run_search(strategy, space, make_evaluator(config.evaluator, space),
                   7, jax.random.key(config.seed))
  save_checkpoint(os.path.join(part, CHECKPOINT_FILE), run)
  assert run_strategy_search(config, part) == arch
  assert open(os.path.join(part, "history.csv")).read() == history
  # Rerunning a finished run changes nothing.
  assert run_strategy_search(config, whole) == arch
  assert open(os.path.join(whole, "history.csv")).read() == history

  other = load_config(REA + ":smoke", [("search.hparams.sample_size", "2")])
  with pytest.raises(UserError, match="different config"):
    run_strategy_search(other, whole)
  doc = json.load(open(os.path.join(whole, "config.json")))
  assert doc["search"]["hparams"]["sample_size"] == 3


def test_constrained_search_config_respects_the_latency_budget(tmp_path):
  config = load_config(REA + ":pixel3", [("search.budget", "30")])
  run_strategy_search(config, str(tmp_path))
  with open(tmp_path / "history.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 30
  assert max(float(r["latency_ms"]) for r in rows) <= 15.0
