"""Space selection (TinyNAS): costs, the constraint, the chosen variant."""

import csv
import json
import os

import ml_collections
import numpy as np
import pytest

from supernet.elastic.layout import mbv_layout
from supernet.errors import UserError
from supernet.strategies import space_selection as ss

SPACE = dict(name="elastic_mbv", stem_width=4, stage_widths=(4, 8),
             stage_strides=(1, 2), depths=(1, 2), kernels=(3, 5),
             expands=(2, 3), widths=(1.0,), resolutions=(8,), head_width=16,
             channel_divisor=2)


def _config(**constraint):
  return ml_collections.ConfigDict({
      "seed": 0, "space": SPACE,
      "search": {"strategy": "space_selection",
                 "variants": {"widths": (0.5, 1.0), "resolutions": (4, 8)},
                 "num_samples": 40, "in_channels": 1, "num_classes": 3,
                 "constraint": {"max_peak_kb": 0.0, "max_params_k": 0.0,
                                "bytes_per_value": 1, **constraint}}})


def test_peak_memory_of_a_layout():
  space = ss.variant_space(ml_collections.ConfigDict(SPACE), 1.0, 8)
  arch = space.smallest()  # stem 4ch, one block 4->8->4 (residual), 8->16->8
  lay = mbv_layout(space, arch)
  peak = ss.peak_activation_bytes(lay, 1)
  b0 = lay.blocks[0]
  assert b0.residual
  # The first block's depthwise holds its kept input and two mid maps.
  assert peak >= 64 * b0.in_channels + 2 * 64 * b0.mid_channels
  assert ss.peak_activation_bytes(lay, 1, bytes_per_value=4) == 4 * peak


def test_selection_picks_highest_mean(tmp_path):
  config = _config(max_params_k=0.5)
  arch = ss.run_space_selection(config, str(tmp_path))
  with open(tmp_path / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 4
  means = [float(r["mean_mflops"]) if int(r["survivors"]) else -1
           for r in rows]
  best = rows[int(np.argmax(means))]
  assert best["selected"] == "True"
  doc = json.loads((tmp_path / "best_space.json").read_text())
  assert doc["variant"] == best["variant"]
  assert doc["space"]["widths"] == [float(best["width"])]
  assert doc["space"]["resolutions"] == [int(best["resolution"])]
  assert arch.resolution == int(best["resolution"])
  for name in ("report.md", "mflops_cdf.png", "arch.json"):
    assert (tmp_path / name).stat().st_size > 0
  # The constraint binds: wider variants lose samples.
  assert min(int(r["survivors"]) for r in rows) < 40


def test_best_variant_rules():
  rows = [{"survivors": 0, "mean_mflops": float("nan")},
          {"survivors": 3, "mean_mflops": 1.0},
          {"survivors": 5, "mean_mflops": 2.0}]
  assert ss.best_variant(rows) == 2
  with pytest.raises(UserError, match="loosen"):
    ss.best_variant(rows[:1])


def test_fits_and_mflops():
  costs = {"macs": np.array([10, 20, 30]), "params": np.array([5, 50, 5]),
           "peak_bytes": np.array([100, 10, 1000])}
  assert ss.fits(costs, max_peak_bytes=500).tolist() == [True, True, False]
  assert ss.fits(costs, 500, 10).tolist() == [True, False, False]
  np.testing.assert_allclose(ss.mflops(np.array([1_000_000])), [2.0])


def test_latency_constraint_from_the_measured_lookup_table(tmp_path):
  # Few repetitions: the blocks of this space are measured in seconds.
  latency = {"latency_runs": 2, "latency_warmup": 1, "latency_clock":
             "process", "latency_lut": ""}
  config = _config(max_latency_ms=1e6, **latency)
  config.space.kernels = (3,)  # 17 distinct blocks in the two variants
  config.search.variants.resolutions = (8,)
  config.search.num_samples = 20
  ss.run_space_selection(config, str(tmp_path / "all"))
  lut = tmp_path / "all" / "latency_lut.json"
  doc = json.loads(lut.read_text())
  assert doc["signature"]["clock"] == "process" and doc["entries"]
  with open(tmp_path / "all" / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert all(int(r["survivors"]) == 20 for r in rows)
  assert all(0 < float(r["min_latency_ms"]) <= float(r["median_latency_ms"])
             for r in rows)
  assert "latency <= 1e+06 ms" in (tmp_path / "all" / "report.md").read_text()

  # A limit between the variants' fastest and median sub-networks binds;
  # the cached table is reused as is (nothing measured again).
  wide = rows[-1]
  limit = (float(wide["min_latency_ms"]) + float(wide["median_latency_ms"])) / 2
  before = lut.stat().st_mtime_ns
  config = _config(max_latency_ms=limit, **{**latency, "latency_lut": str(lut)})
  config.space.kernels = (3,)
  config.search.variants.resolutions = (8,)
  config.search.num_samples = 20
  try:
    ss.run_space_selection(config, str(tmp_path / "bound"))
  except UserError as e:  # every variant failing is a valid outcome too
    assert "loosen" in str(e)
  else:
    with open(tmp_path / "bound" / "table.csv") as f:
      bound = list(csv.DictReader(f))
    assert 0 < int(bound[-1]["survivors"]) < 20
    best = json.loads((tmp_path / "bound" / "best_space.json").read_text())
    assert best["constraint"]["max_latency_ms"] == limit
  assert lut.stat().st_mtime_ns == before
  assert not (tmp_path / "bound" / "latency_lut.json").exists()


def test_latency_limit_config_errors(tmp_path):
  with pytest.raises(UserError, match=">= 0"):
    ss.run_space_selection(_config(max_latency_ms=-1.0), str(tmp_path / "a"))
  with pytest.raises(UserError, match="clock"):
    ss.run_space_selection(_config(max_latency_ms=1.0, latency_clock="cpu"),
                           str(tmp_path / "b"))
  assert not os.listdir(tmp_path)  # nothing written


def test_fits_latency():
  costs = {"macs": np.array([10, 20]), "params": np.array([5, 5]),
           "peak_bytes": np.array([1, 1]), "latency_ms": np.array([0.5, 2.0])}
  assert ss.fits(costs, max_latency_ms=1.0).tolist() == [True, False]
