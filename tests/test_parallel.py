"""Tests of supernet.parallel: a data mesh, sharded batches, replication."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from supernet import parallel
from supernet.errors import UserError


def test_single_device_mesh_round_trip():
  mesh = parallel.make_mesh()
  assert mesh.axis_names == ("data",)
  assert mesh.devices.size == jax.device_count()
  batch = {"image": np.ones((4, 2, 2, 1), np.float32),
           "label": np.arange(4, dtype=np.int32)}
  sharded = parallel.shard_batch(batch, mesh)
  np.testing.assert_array_equal(sharded["label"], batch["label"])
  assert sharded["image"].sharding == parallel.batch_sharding(mesh)
  params = parallel.replicate({"w": np.zeros(3)}, mesh)
  assert params["w"].sharding.is_fully_replicated


_FOUR_DEVICES = """
import json
import jax, jax.numpy as jnp, numpy as np
from supernet import parallel
from supernet.errors import UserError

mesh = parallel.make_mesh()
rng = np.random.default_rng(0)
batch = {"image": rng.normal(size=(8, 4, 4, 3)).astype(np.float32),
         "label": np.arange(8, dtype=np.int32),
         "mask": np.ones(8, np.float32)}
sharded = parallel.shard_batch(batch, mesh)
image = sharded["image"]
params = parallel.replicate({"w": np.full((3,), 2.0, np.float32)}, mesh)

@jax.jit
def weighted_sum(params, batch):
  return jnp.sum(batch["image"] * params["w"] * batch["mask"][:, None, None, None])

try:
  parallel.shard_batch({"x": np.zeros((6, 2))}, mesh)
  divisible_error = ""
except UserError as e:
  divisible_error = str(e)

print(json.dumps({
    "devices": len(jax.devices()),
    "mesh_size": int(mesh.devices.size),
    "shard_shapes": sorted({tuple(s.data.shape) for s in image.addressable_shards}),
    "shard_devices": len({s.device for s in image.addressable_shards}),
    "replicated": bool(params["w"].sharding.is_fully_replicated),
    "sharded_sum": float(weighted_sum(params, sharded)),
    "host_sum": float((batch["image"] * 2.0).sum()),
    "labels": np.asarray(sharded["label"]).tolist(),
    "divisible_error": divisible_error,
}))
"""


def test_batch_is_split_across_four_fake_devices(run_with_cpu_devices):
  result = run_with_cpu_devices(_FOUR_DEVICES, n=4)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert out["devices"] == out["mesh_size"] == 4
  assert out["shard_shapes"] == [[2, 4, 4, 3]]
  assert out["shard_devices"] == 4
  assert out["replicated"]
  assert out["sharded_sum"] == pytest.approx(out["host_sum"], rel=1e-5)
  assert out["labels"] == list(range(8))
  assert "divisible by the number of devices" in out["divisible_error"]


def test_scalar_batch_entry_is_rejected():
  with pytest.raises(UserError, match="cannot be split"):
    parallel.shard_batch({"x": np.float32(1.0)}, parallel.make_mesh())
