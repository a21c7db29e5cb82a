"""BatchNorm re-calibration: statistics of one sub-network, from scratch.

Weight-sharing training normalises with batch statistics, so the running
averages it leaves belong to no sub-network in particular. Before a
sub-network is evaluated its statistics are re-estimated (as in Once-for-All):
the mean of the per-batch means and variances over a few training batches,
with BatchNorm in training mode. These are pure functions returning new
``batch_stats``; nothing is updated in place.

The elastic ViT has no BatchNorm (LayerNorm normalises each token with its
own statistics, over the sub-network's active channels), so for it
re-calibration is a no-op: both functions return ``batch_stats`` unchanged
(empty) without running the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import flax
import jax
import jax.numpy as jnp

from supernet.elastic.layers import MOMENTS

Tree = Any


def batch_moments(model: Any, params: Tree, batch_stats: Tree, x: jax.Array,
                  arch: Any) -> Tree:
  """Per-BatchNorm batch mean and variance of one forward pass.

  Args:
    model: an elastic supernet module.
    params: its parameters.
    batch_stats: its running statistics (kept on channels ``arch`` lacks).
    x: NHWC images (any size: both views resize).
    arch: an architecture (discrete view) or its masks (masked view).

  Returns:
    A tree shaped like the ``batch_stats`` of the layers that ran.
  """
  _, updates = model.apply({"params": params, "batch_stats": batch_stats}, x,
                           arch, train=True, mutable=[MOMENTS])
  return updates[MOMENTS]


def merge_stats(batch_stats: Tree, moments: Tree) -> Tree:
  """``batch_stats`` with the entries present in ``moments`` replaced."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(batch_stats))
  flat.update(flax.traverse_util.flatten_dict(flax.core.unfreeze(moments)))
  return flax.traverse_util.unflatten_dict(flat)


def uses_batch_norm(model: Any) -> bool:
  """Whether an elastic supernet has BatchNorm statistics to re-calibrate."""
  from supernet.elastic.family import family_of
  return family_of(model).batch_norm


def recalibrate_bn(model: Any, params: Tree, batch_stats: Tree, arch: Any,
                   images: Iterable[jax.Array]) -> Tree:
  """Re-estimated ``batch_stats`` of the sub-network ``arch`` (discrete view).

  A no-op for a supernet without BatchNorm (the ViT): ``batch_stats`` is
  returned as it is.

  Args:
    model: an elastic supernet module.
    params: its parameters.
    batch_stats: its running statistics (a template; the layers ``arch`` runs
      get new values on the channels it uses).
    arch: the architecture.
    images: NHWC training images, one array per batch (any resolution: the
      discrete view resizes).

  Returns:
    New ``batch_stats``.
  """
  if not uses_batch_norm(model):
    return batch_stats
  step = jax.jit(lambda p, s, x: batch_moments(model, p, s, x, arch))
  total, count = None, 0
  for x in images:
    m = step(params, batch_stats, x)
    total = m if total is None else jax.tree.map(jnp.add, total, m)
    count += 1
  if total is None:
    return batch_stats
  return merge_stats(batch_stats, jax.tree.map(lambda t: t / count, total))


def recalibrate_bn_masked(model: Any, params: Tree, batch_stats: Tree,
                          masks: Any, images: jax.Array) -> Tree:
  """Re-estimated ``batch_stats`` for the masked view (traceable, vmappable).

  A no-op for a supernet without BatchNorm (the ViT).

  Args:
    model: an elastic supernet module.
    params: its parameters.
    batch_stats: its running statistics.
    masks: one architecture's masks.
    images: ``(K, N, H, W, C)`` stacked batches (any size).

  Returns:
    New ``batch_stats`` (same structure).
  """
  if not uses_batch_norm(model):
    return batch_stats
  shapes = jax.eval_shape(
      lambda x: batch_moments(model, params, batch_stats, x, masks), images[0])
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

  def body(total, x):
    m = batch_moments(model, params, batch_stats, x, masks)
    return jax.tree.map(jnp.add, total, m), None

  total, _ = jax.lax.scan(body, zeros, images)
  mean = jax.tree.map(lambda t: t / images.shape[0], total)
  return merge_stats(batch_stats, mean)


def stack_images(batches: Iterable[dict[str, Any]], num: int) -> jax.Array:
  """The images of the first ``num`` batches, stacked: ``(num, N, H, W, C)``.

  Args:
    batches: batch dicts with an ``"image"`` entry.
    num: how many batches to take.

  Returns:
    The stacked images.
  """
  out = []
  for batch in batches:
    if len(out) == num:
      break
    out.append(jnp.asarray(batch["image"]))
  if not out:
    from supernet.errors import UserError
    raise UserError("BN re-calibration needs at least one training batch")
  return jnp.stack(out)
