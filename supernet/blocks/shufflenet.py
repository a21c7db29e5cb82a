"""ShuffleNet units: v1 (group pointwise + shuffle) and v2 (split + shuffle)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.blocks.common import ConvBN, DepthwiseBN, channel_shuffle


class ShuffleV1Unit(nn.Module):
  """ShuffleNet (v1) unit.

  Group 1x1 conv + BN + ReLU, channel shuffle, depthwise 3x3 (strided) + BN,
  group 1x1 conv + BN. Stride 1: added to the input, then ReLU. Stride 2: the
  input, 3x3 average-pooled, is concatenated (so the branch produces
  ``features - in_channels`` channels), then ReLU.

  Attributes:
    features: output channels of the unit.
    groups: groups of the pointwise convolutions.
    strides: 1 or 2.
    group_first_pointwise: group the first 1x1 convolution; the paper turns
      it off for the first unit of the first stage, whose input is narrow.
    bottleneck_ratio: bottleneck channels over output channels (1/4).
    depthwise_impl: depthwise implementation.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  features: int
  groups: int = 3
  strides: int = 1
  group_first_pointwise: bool = True
  bottleneck_ratio: float = 0.25
  depthwise_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
    in_ch = x.shape[-1]
    if self.strides == 1 and in_ch != self.features:
      raise ValueError(f"stride-1 ShuffleNet unit keeps channels: got {in_ch} "
                       f"-> {self.features}")
    branch_out = self.features - in_ch if self.strides != 1 else self.features
    mid = int(self.features * self.bottleneck_ratio)
    first_groups = self.groups if self.group_first_pointwise else 1
    y = ConvBN(mid, 1, groups=first_groups, act="relu", name="reduce",
               **bn)(x, train)
    if first_groups > 1:
      y = channel_shuffle(y, first_groups)
    y = DepthwiseBN(3, self.strides, act="identity",
                    depthwise_impl=self.depthwise_impl, name="depthwise",
                    **bn)(y, train)
    y = ConvBN(branch_out, 1, groups=self.groups, act="identity",
               name="expand", **bn)(y, train)
    if self.strides == 1:
      return nn.relu(x + y)
    s = self.strides
    shortcut = nn.avg_pool(x, (3, 3), (s, s), padding="SAME")
    return nn.relu(jnp.concatenate([shortcut, y], axis=-1))


class ShuffleV2Unit(nn.Module):
  """ShuffleNet V2 unit (basic unit for stride 1, down-sampling for stride 2).

  Stride 1: the channels are split in half; one half passes through, the
  other goes 1x1 + BN + ReLU, depthwise 3x3 + BN, 1x1 + BN + ReLU. Stride 2:
  both branches see the whole input -- the left one is depthwise 3x3 + BN,
  1x1 + BN + ReLU -- and each outputs half of ``features``. The halves are
  concatenated and shuffled with 2 groups.

  Attributes:
    features: output channels (even).
    strides: 1 or 2.
    depthwise_impl: depthwise implementation.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  features: int
  strides: int = 1
  depthwise_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  def _branch(self, x: jax.Array, train: bool, prefix: str) -> jax.Array:
    bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
    half = self.features // 2
    x = ConvBN(half, 1, act="relu", name=f"{prefix}_reduce", **bn)(x, train)
    x = DepthwiseBN(3, self.strides, act="identity",
                    depthwise_impl=self.depthwise_impl,
                    name=f"{prefix}_depthwise", **bn)(x, train)
    return ConvBN(half, 1, act="relu", name=f"{prefix}_expand", **bn)(x, train)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.features % 2:
      raise ValueError(f"ShuffleNet V2 unit needs even features, got "
                       f"{self.features}")
    if self.strides == 1:
      if x.shape[-1] != self.features:
        raise ValueError(f"stride-1 ShuffleNet V2 unit keeps channels: got "
                         f"{x.shape[-1]} -> {self.features}")
      left, right = jnp.split(x, 2, axis=-1)
      right = self._branch(right, train, "right")
    else:
      bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
      left = DepthwiseBN(3, self.strides, act="identity",
                         depthwise_impl=self.depthwise_impl,
                         name="left_depthwise", **bn)(x, train)
      left = ConvBN(self.features // 2, 1, act="relu", name="left_project",
                    **bn)(left, train)
      right = self._branch(x, train, "right")
    return channel_shuffle(jnp.concatenate([left, right], axis=-1), 2)
