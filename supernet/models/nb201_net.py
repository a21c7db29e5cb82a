"""The NAS-Bench-201 network: one module for the supernet and for one cell.

The macro skeleton of the benchmark: a 3x3 conv stem (C channels), three
stages of ``cells_per_stage`` cells at C, 2C, 4C channels separated by ResNet
basic blocks that halve the resolution, then BN-ReLU, global pooling and a
linear classifier.

Two views of the same parameters:
  * supernet (``arch=None``): every edge is a mixed op weighted by
    ``weights["cell"]`` (6 x 5, rows = edges, columns = ``OPS``);
  * one architecture (``arch`` an :class:`Nb201Arch`): only the chosen op
    runs on each edge. Its parameters are a subset of the supernet's (same
    names), so a derived cell inherits its weights by selection.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from supernet.models.darts_ops import ReLUConvBN, avg_pool_3x3, batch_norm
from supernet.spaces.nb201 import EDGES, NUM_NODES, OPS, Nb201Arch


class Nb201Op(nn.Module):
  """One NB201 candidate op at constant channels and stride 1."""

  kind: str
  channels: int
  affine: bool

  @nn.compact
  def __call__(self, x, train: bool):
    if self.kind == "none":
      return jnp.zeros_like(x)
    if self.kind == "skip_connect":
      return x
    if self.kind == "nor_conv_1x1":
      return ReLUConvBN(self.channels, 1, 1, self.affine, name="conv")(x, train)
    if self.kind == "nor_conv_3x3":
      return ReLUConvBN(self.channels, 3, 1, self.affine, name="conv")(x, train)
    if self.kind == "avg_pool_3x3":
      return avg_pool_3x3(x, 1)
    raise ValueError(f"unknown nb201 op {self.kind!r}")


class Nb201Cell(nn.Module):
  channels: int
  affine: bool
  ops: tuple[str, ...] | None = None  # None: the mixed (supernet) cell

  @nn.compact
  def __call__(self, x, weights, train: bool):
    nodes = [x]
    for j in range(1, NUM_NODES):
      total = None
      for e, (target, i) in enumerate(EDGES):
        if target != j:
          continue
        if self.ops is not None:
          if self.ops[e] == "none":
            continue
          y = Nb201Op(self.ops[e], self.channels, self.affine,
                      name=f"edge{e}_{self.ops[e]}")(nodes[i], train)
        else:
          y = None
          for k, kind in enumerate(OPS):
            if kind == "none":
              continue
            t = weights[e, k] * Nb201Op(kind, self.channels, self.affine,
                                        name=f"edge{e}_{kind}")(nodes[i], train)
            y = t if y is None else y + t
        total = y if total is None else total + y
      nodes.append(jnp.zeros_like(x) if total is None else total)
    return nodes[-1]


class ResNetBasicBlock(nn.Module):
  """NB201's reduction block: two ReLU-Conv-BN, avg-pool + 1x1 shortcut."""

  channels: int
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool):
    y = ReLUConvBN(self.channels, 3, 2, self.affine, name="conv_a")(x, train)
    y = ReLUConvBN(self.channels, 3, 1, self.affine, name="conv_b")(y, train)
    s = nn.avg_pool(x, (2, 2), (2, 2))
    s = nn.Conv(self.channels, (1, 1), use_bias=False, name="downsample")(s)
    return s + y


class Nb201Network(nn.Module):
  """NAS-Bench-201 network (supernet when ``arch`` is None).

  Attributes:
    num_classes: classifier outputs.
    channels: stem/first-stage channels (16 in the benchmark).
    cells_per_stage: cells per stage (5 in the benchmark).
    arch: a fixed cell, or None for the supernet.
    affine: BatchNorm scale/offset in the cells (benchmark training: True;
      NB201's own search used False).
  """

  num_classes: int
  channels: int = 16
  cells_per_stage: int = 5
  arch: Nb201Arch | None = None
  affine: bool = True

  @nn.compact
  def __call__(self, x, weights=None, train: bool = True):
    ops = self.arch.ops if self.arch is not None else None
    cell_weights = None if weights is None else weights["cell"]
    if ops is None and cell_weights is None:
      raise ValueError("the NB201 supernet needs mixing weights")
    x = nn.Conv(self.channels, (3, 3), padding=((1, 1), (1, 1)),
                use_bias=False, name="stem_conv")(x)
    x = batch_norm(train, True, name="stem_bn")(x)
    c = self.channels
    for stage in range(3):
      if stage:
        c *= 2
        x = ResNetBasicBlock(c, name=f"reduce{stage}")(x, train)
      for i in range(self.cells_per_stage):
        x = Nb201Cell(c, self.affine, ops, name=f"stage{stage}_cell{i}")(
            x, cell_weights, train)
    x = nn.relu(batch_norm(train, True, name="last_bn")(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="classifier")(x)
