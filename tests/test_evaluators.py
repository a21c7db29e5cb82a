"""The NAS-Bench-201 table and evaluator, constraint builders, predictor."""

from __future__ import annotations

import csv
import os

import jax
import ml_collections
import numpy as np
import pytest

from supernet.benchmarks import load_nb201
from supernet.benchmarks.build_nb201 import write_table
from supernet.errors import UserError
from supernet.evaluators import EVALUATORS, make_evaluator
from supernet.evaluators.nb201 import Nb201Evaluator
from supernet.evaluators.predictor import mlp_predictor
from supernet.spaces import Nb201Arch, Nb201Space
from supernet.strategies import latency_constraint, make_constraint

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                      "nb201")
ALL_SKIP = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
            "|skip_connect~0|skip_connect~1|skip_connect~2|")


@pytest.fixture(scope="module")
def table():
  return load_nb201()


def test_shipped_table_holds_the_readme_sanity_figures(table):
  c10 = table.accuracy["cifar10"]
  assert len(table.archs) == 15625 and len(table.devices) == 27
  assert c10.max() == pytest.approx(94.3733, abs=1e-4)
  assert c10[13714] == pytest.approx(94.3733, abs=1e-4)
  assert c10[table.optimum("cifar10")] == c10.max()
  assert table.archs[1835] == ALL_SKIP
  assert c10[1835] == pytest.approx(54.2967, abs=1e-4)
  assert table.optimum("cifar100") == 9930
  assert table.accuracy["cifar100"][9930] == pytest.approx(73.5133, abs=1e-4)
  assert table.optimum("imagenet16") == 857
  assert table.accuracy["imagenet16"][857] == pytest.approx(47.3111, abs=1e-4)


def test_evaluator_lookups_match_the_original_csv(table):
  """Spot rows of ../shared (when present) against the evaluator."""
  acc_path = os.path.join(SHARED, "nats_bench_tss_200ep_mean.csv")
  lat_path = os.path.join(SHARED, "nb201_latency_help.csv")
  if not os.path.isfile(acc_path):
    pytest.skip("../shared/data/nb201 not available")
  with open(acc_path) as f:
    acc_rows = list(csv.DictReader(f))
  with open(lat_path) as f:
    lat_rows = list(csv.DictReader(f))
  evaluator = Nb201Evaluator(table, "cifar100", "raspi4")
  rows = [0, 1835, 9930, 13714, 15624] + list(range(7, 15625, 997))
  archs = [Nb201Arch.from_string(acc_rows[i]["ArchitectureString"])
           for i in rows]
  results = evaluator.evaluate(archs)
  assert evaluator.num_queries == len(rows)
  for i, arch, r in zip(rows, archs, results):
    assert r["index"] == i == table.index(arch)
    assert r["accuracy"] == pytest.approx(
        float(acc_rows[i]["CIFAR100TestAccuracy200Epochs"]), abs=1e-5)
    assert r["latency_ms"] == pytest.approx(float(lat_rows[i]["raspi4_ms"]),
                                            rel=1e-5)


def test_data_path_override_reads_a_file_or_the_original_directory(tmp_path,
                                                                   table):
  path = str(tmp_path / "copy.csv.gz")
  write_table(table, path)
  assert np.array_equal(load_nb201(path).accuracy["cifar10"],
                        table.accuracy["cifar10"])
  space = Nb201Space()
  config = ml_collections.ConfigDict({"name": "nb201", "dataset": "cifar10",
                                      "device": "fpga", "data_path": path})
  evaluator = make_evaluator(config, space)
  assert evaluator.evaluate([space.largest()])[0]["latency_ms"] == \
      table.latency["fpga"][table.index(space.largest())]
  if os.path.isdir(SHARED):
    original = load_nb201(SHARED)
    assert np.allclose(original.latency["pixel3"], table.latency["pixel3"])
  with pytest.raises(UserError, match="not found"):
    load_nb201(str(tmp_path / "missing.csv.gz"))
  bad = tmp_path / "bad.csv"
  bad.write_text("a,b\n1,2\n")
  with pytest.raises(UserError, match="not a NAS-Bench-201 table"):
    load_nb201(str(bad))


def test_unknown_names_fail_with_the_valid_ones(table):
  with pytest.raises(UserError, match="valid: \\['cifar10'"):
    Nb201Evaluator(table, "cifar11")
  with pytest.raises(UserError, match="pixel3"):
    Nb201Evaluator(table, "cifar10", "pixel9")
  with pytest.raises(UserError, match="valid evaluators"):
    make_evaluator(ml_collections.ConfigDict({"name": "oracle"}), Nb201Space())
  assert "nb201" in EVALUATORS


def test_latency_constraints_follow_the_table(table):
  space = Nb201Space()
  archs = space.sample_many(jax.random.key(0), 50)
  lat = table.latency["pixel3"]
  c = latency_constraint("pixel3", 10.0, table)
  assert [c(a) for a in archs] == [lat[table.index(a)] <= 10.0 for a in archs]
  assert str(c) == "latency_ms[pixel3] <= 10"
  config = ml_collections.ConfigDict({"cost": "nb201_latency",
                                      "device": "pixel3", "limit": 10.0})
  built = make_constraint(config, space)
  assert [built(a) for a in archs] == [c(a) for a in archs]
  assert make_constraint(ml_collections.ConfigDict({"cost": "none"}),
                         space) is None
  with pytest.raises(UserError, match="valid costs"):
    make_constraint(ml_collections.ConfigDict({"cost": "flops", "limit": 1.0}),
                    space)


def test_predictor_learns_to_rank_nb201_cells(table):
  space = Nb201Space()
  archs = space.sample_many(jax.random.key(1), 160)
  x = np.stack([space.one_hot(a) for a in archs])
  y = np.asarray([table.accuracy["cifar10"][table.index(a)] for a in archs])
  predictor = mlp_predictor()
  params = predictor.init(jax.random.key(0), x.shape[1])
  params = predictor.fit(params, x[:100], y[:100])
  pred = predictor.predict(params, x[100:])
  # Rank correlation on held-out cells: well above chance.
  def rank(v):
    return np.argsort(np.argsort(v))

  assert np.corrcoef(rank(pred), rank(y[100:]))[0, 1] > 0.5
