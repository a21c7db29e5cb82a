"""Training an elastic supernet: ``train_and_evaluate(config, workdir)``.

The loop around :mod:`supernet.elastic.step`: data, sharding over local
devices, progressive-shrinking phases, channel re-ordering, resumable
checkpoints, per-epoch summaries, and a final report of the largest,
smallest and random sub-networks after BN re-calibration (``subnets.csv``,
``accuracy_vs_macs.png``, ``results.json``).

One loop serves every elastic family (``elastic_mbv``, ``elastic_vit``): the
family (:mod:`supernet.elastic.family`) supplies the module, the token bounds
of each progressive-shrinking phase, costs and whether there is BatchNorm to
re-calibrate (the ViT has none) or channels to re-order (the MobileNet).
"""

from __future__ import annotations

import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from supernet.elastic.family import ElasticFamily, build_supernet
from supernet.elastic.step import (
  TrainState,
  create_train_state,
  make_optimizer,
  make_train_step,
  parse_phases,
  phase_dimensions,
)
from supernet.errors import UserError


def build_model(config: ml_collections.ConfigDict, num_classes: int
                ) -> tuple[Any, Any]:
  """The supernet and its space from an experiment config.

  Args:
    config: with ``space`` (an ``elastic_mbv`` or ``elastic_vit`` space) and
      ``model`` (MobileNet: ``kernel_transform``, ``depthwise_impl``,
      ``bn_momentum``, ``bn_epsilon``; the ViT takes none).
    num_classes: classifier outputs (from the dataset).

  Returns:
    ``(model, space)``.
  """
  _, model, space = build_supernet(config, num_classes)
  return model, space


def _bounds(family: ElasticFamily, space, dims):
  lo, hi = family.token_bounds(space, dims)
  return jnp.asarray(lo), jnp.asarray(hi)


def _eval_largest(model, space):
  largest = space.largest()

  @jax.jit
  def correct(params, stats, x, y, w):
    logits = model.apply({"params": params, "batch_stats": stats}, x, largest)
    return jnp.sum((jnp.argmax(logits, -1) == y) * w), jnp.sum(w)
  return correct


