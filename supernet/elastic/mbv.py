"""The elastic MobileNet supernet: one module, a discrete and a masked view.

``ElasticMobileNet.apply(variables, x, arch, train=...)`` runs

* the discrete view when ``arch`` is an
  :class:`~supernet.spaces.elastic.ElasticMbvArch`: the input is resized to
  ``arch.resolution`` and only the sub-network runs, with weights sliced to
  static shapes (first channels, centre of the kernel, first blocks);
* the masked view when ``arch`` is :class:`~supernet.elastic.masks.MbvMasks`:
  the largest network runs with masks, so architectures are arrays and a
  population is one ``jax.vmap``. Resolution is a mask too: the image is
  resized to the sub-network's resolution and zero-padded to the largest
  (a ``lax.switch`` over the few resolutions, around the resize only), and a
  spatial mask after every BatchNorm keeps the padding at zero. Because every
  resolution is a multiple of the total stride, each strided layer pads the
  valid corner exactly as it would pad the smaller image, so this equals
  running at that resolution.

Both views use the same parameters and agree to float tolerance; the discrete
view of the largest architecture is the full supernet.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.elastic.layers import (
  ElasticBatchNorm,
  ElasticConv,
  kernel_for_size,
  padded_kernels,
  relu6,
  resize_images,
  spatial_mask,
  to_canvas,
)
from supernet.elastic.layout import BlockSpec, MbvLayout, mbv_layout
from supernet.elastic.masks import MbvMasks
from supernet.elastic.toeplitz import dw_conv
from supernet.spaces.elastic import ElasticMbvArch, ElasticMobileNetSpace


def transform_name(stage: int, size: int) -> str:
  """Parameter name of a stage's kernel transformation matrix to ``size``."""
  return f"stage{stage}_kernel_transform_{size}"


