"""Classic building blocks as flax modules (fixed networks and candidates).

Every block is called as ``block(x, train)`` on NHWC images (Transformer
blocks on ``(batch, tokens, dim)``), uses ``nn.BatchNorm(use_running_average=
not train)``, and routes depthwise convolutions through
:class:`supernet.ops.depthwise.DepthwiseConv` with its ``depthwise_impl``.
"""

from supernet.blocks.common import (
    ACTIVATIONS,
    ConvBN,
    DepthwiseBN,
    activation,
    channel_shuffle,
    drop_path,
    make_divisible,
)
from supernet.blocks.mobilenet import DepthwiseSeparable, MBConv, SqueezeExcite
from supernet.blocks.resnet import Bottleneck
from supernet.blocks.shufflenet import ShuffleV1Unit, ShuffleV2Unit
from supernet.blocks.transformer import MultiHeadSelfAttention, TransformerBlock

__all__ = [
    "ACTIVATIONS", "Bottleneck", "ConvBN", "DepthwiseBN", "DepthwiseSeparable",
    "MBConv", "MultiHeadSelfAttention", "ShuffleV1Unit", "ShuffleV2Unit",
    "SqueezeExcite", "TransformerBlock", "activation", "channel_shuffle",
    "drop_path", "make_divisible",
]
