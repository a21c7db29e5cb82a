"""The elastic ViT supernet: discrete and masked views of one module.

Embedding width, depth, heads per layer and MLP width per layer are elastic
(AutoFormer style). The discrete view (an
:class:`~supernet.spaces.elastic.ElasticVitArch`) slices weights: the first
``embed_dim`` channels everywhere, the first ``heads`` attention heads (each
``head_dim`` wide), the first MLP hidden units, the first ``depth`` layers.
The masked view (:class:`VitMasks`) runs the largest network and masks the
same things; LayerNorm statistics are taken over the active channels only, so
both views agree to float tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from supernet.elastic.layers import resize_images
from supernet.elastic.masks import bounds_for_dimensions
from supernet.spaces.elastic import ElasticTransformerSpace, ElasticVitArch

# Names of the ViT's elastic dimensions (progressive shrinking enables them in
# turn; the order is a sensible default: depth first, width last).
VIT_DIMENSIONS = ("depth", "heads", "mlp_ratio", "embed")


class VitMasks(NamedTuple):
  """One ViT sub-network as arrays (add a leading axis for a population).

  Attributes:
    embed: ``(E,)`` mask of the embedding channels.
    heads: ``(L, H)`` mask of each layer's heads.
    hidden: ``(L, M)`` mask of each layer's MLP hidden units.
    active: ``(L,)`` 1.0 where the layer runs.
  """

  embed: jax.Array
  heads: jax.Array
  hidden: jax.Array
  active: jax.Array


def _prefix(count, size: int) -> jax.Array:
  return (jnp.arange(size) < count).astype(jnp.float32)


def vit_masks_from_tokens(space: ElasticTransformerSpace, tokens: jax.Array
                          ) -> VitMasks:
  """Masks of the architecture with integer ``tokens`` (traceable)."""
  tokens = jnp.asarray(tokens, jnp.int32)
  embeds = space.embed_choices
  e_max = embeds[-1]
  hidden_max = space.mlp_channels(e_max, space.mlp_ratio_choices[-1])
  counts = jnp.asarray(np.asarray([[space.mlp_channels(e, r)
                                    for r in space.mlp_ratio_choices]
                                   for e in embeds]))
  depth = jnp.asarray(space.depth_choices)[tokens[1]]
  heads, hidden, active = [], [], []
  for j in range(space.max_depth):
    h = jnp.asarray(space.head_choices)[tokens[2 + 2 * j]]
    heads.append(_prefix(h, space.head_choices[-1]))
    hidden.append(_prefix(counts[tokens[0], tokens[3 + 2 * j]], hidden_max))
    active.append((j < depth).astype(jnp.float32))
  return VitMasks(embed=_prefix(jnp.asarray(embeds)[tokens[0]], e_max),
                  heads=jnp.stack(heads), hidden=jnp.stack(hidden),
                  active=jnp.stack(active))


def vit_arch_masks(space: ElasticTransformerSpace, arch: ElasticVitArch
                   ) -> VitMasks:
  """Masks of one architecture (host side)."""
  return vit_masks_from_tokens(space, jnp.asarray(space.encode(arch)))


def vit_token_bounds(space: ElasticTransformerSpace,
                     elastic: Sequence[str] = VIT_DIMENSIONS
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Lowest and highest token of each decision when only ``elastic`` vary.

  Args:
    space: the elastic transformer space.
    elastic: names from :data:`VIT_DIMENSIONS` that may take any choice; the
      others are pinned to their largest choice.

  Returns:
    ``(lo, hi)`` int32 arrays of shape ``(num_tokens,)``, inclusive bounds.
  """
  dims = ["embed", "depth"] + ["heads", "mlp_ratio"] * space.max_depth
  return bounds_for_dimensions(space.cardinalities(), dims, elastic,
                               VIT_DIMENSIONS)


def _layer_norm(x, scale, bias, mask, eps=1e-6):
  """LayerNorm over the active channels (all of ``x``'s when mask is None)."""
  if mask is None:
    mean = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias
  count = jnp.sum(mask)
  mean = jnp.sum(x * mask, -1, keepdims=True) / count
  var = jnp.sum(jnp.square((x - mean) * mask), -1, keepdims=True) / count
  return ((x - mean) * jax.lax.rsqrt(var + eps) * scale + bias) * mask


