"""The registry of reference networks and :func:`build_model`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn

from supernet.errors import UserError
from supernet.ops.depthwise import IMPLEMENTATIONS
from supernet.zoo.efficientnet import SCALINGS, EfficientNet
from supernet.zoo.mobilenet import MobileNetV1, MobileNetV2
from supernet.zoo.resnet import ResNet
from supernet.zoo.shufflenet import SHUFFLENET_V2_CHANNELS, ShuffleNetV2
from supernet.zoo.vit import VisionTransformer

# Builders take (num_classes, width, depthwise_impl); width is already
# validated (None when the model has no width option).
Builder = Callable[[int, float | None, str], nn.Module]


class ModelInfo(NamedTuple):
  """How to build one named reference network.

  Attributes:
    build: ``(num_classes, width, depthwise_impl) -> module``.
    resolution: default input resolution (square).
    widths: ``None`` (no width option), ``"any"`` (a positive multiplier) or
      the tuple of allowed multipliers.
    default_width: the width used when none is given.
    description: one line for help texts.
  """

  build: Builder
  resolution: int
  widths: None | str | tuple[float, ...]
  default_width: float | None
  description: str


def _efficientnet(name: str) -> Builder:
  s = SCALINGS[name]
  return lambda n, w, impl: EfficientNet(s.width, s.depth, s.dropout,
                                         num_classes=n, depthwise_impl=impl)


MODELS: dict[str, ModelInfo] = {
    "resnet50": ModelInfo(
        lambda n, w, impl: ResNet((3, 4, 6, 3), num_classes=n), 224, None,
        None, "ResNet-50 (torchvision layout), 25.6M params"),
    "mobilenet_v1": ModelInfo(
        lambda n, w, impl: MobileNetV1(w, n, depthwise_impl=impl), 224, "any",
        1.0, "MobileNetV1 (Keras layout), width multiplier"),
    "mobilenet_v2": ModelInfo(
        lambda n, w, impl: MobileNetV2(w, n, depthwise_impl=impl), 224, "any",
        1.0, "MobileNetV2 (torchvision layout), width multiplier"),
    "shufflenet_v2": ModelInfo(
        lambda n, w, impl: ShuffleNetV2(SHUFFLENET_V2_CHANNELS[w],
                                        num_classes=n, depthwise_impl=impl),
        224, tuple(SHUFFLENET_V2_CHANNELS), 1.0,
        "ShuffleNet V2 (torchvision layout), width 0.5/1.0/1.5/2.0"),
    **{name: ModelInfo(_efficientnet(name), SCALINGS[name].resolution, None,
                       None, f"EfficientNet-{name[-2:].upper()} (compound "
                       f"scaling of B0)")
       for name in SCALINGS},
    "vit_tiny": ModelInfo(
        lambda n, w, impl: VisionTransformer(16, 192, 12, 3, num_classes=n),
        224, None, None, "ViT-Tiny/16: width 192, 12 blocks, 3 heads"),
}

MIN_RESOLUTION = 32


def build_model(name: str, num_classes: int = 1000, width: float | None = None,
                resolution: int | None = None, depthwise_impl: str = "auto"
                ) -> tuple[nn.Module, tuple[int, int, int]]:
  """Builds a reference network by name.

  Args:
    name: a key of :data:`MODELS`.
    num_classes: output logits.
    width: width multiplier, for models that have one (default: the model's
      default width); giving one to a model without a width option is an
      error.
    resolution: square input resolution (default: the model's, e.g. 240 for
      EfficientNet-B1).
    depthwise_impl: depthwise implementation handed to every block.

  Returns:
    ``(module, (height, width, 3))``; call it as
    ``module.apply(variables, x, train=False)``.

  Raises:
    UserError: unknown name, width or implementation, or a bad resolution.
  """
  if name not in MODELS:
    raise UserError(f"unknown model {name!r}; valid models: {sorted(MODELS)}")
  info = MODELS[name]
  if not isinstance(num_classes, int) or num_classes < 1:
    raise UserError(f"num_classes must be a positive integer, got "
                    f"{num_classes!r}")
  if depthwise_impl not in IMPLEMENTATIONS:
    raise UserError(f"unknown depthwise implementation {depthwise_impl!r}; "
                    f"valid: {list(IMPLEMENTATIONS)}")
  if info.widths is None:
    if width is not None:
      raise UserError(f"model {name!r} has no width multiplier (got --width "
                      f"{width})")
  elif width is None:
    width = info.default_width
  elif info.widths == "any":
    if not (isinstance(width, (int, float)) and math.isfinite(width)
            and 0 < width <= 4):
      raise UserError(f"width of {name!r} must be in (0, 4], got {width!r}")
    width = float(width)
  elif width not in info.widths:
    raise UserError(f"width of {name!r} must be one of {list(info.widths)}, "
                    f"got {width!r}")
  else:
    width = float(width)
  resolution = info.resolution if resolution is None else resolution
  if not isinstance(resolution, int) or resolution < MIN_RESOLUTION:
    raise UserError(f"resolution must be an integer >= {MIN_RESOLUTION}, got "
                    f"{resolution!r}")
  if name == "vit_tiny" and resolution % 16:
    raise UserError(f"vit_tiny needs a resolution divisible by its patch size "
                    f"16, got {resolution}")
  return info.build(num_classes, width, depthwise_impl), (resolution,
                                                          resolution, 3)
