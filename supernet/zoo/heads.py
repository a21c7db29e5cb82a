"""The classifier head shared by the convolutional reference networks."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class Classifier(nn.Module):
  """Global average pooling, dropout, and a dense layer with bias.

  Attributes:
    num_classes: output logits.
    dropout: dropout rate before the dense layer (training only).
  """

  num_classes: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name="fc")(x)
