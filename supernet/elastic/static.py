"""A plain MobileNet with static shapes: what an extracted sub-network runs.

It uses standard flax layers (``nn.Conv``, ``nn.BatchNorm``, ``nn.Dense``)
and a depthwise convolution with the parameter layout of
:class:`~supernet.ops.depthwise.DepthwiseConv`, knows nothing of elastic
dimensions, and is built from a :class:`~supernet.elastic.layout.MbvLayout`,
so an export needs no supernet code.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.elastic.layers import relu6, resize_images
from supernet.elastic.layout import BlockSpec, MbvLayout
from supernet.elastic.toeplitz import dw_conv


class Depthwise(nn.Module):
  """'SAME' depthwise convolution, kernel ``(k, k, 1, C)`` as ``DepthwiseConv``.

  Attributes:
    kernel_size: square kernel size.
    strides: stride.
    impl: implementation (see :func:`~supernet.elastic.toeplitz.dw_conv`).
  """

  kernel_size: int
  strides: int = 1
  impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.he_normal(),
                        (k, k, 1, x.shape[-1]))
    return dw_conv(x, kernel, self.strides, self.impl)


class MBConv(nn.Module):
  """Expand 1x1, depthwise kxk, project 1x1, each with BatchNorm.

  Attributes:
    spec: the block's static shape.
    dw_impl: depthwise implementation.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  spec: BlockSpec
  dw_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    s = self.spec
    bn = lambda name: nn.BatchNorm(  # noqa: E731
        use_running_average=not train, momentum=self.bn_momentum,
        epsilon=self.bn_epsilon, name=name)
    h = nn.Conv(s.mid_channels, (1, 1), use_bias=False, name="expand_conv")(x)
    h = relu6(bn("expand_bn")(h))
    h = Depthwise(s.kernel, s.stride, self.dw_impl, name="dw_conv")(h)
    h = relu6(bn("dw_bn")(h))
    h = nn.Conv(s.out_channels, (1, 1), use_bias=False, name="project_conv")(h)
    h = bn("project_bn")(h)
    return x + h if s.residual else h


class MobileNet(nn.Module):
  """A MobileNet of MBConv blocks with the shapes of ``layout``.

  Attributes:
    layout: stem, blocks and head shapes (see :func:`mbv_layout`).
    num_classes: classifier outputs.
    dw_impl: depthwise implementation.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  layout: MbvLayout
  num_classes: int
  dw_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits for NHWC images (resized to the layout's resolution if needed)."""
    lay = self.layout
    bn = lambda name: nn.BatchNorm(  # noqa: E731
        use_running_average=not train, momentum=self.bn_momentum,
        epsilon=self.bn_epsilon, name=name)
    x = resize_images(x, lay.resolution)
    h = nn.Conv(lay.stem_channels, (3, 3), strides=lay.stem_stride,
                use_bias=False, name="stem_conv")(x)
    h = relu6(bn("stem_bn")(h))
    for spec in lay.blocks:
      h = MBConv(spec, self.dw_impl, self.bn_momentum, self.bn_epsilon,
                 name=spec.name)(h, train)
    h = nn.Conv(lay.head_channels, (1, 1), use_bias=False, name="head_conv")(h)
    h = relu6(bn("head_bn")(h))
    h = jnp.mean(h, axis=(1, 2))
    return nn.Dense(self.num_classes, name="classifier")(h)
