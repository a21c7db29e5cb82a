"""``supernet bench``: time one jitted step of a config, without a dataset.

For gradient-search configs it benchmarks ``search_step`` (``--mode first |
second | exact``) on synthetic batches of the dataset's shape; for elastic
supernet configs it reports population evaluation throughput (vmapped masked
view against a loop over discrete subnets). Figures: compile seconds (in
all, and split into JAX tracing/lowering and XLA compilation),
median/min/max step milliseconds over ``--steps`` runs, images per second
and peak memory (XLA's memory analysis of the compiled step; on accelerators also
the device allocator's peak).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from supernet.config import load_config
from supernet.errors import UserError

# Datasets whose shape is known without preparing them (the bench needs none).
KNOWN_SHAPES = {"cifar10": ((32, 32, 3), 10), "cifar100": ((32, 32, 3), 100),
                "imagenet2012": ((224, 224, 3), 1000)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True)
  parser.add_argument("--mode", default=None,
                      help="hypergradient: first | second | exact "
                      "(default: the config's)")
  parser.add_argument("--batch", type=int, default=None,
                      help="batch size (default: the config's)")
  parser.add_argument("--steps", type=int, default=5,
                      help="timed steps after compilation (>= 5)")
  parser.add_argument("--population", type=int, default=64,
                      help="elastic configs: subnets evaluated at once")
  parser.add_argument("--json", action="store_true", help="print JSON only")


def _input_spec(config) -> tuple[tuple[int, int, int], int]:
  name = config.data.name
  size = config.data.get("image_size", 0)
  if name in KNOWN_SHAPES:
    (h, w, c), n = KNOWN_SHAPES[name]
    if size:
      h = w = size
    return (h, w, c), n
  from supernet.data import load_dataset
  info = load_dataset(config.data).info
  return tuple(info.image_shape), info.num_classes


def bench_search_step(config, mode: str, batch: int, steps: int) -> dict:
  """Compile and time the bilevel search step on synthetic batches."""
  import jax
  import jax.numpy as jnp

  from supernet import parallel
  from supernet.models import build_search_model, init_arch_params
  from supernet.search import bilevel
  from supernet.search.darts import check_search_config

  config.search.hypergradient = mode
  check_search_config(config)
  shape, num_classes = _input_spec(config)
  mesh = parallel.make_mesh()
  if batch < 1:
    raise UserError(f"--batch must be positive, not {batch}")
  if batch % len(mesh.devices.ravel()):
    raise UserError(f"--batch {batch} is not divisible by the "
                    f"{mesh.devices.size} devices")
  model = build_search_model(config, num_classes)
  w, a, s = config.optim.weights, config.optim.arch, config.search
  total = 1000
  tx, lr = bilevel.weight_optimizer(w.lr, w.lr_min, w.momentum,
                                    w.weight_decay, w.grad_clip, total)
  atx = bilevel.arch_optimizer(a.lr, a.b1, a.b2, a.weight_decay)
  key = jax.random.key(0)
  alphas = init_arch_params(config, key)
  state = bilevel.init_search_state(model, alphas,
                                    jnp.zeros((1,) + shape), key, s.mixing,
                                    tx, atx)
  state = parallel.replicate(state, mesh)
  rng = np.random.default_rng(0)

  def synthetic():
    return parallel.shard_batch({
        "image": rng.standard_normal((batch,) + shape).astype(np.float32),
        "label": rng.integers(0, num_classes, batch).astype(np.int32),
        "mask": np.ones(batch, np.float32)}, mesh)

  train_b, val_b = synthetic(), synthetic()
  step = bilevel.make_search_step(
      model, hypergradient=mode, mixing=s.mixing, weight_tx=tx, arch_tx=atx,
      weight_lr=lr, total_steps=total, tau_max=s.tau_max, tau_min=s.tau_min,
      fd_epsilon=s.get("fd_epsilon", 0.01))
  t0 = time.perf_counter()
  lowered = step.lower(state, train_b, val_b, key)
  lower_s = time.perf_counter() - t0
  compiled = lowered.compile()
  compile_s = time.perf_counter() - t0
  state, m = compiled(state, train_b, val_b, key)  # warm-up
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, m = compiled(state, train_b, val_b, key)
    jax.block_until_ready((state, m))
    times.append(time.perf_counter() - t0)
  ms = np.asarray(times) * 1e3
  mem = compiled.memory_analysis()
  result = {
      "config": config.space.name, "mode": mode, "mixing": s.mixing,
      "batch": batch, "input_shape": list(shape),
      "backend": jax.default_backend(),
      "device": jax.devices()[0].device_kind, "devices": mesh.devices.size,
      "compile_s": round(compile_s, 3),
      # Where the compile time goes: tracing and lowering the step in
      # Python (JAX), then XLA's optimisation and code generation.
      "trace_lower_s": round(lower_s, 3),
      "xla_compile_s": round(compile_s - lower_s, 3),
      "step_ms_median": round(float(np.median(ms)), 2),
      "step_ms_min": round(float(ms.min()), 2),
      "step_ms_max": round(float(ms.max()), 2), "steps": steps,
      "images_per_s": round(batch / (np.median(ms) / 1e3), 1),
  }
  if mem is not None:
    result["peak_bytes_xla"] = int(
        mem.temp_size_in_bytes + mem.argument_size_in_bytes
        + mem.output_size_in_bytes - mem.alias_size_in_bytes)
    result["peak_bytes_method"] = ("XLA memory analysis: temp + arguments + "
                                   "outputs - aliased")
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    result["peak_bytes_device"] = int(stats["peak_bytes_in_use"])
  return result


def run(args: argparse.Namespace) -> int:
  config = load_config(args.config, args.config_overrides)
  if args.steps < 5:
    raise UserError("--steps must be at least 5")
  space = config.space.name
  if space in ("elastic_mbv", "elastic_vit"):
    from supernet.elastic.bench import bench_population
    result = bench_population(config, args.population)
  else:
    mode = args.mode or config.search.hypergradient
    batch = config.data.batch_size if args.batch is None else args.batch
    result = bench_search_step(config, mode, batch, args.steps)
  if args.json:
    print(json.dumps(result))
  else:
    for k, v in result.items():
      print(f"{k:18s} {v}")
  return 0
