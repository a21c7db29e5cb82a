"""Evaluating many sub-networks at once, and how much faster that is.

:func:`evaluate_population` re-calibrates BatchNorm and measures accuracy for
P architectures in one jitted call: the masked view under ``jax.lax.map``
(vmapped chunks of the population), so new architectures never recompile.
:func:`evaluate_subnet` is the discrete path, one compilation per
architecture (:func:`supernet.elastic.bench.bench_population` compares them).
Both serve every elastic family; for one without BatchNorm (the ViT)
re-calibration is skipped and ``calib_images`` may be None.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from supernet.elastic.bn import recalibrate_bn_masked
from supernet.elastic.family import family_of

Tree = Any


def stack_eval(batches: Sequence[dict[str, Any]]) -> tuple[jax.Array, ...]:
  """``(images, labels, weights)`` of evaluation batches stacked on axis 0."""
  if not batches:
    from supernet.errors import UserError
    raise UserError("evaluation needs at least one batch")
  return (jnp.stack([jnp.asarray(b["image"]) for b in batches]),
          jnp.stack([jnp.asarray(b["label"]) for b in batches]),
          jnp.stack([jnp.asarray(b.get("mask", np.ones(len(b["label"]))),
                                 jnp.float32) for b in batches]))


def _correct(model, params, stats, arch, evals) -> jax.Array:
  """Number of correct predictions over stacked evaluation batches."""
  def body(total, batch):
    x, y, w = batch
    logits = model.apply({"params": params, "batch_stats": stats}, x, arch)
    return total + jnp.sum((jnp.argmax(logits, -1) == y) * w), None

  total, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), evals)
  return total


@functools.lru_cache(maxsize=8)
def _population_fn(model: Any, chunk: int):
  batch_norm = family_of(model).batch_norm

  def run(params, batch_stats, masks, calib_images, evals):
    def one(m):
      stats = batch_stats
      if batch_norm:
        stats = recalibrate_bn_masked(model, params, batch_stats, m,
                                      calib_images)
      return _correct(model, params, stats, m, evals)
    return jax.lax.map(one, masks, batch_size=chunk)
  return jax.jit(run)


def evaluate_population(model: Any, params: Tree,
                        batch_stats: Tree, archs: Sequence[Any],
                        calib_images: jax.Array | None,
                        evals: tuple[jax.Array, jax.Array, jax.Array],
                        chunk: int = 16) -> np.ndarray:
  """Accuracy of every architecture after its own BN re-calibration.

  Args:
    model: the elastic supernet (any family).
    params: its parameters.
    batch_stats: its running statistics (template for re-calibration).
    archs: P architectures of ``model.space``.
    calib_images: ``(K, N, H, W, C)`` training images for re-calibration
      (unused, may be None, for a family without BatchNorm).
    evals: stacked evaluation batches (:func:`stack_eval`).
    chunk: sub-networks vmapped together (bounds memory); the population is
      processed in chunks inside the one compiled call.

  Returns:
    ``(P,)`` accuracies in [0, 1].
  """
  family = family_of(model)
  if family.batch_norm and calib_images is None:
    raise ValueError("BatchNorm re-calibration needs calib_images")
  masks = family.population_masks(model.space, archs)
  fn = _population_fn(model, max(1, min(int(chunk), len(archs))))
  correct = fn(params, batch_stats, masks, calib_images, evals)
  return np.asarray(correct) / float(np.sum(np.asarray(evals[2])))


def evaluate_subnet(model: Any, params: Tree, batch_stats: Tree,
                    arch: Any, calib_images: jax.Array | None,
                    evals: tuple[jax.Array, jax.Array, jax.Array]) -> float:
  """Accuracy of one architecture in the discrete view (compiles per arch).

  Args:
    model: the elastic supernet (any family).
    params: its parameters.
    batch_stats: its running statistics.
    arch: the architecture.
    calib_images: ``(K, N, H, W, C)`` training images for re-calibration
      (unused, may be None, for a family without BatchNorm).
    evals: stacked evaluation batches.

  Returns:
    The accuracy in [0, 1].
  """
  from supernet.elastic.bn import batch_moments, merge_stats
  batch_norm = family_of(model).batch_norm

  @jax.jit
  def run(params, batch_stats, calib_images, evals):
    if not batch_norm:
      return _correct(model, params, batch_stats, arch, evals)

    def body(total, x):
      m = batch_moments(model, params, batch_stats, x, arch)
      return jax.tree.map(jnp.add, total, m), None
    first = batch_moments(model, params, batch_stats, calib_images[0], arch)
    total, _ = jax.lax.scan(body, first, calib_images[1:])
    stats = merge_stats(batch_stats, jax.tree.map(
        lambda t: t / calib_images.shape[0], total))
    return _correct(model, params, stats, arch, evals)

  correct = run(params, batch_stats, calib_images, evals)
  return float(correct) / float(np.sum(np.asarray(evals[2])))
