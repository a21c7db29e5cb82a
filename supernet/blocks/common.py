"""Pieces every block shares: activations, channel rounding, conv+BN layers.

BatchNorm hyper-parameters are explicit attributes (``bn_momentum``,
``bn_epsilon``) because the reference networks differ: torchvision-style
networks use momentum 0.9 / epsilon 1e-5 (flax convention: the weight of the
old running average), Keras-style ones 0.99 / 1e-3. Parameter shapes never
depend on them.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.errors import UserError
from supernet.ops.depthwise import DepthwiseConv

# name -> elementwise function. Strings (not callables) are module attributes,
# so blocks stay hashable and describable in JSON.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda x: x,
    "relu": nn.relu,
    "relu6": nn.relu6,
    "swish": nn.swish,
    "hard_swish": nn.hard_swish,
    "gelu": nn.gelu,
    "sigmoid": nn.sigmoid,
    "hard_sigmoid": nn.hard_sigmoid,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
  """The activation registered as ``name``.

  Args:
    name: a key of :data:`ACTIVATIONS`.

  Returns:
    The elementwise function.
  """
  if name not in ACTIVATIONS:
    raise UserError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
  return ACTIVATIONS[name]


def make_divisible(value: float, divisor: int = 8,
                   min_value: int | None = None) -> int:
  """Rounds a channel count to a multiple of ``divisor`` (MobileNet rule).

  Rounds to the nearest multiple, but never below ``min_value`` (default
  ``divisor``) and never more than 10% below ``value`` -- the rule MobileNetV2
  and EfficientNet use for width multipliers, so published counts reproduce.

  Args:
    value: the unrounded channel count (e.g. ``32 * width``).
    divisor: the multiple to round to.
    min_value: smallest result allowed.

  Returns:
    The rounded channel count.
  """
  min_value = divisor if min_value is None else min_value
  rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


class ConvBN(nn.Module):
  """Convolution (no bias) + BatchNorm + activation.

  Attributes:
    features: output channels.
    kernel_size: square kernel size.
    strides: stride.
    groups: ``feature_group_count`` (1 = dense; use :class:`DepthwiseBN` for
      depthwise, which is faster on the CPU).
    act: activation name (see :data:`ACTIVATIONS`).
    bn_momentum: BatchNorm running-average momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  features: int
  kernel_size: int = 1
  strides: int = 1
  groups: int = 1
  act: str = "relu"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    k = self.kernel_size
    x = nn.Conv(self.features, (k, k), strides=self.strides, padding="SAME",
                feature_group_count=self.groups, use_bias=False,
                name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                     epsilon=self.bn_epsilon, name="bn")(x)
    return activation(self.act)(x)


class DepthwiseBN(nn.Module):
  """Depthwise convolution (no bias) + BatchNorm + activation.

  The convolution is :class:`supernet.ops.depthwise.DepthwiseConv`, so the
  kernel is ``(k, k, 1, C)`` whatever ``depthwise_impl`` runs it.

  Attributes:
    kernel_size: square kernel size.
    strides: stride.
    act: activation name.
    depthwise_impl: depthwise implementation (``auto``/``native``/...).
    bn_momentum: BatchNorm momentum.
    bn_epsilon: BatchNorm epsilon.
  """

  kernel_size: int = 3
  strides: int = 1
  act: str = "relu"
  depthwise_impl: str = "auto"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = DepthwiseConv(self.kernel_size, strides=self.strides,
                      impl=self.depthwise_impl, name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                     epsilon=self.bn_epsilon, name="bn")(x)
    return activation(self.act)(x)


def drop_path(module: nn.Module, x: jax.Array, rate: float, train: bool
              ) -> jax.Array:
  """Stochastic depth: drops the whole residual branch per example.

  Uses the ``dropout`` PRNG stream of ``module`` only when training with a
  positive rate, so inference needs no key.

  Args:
    module: the calling module (its ``make_rng`` supplies the key).
    x: the residual branch, shape ``(N, ...)``.
    rate: probability of dropping the branch.
    train: training mode.

  Returns:
    ``x`` scaled by ``mask / (1 - rate)``, or ``x`` unchanged.
  """
  if not train or rate <= 0.0:
    return x
  keep = 1.0 - rate
  shape = (x.shape[0],) + (1,) * (x.ndim - 1)
  mask = jax.random.bernoulli(module.make_rng("dropout"), keep, shape)
  return jnp.where(mask, x / keep, jnp.zeros_like(x))


def channel_shuffle(x: jax.Array, groups: int) -> jax.Array:
  """Interleaves channels across ``groups`` (ShuffleNet), NHWC.

  Args:
    x: input whose channel count is divisible by ``groups``.
    groups: number of groups.

  Returns:
    Same shape; channel ``g * (C // groups) + i`` moves to ``i * groups + g``.
  """
  *lead, channels = x.shape
  if channels % groups:
    raise ValueError(f"{channels} channels do not split into {groups} groups")
  x = x.reshape(*lead, groups, channels // groups)
  return jnp.swapaxes(x, -1, -2).reshape(*lead, channels)
