"""Pre-norm Transformer block: multi-head self-attention + MLP.

Attention is written with two explicit ``einsum``s (``q k^T`` and
``weights v``): each lowers to one ``dot_general``, so the cost model counts
the O(N^2 d) term of attention exactly.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.blocks.common import activation, drop_path


class MultiHeadSelfAttention(nn.Module):
  """Multi-head self-attention over ``(batch, tokens, dim)``.

  One fused ``qkv`` projection and an output projection, both with bias (the
  ViT layout, so parameter counts match published ViTs).

  Attributes:
    num_heads: heads; must divide the model width.
    attn_dropout: dropout on the attention weights (training only).
    dropout: dropout on the output projection (training only).
  """

  num_heads: int
  attn_dropout: float = 0.0
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    batch, tokens, dim = x.shape
    if dim % self.num_heads:
      raise ValueError(f"width {dim} is not divisible by {self.num_heads} heads")
    head_dim = dim // self.num_heads
    qkv = nn.Dense(3 * dim, name="qkv")(x)
    qkv = qkv.reshape(batch, tokens, 3, self.num_heads, head_dim)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    # Scaling q (N*d values) is cheaper than scaling the N*N logits.
    q = q * (1.0 / math.sqrt(head_dim))
    logits = jnp.einsum("bqhc,bkhc->bhqk", q, k)
    weights = jax.nn.softmax(logits, axis=-1)
    weights = nn.Dropout(self.attn_dropout, deterministic=not train)(weights)
    out = jnp.einsum("bhqk,bkhc->bqhc", weights, v).reshape(batch, tokens, dim)
    out = nn.Dense(dim, name="proj")(out)
    return nn.Dropout(self.dropout, deterministic=not train)(out)


class TransformerBlock(nn.Module):
  """Pre-norm Transformer encoder block.

  ``x + MHSA(LN(x))`` then ``x + MLP(LN(x))``; the MLP is Dense(hidden) ->
  act -> Dense(dim).

  Attributes:
    num_heads: attention heads.
    mlp_ratio: MLP hidden width over model width.
    act: MLP activation name.
    dropout: dropout after projections and in the MLP (training only).
    attn_dropout: dropout on attention weights (training only).
    drop_path_rate: stochastic depth of each residual branch.
    ln_epsilon: LayerNorm epsilon.
  """

  num_heads: int
  mlp_ratio: float = 4.0
  act: str = "gelu"
  dropout: float = 0.0
  attn_dropout: float = 0.0
  drop_path_rate: float = 0.0
  ln_epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    dim = x.shape[-1]
    y = nn.LayerNorm(epsilon=self.ln_epsilon, name="norm1")(x)
    y = MultiHeadSelfAttention(self.num_heads, self.attn_dropout, self.dropout,
                               name="attn")(y, train)
    x = x + drop_path(self, y, self.drop_path_rate, train)
    y = nn.LayerNorm(epsilon=self.ln_epsilon, name="norm2")(x)
    y = nn.Dense(int(dim * self.mlp_ratio), name="fc1")(y)
    y = activation(self.act)(y)
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    y = nn.Dense(dim, name="fc2")(y)
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    return x + drop_path(self, y, self.drop_path_rate, train)