class ElasticMBConv(nn.Module):
  """An MBConv block with elastic hidden width, kernel size and output width.

  Attributes:
    full: the block in the largest network (parameter shapes).
    kernel_sizes: kernel choices, ascending.
    dw_impl: depthwise implementation (see :mod:`supernet.ops.depthwise`).
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  full: BlockSpec
  kernel_sizes: tuple[int, ...]
  dw_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  def _bn(self, name: str, features: int) -> ElasticBatchNorm:
    return ElasticBatchNorm(features, self.bn_momentum, self.bn_epsilon,
                            name=name)

  @nn.compact
  def __call__(self, x: jax.Array, choice: BlockSpec | tuple, train: bool,
               transforms: dict[int, jax.Array] | None) -> jax.Array:
    """Runs the block.

    Args:
      x: NHWC input.
      choice: discrete view: the sub-network's :class:`BlockSpec`; masked view:
        ``(mid_mask, out_mask, kernel_one_hot, active, size)`` with ``size``
        the side of the valid corner of ``x``.
      train: BatchNorm mode.
      transforms: the stage's kernel transformation matrices, or None.

    Returns:
      The block output (masked view: the input itself where inactive).
    """
    f = self.full
    kmax = self.kernel_sizes[-1]
    expand = ElasticConv(f.in_channels, f.mid_channels, name="expand_conv")
    project = ElasticConv(f.mid_channels, f.out_channels, name="project_conv")
    dw_kernel = self.param("dw_kernel", nn.initializers.he_normal(),
                           (kmax, kmax, 1, f.mid_channels))
    bns = [self._bn(n, c) for n, c in (("expand_bn", f.mid_channels),
                                       ("dw_bn", f.mid_channels),
                                       ("project_bn", f.out_channels))]
    if isinstance(choice, BlockSpec):
      h = relu6(bns[0](expand(x, choice.mid_channels), train))
      k = kernel_for_size(dw_kernel, choice.kernel, self.kernel_sizes,
                          transforms)[..., :choice.mid_channels]
      h = dw_conv(h, k, f.stride, self.dw_impl)
      h = relu6(bns[1](h, train))
      h = bns[2](project(h, choice.out_channels), train)
      return x + h if f.residual else h
    mid_mask, out_mask, one_hot, active, size = choice
    inside = spatial_mask(x.shape[1], size)
    h = relu6(bns[0](expand(x), train, mid_mask, inside))
    kernels = padded_kernels(dw_kernel, self.kernel_sizes, transforms)
    k = jnp.tensordot(one_hot, kernels, axes=1)
    h = dw_conv(h, k, f.stride, self.dw_impl)
    inside = spatial_mask(h.shape[1], size // f.stride)
    h = relu6(bns[1](h, train, mid_mask, inside))
    h = bns[2](project(h), train, out_mask, inside)
    if f.residual:
      return x + active * h
    return h


class ElasticMobileNet(nn.Module):
  """The elastic MobileNet supernet of a space (see the module docstring).

  Attributes:
    space: the search space (stage widths, strides and choices).
    num_classes: classifier outputs.
    kernel_transform: learn OFA kernel transformation matrices (one per stage
      and smaller kernel size) instead of using the plain kernel centre.
    dw_impl: depthwise implementation.
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  space: ElasticMobileNetSpace
  num_classes: int
  kernel_transform: bool = False
  dw_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @property
  def full_layout(self) -> MbvLayout:
    """Layout of the largest network (the parameter shapes)."""
    return mbv_layout(self.space, self.space.largest())

  def _bn(self, name: str, features: int) -> ElasticBatchNorm:
    return ElasticBatchNorm(features, self.bn_momentum, self.bn_epsilon,
                            name=name)

  def _transforms(self, stage: int) -> dict[int, jax.Array] | None:
    if not self.kernel_transform:
      return None
    return {k: self.param(transform_name(stage, k),
                          lambda _, n: jnp.eye(n, dtype=jnp.float32), k * k)
            for k in self.space.kernel_choices[:-1]}

  @nn.compact
  def __call__(self, x: jax.Array, arch: ElasticMbvArch | MbvMasks,
               train: bool = False) -> jax.Array:
    """Logits of the sub-network ``arch`` for NHWC images ``x``.

    Args:
      x: NHWC images (any size: both views resize).
      arch: an architecture (discrete view) or its masks (masked view).
      train: BatchNorm uses batch statistics.

    Returns:
      ``(N, num_classes)`` logits.
    """
    space = self.space
    full = self.full_layout
    discrete = isinstance(arch, ElasticMbvArch)
    layout = mbv_layout(space, arch) if discrete else None
    if discrete:
      x = resize_images(x, arch.resolution)
      size = inside = None
    else:
      canvas = space.resolutions[-1]
      x = jax.lax.switch(arch.resolution, [
          lambda x, r=r: to_canvas(x, r, canvas) for r in space.resolutions], x)
      size = jnp.asarray(space.resolutions)[arch.resolution] // space.stem_stride
    stem = ElasticConv(x.shape[-1], full.stem_channels, 3, space.stem_stride,
                       name="stem_conv")
    h = stem(x, layout.stem_channels if discrete else None)
    if not discrete:
      inside = spatial_mask(h.shape[1], size)
    h = relu6(self._bn("stem_bn", full.stem_channels)(
        h, train, None if discrete else arch.stem, inside))
    active = {(b.stage, b.index): b for b in layout.blocks} if discrete else {}
    transforms = None
    for i, fb in enumerate(full.blocks):
      if fb.index == 0:  # one set of matrices per stage, shared by its blocks
        transforms = self._transforms(fb.stage)
      block = ElasticMBConv(fb, space.kernel_choices, self.dw_impl,
                            self.bn_momentum, self.bn_epsilon, name=fb.name)
      if discrete:
        if (fb.stage, fb.index) in active:
          h = block(h, active[(fb.stage, fb.index)], train, transforms)
      else:
        choice = (arch.mids[i], arch.stages[fb.stage], arch.kernels[i],
                  arch.active[i], size)
        h = block(h, choice, train, transforms)
        size = size // fb.stride
    head = ElasticConv(full.blocks[-1].out_channels, full.head_channels,
                       name="head_conv")
    if not discrete:
      inside = spatial_mask(h.shape[1], size)
    h = relu6(self._bn("head_bn", full.head_channels)(head(h), train,
                                                      spatial=inside))
    if discrete:
      h = jnp.mean(h, axis=(1, 2))
    else:
      h = jnp.sum(h, axis=(1, 2)) / jnp.sum(inside)
    return nn.Dense(self.num_classes, name="classifier")(h)


def init_supernet(model: nn.Module, key: jax.Array,
                  image_shape: tuple[int, int, int]) -> dict[str, Any]:
  """Initial variables (``params``, ``batch_stats``) of the largest network.

  Works for any elastic supernet whose ``__call__`` takes ``(x, arch,
  train)``; one without BatchNorm (the ViT) has ``params`` only.

  Args:
    model: the supernet module.
    key: PRNG key.
    image_shape: ``(H, W, C)`` of the input images.

  Returns:
    The variables dict.
  """
  x = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
  return dict(model.init(key, x, model.space.largest(), train=False))
