"""The DARTS evaluation networks: cells of a derived genotype, stacked.

``DartsNetworkCIFAR`` (stem 3x3 conv, ``layers`` cells, reductions at 1/3 and
2/3 of the depth, auxiliary head after the 2/3 reduction) and
``DartsNetworkImageNet`` (the paper's mobile-setting stem of three stride-2
convolutions). BatchNorms are affine. Drop-path (scheduled by the caller via
the traced ``drop_path_prob`` argument, so changing it never recompiles)
drops whole op outputs per example, as the DARTS code does, except on
identity edges. The auxiliary head's parameters live under the top-level
``auxiliary`` key, so counts can leave it out.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from supernet.errors import UserError
from supernet.models import darts_ops
from supernet.models.darts_search import reduction_layers
from supernet.spaces.darts import Genotype


def drop_path(x: jax.Array, drop_prob: jax.Array, key: jax.Array) -> jax.Array:
  """Zeroes whole examples with probability ``drop_prob``, rescales the rest."""
  keep = 1.0 - drop_prob
  mask = jax.random.bernoulli(key, keep, (x.shape[0], 1, 1, 1))
  return jnp.where(mask, x / jnp.maximum(keep, 1e-6), 0.0)


class EvalCell(nn.Module):
  """A derived cell: two ops per node, concat of the intermediate nodes."""

  pairs: tuple[tuple[str, int], ...]
  concat: tuple[int, ...]
  channels: int
  reduction: bool
  reduction_prev: bool
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, s0, s1, train: bool, drop_path_prob):
    c = self.channels
    if self.reduction_prev:
      s0 = darts_ops.FactorizedReduce(c, name="preprocess0")(s0, train)
    else:
      s0 = darts_ops.ReLUConvBN(c, 1, 1, name="preprocess0")(s0, train)
    s1 = darts_ops.ReLUConvBN(c, 1, 1, name="preprocess1")(s1, train)
    states = [s0, s1]
    for node in range(len(self.pairs) // 2):
      total = None
      for k in (2 * node, 2 * node + 1):
        op_name, src = self.pairs[k]
        strides = 2 if self.reduction and src < 2 else 1
        op = darts_ops.make_op(op_name, c, strides, affine=True,
                               depthwise_impl=self.depthwise_impl,
                               op_name=f"op{k}_{op_name}")
        h = op(states[src], train)
        if train and not isinstance(op, darts_ops.Identity):
          h = jax.lax.cond(drop_path_prob > 0, lambda h: drop_path(
              h, drop_path_prob, self.make_rng("dropout")), lambda h: h, h)
        total = h if total is None else total + h
      states.append(total)
    return jnp.concatenate([states[i] for i in self.concat], axis=-1)


class AuxiliaryHead(nn.Module):
  """DARTS auxiliary classifier (CIFAR: input 8x8; ImageNet: 14x14)."""

  num_classes: int
  imagenet: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.relu(x)
    stride = 2 if self.imagenet else 3
    x = nn.avg_pool(x, (5, 5), (stride, stride), padding="VALID",
                    count_include_pad=False)
    x = nn.Conv(128, (1, 1), use_bias=False)(x)
    x = nn.relu(darts_ops.batch_norm(train, True)(x))
    x = nn.Conv(768, (2, 2), padding="VALID", use_bias=False)(x)
    if not self.imagenet:  # the paper's ImageNet head has no BN here
      x = darts_ops.batch_norm(train, True)(x)
    x = nn.relu(x)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


class _DartsNetwork(nn.Module):
  """Shared body of the CIFAR and ImageNet evaluation networks."""

  genotype: Genotype
  num_classes: int
  channels: int = 36
  layers: int = 20
  auxiliary: bool = True
  dropout: float = 0.0
  depthwise_impl: str = "auto"

  def stem(self, x, train):  # pragma: no cover - overridden
    raise NotImplementedError

  @nn.compact
  def __call__(self, x, train: bool = False, drop_path_prob=0.0):
    """Logits; with ``train=True`` and an auxiliary head, ``(logits, aux)``."""
    drop_path_prob = jnp.asarray(drop_path_prob, jnp.float32)
    s0, s1, c_cur, reduction_prev = self.stem(x, train)
    aux_logits = None
    reductions = reduction_layers(self.layers)
    for i in range(self.layers):
      reduction = i in reductions
      if reduction:
        c_cur *= 2
      g = self.genotype
      pairs, concat = ((g.reduce, g.reduce_concat) if reduction
                       else (g.normal, g.normal_concat))
      cell = EvalCell(tuple(pairs), tuple(concat), c_cur, reduction,
                      reduction_prev, self.depthwise_impl, name=f"cell{i}")
      s0, s1 = s1, cell(s0, s1, train, drop_path_prob)
      reduction_prev = reduction
      if i == reductions[1] and self.auxiliary and train:
        aux_logits = AuxiliaryHead(self.num_classes, self.imagenet,
                                   name="auxiliary")(s1, train)
    x = jnp.mean(s1, axis=(1, 2))
    if self.dropout > 0:
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    logits = nn.Dense(self.num_classes, name="classifier")(x)
    if self.auxiliary and train:
      return logits, aux_logits
    return logits


class DartsNetworkCIFAR(_DartsNetwork):
  """The DARTS CIFAR evaluation network (paper: C=36, 20 cells)."""

  stem_multiplier: int = 3
  imagenet: bool = False

  def stem(self, x, train):
    c = self.stem_multiplier * self.channels
    x = nn.Conv(c, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                name="stem_conv")(x)
    x = darts_ops.batch_norm(train, True, name="stem_bn")(x)
    return x, x, self.channels, False


class DartsNetworkImageNet(_DartsNetwork):
  """The DARTS mobile ImageNet network (paper: C=48, 14 cells, 224x224)."""

  imagenet: bool = True

  def stem(self, x, train):
    c = self.channels
    pad = ((1, 1), (1, 1))
    x = nn.Conv(c // 2, (3, 3), (2, 2), padding=pad, use_bias=False,
                name="stem0_conv_a")(x)
    x = nn.relu(darts_ops.batch_norm(train, True, name="stem0_bn_a")(x))
    x = nn.Conv(c, (3, 3), (2, 2), padding=pad, use_bias=False,
                name="stem0_conv_b")(x)
    s0 = darts_ops.batch_norm(train, True, name="stem0_bn_b")(x)
    x = nn.relu(s0)
    x = nn.Conv(c, (3, 3), (2, 2), padding=pad, use_bias=False,
                name="stem1_conv")(x)
    s1 = darts_ops.batch_norm(train, True, name="stem1_bn")(x)
    return s0, s1, c, True


def build_darts_network(config: ml_collections.ConfigDict, genotype: Genotype,
                        num_classes: int) -> _DartsNetwork:
  """The evaluation network ``config.model`` describes, for ``genotype``."""
  m = config.model
  kinds = {"cifar": DartsNetworkCIFAR, "imagenet": DartsNetworkImageNet}
  kind = m.get("stem", "cifar")
  if kind not in kinds:
    raise UserError(f"unknown model.stem {kind!r}; valid: {sorted(kinds)}")
  return kinds[kind](genotype=genotype, num_classes=num_classes,
                     channels=m.channels, layers=m.layers,
                     auxiliary=m.auxiliary, dropout=m.get("dropout", 0.0),
                     depthwise_impl=m.depthwise_impl)
