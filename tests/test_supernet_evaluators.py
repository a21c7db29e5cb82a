"""The ``supernet`` (weight-sharing) and ``proxy`` (short training) evaluators."""

import jax
import ml_collections
import numpy as np
import pytest

from supernet.data import data_config_defaults
from supernet.data.info import DatasetInfo
from supernet.data.pipeline import Dataset
from supernet.elastic.mbv import ElasticMobileNet
from supernet.errors import UserError
from supernet.evaluators import EVALUATORS, make_evaluator, supernet_eval
from supernet.evaluators.proxy import ProxyEvaluator
from supernet.spaces.elastic import ElasticMobileNetSpace

TINY = dict(name="elastic_mbv", stem_width=4, stage_widths=(4, 8),
            stage_strides=(1, 2), depths=(1, 2), kernels=(3, 5),
            expands=(2, 3), widths=(0.5, 1.0), resolutions=(6, 8),
            head_width=16, channel_divisor=2)


def _space():
  return ElasticMobileNetSpace.from_config(ml_collections.ConfigDict(TINY))


def _images(n, seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, n).astype(np.int32)
  images = rng.normal(size=(n, 8, 8, 1)).astype(np.float32) * 0.3
  return images + labels[:, None, None, None], labels


def test_registered():
  assert {"supernet", "proxy", "nb201"} <= set(EVALUATORS)


def test_group_size():
  assert [supernet_eval.group_size(n, 8) for n in (1, 2, 3, 5, 8)] == [
      1, 2, 4, 8, 8]
  assert supernet_eval.group_size(3, 2) == 2


def test_supernet_evaluator_pads_groups(monkeypatch):
  # The vmapped population path itself is tested in test_elastic_*; here a
  # stand-in records the population sizes it is asked to compile.
  space = _space()
  sizes = []

  def fake_population(model, params, stats, archs, calib, evals, chunk):
    sizes.append((len(archs), chunk))
    return np.asarray([0.01 * sum(a.depths) for a in archs])

  import supernet.elastic.population as population
  monkeypatch.setattr(population, "evaluate_population", fake_population)
  run = supernet_eval.LoadedRun(ElasticMobileNet(space, 3), space, {}, {},
                                None, None, 1, 3)
  ev = supernet_eval.SupernetEvaluator(run, chunk=4)
  archs = space.sample_many(jax.random.key(1), 6)
  results = ev.evaluate(archs)
  assert sizes == [(4, 4), (2, 2)]   # 6 = 4 + 2, no padding needed
  assert ev.num_queries == 6 and len(results) == 6
  for arch, r in zip(archs, results):
    assert r["accuracy"] == pytest.approx(sum(arch.depths))
    assert r["macs"] > 0 and r["params"] > 0
  ev.evaluate(archs[:3])
  assert sizes[-1] == (4, 4)           # 3 padded to 4
  with pytest.raises(UserError):
    ev.evaluate([space.largest().__class__(8, 0.3, (1, 1), ((3,), (3,)),
                                           ((2,), (2,)))])


def test_supernet_evaluator_needs_a_run(tmp_path):
  space = _space()
  cfg = ml_collections.ConfigDict({"name": "supernet", "run_dir": ""})
  with pytest.raises(UserError, match="supernet train --config"):
    make_evaluator(cfg, space)
  cfg.run_dir = str(tmp_path / "missing")
  with pytest.raises(UserError, match="ofa_digits.py"):
    make_evaluator(cfg, space)


def test_proxy_evaluator_trains_tiny_network():
  space = _space()
  train, test = _images(64, 1), _images(32, 2)
  u8 = lambda a: np.clip(a * 40 + 60, 0, 255).astype(np.uint8)  # noqa: E731
  info = DatasetInfo("synthetic", 3, (8, 8, 1), (0.3,), (0.2,),
                     ("a", "b", "c"), 64, 32)
  cfg = data_config_defaults()
  cfg.update({"name": "synthetic", "batch_size": 16, "eval_batch_size": 16,
              "pad": 0, "flip": False})
  data = Dataset(info, (u8(train[0]), train[1]), (u8(test[0]), test[1]), cfg,
                 num_devices=1, process_index=0, process_count=1)
  ev = ProxyEvaluator(space, data, epochs=1, learning_rate=0.01)
  results = ev.evaluate([space.smallest()])
  assert ev.num_queries == 1
  assert 0.0 <= results[0]["accuracy"] <= 100.0 and results[0]["macs"] > 0
  with pytest.raises(UserError, match="epochs"):
    ProxyEvaluator(space, data, epochs=0)
