"""Reference networks built only from :mod:`supernet.blocks`, by name.

``build_model(name, ...) -> (module, input_shape_hwc)``; the registry
:data:`MODELS` lists the names (resnet50, mobilenet_v1, mobilenet_v2,
shufflenet_v2, efficientnet_b0..b7, vit_tiny).
"""

from supernet.zoo.efficientnet import SCALINGS, EfficientNet
from supernet.zoo.mobilenet import MobileNetV1, MobileNetV2
from supernet.zoo.registry import MODELS, ModelInfo, build_model
from supernet.zoo.resnet import ResNet
from supernet.zoo.shufflenet import SHUFFLENET_V2_CHANNELS, ShuffleNetV2
from supernet.zoo.vit import VisionTransformer

__all__ = [
    "EfficientNet", "MODELS", "MobileNetV1", "MobileNetV2", "ModelInfo",
    "ResNet", "SCALINGS", "SHUFFLENET_V2_CHANNELS", "ShuffleNetV2",
    "VisionTransformer", "build_model",
]
