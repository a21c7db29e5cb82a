"""`supernet sample`, and an end-to-end elastic run: train, report, extract."""

import csv
import json
import os

import numpy as np
import pytest

from supernet.cli import main

CONFIG = os.path.join(os.path.dirname(__file__), "..", "experiments",
                      "configs", "ofa_digits.py")


def test_sample_prints_arch_json_lines(capsys):
  assert main(["sample", "--config", CONFIG, "--n", "3", "--seed", "7"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 3
  docs = [json.loads(line) for line in lines]
  assert all(d["space"] == "elastic_mbv" for d in docs)
  assert main(["sample", "--config", CONFIG, "--n", "3", "--seed", "7"]) == 0
  assert capsys.readouterr().out.strip().splitlines() == lines


def test_sample_largest_smallest_and_errors(capsys):
  assert main(["sample", "--config", CONFIG + ":smoke", "--largest"]) == 0
  largest = json.loads(capsys.readouterr().out)
  assert largest["width"] == 1.0 and largest["resolution"] == 8
  assert main(["sample", "--config", CONFIG, "--smallest"]) == 0
  assert json.loads(capsys.readouterr().out)["depths"] == [2, 2, 2]
  assert main(["sample", "--config", CONFIG, "--largest", "--smallest"]) == 2
  assert main(["sample", "--config", CONFIG,
               "--config.space.resolutions=(6, 7)"]) == 2
  assert "not divisible" in capsys.readouterr().err


@pytest.mark.slow
def test_train_report_and_extract(tmp_path, capsys):
  from supernet.config import load_config
  from supernet.elastic.extract import extract_from_run
  from supernet.elastic.train import train_and_evaluate

  config = load_config(CONFIG + ":smoke", [("train.epochs", "1"),
                                           ("baseline.linear", "false")])
  workdir = str(tmp_path / "run")
  results = train_and_evaluate(config, workdir)
  for name in ("subnets.csv", "accuracy_vs_macs.png", "results.json",
               "metrics.csv", "config.json"):
    assert os.path.isfile(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, "subnets.csv")) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 2 + config.evaluate.num_random
  assert rows[0]["kind"] == "largest" and rows[1]["kind"] == "smallest"
  assert int(rows[0]["macs"]) > int(rows[1]["macs"])
  assert 0.0 <= results["accuracy_largest"] <= 1.0
  assert "spearman_macs_accuracy" in results
  rho = results["spearman_macs_accuracy_random"]
  assert rho is None or -1.0 <= rho <= 1.0
  json.loads(open(os.path.join(workdir, "results.json")).read())
  # The extracted smallest network scores what the population path scored.
  out = extract_from_run(workdir, str(_write(tmp_path, rows[1]["arch"])))
  assert abs(out["metadata"]["test_accuracy"] - float(rows[1]["accuracy"])
             ) < 1e-6
  pytest.importorskip("supernet.export")
  export_dir = str(tmp_path / "export")
  # The smallest runs at resolution 6 on 8x8 digits: the export takes the
  # dataset's images and resizes them itself, so `evaluate` scores it as the
  # population path did.
  assert json.loads(rows[1]["arch"])["resolution"] == 6
  assert main(["extract", "--workdir", workdir, "--arch",
               str(_write(tmp_path, rows[1]["arch"])), "--out",
               export_dir]) == 0
  assert os.path.isfile(os.path.join(export_dir, "model.jax_export"))
  capsys.readouterr()
  assert main(["evaluate", "--export", export_dir]) == 0
  evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert abs(evaluated["accuracy"] - float(rows[1]["accuracy"])) < 1e-6
  # Resuming a finished run trains nothing more and reports again.
  again = train_and_evaluate(config, workdir)
  assert again["steps"] == results["steps"]


def _write(tmp_path, text):
  path = tmp_path / f"arch{abs(hash(text))}.json"
  path.write_text(text)
  return path


def test_spearman_matches_definition_and_handles_ties_and_constants():
  from supernet.elastic.report import spearman
  # One swapped pair in four: 1 - 6 * 2 / (4 * 15) = 0.8.
  rho, p = spearman([1, 2, 3, 4], [10, 30, 20, 40])
  assert rho == pytest.approx(0.8) and 0.0 < p < 1.0
  # Ties take their average rank (Pearson correlation of the ranks).
  rho, _ = spearman([1, 1, 2, 3], [1, 2, 3, 4])
  ranks = np.array([1.5, 1.5, 3, 4])
  assert rho == pytest.approx(np.corrcoef(ranks, [1, 2, 3, 4])[0, 1])
  assert all(np.isnan(v) for v in spearman([1, 2, 3], [5, 5, 5]))
  assert all(np.isnan(v) for v in spearman([1, 2], [1, 2]))
