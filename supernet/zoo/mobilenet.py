"""MobileNetV1 (Keras layout) and MobileNetV2 (torchvision layout)."""

from __future__ import annotations

import flax.linen as nn
import jax

from supernet.blocks import ConvBN, DepthwiseSeparable, MBConv, make_divisible
from supernet.zoo.heads import Classifier

# (output channels, stride) of the 13 depthwise-separable blocks.
MOBILENET_V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

# (expand ratio t, channels c, repeats n, first stride s) of MobileNetV2.
MOBILENET_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV1(nn.Module):
  """MobileNetV1 with a width multiplier.

  Channels are ``int(c * width)`` and BatchNorm uses momentum 0.99 and
  epsilon 1e-3, as in Keras ``MobileNet`` (4,231,976 trainable parameters at
  width 1.0 with 1000 classes; its final 1x1 convolution with bias has the
  parameters of our dense layer).

  Attributes:
    width: width multiplier (alpha).
    num_classes: output logits.
    dropout: dropout before the classifier (training only).
    depthwise_impl: depthwise implementation.
  """

  width: float = 1.0
  num_classes: int = 1000
  dropout: float = 1e-3
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bn = dict(bn_momentum=0.99, bn_epsilon=1e-3)
    x = ConvBN(int(32 * self.width), 3, 2, act="relu6", name="stem", **bn)(
        x, train)
    for i, (channels, strides) in enumerate(MOBILENET_V1_BLOCKS):
      x = DepthwiseSeparable(int(channels * self.width), strides, act="relu6",
                             depthwise_impl=self.depthwise_impl,
                             name=f"block{i + 1}", **bn)(x, train)
    return Classifier(self.num_classes, self.dropout, name="head")(x, train)


class MobileNetV2(nn.Module):
  """MobileNetV2 with a width multiplier (torchvision rounding).

  Every channel count is ``make_divisible(c * width, 8)``; the last 1x1
  convolution has ``make_divisible(1280 * max(1, width), 8)`` channels.
  3,504,872 parameters at width 1.0 with 1000 classes.

  Attributes:
    width: width multiplier.
    num_classes: output logits.
    dropout: dropout before the classifier (training only).
    depthwise_impl: depthwise implementation.
  """

  width: float = 1.0
  num_classes: int = 1000
  dropout: float = 0.2
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = ConvBN(make_divisible(32 * self.width), 3, 2, act="relu6",
               name="stem")(x, train)
    block = 0
    for t, c, n, s in MOBILENET_V2_STAGES:
      for j in range(n):
        block += 1
        x = MBConv(make_divisible(c * self.width), t, 3, s if j == 0 else 1,
                   act="relu6", depthwise_impl=self.depthwise_impl,
                   name=f"block{block}")(x, train)
    last = make_divisible(1280 * max(1.0, self.width))
    x = ConvBN(last, 1, act="relu6", name="last_conv")(x, train)
    return Classifier(self.num_classes, self.dropout, name="head")(x, train)
