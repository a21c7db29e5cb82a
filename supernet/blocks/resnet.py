"""The ResNet bottleneck block (1x1 reduce, 3x3, 1x1 expand, with a skip)."""

from __future__ import annotations

import flax.linen as nn
import jax

from supernet.blocks.common import ConvBN, activation, drop_path


class Bottleneck(nn.Module):
  """ResNet bottleneck: 1x1 -> 3x3 (strided) -> 1x1 x ``expansion``, plus skip.

  The stride sits on the 3x3 convolution (the "v1.5" placement torchvision
  uses; parameter counts do not depend on it). The shortcut is the identity
  when shapes agree, else a 1x1 strided projection with BatchNorm.

  Attributes:
    features: bottleneck width; the block outputs ``features * expansion``.
    strides: stride of the 3x3 convolution and of the projection.
    expansion: output channels over bottleneck channels.
    act: activation name.
    drop_path_rate: stochastic-depth rate of the residual branch.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  features: int
  strides: int = 1
  expansion: int = 4
  act: str = "relu"
  drop_path_rate: float = 0.0
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
    out_ch = self.features * self.expansion
    y = ConvBN(self.features, 1, act=self.act, name="reduce", **bn)(x, train)
    y = ConvBN(self.features, 3, self.strides, act=self.act, name="conv",
               **bn)(y, train)
    y = ConvBN(out_ch, 1, act="identity", name="expand", **bn)(y, train)
    shortcut = x
    if self.strides != 1 or x.shape[-1] != out_ch:
      shortcut = ConvBN(out_ch, 1, self.strides, act="identity",
                        name="projection", **bn)(x, train)
    y = drop_path(self, y, self.drop_path_rate, train)
    return activation(self.act)(shortcut + y)
