"""MobileNet-family blocks: depthwise-separable (V1), MBConv (V2/EfficientNet).

Every depthwise convolution goes through
:class:`supernet.ops.depthwise.DepthwiseConv` with the ``depthwise_impl``
attribute handed down by the network, so the CPU path is fast and the
parameters are the same for every implementation.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.blocks.common import ConvBN, DepthwiseBN, activation, drop_path


class DepthwiseSeparable(nn.Module):
  """MobileNetV1 block: depthwise kxk + BN + act, pointwise 1x1 + BN + act.

  Attributes:
    features: output channels of the pointwise convolution.
    strides: stride of the depthwise convolution.
    kernel_size: depthwise kernel size.
    act: activation name (MobileNetV1 uses ReLU6).
    depthwise_impl: depthwise implementation.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  features: int
  strides: int = 1
  kernel_size: int = 3
  act: str = "relu6"
  depthwise_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
    x = DepthwiseBN(self.kernel_size, self.strides, act=self.act,
                    depthwise_impl=self.depthwise_impl, name="depthwise",
                    **bn)(x, train)
    return ConvBN(self.features, 1, act=self.act, name="pointwise", **bn)(
        x, train)


class SqueezeExcite(nn.Module):
  """Squeeze-and-excitation: channel gates from globally pooled features.

  Two 1x1 convolutions with bias on the pooled ``(N, 1, 1, C)`` tensor, as in
  EfficientNet (so the parameters and the counted MACs match it).

  Attributes:
    reduced: channels of the squeeze layer.
    act: activation of the squeeze layer.
    gate: activation producing the gates.
  """

  reduced: int
  act: str = "swish"
  gate: str = "sigmoid"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = nn.Conv(self.reduced, (1, 1), name="reduce")(s)
    s = activation(self.act)(s)
    s = nn.Conv(channels, (1, 1), name="expand")(s)
    return x * activation(self.gate)(s)


class MBConv(nn.Module):
  """Inverted residual (MobileNetV2) / MBConv (EfficientNet) block.

  1x1 expansion (skipped when ``expand_ratio == 1``), depthwise kxk, optional
  squeeze-excitation, and a linear 1x1 projection (no activation: the linear
  bottleneck). The skip is added when the stride is 1 and the channel count
  is unchanged.

  Attributes:
    features: output channels.
    expand_ratio: hidden channels = ``round(in_channels * expand_ratio)``.
    kernel_size: depthwise kernel size.
    strides: depthwise stride.
    se_ratio: squeeze channels as a fraction of the block's *input* channels
      (EfficientNet's rule, ``max(1, int(in * se_ratio))``); 0 disables SE.
    act: activation name (``relu6`` for MobileNetV2, ``swish`` for
      EfficientNet).
    drop_path_rate: stochastic depth of the residual branch (training only).
    depthwise_impl: depthwise implementation.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  features: int
  expand_ratio: float = 6
  kernel_size: int = 3
  strides: int = 1
  se_ratio: float = 0.0
  act: str = "relu6"
  drop_path_rate: float = 0.0
  depthwise_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
    in_ch = x.shape[-1]
    hidden = int(round(in_ch * self.expand_ratio))
    y = x
    if hidden != in_ch:
      y = ConvBN(hidden, 1, act=self.act, name="expand", **bn)(y, train)
    y = DepthwiseBN(self.kernel_size, self.strides, act=self.act,
                    depthwise_impl=self.depthwise_impl, name="depthwise",
                    **bn)(y, train)
    if self.se_ratio > 0:
      y = SqueezeExcite(max(1, int(in_ch * self.se_ratio)), act=self.act,
                        name="se")(y)
    y = ConvBN(self.features, 1, act="identity", name="project", **bn)(y, train)
    if self.strides == 1 and in_ch == self.features:
      y = x + drop_path(self, y, self.drop_path_rate, train)
    return y
