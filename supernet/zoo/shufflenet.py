"""ShuffleNet V2 (torchvision layout, 0.5x / 1.0x / 1.5x / 2.0x)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from supernet.blocks import ConvBN, ShuffleV2Unit
from supernet.zoo.heads import Classifier

# width multiplier -> (stem, stage 2, stage 3, stage 4, last conv) channels.
SHUFFLENET_V2_CHANNELS: dict[float, tuple[int, ...]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}


class ShuffleNetV2(nn.Module):
  """ShuffleNet V2: 3x3/2 stem, max-pool, stages of (4, 8, 4) units.

  Each stage starts with a stride-2 unit. The channel table of each width is
  in :data:`SHUFFLENET_V2_CHANNELS`.

  Attributes:
    channels: stem, three stage and last-conv channel counts.
    stage_repeats: units per stage.
    num_classes: output logits.
    depthwise_impl: depthwise implementation.
  """

  channels: Sequence[int] = SHUFFLENET_V2_CHANNELS[1.0]
  stage_repeats: Sequence[int] = (4, 8, 4)
  num_classes: int = 1000
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = ConvBN(self.channels[0], 3, 2, act="relu", name="stem")(x, train)
    x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
    for i, repeats in enumerate(self.stage_repeats):
      for j in range(repeats):
        x = ShuffleV2Unit(self.channels[i + 1], 2 if j == 0 else 1,
                          depthwise_impl=self.depthwise_impl,
                          name=f"stage{i + 2}_unit{j + 1}")(x, train)
    x = ConvBN(self.channels[-1], 1, act="relu", name="last_conv")(x, train)
    return Classifier(self.num_classes, name="head")(x, train)