def _number_or_none(value: float) -> float | None:
  """NaN (an undefined correlation) as JSON null."""
  return None if np.isnan(value) else float(value)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str
                       ) -> dict[str, Any]:
  """Trains the elastic supernet of ``config`` in ``workdir`` and reports.

  Resumes from the newest checkpoint when ``workdir`` holds this run.

  Args:
    config: an elastic experiment config (``experiments/configs/ofa_*.py``).
    workdir: the run directory.

  Returns:
    The contents of ``results.json``.
  """
  from tqdm import tqdm

  from supernet.data import load_dataset
  from supernet.elastic.population import evaluate_population, stack_eval
  from supernet.parallel import make_mesh, replicate, shard_batch
  from supernet.rundir import RunDir

  run = RunDir(workdir, config, "train")
  data = load_dataset(config.data)
  info = data.info
  family, model, space = build_supernet(config, info.num_classes)
  mesh = make_mesh()
  tc = config.train
  steps_per_epoch = data.steps_per_epoch()
  epochs = int(tc.epochs)
  tx = make_optimizer(config.optim, epochs * steps_per_epoch, steps_per_epoch)
  dimensions = family.dimensions
  phases = parse_phases(tc.get("phases", ()), dimensions)
  reorder = bool(tc.get("reorder_channels", False))
  if reorder and family.reorder_channels is None:
    raise UserError(f"train.reorder_channels: not supported for "
                    f"{family.space_name}; set it to false")
  key_init, key_step, key_eval = jax.random.split(
      jax.random.key(int(config.seed)), 3)
  bounds = _bounds(family, space, phase_dimensions(phases, 0, dimensions))
  if run.checkpoints.latest_step() is None:
    state = create_train_state(model, key_init, info.image_shape, tx, bounds)
  else:
    # Resuming: shapes are all the restore needs, and initialising the
    # weights (one compiled random sampler per shape) costs seconds.
    template = jax.eval_shape(lambda k: create_train_state(
        model, k, info.image_shape, tx, bounds), key_init)
    restored = run.checkpoints.restore_latest(template.to_tree())
    state = TrainState.from_tree(restored[1])
    run.metrics.truncate_after(int(restored[0]))
  start_epoch = int(state.step) // steps_per_epoch
  state = replicate(state, mesh)
  step_fn = jax.jit(make_train_step(model, tx, tc), donate_argnums=0)
  eval_fn = _eval_largest(model, space)
  test_batches = [shard_batch(b, mesh) for b in data.eval_batches("test")]
  train_seconds = 0.0

  for epoch in range(start_epoch, epochs):
    dims = phase_dimensions(phases, epoch, dimensions)
    previous = (phase_dimensions(phases, epoch - 1, dimensions) if epoch
                else ())
    if (reorder and epoch > 0 and any(d in dims and d not in previous
                                      for d in family.reorder_dims)):
      params, stats, opt_state = family.reorder_channels(
          space, state.params, state.batch_stats, state.opt_state)
      state = replicate(state.replace(params=params, batch_stats=stats,
                                      opt_state=opt_state), mesh)
      tqdm.write(f"epoch {epoch}: channels re-ordered by importance")
    lo, hi = _bounds(family, space, dims)
    state = state.replace(token_lo=replicate(lo, mesh),
                          token_hi=replicate(hi, mesh))
    t0 = time.perf_counter()
    sums: dict[str, Any] = {}
    bar = tqdm(data.train_batches(epoch, int(config.seed)),
               total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}",
               leave=False, dynamic_ncols=True)
    for batch in bar:
      state, metrics = step_fn(state, shard_batch(batch, mesh), key_step)
      sums = metrics if not sums else jax.tree.map(jnp.add, sums, metrics)
    means = {k: float(v) / steps_per_epoch for k, v in sums.items()}
    train_seconds += time.perf_counter() - t0
    hits = total = 0.0
    for b in test_batches:
      c, n = eval_fn(state.params, state.batch_stats, b["image"], b["label"],
                     b["mask"])
      hits, total = hits + float(c), total + float(n)
    means["test_acc_largest"] = hits / max(total, 1.0)
    means["epoch"] = epoch + 1
    means["epoch_seconds"] = time.perf_counter() - t0
    run.metrics.log(int(state.step), means)
    tqdm.write(
        f"epoch {epoch + 1}/{epochs} [{','.join(dims) or 'largest only'}] "
        f"loss {means['loss_largest']:.3f}/{means.get('loss_subnets', 0):.3f} "
        f"train acc largest {means['acc_largest']:.3f} smallest "
        f"{means.get('acc_smallest', float('nan')):.3f}  test acc largest "
        f"{means['test_acc_largest']:.3f}  ({means['epoch_seconds']:.1f}s)")
    run.checkpoints.save(int(state.step), state.to_tree())

  # ---- final report ---------------------------------------------------------
  ev = config.evaluate
  archs = [space.largest(), space.smallest()] + space.sample_many(
      key_eval, int(ev.num_random))
  kinds = ["largest", "smallest"] + ["random"] * int(ev.num_random)
  bn_batches = int(ev.bn_batches) if family.batch_norm else 0
  calib = None  # no BatchNorm: nothing to re-calibrate
  if family.batch_norm:
    calib = jnp.stack([jnp.asarray(b["image"]) for b, _ in zip(
        data.train_batches(0, int(config.seed)), range(bn_batches))])
  evals = stack_eval(list(data.eval_batches("test")))
  t0 = time.perf_counter()
  accs = evaluate_population(model, state.params, state.batch_stats, archs,
                             calib, evals, int(ev.get("population_chunk", 16)))
  eval_seconds = time.perf_counter() - t0
  rows = []
  for kind, arch, acc in zip(kinds, archs, accs):
    cost = family.costs(space, arch, info.image_shape[-1], info.num_classes)
    rows.append({"kind": kind, "accuracy": float(acc), "macs": cost["macs"],
                 "params": cost["params"], "arch": arch.dumps()})
  from supernet.elastic import report
  report.write_subnets_csv(run.path("subnets.csv"), rows)
  baseline = None
  if config.get("baseline", {}).get("linear", False):
    baseline = report.linear_baseline(data.raw_arrays("train"),
                                      data.raw_arrays("test"))
  random_accs = [r["accuracy"] for r in rows if r["kind"] == "random"]
  rho_random, p_random = report.spearman(
      [r["macs"] for r in rows if r["kind"] == "random"], random_accs)
  rho_all, _ = report.spearman([r["macs"] for r in rows],
                               [r["accuracy"] for r in rows])
  recalibrated = " after BN re-calibration" if family.batch_norm else ""
  report.plot_accuracy_vs_macs(
      run.path("accuracy_vs_macs.png"), rows,
      f"{info.name} ({family.space_name}): {len(rows)} sub-networks"
      f"{recalibrated}\nSpearman(MACs, accuracy) of the random ones "
      f"{rho_random:.2f}", baseline,
      ylabel="test accuracy" + (" (BN re-calibrated)" if family.batch_norm
                                else ""))
  results = {
      "dataset": info.name,
      "space": family.space_name,
      "epochs": epochs,
      "steps": int(state.step),
      "train_seconds_this_session": train_seconds,
      "population_eval_seconds": eval_seconds,
      "accuracy_largest": rows[0]["accuracy"],
      "accuracy_smallest": rows[1]["accuracy"],
      "accuracy_random_mean": float(np.mean(random_accs)) if random_accs
                              else None,
      "accuracy_random_min": float(np.min(random_accs)) if random_accs
                             else None,
      "accuracy_random_max": float(np.max(random_accs)) if random_accs
                             else None,
      "macs_largest": rows[0]["macs"],
      "macs_smallest": rows[1]["macs"],
      # Over the random sub-networks (the extremes are trained at every
      # step, so they are not a sample of the space), and over all rows.
      "spearman_macs_accuracy_random": _number_or_none(rho_random),
      "spearman_pvalue_random": _number_or_none(p_random),
      "spearman_macs_accuracy": _number_or_none(rho_all),
      "linear_baseline_accuracy": baseline,
      "num_subnets": len(rows),
      "bn_batches": bn_batches,
  }
  run.write_json("results.json", results)
  tqdm.write(json.dumps(results, indent=1, default=float))
  run.close()
  return results
