"""Population evaluation throughput: vmapped masked view vs discrete loop."""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from supernet.elastic.population import evaluate_population, evaluate_subnet, stack_eval


def bench_population(config: Any, population: int = 64, *,
                     loop_subnets: int | None = None,
                     seed: int = 0) -> dict[str, Any]:
  """Sub-networks evaluated per second: vmapped masked view vs discrete loop.

  Both paths re-calibrate BN on ``config.evaluate.bn_batches`` training
  batches and measure accuracy on ``config.evaluate.bench_eval_batches`` test
  batches, from freshly initialised weights (speed does not depend on them).
  The loop compiles every architecture (static shapes), which is what
  evaluating new architectures costs in the discrete view; it is timed on
  ``loop_subnets`` architectures and extrapolated.

  Args:
    config: an elastic experiment config.
    population: P, sub-networks in the vmapped call.
    loop_subnets: how many to time in the loop (default ``min(P, 8)``).
    seed: seed of the weights and architectures.

  Returns:
    A dict of timings, rates (``*_subnets_per_s``), ``speedup`` (warm vmapped
    over the loop) and ``speedup_cold`` (vmapped including its compilation),
    and ``max_accuracy_diff`` between the two paths on the looped subnets.
  """
  from supernet.data import load_dataset
  from supernet.elastic.train import build_model

  data = load_dataset(config.data)
  model, space = build_model(config, data.info.num_classes)
  key_init, key_archs, key_more = jax.random.split(jax.random.key(seed), 3)
  from supernet.elastic.mbv import init_supernet
  variables = init_supernet(model, key_init, data.info.image_shape)
  params, stats = variables["params"], variables["batch_stats"]
  ev = config.evaluate
  calib = jnp.stack([jnp.asarray(b["image"]) for b, _ in zip(
      data.train_batches(0, seed), range(ev.bn_batches))])
  evals = stack_eval([b for b, _ in zip(data.eval_batches("test"),
                                        range(ev.get("bench_eval_batches", 1)))])
  archs = space.sample_many(key_archs, population)
  chunk = ev.get("population_chunk", 16)

  t = time.perf_counter()
  accs = evaluate_population(model, params, stats, archs, calib, evals, chunk)
  cold = time.perf_counter() - t
  more = space.sample_many(key_more, population)
  t = time.perf_counter()
  evaluate_population(model, params, stats, more, calib, evals, chunk)
  warm = time.perf_counter() - t

  n_loop = min(population, loop_subnets or 8)
  loop_accs = []
  t = time.perf_counter()
  for arch in archs[:n_loop]:
    loop_accs.append(evaluate_subnet(model, params, stats, arch, calib, evals))
  per_subnet = (time.perf_counter() - t) / n_loop
  return {
      "population": population,
      "vmapped_cold_s": cold,
      "vmapped_warm_s": warm,
      "vmapped_subnets_per_s": population / warm,
      "vmapped_cold_subnets_per_s": population / cold,
      "loop_subnets_timed": n_loop,
      "loop_s_per_subnet": per_subnet,
      "loop_subnets_per_s": 1.0 / per_subnet,
      "speedup": per_subnet * population / warm,
      "speedup_cold": per_subnet * population / cold,
      "max_accuracy_diff": float(np.max(np.abs(
          np.asarray(loop_accs) - accs[:n_loop]))),
  }