class ElasticViT(nn.Module):
  """ViT supernet of an elastic transformer space (mean-pooled tokens).

  Attributes:
    space: the elastic transformer space.
    num_classes: classifier outputs.
  """

  space: ElasticTransformerSpace
  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, arch: ElasticVitArch | VitMasks,
               train: bool = False) -> jax.Array:
    """Logits of sub-network ``arch`` (discrete or masked view).

    Args:
      x: NHWC images (resized to the space's resolution).
      arch: an architecture or its masks.
      train: unused (no dropout or BatchNorm); kept for a uniform signature.

    Returns:
      ``(N, num_classes)`` logits.
    """
    del train
    sp = self.space
    p, hd = sp.patch_size, sp.head_dim
    e_max, h_max = sp.embed_choices[-1], sp.head_choices[-1]
    m_max = sp.mlp_channels(e_max, sp.mlp_ratio_choices[-1])
    discrete = isinstance(arch, ElasticVitArch)
    e = arch.embed_dim if discrete else e_max
    emb = None if discrete else arch.embed
    init = nn.initializers.lecun_normal()
    zeros, ones = nn.initializers.zeros, nn.initializers.ones

    x = resize_images(x, sp.resolution)
    n, c = x.shape[0], x.shape[-1]
    patch = self.param("patch_embed", init, (p, p, c, e_max))
    t = jax.lax.conv_general_dilated(
        x, patch[..., :e], (p, p), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    t = t.reshape(n, -1, e)
    pos = self.param("pos_embed", nn.initializers.normal(0.02),
                     (t.shape[1], e_max))
    t = t + self.param("patch_bias", zeros, (e_max,))[:e] + pos[:, :e]
    if emb is not None:
      t = t * emb
    depth = arch.depth if discrete else sp.max_depth
    for j in range(depth):
      name = f"layer{j}"
      heads = arch.heads[j] if discrete else h_max
      hidden = (sp.mlp_channels(e, arch.mlp_ratios[j]) if discrete else m_max)
      ln1 = (self.param(f"{name}_ln1_scale", ones, (e_max,))[:e],
             self.param(f"{name}_ln1_bias", zeros, (e_max,))[:e])
      qkv = self.param(f"{name}_qkv", init, (e_max, 3, h_max, hd))
      qkv_b = self.param(f"{name}_qkv_bias", zeros, (3, h_max, hd))
      proj = self.param(f"{name}_proj", init, (h_max, hd, e_max))
      proj_b = self.param(f"{name}_proj_bias", zeros, (e_max,))
      ln2 = (self.param(f"{name}_ln2_scale", ones, (e_max,))[:e],
             self.param(f"{name}_ln2_bias", zeros, (e_max,))[:e])
      fc1 = self.param(f"{name}_fc1", init, (e_max, m_max))
      fc1_b = self.param(f"{name}_fc1_bias", zeros, (m_max,))
      fc2 = self.param(f"{name}_fc2", init, (m_max, e_max))
      fc2_b = self.param(f"{name}_fc2_bias", zeros, (e_max,))

      y = _layer_norm(t, *ln1, emb)
      q, k, v = jnp.einsum("nte,eshd->snthd", y, qkv[:e, :, :heads]
                           ) + qkv_b[:, None, None, :heads]
      att = jax.nn.softmax(jnp.einsum("nthd,nshd->nhts", q, k) / np.sqrt(hd))
      o = jnp.einsum("nhts,nshd->nthd", att, v)
      if not discrete:
        o = o * arch.heads[j][:, None]
      y = jnp.einsum("nthd,hde->nte", o, proj[:heads, :, :e]) + proj_b[:e]
      if not discrete:
        y = y * emb * arch.active[j]
      t = t + y
      y = _layer_norm(t, *ln2, emb)
      y = jax.nn.gelu(y @ fc1[:e, :hidden] + fc1_b[:hidden])
      if not discrete:
        y = y * arch.hidden[j]
      y = y @ fc2[:hidden, :e] + fc2_b[:e]
      if not discrete:
        y = y * emb * arch.active[j]
      t = t + y
    t = _layer_norm(t, self.param("final_ln_scale", ones, (e_max,))[:e],
                    self.param("final_ln_bias", zeros, (e_max,))[:e], emb)
    pooled = jnp.mean(t, axis=1)
    head = self.param("head", init, (e_max, self.num_classes))
    return pooled @ head[:e] + self.param("head_bias", zeros,
                                          (self.num_classes,))
