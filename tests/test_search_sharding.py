"""The search step sharded over 4 fake CPU devices equals one device."""

import os

TESTS = os.path.dirname(os.path.abspath(__file__))

CODE = f"""
import sys
sys.path.insert(0, {TESTS!r})
import jax, numpy as np
from jax.sharding import Mesh
from supernet import parallel
from test_bilevel import _tiny_setup

assert len(jax.devices()) == 4
results = []
for devices in (jax.devices()[:1], jax.devices()):
  mesh = Mesh(np.array(devices), (parallel.DATA_AXIS,))
  _, _, step, state, train, val = _tiny_setup("second")
  step = jax.jit(step)
  state = parallel.replicate(state, mesh)
  train = parallel.shard_batch({{k: np.asarray(v) for k, v in train.items()}},
                               mesh)
  val = parallel.shard_batch({{k: np.asarray(v) for k, v in val.items()}}, mesh)
  assert len(train["image"].sharding.device_set) == len(devices)
  for _ in range(2):
    state, metrics = step(state, train, val, jax.random.key(0))
  results.append(jax.device_get((state.params, state.alphas, state.batch_stats,
                                 metrics)))
flat1, flat4 = (jax.tree.leaves(r) for r in results)
worst = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
            for a, b in zip(flat1, flat4))
assert worst < 1e-4, worst
print("max difference", worst)
"""


def test_sharded_search_step_matches_single_device(run_with_cpu_devices):
  proc = run_with_cpu_devices(CODE, n=4, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "max difference" in proc.stdout
