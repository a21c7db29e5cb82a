"""A plain ViT with static shapes: what an extracted ViT sub-network runs.

Built from standard flax layers (``nn.Conv``, ``nn.LayerNorm``,
``nn.DenseGeneral``, ``nn.Dense``) and a :class:`VitLayout`, it knows nothing
of elastic dimensions, so an export needs no supernet code. Its layers
compute what the discrete view of :class:`~supernet.elastic.vit.ElasticViT`
computes (pre-norm blocks, mean-pooled tokens, no class token), and
:func:`vit_costs` counts its multiply-accumulates and parameters.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.elastic.layers import resize_images
from supernet.spaces.elastic import ElasticTransformerSpace, ElasticVitArch

# The supernet's LayerNorm (supernet.elastic.vit._layer_norm) uses this
# epsilon and the two-pass variance; the static layers must match it.
LN_EPSILON = 1e-6


@dataclasses.dataclass(frozen=True)
class VitLayout:
  """Static shapes of one ViT sub-network.

  Attributes:
    resolution: input side length (images are resized to it).
    patch_size: side of a patch (the embedding's kernel and stride).
    embed_dim: embedding width.
    head_dim: width of one attention head.
    heads: attention heads of each layer.
    mlp_hidden: MLP hidden units of each layer.
  """

  resolution: int
  patch_size: int
  embed_dim: int
  head_dim: int
  heads: tuple[int, ...]
  mlp_hidden: tuple[int, ...]

  @property
  def tokens(self) -> int:
    """Number of patches (the sequence length)."""
    return (self.resolution // self.patch_size) ** 2


def vit_layout(space: ElasticTransformerSpace, arch: ElasticVitArch
               ) -> VitLayout:
  """The static shapes of ``arch`` (validated against ``space``)."""
  space.encode(arch)  # a one-line UserError for an arch outside the space
  return VitLayout(
      resolution=space.resolution, patch_size=space.patch_size,
      embed_dim=arch.embed_dim, head_dim=space.head_dim,
      heads=tuple(arch.heads),
      mlp_hidden=tuple(space.mlp_channels(arch.embed_dim, r)
                       for r in arch.mlp_ratios))


def vit_costs(layout: VitLayout, in_channels: int, num_classes: int
              ) -> dict[str, int]:
  """Multiply-accumulates and parameters of a ViT sub-network.

  Per layer with ``N`` tokens, width ``d``, attention width ``a`` (heads x
  head_dim) and MLP width ``h``: ``N (3 d a + a d + 2 d h)`` for the
  projections and MLP plus ``2 N^2 a`` for the two attention products. With
  ``a = d`` this is the cost model's ``N (4 d^2 + 2 d h) + 2 N^2 d``
  (:func:`supernet.costs.studies.transformer_macs_formula`); the patch
  embedding and the classifier are added. LayerNorm, softmax and GELU are
  not multiply-accumulates (as in :func:`supernet.costs.count_macs`).

  Args:
    layout: the sub-network's layout.
    in_channels: image channels.
    num_classes: classifier outputs.

  Returns:
    ``{"macs": ..., "params": ...}``.
  """
  n, d, p = layout.tokens, layout.embed_dim, layout.patch_size
  patch = p * p * in_channels * d
  macs = n * patch
  params = patch + d + n * d  # kernel, bias, position embedding
  for heads, hidden in zip(layout.heads, layout.mlp_hidden):
    a = heads * layout.head_dim
    macs += n * (3 * d * a + a * d + 2 * d * hidden) + 2 * n * n * a
    params += (2 * d + d * 3 * a + 3 * a + a * d + d      # LN, qkv, proj
               + 2 * d + d * hidden + hidden + hidden * d + d)  # LN, MLP
  macs += d * num_classes
  params += 2 * d + d * num_classes + num_classes  # final LN, classifier
  return {"macs": int(macs), "params": int(params)}


def _layer_norm(name: str) -> nn.LayerNorm:
  return nn.LayerNorm(epsilon=LN_EPSILON, use_fast_variance=False, name=name)


class VitBlock(nn.Module):
  """Pre-norm Transformer block: ``x + MHSA(LN(x))``, ``x + MLP(LN(x))``.

  Attributes:
    heads: attention heads.
    head_dim: width of one head.
    mlp_hidden: MLP hidden units.
  """

  heads: int
  head_dim: int
  mlp_hidden: int

  @nn.compact
  def __call__(self, t: jax.Array) -> jax.Array:
    d = t.shape[-1]
    y = _layer_norm("ln1")(t)
    qkv = nn.DenseGeneral((3, self.heads, self.head_dim), name="qkv")(y)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    att = jax.nn.softmax(jnp.einsum("nthd,nshd->nhts", q, k)
                         / math.sqrt(self.head_dim))
    o = jnp.einsum("nhts,nshd->nthd", att, v)
    t = t + nn.DenseGeneral(d, axis=(-2, -1), name="proj")(o)
    y = _layer_norm("ln2")(t)
    y = nn.gelu(nn.Dense(self.mlp_hidden, name="fc1")(y))
    return t + nn.Dense(d, name="fc2")(y)


class ViT(nn.Module):
  """A Vision Transformer with the shapes of ``layout``.

  Patch embedding (a strided convolution) plus learned positions, pre-norm
  blocks, a final LayerNorm, the mean over tokens and a linear classifier.

  Attributes:
    layout: the static shapes (see :func:`vit_layout`).
    num_classes: classifier outputs.
  """

  layout: VitLayout
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits for NHWC images (resized to the layout's resolution if needed).

    Args:
      x: NHWC images.
      train: unused (no dropout or BatchNorm); the export calling convention.

    Returns:
      ``(N, num_classes)`` logits.
    """
    del train
    lay = self.layout
    p, d = lay.patch_size, lay.embed_dim
    x = resize_images(x, lay.resolution)
    t = nn.Conv(d, (p, p), strides=(p, p), padding="VALID",
                name="patch_embed")(x)
    t = t.reshape(t.shape[0], -1, d)
    t = t + self.param("pos_embed", nn.initializers.normal(0.02),
                       (t.shape[1], d))
    for j, (heads, hidden) in enumerate(zip(lay.heads, lay.mlp_hidden)):
      t = VitBlock(heads, lay.head_dim, hidden, name=f"layer{j}")(t)
    t = _layer_norm("final_ln")(t)
    return nn.Dense(self.num_classes, name="head")(jnp.mean(t, axis=1))
