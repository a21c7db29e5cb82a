"""Architectures as arrays: the masked view's encoding, sampled inside jit.

The masked view runs the largest network and zeroes what a sub-network does
not have: channels past its width or expand ratio, blocks past its depth, taps
outside its kernel. An architecture becomes a pytree of arrays
(:class:`MbvMasks`) with the same shapes for every architecture, so a
population stacks along a leading axis and ``jax.vmap`` runs it under one
compilation, and a training step can sample sub-networks with ``jax.random``
without recompiling.

Everything is computed from the integer tokens of
:class:`~supernet.spaces.elastic.ElasticMobileNetSpace` through lookup tables,
so ``masks_from_tokens`` works on host values and on traced arrays alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from supernet.spaces.elastic import ElasticMbvArch, ElasticMobileNetSpace

# Names of the elastic dimensions (progressive shrinking enables them in turn).
DIMENSIONS = ("resolution", "width", "depth", "kernel", "expand")


class MbvMasks(NamedTuple):
  """One sub-network as arrays (add a leading axis for a population).

  Attributes:
    resolution: int32 index into ``space.resolutions``.
    stem: ``(C_stem,)`` 0/1 mask of the stem's channels.
    stages: per stage, ``(C_s,)`` mask of its output channels.
    mids: per block of the largest network (stage-major), ``(C_mid,)`` mask of
      its hidden channels.
    kernels: ``(num_blocks, num_kernel_choices)`` one-hot kernel choice.
    active: ``(num_blocks,)`` 1.0 where the block runs.
  """

  resolution: jax.Array
  stem: jax.Array
  stages: tuple[jax.Array, ...]
  mids: tuple[jax.Array, ...]
  kernels: jax.Array
  active: jax.Array


def _prefix_mask(count: jax.Array, size: int) -> jax.Array:
  return (jnp.arange(size) < count).astype(jnp.float32)


def masks_from_tokens(space: ElasticMobileNetSpace, tokens: jax.Array
                      ) -> MbvMasks:
  """Masks of the architecture with integer ``tokens`` (traceable).

  Args:
    space: the elastic MobileNet space.
    tokens: ``(num_tokens,)`` integers, as :meth:`space.encode` returns; may be
      a traced array (sampled inside a jitted step).

  Returns:
    The :class:`MbvMasks` of that architecture.
  """
  tokens = jnp.asarray(tokens, jnp.int32)
  widths = space.width_choices
  w = tokens[1]
  stem_counts = jnp.asarray([space.stem_channels(x) for x in widths])
  stem = _prefix_mask(stem_counts[w], space.stem_channels(widths[-1]))
  stages = tuple(
      _prefix_mask(jnp.asarray([space.stage_channels(s, x) for x in widths])[w],
                   space.stage_channels(s, widths[-1]))
      for s in range(space.num_stages))
  mids, kernels, active = [], [], []
  depth_values = jnp.asarray(space.depth_choices)
  for s in range(space.num_stages):
    depth = depth_values[tokens[space.token_index(s)]]
    for j in range(space.max_depth):
      # counts[w, e]: hidden channels at width choice w and expand choice e.
      counts = np.asarray([[space.mid_channels(
          space.block_in_channels(s, j, x), e) for e in space.expand_choices]
          for x in widths])
      e = tokens[space.token_index(s, j, "expand")]
      mids.append(_prefix_mask(jnp.asarray(counts)[w, e], int(counts.max())))
      kernels.append(jax.nn.one_hot(tokens[space.token_index(s, j, "kernel")],
                                    len(space.kernel_choices)))
      active.append((j < depth).astype(jnp.float32))
  return MbvMasks(resolution=tokens[0], stem=stem, stages=stages,
                  mids=tuple(mids), kernels=jnp.stack(kernels),
                  active=jnp.stack(active))


def arch_masks(space: ElasticMobileNetSpace, arch: ElasticMbvArch) -> MbvMasks:
  """Masks of one architecture (host side)."""
  return masks_from_tokens(space, jnp.asarray(space.encode(arch)))


def population_masks(space: ElasticMobileNetSpace,
                     archs: Sequence[ElasticMbvArch]) -> MbvMasks:
  """Masks of several architectures stacked along a leading axis."""
  tokens = jnp.asarray([space.encode(a) for a in archs], jnp.int32)
  return jax.vmap(lambda t: masks_from_tokens(space, t))(tokens)


def bounds_for_dimensions(cards: Sequence[int], token_dims: Sequence[str],
                          elastic: Sequence[str], valid: Sequence[str]
                          ) -> tuple[np.ndarray, np.ndarray]:
  """Sampling bounds of tokens, given the elastic dimension of each token.

  Shared by every elastic family: a token whose dimension is not elastic is
  pinned to its largest choice.

  Args:
    cards: number of choices of each token.
    token_dims: the elastic dimension each token belongs to.
    elastic: names from ``valid`` that may take any choice.
    valid: the family's dimension names (a typo is a one-line UserError).

  Returns:
    ``(lo, hi)`` int32 arrays of shape ``(num_tokens,)``, inclusive bounds.
  """
  unknown = set(elastic) - set(valid)
  if unknown:
    from supernet.errors import UserError
    raise UserError(f"unknown elastic dimension(s) {sorted(unknown)}; valid: "
                    f"{list(valid)}")
  hi = np.asarray(cards, np.int32) - 1
  lo = hi.copy()
  for i, dim in enumerate(token_dims):
    if dim in elastic:
      lo[i] = 0
  return lo, hi


def token_bounds(space: ElasticMobileNetSpace,
                 elastic: Sequence[str] = DIMENSIONS
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Lowest and highest token of each decision when only ``elastic`` vary.

  A dimension that is not elastic is pinned to its largest choice (progressive
  shrinking trains the largest network first, then lets kernel, depth and
  expand ratio shrink in turn).

  Args:
    space: the elastic MobileNet space.
    elastic: names from :data:`DIMENSIONS` that may take any choice.

  Returns:
    ``(lo, hi)`` int32 arrays of shape ``(num_tokens,)``, inclusive bounds.
  """
  dims = ["resolution", "width"]
  for _ in range(space.num_stages):
    dims.append("depth")
    dims += ["kernel", "expand"] * space.max_depth
  return bounds_for_dimensions(space.cardinalities(), dims, elastic,
                               DIMENSIONS)


def sample_tokens(key: jax.Array, lo: jax.Array, hi: jax.Array,
                  num: int | None = None) -> jax.Array:
  """Uniform tokens within inclusive bounds (traceable).

  Args:
    key: PRNG key.
    lo: ``(num_tokens,)`` lowest token values.
    hi: ``(num_tokens,)`` highest token values.
    num: if given, sample this many architectures (leading axis).

  Returns:
    int32 tokens, ``(num_tokens,)`` or ``(num, num_tokens)``.
  """
  shape = lo.shape if num is None else (num,) + lo.shape
  return jax.random.randint(key, shape, lo, hi + 1, dtype=jnp.int32)
