"""The static shape of one elastic MobileNet sub-network, and what it costs.

A layout lists every running block with its channel counts, kernel and stride.
The discrete view slices the supernet's weights to it, the extracted
standalone network is built from it, and cost functions count from it.
"""

from __future__ import annotations

import dataclasses
import math

from supernet.spaces.elastic import ElasticMbvArch, ElasticMobileNetSpace


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """One MBConv block: expand 1x1, depthwise kxk (strided), project 1x1.

  Attributes:
    stage: stage index.
    index: block index within the stage.
    in_channels: input channels.
    mid_channels: hidden (expanded) channels.
    out_channels: output channels.
    kernel: depthwise kernel size.
    stride: depthwise stride.
    residual: whether the block adds its input to its output.
  """

  stage: int
  index: int
  in_channels: int
  mid_channels: int
  out_channels: int
  kernel: int
  stride: int
  residual: bool

  @property
  def name(self) -> str:
    """The block's parameter scope in the supernet and the extracted net."""
    return f"stage{self.stage}_block{self.index}"


@dataclasses.dataclass(frozen=True)
class MbvLayout:
  """Static description of one sub-network.

  Attributes:
    resolution: input side length.
    stem_channels: stem convolution output channels.
    stem_stride: stem stride.
    blocks: running blocks in execution order.
    head_channels: channels of the final 1x1 convolution.
  """

  resolution: int
  stem_channels: int
  stem_stride: int
  blocks: tuple[BlockSpec, ...]
  head_channels: int


def mbv_layout(space: ElasticMobileNetSpace, arch: ElasticMbvArch
               ) -> MbvLayout:
  """The layout of ``arch`` (validated against ``space``).

  Args:
    space: the elastic MobileNet space.
    arch: one of its architectures.

  Returns:
    The static layout; channel counts are the first-k slices of the largest.
  """
  space.validate(arch)
  blocks = []
  for s in range(space.num_stages):
    for j in range(arch.depths[s]):
      cin = space.block_in_channels(s, j, arch.width)
      blocks.append(BlockSpec(
          stage=s, index=j, in_channels=cin,
          mid_channels=space.mid_channels(cin, arch.expands[s][j]),
          out_channels=space.stage_channels(s, arch.width),
          kernel=arch.kernels[s][j], stride=space.block_stride(s, j),
          residual=space.block_residual(s, j)))
  return MbvLayout(resolution=arch.resolution,
                   stem_channels=space.stem_channels(arch.width),
                   stem_stride=space.stem_stride, blocks=tuple(blocks),
                   head_channels=space.head_width)


def mbv_costs(layout: MbvLayout, in_channels: int, num_classes: int
              ) -> dict[str, int]:
  """Multiply-accumulates and parameters of a sub-network.

  Convolutions count ``H_out * W_out * k * k * C_in * C_out`` (depthwise: ``C``
  instead of ``C_in * C_out``); BatchNorm is folded, so it costs nothing at
  inference but its scale and bias count as parameters.

  Args:
    layout: the sub-network's layout.
    in_channels: image channels.
    num_classes: classifier outputs.

  Returns:
    ``{"macs": ..., "params": ...}``.
  """
  size = math.ceil(layout.resolution / layout.stem_stride)
  c = layout.stem_channels
  macs = size * size * 9 * in_channels * c
  params = 9 * in_channels * c + 2 * c
  for b in layout.blocks:
    macs += size * size * b.in_channels * b.mid_channels
    params += b.in_channels * b.mid_channels + 2 * b.mid_channels
    size = math.ceil(size / b.stride)
    macs += size * size * b.kernel * b.kernel * b.mid_channels
    params += b.kernel * b.kernel * b.mid_channels + 2 * b.mid_channels
    macs += size * size * b.mid_channels * b.out_channels
    params += b.mid_channels * b.out_channels + 2 * b.out_channels
    c = b.out_channels
  macs += size * size * c * layout.head_channels
  params += c * layout.head_channels + 2 * layout.head_channels
  macs += layout.head_channels * num_classes
  params += layout.head_channels * num_classes + num_classes
  return {"macs": int(macs), "params": int(params)}
