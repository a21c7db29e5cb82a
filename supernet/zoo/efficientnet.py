"""EfficientNet B0-B7: the B0 baseline and the compound-scaling rule.

B1-B7 are not tables of channels: they are B0 with widths multiplied by the
width coefficient (rounded with :func:`supernet.blocks.make_divisible`, i.e.
to multiples of 8, never more than 10% down) and block repeats multiplied by
the depth coefficient (rounded up), as in the paper and the Keras and
torchvision implementations -- which is why the parameter counts match
theirs exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax

from supernet.blocks import ConvBN, MBConv, make_divisible
from supernet.zoo.heads import Classifier


class Stage(NamedTuple):
  """One stage of the B0 baseline."""

  kernel: int
  repeats: int
  channels: int
  expand: int
  stride: int


# The EfficientNet-B0 baseline (found by MnasNet-style search).
B0_STAGES: tuple[Stage, ...] = (
    Stage(3, 1, 16, 1, 1), Stage(3, 2, 24, 6, 2), Stage(5, 2, 40, 6, 2),
    Stage(3, 3, 80, 6, 2), Stage(5, 3, 112, 6, 1), Stage(5, 4, 192, 6, 2),
    Stage(3, 1, 320, 6, 1))


class Scaling(NamedTuple):
  """Compound-scaling coefficients of one EfficientNet."""

  width: float
  depth: float
  resolution: int
  dropout: float


# Per-model width/depth coefficients, resolution and dropout (paper, Table 1
# and the reference implementation).
SCALINGS: dict[str, Scaling] = {
    "efficientnet_b0": Scaling(1.0, 1.0, 224, 0.2),
    "efficientnet_b1": Scaling(1.0, 1.1, 240, 0.2),
    "efficientnet_b2": Scaling(1.1, 1.2, 260, 0.3),
    "efficientnet_b3": Scaling(1.2, 1.4, 300, 0.3),
    "efficientnet_b4": Scaling(1.4, 1.8, 380, 0.4),
    "efficientnet_b5": Scaling(1.6, 2.2, 456, 0.4),
    "efficientnet_b6": Scaling(1.8, 2.6, 528, 0.5),
    "efficientnet_b7": Scaling(2.0, 3.1, 600, 0.5),
}


def scale_width(channels: int, coefficient: float) -> int:
  """Channels of a scaled EfficientNet (multiple of 8, at most 10% down)."""
  return make_divisible(channels * coefficient, 8)


def scale_depth(repeats: int, coefficient: float) -> int:
  """Blocks of a scaled stage (rounded up)."""
  return int(math.ceil(repeats * coefficient))


class EfficientNet(nn.Module):
  """EfficientNet: stem, MBConv stages with SE and swish, 1x1 head conv.

  BatchNorm uses momentum 0.99 and epsilon 1e-3 (the reference's values).
  Stochastic depth grows linearly with the block index up to
  ``drop_connect_rate``.

  Attributes:
    width_coefficient: channel multiplier.
    depth_coefficient: repeat multiplier.
    dropout: dropout before the classifier (training only).
    drop_connect_rate: stochastic depth of the last block.
    num_classes: output logits.
    depthwise_impl: depthwise implementation.
  """

  width_coefficient: float = 1.0
  depth_coefficient: float = 1.0
  dropout: float = 0.2
  drop_connect_rate: float = 0.2
  num_classes: int = 1000
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bn = dict(bn_momentum=0.99, bn_epsilon=1e-3)
    width = self.width_coefficient
    x = ConvBN(scale_width(32, width), 3, 2, act="swish", name="stem", **bn)(
        x, train)
    total = sum(scale_depth(s.repeats, self.depth_coefficient)
                for s in B0_STAGES)
    block = 0
    for i, stage in enumerate(B0_STAGES):
      for j in range(scale_depth(stage.repeats, self.depth_coefficient)):
        x = MBConv(scale_width(stage.channels, width), stage.expand,
                   stage.kernel, stage.stride if j == 0 else 1, se_ratio=0.25,
                   act="swish",
                   drop_path_rate=self.drop_connect_rate * block / total,
                   depthwise_impl=self.depthwise_impl,
                   name=f"stage{i + 1}_block{j + 1}", **bn)(x, train)
        block += 1
    x = ConvBN(scale_width(1280, width), 1, act="swish", name="head_conv",
               **bn)(x, train)
    return Classifier(self.num_classes, self.dropout, name="head")(x, train)
