"""A Vision Transformer (ViT) built from :class:`TransformerBlock`."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.blocks import TransformerBlock


class VisionTransformer(nn.Module):
  """ViT: patch embedding, class token, learned positions, pre-norm blocks.

  ``vit_tiny`` (patch 16, width 192, 12 blocks, 3 heads) has 5,717,416
  parameters at 224x224 with 1000 classes, the count of the common
  ``vit_tiny_patch16_224`` layout.

  Attributes:
    patch_size: square patch size (the embedding's kernel and stride).
    dim: model width.
    depth: number of Transformer blocks.
    num_heads: attention heads.
    mlp_ratio: MLP width over model width.
    num_classes: output logits.
    dropout: dropout rate inside blocks (training only).
  """

  patch_size: int = 16
  dim: int = 192
  depth: int = 12
  num_heads: int = 3
  mlp_ratio: float = 4.0
  num_classes: int = 1000
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    p = self.patch_size
    x = nn.Conv(self.dim, (p, p), strides=(p, p), padding="VALID",
                name="patch_embed")(x)
    batch, h, w, _ = x.shape
    x = x.reshape(batch, h * w, self.dim)
    cls = self.param("cls_token", nn.initializers.zeros, (1, 1, self.dim))
    x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, self.dim)), x], 1)
    pos = self.param("pos_embed", nn.initializers.normal(0.02),
                     (1, h * w + 1, self.dim))
    x = nn.Dropout(self.dropout, deterministic=not train)(x + pos)
    for i in range(self.depth):
      x = TransformerBlock(self.num_heads, self.mlp_ratio, dropout=self.dropout,
                           name=f"block{i + 1}")(x, train)
    x = nn.LayerNorm(epsilon=1e-6, name="norm")(x)
    return nn.Dense(self.num_classes, name="head")(x[:, 0])
