"""Training: network sizes, configs, optimiser, losses, the jitted step."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from supernet.config import load_config
from supernet.data.info import DatasetInfo
from supernet.errors import UserError
from supernet.models import build_network
from supernet.spaces import DARTS_V2, make_space
from supernet.train import (
    check_model_matches_data,
    check_train_config,
    classification_loss,
    count_params,
    create_train_state,
    inference_structure,
    make_eval_step,
    make_optimizer,
    make_train_step,
)
from supernet.train.state import select_like

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "experiments",
                       "configs")
TRAIN_CONFIGS = ["darts_cifar10_train.py", "darts_imagenet_train.py",
                 "darts_digits_train.py", "nb201_digits_train.py"]
NB201_CELL = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+"
              "|skip_connect~0|none~1|nor_conv_3x3~2|")


def _config(name, arg=None):
  return load_config(os.path.join(CONFIGS, name) + (f":{arg}" if arg else ""))


# ---- network sizes -----------------------------------------------------------
def test_darts_v2_cifar_has_the_papers_parameter_count():
  module, shape = build_network(_config("darts_cifar10_train.py"), DARTS_V2)
  assert shape == (32, 32, 3)
  # Inference structure: no auxiliary head (the paper's 3.3M excludes it).
  params = inference_structure(module, shape)["params"]
  assert "auxiliary" not in params
  assert count_params(params) == 3_349_342


def test_darts_v2_imagenet_is_about_4_7_million_parameters():
  module, shape = build_network(_config("darts_imagenet_train.py"), DARTS_V2)
  assert shape == (224, 224, 3)
  n = count_params(inference_structure(module, shape)["params"])
  assert 4.6e6 < n < 4.8e6


# ---- configs -----------------------------------------------------------------
@pytest.mark.parametrize("name", TRAIN_CONFIGS)
@pytest.mark.parametrize("arg", [None, "smoke"])
def test_train_configs_are_valid_and_build(name, arg):
  config = _config(name, arg)
  check_train_config(config)
  space = make_space(config.space.name)
  arch = DARTS_V2 if space.name == "darts" else space.arch_from_json(
      {"space": "nb201", "cell": NB201_CELL})
  # What `supernet profile --config CFG --arch A` builds.
  module, shape = build_network(config, arch)
  assert shape == tuple(config.model.input_shape)
  if arg is None and config.data.name != "digits":
    return  # full-size networks: traced by the parameter-count tests
  out = jax.eval_shape(
      lambda: module.init(jax.random.key(0), jnp.zeros((1, *shape)),
                          train=False))
  logits = jax.eval_shape(lambda v: module.apply(
      v, jnp.zeros((2, *shape)), train=False), out)
  assert logits.shape == (2, config.model.num_classes)


def test_imagenet_and_cifar_recipes():
  c = _config("darts_cifar10_train.py")
  assert (c.model.layers, c.model.channels, c.model.auxiliary_weight,
          c.model.drop_path_prob, c.data.cutout, c.train.epochs,
          c.data.batch_size, c.train.lr, c.train.grad_clip) == (
              20, 36, 0.4, 0.2, 16, 600, 96, 0.025, 5.0)
  i = _config("darts_imagenet_train.py")
  assert (i.model.layers, i.model.channels, i.model.stem, i.train.schedule,
          i.train.decay_rate, i.train.label_smoothing, i.train.epochs,
          i.data.batch_size, i.train.lr) == (
              14, 48, "imagenet", "exponential", 0.97, 0.1, 250, 128, 0.1)


@pytest.mark.parametrize("key, value, message", [
    ("train.schedule", "linear", "unknown train.schedule 'linear'; valid"),
    ("train.epochs", 0, "train.epochs must be >= 1"),
    ("train.label_smoothing", 1.5, "label_smoothing"),
    ("model.input_shape", (8, 8), "model.input_shape must be"),
])
def test_bad_train_configs_fail_early(key, value, message):
  config = _config("darts_digits_train.py", "smoke")
  section, field = key.split(".")
  config[section][field] = value
  with pytest.raises(UserError, match=message):
    check_train_config(config)


def test_unknown_train_field_lists_the_valid_ones():
  config = _config("darts_digits_train.py", "smoke")
  config.train.lr_decay = 0.5
  with pytest.raises(UserError, match="unknown train fields.*valid fields"):
    check_train_config(config)


def test_model_must_describe_the_dataset():
  config = _config("darts_digits_train.py", "smoke")
  info = DatasetInfo("digits", 10, (8, 8, 1), (0.3,), (0.4,),
                     tuple("0123456789"), 1, 1)
  check_model_matches_data(config, info)
  config.model.num_classes = 100
  with pytest.raises(UserError, match="num_classes=100 but dataset 'digits' "
                     "has 10"):
    check_model_matches_data(config, info)
  config.model.num_classes = 10
  config.model.input_shape = (32, 32, 3)
  with pytest.raises(UserError, match=r"input_shape=\(32, 32, 3\)"):
    check_model_matches_data(config, info)


# ---- optimiser and loss --------------------------------------------------------
def _train_section(**kw):
  base = dict(epochs=10, lr=0.1, lr_min=0.0, momentum=0.9, weight_decay=0.0,
              schedule="cosine", grad_clip=0.0)
  base.update(kw)
  return ml_collections.ConfigDict({"train": base})


def test_cosine_schedule_ends_at_lr_min():
  _, schedule = make_optimizer(_train_section(lr_min=0.01), 5)
  assert float(schedule(0)) == pytest.approx(0.1)
  assert float(schedule(25)) == pytest.approx(0.055)
  assert float(schedule(50)) == pytest.approx(0.01)


def test_exponential_schedule_decays_per_epoch_staircase():
  _, schedule = make_optimizer(
      _train_section(schedule="exponential", decay_rate=0.97), 4)
  assert float(schedule(3)) == pytest.approx(0.1)
  assert float(schedule(4)) == pytest.approx(0.097)
  assert float(schedule(9)) == pytest.approx(0.1 * 0.97**2)


def test_warmup_then_schedule():
  _, schedule = make_optimizer(
      _train_section(schedule="constant", warmup_epochs=1), 10)
  assert float(schedule(5)) == pytest.approx(0.05)
  assert float(schedule(10)) == pytest.approx(0.1)


def test_optimizer_clips_then_decays_then_sgd():
  tx, _ = make_optimizer(_train_section(grad_clip=1.0, weight_decay=0.5,
                                        momentum=0.0, schedule="constant"), 1)
  params = {"w": jnp.array([1.0, 0.0])}
  grads = {"w": jnp.array([30.0, 40.0])}  # norm 50 -> clipped to norm 1
  updates, _ = tx.update(grads, tx.init(params), params)
  # -lr * (clip(g) + wd * w) = -0.1 * ([0.6, 0.8] + [0.5, 0])
  np.testing.assert_allclose(updates["w"], [-0.11, -0.08], rtol=1e-6)


def test_classification_loss_smoothing_and_mask():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0]])
  labels = jnp.array([0, 2, 1])
  mask = jnp.array([1.0, 1.0, 0.0])
  loss, acc = classification_loss(logits, labels, mask, label_smoothing=0.3)
  logp = jax.nn.log_softmax(logits)
  target = 0.7 * jax.nn.one_hot(labels, 3) + 0.1
  want = -(target * logp).sum(-1)[:2].mean()
  assert float(loss) == pytest.approx(float(want), rel=1e-6)
  assert float(acc) == pytest.approx(0.5)


# ---- the step --------------------------------------------------------------------
class _TinyNet(nn.Module):
  """BatchNorm, dropout rng, an auxiliary output and drop_path_prob."""

  @nn.compact
  def __call__(self, x, train: bool = False, drop_path_prob=0.0):
    h = nn.Conv(4, (3, 3), name="conv")(x)
    h = nn.BatchNorm(use_running_average=not train, name="bn")(h)
    h = nn.relu(h).mean(axis=(1, 2))
    if train:
      keep = jax.random.bernoulli(self.make_rng("dropout"),
                                  1.0 - drop_path_prob, h.shape)
      h = jnp.where(keep, h / (1.0 - drop_path_prob), 0.0)
    logits = nn.Dense(3, name="classifier")(h)
    if train:
      return logits, nn.Dense(3, name="auxiliary")(h)
    return logits


def _batch(n=8, seed=0):
  rng = np.random.default_rng(seed)
  return {"image": rng.standard_normal((n, 6, 6, 2)).astype(np.float32),
          "label": rng.integers(0, 3, n).astype(np.int32),
          "mask": np.ones(n, np.float32)}


def _setup(**kw):
  module = _TinyNet()
  tx, schedule = make_optimizer(_train_section(**kw), 2)
  state = create_train_state(module, tx, (6, 6, 2), jax.random.key(0))
  return module, tx, schedule, state


@pytest.fixture(scope="module")
def tiny():
  """One jitted step of the tiny net, compiled once for these tests."""
  module, tx, schedule, state = _setup(weight_decay=3e-4, grad_clip=5.0)
  step = make_train_step(module, tx, schedule, steps_per_epoch=2, epochs=10,
                         aux_weight=0.4, drop_path_prob=0.2)
  return module, state, step


def _copy(state):  # the step donates its input state
  return jax.tree.map(jnp.copy, state)


def test_train_step_learns_and_never_recompiles(tiny):
  _, state, step = tiny
  state = _copy(state)
  batch = _batch()
  key = jax.random.key(1)
  losses, dps = [], []
  for _ in range(8):  # four "epochs": drop-path prob changes, traced
    state, metrics = step(state, batch, key)
    losses.append(float(metrics["train_loss"]))
    dps.append(float(metrics["drop_path_prob"]))
  assert step._cache_size() == 1
  assert int(state.step) == 8
  assert dps == pytest.approx([0, 0, 0.02, 0.02, 0.04, 0.04, 0.06, 0.06])
  assert float(metrics["total_loss"]) > float(metrics["train_loss"])
  assert losses[-1] < losses[0]
  assert "auxiliary" in state.params


def test_train_step_is_deterministic_and_uses_the_step_key(tiny):
  _, state, step = tiny
  state = state.replace(step=jnp.asarray(10, jnp.int32))  # dp = 0.1
  batch = _batch()
  s1, m1 = step(_copy(state), batch, jax.random.key(3))
  s2, m2 = step(_copy(state), batch, jax.random.key(3))
  s3, m3 = step(_copy(state), batch, jax.random.key(4))
  assert float(m1["train_loss"]) == float(m2["train_loss"])
  jax.tree.map(np.testing.assert_array_equal, s1.params, s2.params)
  assert float(m1["total_loss"]) != float(m3["total_loss"])
  assert step._cache_size() == 1


def test_eval_step_counts_only_real_examples(tiny):
  module, state, _ = tiny
  eval_step = make_eval_step(module)
  batch = _batch(6)
  batch["mask"][4:] = 0.0
  out = eval_step(state.variables(), batch)
  logits = module.apply(state.variables(), batch["image"][:4], train=False)
  correct = int((np.argmax(logits, -1) == batch["label"][:4]).sum())
  assert float(out["count"]) == 4.0
  assert float(out["correct"]) == pytest.approx(correct)


def test_select_like_drops_training_only_heads():
  tree = {"params": {"a": 1, "auxiliary": {"k": 2}}, "batch_stats": {"m": 3}}
  structure = {"params": {"a": None}, "batch_stats": {"m": None}}
  assert select_like(tree, structure) == {"params": {"a": 1},
                                          "batch_stats": {"m": 3}}


def test_data_parallel_step_matches_one_device(run_with_cpu_devices):
  """The same steps on 2 fake CPU devices (batch sharded, state replicated)."""
  code = """
      import flax.linen as nn, jax, numpy as np
      from supernet import parallel
      from supernet.train import create_train_state, make_train_step
      from supernet.train.optim import make_optimizer
      import ml_collections

      class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
          h = nn.Conv(4, (3, 3))(x)
          h = nn.BatchNorm(use_running_average=not train)(h)
          return nn.Dense(3)(nn.relu(h).mean(axis=(1, 2)))

      cfg = ml_collections.ConfigDict({"train": {"epochs": 2, "lr": 0.1}})
      tx, schedule = make_optimizer(cfg, 2)
      module = Net()
      state = create_train_state(module, tx, (6, 6, 2), jax.random.key(0))
      step = make_train_step(module, tx, schedule, steps_per_epoch=2,
                             epochs=2)
      rng = np.random.default_rng(0)
      batches = [{"image": rng.standard_normal((8, 6, 6, 2), np.float32),
                  "label": rng.integers(0, 3, 8).astype(np.int32),
                  "mask": np.ones(8, np.float32)} for _ in range(3)]
      out = []
      for devices in (jax.devices()[:1], jax.devices()):
        mesh = parallel.make_mesh(devices)
        # A copy: the step donates its input state.
        s = parallel.replicate(jax.tree.map(np.asarray, state), mesh)
        for b in batches:
          s, m = step(s, parallel.shard_batch(b, mesh), jax.random.key(0))
        assert s.params["Dense_0"]["kernel"].sharding.is_fully_replicated
        out.append(np.asarray(s.params["Dense_0"]["kernel"]))
      np.testing.assert_allclose(out[0], out[1], rtol=1e-5, atol=1e-6)
      print("ok", len(jax.devices()))
      """
  proc = run_with_cpu_devices(code, n=2)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "ok 2" in proc.stdout
