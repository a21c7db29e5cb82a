"""The elastic ViT as a first-class family: training step, costs, population
evaluation, extraction and the CLI round trip (train, extract, evaluate)."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from supernet.elastic.family import family_of
from supernet.elastic.population import (
  evaluate_population,
  evaluate_subnet,
  stack_eval,
)
from supernet.elastic.step import (
  TrainState,
  create_train_state,
  make_optimizer,
  make_train_step,
  parse_phases,
)
from supernet.elastic.vit import VIT_DIMENSIONS, ElasticViT, vit_token_bounds
from supernet.elastic.vit_static import vit_costs, vit_layout
from supernet.errors import UserError
from supernet.spaces.elastic import ElasticTransformerSpace

VIT = dict(embed_dims=(8, 12), depths=(1, 2), heads=(1, 2),
           mlp_ratios=(1, 2), head_dim=4, patch_size=4, resolution=8)
TRAIN = ml_collections.ConfigDict(dict(
    num_random_subnets=2, sandwich=True, distill_alpha=0.5,
    distill_temperature=2.0, label_smoothing=0.1))
CONFIG = os.path.join(os.path.dirname(__file__), "..", "experiments",
                      "configs", "ofa_vit_digits.py")
MBV_CONFIG = os.path.join(os.path.dirname(__file__), "..", "experiments",
                          "configs", "ofa_digits.py")


def _batch(n=16, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, n).astype(np.int32)
  images = rng.normal(size=(n, 8, 8, 1)).astype(np.float32) * 0.3
  images += labels[:, None, None, None].astype(np.float32)
  return {"image": jnp.asarray(images), "label": jnp.asarray(labels),
          "mask": jnp.ones(n, jnp.float32)}


def _host_params(model, seed=0):
  """Random weights of the supernet's shapes, drawn on the host.

  ``model.init`` compiles a truncated-normal sampler per parameter shape
  (~10 s on 2 busy CPU cores); these tests need weights, not that.
  """
  shapes = jax.eval_shape(lambda k: model.init(
      k, jnp.zeros((1, 8, 8, 1)), model.space.largest()), jax.random.key(0))
  rng = np.random.default_rng(seed)

  def draw(path, s):
    name = jax.tree_util.keystr(path)
    if "scale" in name:
      return jnp.ones(s.shape) + 0.1 * rng.normal(size=s.shape)
    return jnp.asarray(0.3 * rng.normal(size=s.shape), jnp.float32)
  return jax.tree_util.tree_map_with_path(draw, shapes["params"])


@pytest.fixture(scope="module")
def setup():
  space = ElasticTransformerSpace.from_config(VIT)
  model = ElasticViT(space, 10)  # digits' classes: the CLI test reuses it
  tx = make_optimizer(ml_collections.ConfigDict(dict(
      name="adamw", learning_rate=3e-3, weight_decay=0.05)), 100, 10)
  lo, hi = vit_token_bounds(space, ("depth",))
  params = _host_params(model)
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params,
                     batch_stats={}, opt_state=tx.init(params),
                     token_lo=jnp.asarray(lo), token_hi=jnp.asarray(hi))
  archs = [space.largest(), space.smallest()] + space.sample_many(
      jax.random.key(3), 2)
  return space, model, tx, state, archs


def test_vit_state_has_no_batch_stats():
  """``create_train_state`` (eval_shape: no compilation) for a ViT."""
  space = ElasticTransformerSpace.from_config(VIT)
  model = ElasticViT(space, 3)
  tx = make_optimizer(ml_collections.ConfigDict(dict(
      name="adam", learning_rate=1e-3)), 10, 1)
  state = jax.eval_shape(lambda k: create_train_state(
      model, k, (8, 8, 1), tx, vit_token_bounds(space)), jax.random.key(0))
  assert state.batch_stats == {}
  assert state.params["layer1_qkv"].shape == (12, 3, 2, 4)


def test_vit_token_bounds_and_phases():
  space = ElasticTransformerSpace.from_config(VIT)
  lo, hi = vit_token_bounds(space, ("heads",))
  arch = space.decode(lo)
  assert arch.embed_dim == 12 and arch.depth == 2 and arch.heads == (1, 1)
  assert arch.mlp_ratios == (2, 2)
  assert space.decode(hi) == space.largest()
  assert space.decode(vit_token_bounds(space)[0]) == space.smallest()
  phases = parse_phases(("0:depth", "2:all"), VIT_DIMENSIONS)
  assert phases[1][1] == VIT_DIMENSIONS
  with pytest.raises(UserError, match="unknown dimension.*valid"):
    parse_phases(("0:kernel",), VIT_DIMENSIONS)
  with pytest.raises(UserError, match="unknown elastic dimension"):
    vit_token_bounds(space, ("width",))


def test_vit_step_compiles_once_and_learns(setup):
  space, model, tx, state, _ = setup
  step = jax.jit(make_train_step(model, tx, TRAIN))
  batch, key = _batch(), jax.random.key(1)
  first = None
  for i in range(5):
    if i == 2:  # a new progressive-shrinking phase: new bounds, same shapes
      lo, hi = vit_token_bounds(space)
      state = state.replace(token_lo=jnp.asarray(lo), token_hi=jnp.asarray(hi))
    state, metrics = step(state, batch, key)
    first = first or float(metrics["loss_largest"])
  assert step._cache_size() == 1
  assert int(state.step) == 5
  assert set(metrics) >= {"loss_largest", "loss_subnets", "acc_smallest"}
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["loss_largest"]) < first


def test_vit_costs_match_the_cost_model(setup):
  from supernet.costs import count_macs, count_params
  from supernet.costs.studies import transformer_macs_formula
  space, model, _, state, archs = setup
  family = family_of(model)
  x = jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32)
  for arch in archs:
    module, variables = family.extract(model, state.params, {}, arch)
    cost = family.costs(space, arch, 1, 10)
    assert cost["params"] == count_params(variables["params"])
    assert cost["macs"] == count_macs(module.apply, variables, x)
  # Attention width = embedding width: the cost model's per-block formula.
  lay = vit_layout(space, space.largest())
  one = vit_costs(dataclasses.replace(lay, heads=(3,), mlp_hidden=(24,)), 1, 3)
  none = vit_costs(dataclasses.replace(lay, heads=(), mlp_hidden=()), 1, 3)
  assert one["macs"] - none["macs"] == sum(transformer_macs_formula(
      lay.tokens, 12, 2.0))


def test_vit_extraction_equals_discrete_view(setup):
  _, model, _, state, archs = setup
  family = family_of(model)
  x = jax.random.normal(jax.random.key(5), (4, 8, 8, 1))
  # A random sub-network (the largest's slices are the whole supernet; the
  # CLI round trip extracts the smallest).
  for arch in archs[2:3]:
    module, variables = family.extract(model, state.params, {}, arch)
    got = jax.jit(module.apply)(variables, x)
    want = jax.jit(lambda p, a=arch: model.apply({"params": p}, x, a))(
        state.params)
    assert float(jnp.max(jnp.abs(got - want))) <= 1e-5, arch


def test_vit_population_equals_discrete_eval(setup):
  _, model, _, state, archs = setup
  rng = np.random.default_rng(0)
  evals = stack_eval([{"image": rng.normal(size=(8, 8, 8, 1)).astype(
      np.float32), "label": rng.integers(0, 3, 8).astype(np.int32),
      "mask": np.asarray([1.0] * 6 + [0.0] * 2, np.float32)}
      for _ in range(2)])
  accs = evaluate_population(model, state.params, {}, archs, None, evals,
                             chunk=2)
  for arch, acc in list(zip(archs, accs))[2:3]:  # one compilation per arch
    assert abs(evaluate_subnet(model, state.params, {}, arch, None, evals)
               - acc) < 1e-6, arch


def test_vit_sample_cli(capsys):
  from supernet.cli import main
  assert main(["sample", "--config", CONFIG, "--n", "3", "--seed", "1"]) == 0
  docs = [json.loads(s) for s in capsys.readouterr().out.split("\n") if s]
  assert len(docs) == 3 and all(d["space"] == "elastic_vit" for d in docs)
  assert main(["sample", "--config", CONFIG, "--largest"]) == 0
  largest = json.loads(capsys.readouterr().out)
  assert len(largest["heads"]) == largest["depth"]
  assert main(["sample", "--config", CONFIG + ":smoke", "--smallest"]) == 0
  assert json.loads(capsys.readouterr().out)["depth"] == 1


def test_vit_train_extract_evaluate_round_trip(setup, tmp_path, capsys,
                                              digits_data_dir):
  """``supernet train`` (report), ``extract`` and ``evaluate`` on a ViT run.

  The run holds the fixture's weights as its finished checkpoint, so
  ``train`` resumes straight into the final report: a real epoch would
  compile the weight initialisation and the step again (~30 s on 2 CPU
  cores; the step is tested above, the loop is shared with the MobileNet's).
  """
  from supernet.cli import main
  from supernet.config import load_config
  from supernet.data import load_dataset
  from supernet.rundir import RunDir
  space, _, _, state, _ = setup
  workdir, export = str(tmp_path / "run"), str(tmp_path / "export")
  overrides = [("data.data_dir", digits_data_dir), ("train.epochs", "1"),
               ("baseline.linear", "false")] + [
                   (f"space.{k}", repr(v)) for k, v in VIT.items()]
  config = load_config(CONFIG + ":smoke", overrides)
  steps = load_dataset(config.data).steps_per_epoch()
  # The checkpoint carries the optimiser state of the config's own optimiser
  # (the restore checks the structure).
  tx = make_optimizer(config.optim, steps * int(config.train.epochs), steps)
  run = RunDir(workdir, config, "train")
  run.checkpoints.save(steps, state.replace(
      step=jnp.asarray(steps, jnp.int32),
      opt_state=tx.init(state.params)).to_tree())
  run.close()
  args = ["train", "--config", CONFIG + ":smoke", "--workdir", workdir] + [
      f"--config.{k}={v}" for k, v in overrides]
  assert main(args) == 0
  results = json.load(open(os.path.join(workdir, "results.json")))
  assert results["space"] == "elastic_vit" and results["steps"] == steps
  assert results["macs_largest"] > results["macs_smallest"]
  for name in ("subnets.csv", "accuracy_vs_macs.png"):
    assert os.path.isfile(os.path.join(workdir, name)), name
  capsys.readouterr()

  arch = tmp_path / "arch.json"
  arch.write_text(space.smallest().dumps())
  assert main(["extract", "--workdir", workdir, "--arch", str(arch),
               "--out", export]) == 0
  smallest = results["accuracy_smallest"]
  meta = json.load(open(os.path.join(export, "metadata.json")))
  assert abs(meta["test_accuracy"] - smallest) < 1e-6
  assert meta["macs"] == results["macs_smallest"]
  capsys.readouterr()
  assert main(["evaluate", "--export", export, "--data-dir",
               digits_data_dir]) == 0
  assert abs(json.loads(capsys.readouterr().out)["accuracy"] - smallest
             ) < 1e-6

  # Bad input: one-line errors, nothing overwritten.
  before = sorted(os.listdir(export))
  stamp = os.path.getmtime(os.path.join(export, "weights.msgpack"))
  outside = tmp_path / "outside.json"
  outside.write_text(json.dumps({"space": "elastic_vit", "embed_dim": 16,
                                 "depth": 1, "heads": [1],
                                 "mlp_ratios": [1]}))
  mbv = tmp_path / "mbv.json"
  assert main(["sample", "--config", MBV_CONFIG, "--largest"]) == 0
  mbv.write_text(capsys.readouterr().out)
  for bad, what in ((outside, "embed_dim"), (mbv, "elastic_mbv")):
    assert main(["extract", "--workdir", workdir, "--arch", str(bad),
                 "--out", str(tmp_path / "new")]) == 2
    assert what in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "new")
  assert main(["extract", "--workdir", workdir, "--arch", str(arch),
               "--out", export]) == 2
  assert "not empty" in capsys.readouterr().err
  assert sorted(os.listdir(export)) == before
  assert os.path.getmtime(os.path.join(export, "weights.msgpack")) == stamp


def test_extract_refuses_runs_of_other_spaces(tmp_path, capsys,
                                              digits_data_dir):
  from supernet.cli import main
  from supernet.config import config_to_json, load_config
  assert main(["sample", "--config", CONFIG, "--largest"]) == 0
  arch = tmp_path / "vit.json"
  arch.write_text(capsys.readouterr().out)
  runs = {}
  for name, spec in (("mbv", MBV_CONFIG + ":smoke"),
                     ("darts", os.path.join(os.path.dirname(CONFIG),
                                            "darts_digits_train.py"))):
    config = load_config(spec, [("data.data_dir", digits_data_dir)])
    run = tmp_path / name
    run.mkdir()
    (run / "config.json").write_text(config_to_json(config))
    (run / "run.json").write_text('{"command": "train"}')
    runs[name] = str(run)
  for name, message in (("mbv", "'elastic_vit' but the config's space is "
                                "'elastic_mbv'"),
                        ("darts", "did not train an elastic supernet")):
    out = tmp_path / f"out_{name}"
    assert main(["extract", "--workdir", runs[name], "--arch", str(arch),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
