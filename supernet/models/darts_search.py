"""The DARTS search network: one supernet over the cell space.

Every edge of a cell is a mixed operation over all candidate ops, weighted by
mixing weights computed from the architecture parameters outside the module
(:mod:`supernet.models.mixed`). The macro skeleton follows the DARTS paper: a
3x3 conv stem (3C channels), ``layers`` cells with reduction cells at 1/3 and
2/3 of the depth (doubling channels), global average pooling and a linear
classifier. Search BatchNorms are affine-free, as in the paper.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.models import darts_ops
from supernet.spaces.darts import NUM_EDGES, NUM_NODES, PRIMITIVES, edge_index


def channel_shuffle(x: jax.Array, groups: int) -> jax.Array:
  """Interleaves ``groups`` channel groups (ShuffleNet / PC-DARTS)."""
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, groups, c // groups)
  return jnp.swapaxes(x, 3, 4).reshape(n, h, w, c)


class MixedOp(nn.Module):
  """Weighted sum of every candidate op on one edge (the DARTS MixedOp).

  With ``partial_channels = K > 1`` (PC-DARTS) only the first ``C/K``
  channels go through the ops; the rest bypass the edge (max-pooled when the
  edge reduces) and the channels are shuffled.
  """

  channels: int
  strides: int
  partial_channels: int = 1
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, weights, train: bool):
    k = self.partial_channels
    c_ops = self.channels // k
    xs = x[..., :c_ops] if k > 1 else x
    out = None
    for i, name in enumerate(PRIMITIVES):
      if name == "none":  # contributes w * 0: nothing to compute
        continue
      op = darts_ops.make_op(name, c_ops, self.strides, affine=False,
                             depthwise_impl=self.depthwise_impl, pool_bn=True,
                             op_name=name)
      term = weights[i] * op(xs, train)
      out = term if out is None else out + term
    if k == 1:
      return out
    rest = x[..., c_ops:]
    if self.strides == 2:
      rest = nn.max_pool(rest, (2, 2), (2, 2))
    return channel_shuffle(jnp.concatenate([out, rest], axis=-1), k)


class SearchCell(nn.Module):
  """A DARTS cell with a mixed op on each of its 14 edges."""

  channels: int
  reduction: bool
  reduction_prev: bool
  partial_channels: int = 1
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, s0, s1, weights, betas, train: bool):
    c = self.channels
    if self.reduction_prev:
      s0 = darts_ops.FactorizedReduce(c, affine=False, name="preprocess0")(
          s0, train)
    else:
      s0 = darts_ops.ReLUConvBN(c, 1, 1, affine=False, name="preprocess0")(
          s0, train)
    s1 = darts_ops.ReLUConvBN(c, 1, 1, affine=False, name="preprocess1")(
        s1, train)
    states = [s0, s1]
    for node in range(NUM_NODES):
      first = edge_index(node, 0)
      n_in = len(states)
      # PC-DARTS edge normalisation: softmax over this node's inputs.
      node_betas = (jax.nn.softmax(betas[first:first + n_in])
                    if betas is not None else None)
      total = None
      for j, h in enumerate(states):
        e = first + j
        strides = 2 if self.reduction and j < 2 else 1
        y = MixedOp(c, strides, self.partial_channels, self.depthwise_impl,
                    name=f"edge{e}")(h, weights[e], train)
        if node_betas is not None:
          y = node_betas[j] * y
        total = y if total is None else total + y
      states.append(total)
    return jnp.concatenate(states[2:], axis=-1)


class DartsSearchNetwork(nn.Module):
  """The DARTS supernet (search network).

  Attributes:
    num_classes: classifier outputs.
    channels: initial channels C (16 in the paper).
    layers: number of cells (8 in the paper).
    stem_multiplier: stem outputs ``stem_multiplier * C`` channels.
    partial_channels: PC-DARTS K (1 = plain DARTS).
    depthwise_impl: depthwise convolution implementation.
  """

  num_classes: int
  channels: int = 16
  layers: int = 8
  stem_multiplier: int = 3
  partial_channels: int = 1
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, weights: dict, train: bool = True):
    """Logits of ``x`` (NHWC) under mixing ``weights`` (see ``mixed.py``)."""
    c_cur = self.stem_multiplier * self.channels
    x = nn.Conv(c_cur, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                name="stem_conv")(x)
    x = darts_ops.batch_norm(train, affine=True, name="stem_bn")(x)
    s0 = s1 = x
    c_cur = self.channels
    reduction_prev = False
    for i in range(self.layers):
      reduction = i in reduction_layers(self.layers)
      if reduction:
        c_cur *= 2
      kind = "reduce" if reduction else "normal"
      cell = SearchCell(c_cur, reduction, reduction_prev,
                        self.partial_channels, self.depthwise_impl,
                        name=f"cell{i}")
      s0, s1 = s1, cell(s0, s1, weights[kind], weights.get(kind + "_beta"),
                        train)
      reduction_prev = reduction
    x = jnp.mean(s1, axis=(1, 2))
    return nn.Dense(self.num_classes, name="classifier")(x)


def reduction_layers(layers: int) -> tuple[int, ...]:
  """Cells that reduce resolution: at 1/3 and 2/3 of the depth."""
  return (layers // 3, 2 * layers // 3)


def init_alphas(key: jax.Array, num_ops: int = len(PRIMITIVES),
                edge_normalisation: bool = False, scale: float = 1e-3
                ) -> dict[str, jax.Array]:
  """DARTS initial architecture parameters: ``scale * N(0, 1)`` logits."""
  kn, kr = jax.random.split(key)
  alphas = {"normal": scale * jax.random.normal(kn, (NUM_EDGES, num_ops)),
            "reduce": scale * jax.random.normal(kr, (NUM_EDGES, num_ops))}
  if edge_normalisation:
    alphas["normal_beta"] = scale * jax.random.normal(
        jax.random.fold_in(kn, 1), (NUM_EDGES,))
    alphas["reduce_beta"] = scale * jax.random.normal(
        jax.random.fold_in(kr, 1), (NUM_EDGES,))
  return alphas
