"""ResNet-50 (torchvision layout: stride on the 3x3 of the bottleneck)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from supernet.blocks import Bottleneck, ConvBN
from supernet.zoo.heads import Classifier


class ResNet(nn.Module):
  """Bottleneck ResNet: 7x7/2 stem, 3x3/2 max-pool, four stages, classifier.

  Attributes:
    stage_sizes: bottleneck blocks per stage (``(3, 4, 6, 3)`` is ResNet-50).
    num_classes: output logits.
    width: bottleneck width of the first stage (doubles every stage).
  """

  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  num_classes: int = 1000
  width: int = 64

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = ConvBN(self.width, 7, 2, act="relu", name="stem")(x, train)
    x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
    for i, size in enumerate(self.stage_sizes):
      for j in range(size):
        strides = 2 if i > 0 and j == 0 else 1
        x = Bottleneck(self.width * 2**i, strides,
                       name=f"stage{i + 1}_block{j + 1}")(x, train)
    return Classifier(self.num_classes, name="head")(x, train)
