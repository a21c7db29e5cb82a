"""Weight-sharing training step: sandwich rule, one compilation, sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from supernet.elastic.masks import token_bounds
from supernet.elastic.mbv import ElasticMobileNet
from supernet.elastic.step import (
  create_train_state,
  make_optimizer,
  make_train_step,
  parse_phases,
  phase_dimensions,
)
from supernet.errors import UserError
from supernet.spaces.elastic import ElasticMobileNetSpace

TINY = dict(stem_width=4, stage_widths=(4, 8), stage_strides=(1, 2),
            depths=(1, 2), kernels=(3, 5), expands=(2, 3), widths=(0.5, 1.0),
            resolutions=(6, 8), head_width=16, channel_divisor=2)
TRAIN = ml_collections.ConfigDict(dict(
    num_random_subnets=2, sandwich=True, distill_alpha=0.5,
    distill_temperature=2.0, label_smoothing=0.1))


def _batch(n=16, seed=0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, n).astype(np.int32)
  # Learnable: the class sets the image's mean brightness.
  images = rng.normal(size=(n, 8, 8, 1)).astype(np.float32) * 0.3
  images += labels[:, None, None, None].astype(np.float32)
  return {"image": jnp.asarray(images), "label": jnp.asarray(labels),
          "mask": jnp.ones(n, jnp.float32)}


def test_phases():
  phases = parse_phases(("4:resolution,kernel", "0:kernel", "8:all"))
  assert phase_dimensions(phases, 0) == ("kernel",)
  assert phase_dimensions(phases, 5) == ("resolution", "kernel")
  assert len(phase_dimensions(phases, 9)) == 5
  assert len(phase_dimensions([], 3)) == 5
  with pytest.raises(UserError, match="unknown dimension"):
    parse_phases(("0:kernels",))
  with pytest.raises(UserError, match="must start at epoch 0"):
    parse_phases(("2:kernel",))


def test_token_bounds_pin_inactive_dimensions():
  space = ElasticMobileNetSpace.from_config(TINY)
  lo, hi = token_bounds(space, ("kernel",))
  arch = space.decode(lo)
  assert arch.depths == space.largest().depths
  assert arch.width == 1.0 and arch.resolution == 8
  assert arch.kernels[0] == (3, 3)
  assert space.decode(hi) == space.largest()


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam", "adamw"])
def test_optimizers(name):
  tx = make_optimizer(ml_collections.ConfigDict(dict(
      name=name, learning_rate=0.1, weight_decay=1e-4, warmup_epochs=1)),
      100, 10)
  params = {"a": {"kernel": jnp.ones((2, 2))}, "b": {"scale": jnp.ones(2)}}
  updates, _ = tx.update(params, tx.init(params), params)
  assert jax.tree.structure(updates) == jax.tree.structure(params)
  with pytest.raises(UserError, match="unknown optimiser"):
    make_optimizer(ml_collections.ConfigDict(dict(
        name="lamb", learning_rate=0.1)), 100, 10)


def test_step_compiles_once_learns_and_follows_phases():
  space = ElasticMobileNetSpace.from_config(TINY)
  model = ElasticMobileNet(space, 3, kernel_transform=True)
  tx = make_optimizer(ml_collections.ConfigDict(dict(
      name="adam", learning_rate=0.01)), 100, 10)
  state = create_train_state(model, jax.random.key(0), (8, 8, 1), tx,
                             token_bounds(space, ("kernel",)))
  step = jax.jit(make_train_step(model, tx, TRAIN))
  batch = _batch()
  key = jax.random.key(1)
  first = None
  for i in range(6):
    if i == 3:  # a new progressive-shrinking phase: new bounds, same shapes
      lo, hi = token_bounds(space)
      state = state.replace(token_lo=jnp.asarray(lo), token_hi=jnp.asarray(hi))
    state, metrics = step(state, batch, key)
    first = first or float(metrics["loss_largest"])
  assert step._cache_size() == 1
  assert int(state.step) == 6
  assert set(metrics) >= {"loss_largest", "acc_largest", "loss_subnets",
                          "acc_subnets", "loss_smallest", "acc_smallest"}
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["loss_largest"]) < first
  # The transformation matrices get gradients from smaller kernels.
  eye = jnp.eye(9)
  assert float(jnp.max(jnp.abs(
      state.params["stage0_kernel_transform_3"] - eye))) > 0


@pytest.mark.slow
def test_step_shards_over_two_devices():
  """The step runs with the batch sharded over a 'data' axis (fake CPUs)."""
  script = textwrap.dedent(f"""
      import jax, jax.numpy as jnp, ml_collections, numpy as np
      from supernet.elastic.masks import token_bounds
      from supernet.elastic.mbv import ElasticMobileNet
      from supernet.elastic.step import (create_train_state, make_optimizer,
                                         make_train_step)
      from supernet.parallel import make_mesh, replicate, shard_batch
      from supernet.spaces.elastic import ElasticMobileNetSpace
      assert jax.device_count() == 2
      space = ElasticMobileNetSpace.from_config({TINY!r})
      model = ElasticMobileNet(space, 3)
      tx = make_optimizer(ml_collections.ConfigDict(dict(name="sgd",
                                                         learning_rate=0.1)),
                          10, 1)
      cfg = ml_collections.ConfigDict(dict(num_random_subnets=1,
                                           sandwich=False))
      state = create_train_state(model, jax.random.key(0), (8, 8, 1), tx,
                                 token_bounds(space))
      step = jax.jit(make_train_step(model, tx, cfg))
      rng = np.random.default_rng(0)
      batch = {{"image": rng.normal(size=(8, 8, 8, 1)).astype(np.float32),
               "label": rng.integers(0, 3, 8).astype(np.int32),
               "mask": np.ones(8, np.float32)}}
      mesh = make_mesh()
      sharded = shard_batch(batch, mesh)
      assert len(sharded["image"].sharding.device_set) == 2
      out, m = step(replicate(state, mesh), sharded, jax.random.key(1))
      assert np.isfinite(float(m["loss_largest"]))
      assert int(out.step) == 1
      leaf = jax.tree.leaves(out.params)[0]
      assert leaf.sharding.is_fully_replicated
      print("ok")
  """)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "ok" in result.stdout
