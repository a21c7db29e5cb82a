"""Block specs: a block-structured architecture as a tuple of hashable tuples.

A block spec is ``(kind, in_ch, out_ch, stride, kernel, expand, H, W)``: what
to build (a key of :data:`BLOCK_KINDS`) and the input it sees. A network is
the sequence of its block specs, from the stem to the classifier; that is all
the latency lookup table needs, so any search space made of blocks (e.g. the
elastic MobileNet space) plugs in by listing its architecture's specs.

Kinds:
  * ``conv_bn``: dense kxk convolution + BN + ReLU6 (stems, last 1x1 conv).
  * ``mbconv``: MobileNetV2 inverted residual (ReLU6, no SE).
  * ``mbconv_se``: EfficientNet MBConv (swish, SE 0.25).
  * ``classifier``: global average pooling + dense layer to ``out_ch``
    logits (stride, kernel and expand must be 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from supernet.blocks import ConvBN, MBConv, make_divisible
from supernet.errors import UserError
from supernet.spaces.base import numpy_rng
from supernet.zoo.heads import Classifier
from supernet.zoo.mobilenet import MOBILENET_V2_STAGES

BlockSpec = tuple[str, int, int, int, int, Any, int, int]
SPEC_FIELDS = ("kind", "in_ch", "out_ch", "stride", "kernel", "expand", "H",
               "W")

# kind -> (spec, depthwise_impl, name) -> module called as block(x, train).
BLOCK_KINDS: dict[str, Callable[[BlockSpec, str, str], nn.Module]] = {
    "conv_bn": lambda s, impl, name: ConvBN(s[2], s[4], s[3], act="relu6",
                                            name=name),
    "mbconv": lambda s, impl, name: MBConv(s[2], s[5], s[4], s[3],
                                           act="relu6", depthwise_impl=impl,
                                           name=name),
    "mbconv_se": lambda s, impl, name: MBConv(s[2], s[5], s[4], s[3],
                                              se_ratio=0.25, act="swish",
                                              depthwise_impl=impl, name=name),
    "classifier": lambda s, impl, name: Classifier(s[2], name=name),
}


def check_spec(spec: Sequence[Any]) -> BlockSpec:
  """Validates a block spec and returns it as a canonical tuple.

  Args:
    spec: ``(kind, in_ch, out_ch, stride, kernel, expand, H, W)``.

  Returns:
    The same spec as a tuple (an integral ``expand`` becomes an int, so equal
    specs hash equally and survive a JSON round trip).

  Raises:
    UserError: wrong length, unknown kind or non-positive sizes.
  """
  if len(spec) != len(SPEC_FIELDS):
    raise UserError(f"block spec {tuple(spec)!r} must have the fields "
                    f"{SPEC_FIELDS}")
  kind, *rest = spec
  if kind not in BLOCK_KINDS:
    raise UserError(f"unknown block kind {kind!r}; valid: {sorted(BLOCK_KINDS)}")
  expand = rest[4]
  if isinstance(expand, float) and expand.is_integer():
    expand = int(expand)
  ints = [rest[i] for i in (0, 1, 2, 3, 5, 6)]
  if not all(isinstance(v, (int, np.integer)) and v > 0 for v in ints) or (
      not isinstance(expand, (int, float)) or expand <= 0):
    raise UserError(f"block spec {tuple(spec)!r}: sizes must be positive "
                    f"integers (expand a positive number)")
  if kind == "classifier" and (rest[2], rest[3], expand) != (1, 1, 1):
    raise UserError(f"classifier spec {tuple(spec)!r} needs stride, kernel "
                    f"and expand 1")
  in_ch, out_ch, stride, kernel, _, h, w = (int(v) if i != 4 else v
                                            for i, v in enumerate(rest))
  return (str(kind), in_ch, out_ch, stride, kernel, expand, h, w)


def output_shape(spec: BlockSpec) -> tuple[int, int, int]:
  """``(H, W, C)`` a block outputs (``(1, 1, C)`` for a classifier)."""
  kind, _, out_ch, stride, _, _, h, w = spec
  if kind == "classifier":
    return 1, 1, out_ch
  return -(-h // stride), -(-w // stride), out_ch


def check_chain(specs: Sequence[Sequence[Any]]) -> tuple[BlockSpec, ...]:
  """Validates a network's specs: each block's input is the last's output.

  Args:
    specs: the block specs in order.

  Returns:
    The canonical specs.

  Raises:
    UserError: an empty list, a bad spec, or a shape mismatch (named).
  """
  specs = tuple(check_spec(s) for s in specs)
  if not specs:
    raise UserError("an architecture needs at least one block spec")
  for i in range(1, len(specs)):
    prev, cur = specs[i - 1], specs[i]
    if prev[0] == "classifier":
      raise UserError(f"block {i} follows a classifier")
    if output_shape(prev) != (cur[6], cur[7], cur[1]):
      raise UserError(f"block {i} {cur} expects input {(cur[6], cur[7], cur[1])}"
                      f" but block {i - 1} outputs {output_shape(prev)}")
  return specs


class SpecNetwork(nn.Module):
  """The network whose blocks are ``specs``, applied in order.

  Attributes:
    specs: canonical block specs (see :func:`check_chain`).
    depthwise_impl: depthwise implementation of every block.
  """

  specs: tuple[BlockSpec, ...]
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for i, spec in enumerate(self.specs):
      x = BLOCK_KINDS[spec[0]](spec, self.depthwise_impl, f"block{i}")(x, train)
    return x


def input_shape(specs: Sequence[BlockSpec]) -> tuple[int, int, int]:
  """``(H, W, C)`` input of the first block."""
  first = specs[0]
  return first[6], first[7], first[1]


def mobilenet_v2_specs(kernels: Sequence[int], expands: Sequence[Any],
                       width: float = 1.0, resolution: int = 224,
                       num_classes: int = 1000,
                       depths: Sequence[int] | None = None
                       ) -> tuple[BlockSpec, ...]:
  """Block specs of a MobileNetV2-layout network with per-block choices.

  The layout is MobileNetV2's (channels rounded to multiples of 8 after the
  width multiplier, stride-2 stem, fixed first block t=1 k=3, 1x1 conv to
  1280, classifier); every later inverted residual gets its own kernel and
  expand ratio, and each stage may be shortened (first blocks kept).

  Args:
    kernels: one depthwise kernel per searchable block (16 at full depth).
    expands: one expand ratio per searchable block.
    width: width multiplier.
    resolution: input resolution.
    num_classes: classifier outputs.
    depths: blocks per searchable stage (6 stages; default the full
      ``(2, 3, 4, 3, 3, 1)``).

  Returns:
    The specs, stem to classifier.
  """
  stages = MOBILENET_V2_STAGES[1:]
  depths = tuple(n for _, _, n, _ in stages) if depths is None else tuple(depths)
  if len(depths) != len(stages) or any(
      not 1 <= d <= n for d, (_, _, n, _) in zip(depths, stages)):
    raise UserError(f"depths {depths} must give 1..n blocks for each of the "
                    f"{len(stages)} stages (n = {[s[2] for s in stages]})")
  if len(kernels) != sum(depths) or len(expands) != sum(depths):
    raise UserError(f"need {sum(depths)} kernels and expand ratios, got "
                    f"{len(kernels)} and {len(expands)}")
  h = -(-resolution // 2)
  ch = make_divisible(32 * width)
  specs = [("conv_bn", 3, ch, 2, 3, 1, resolution, resolution)]
  first_out = make_divisible(MOBILENET_V2_STAGES[0][1] * width)
  specs.append(("mbconv", ch, first_out, 1, 3, 1, h, h))
  ch, i = first_out, 0
  for (_, c, _, s), depth in zip(stages, depths):
    out = make_divisible(c * width)
    for j in range(depth):
      stride = s if j == 0 else 1
      specs.append(("mbconv", ch, out, stride, int(kernels[i]), expands[i], h,
                    h))
      h, ch, i = -(-h // stride), out, i + 1
  last = make_divisible(1280 * max(1.0, width))
  specs.append(("conv_bn", ch, last, 1, 1, 1, h, h))
  specs.append(("classifier", last, num_classes, 1, 1, 1, h, h))
  return check_chain(specs)


def sample_mobilenet_v2_specs(key: jax.Array, kernels: Sequence[int] = (3, 5, 7),
                              expands: Sequence[Any] = (3, 4, 6),
                              elastic_depth: bool = False,
                              **layout: Any) -> tuple[BlockSpec, ...]:
  """A random architecture of the MobileNetV2-style space.

  Args:
    key: PRNG key.
    kernels: kernel choices per block.
    expands: expand-ratio choices per block.
    elastic_depth: also draw each stage's depth (1..n).
    **layout: ``width``, ``resolution``, ``num_classes`` of
      :func:`mobilenet_v2_specs`.

  Returns:
    The architecture's block specs.
  """
  rng = numpy_rng(key)
  stages = MOBILENET_V2_STAGES[1:]
  depths = [n for _, _, n, _ in stages]
  if elastic_depth:
    depths = [int(rng.integers(1, n + 1)) for n in depths]
  n = sum(depths)
  ks = [int(kernels[rng.integers(len(kernels))]) for _ in range(n)]
  es = [expands[rng.integers(len(expands))] for _ in range(n)]
  return mobilenet_v2_specs(ks, es, depths=depths, **layout)


def mobilenet_v2_space_specs(kernels: Sequence[int] = (3, 5, 7),
                             expands: Sequence[Any] = (3, 4, 6),
                             **layout: Any) -> tuple[BlockSpec, ...]:
  """Every distinct block spec of the MobileNetV2-style space (full depth).

  A shortened stage reuses the specs of the full one (same shapes), so this
  also covers ``elastic_depth`` architectures.

  Args:
    kernels: kernel choices.
    expands: expand-ratio choices.
    **layout: ``width``, ``resolution``, ``num_classes``.

  Returns:
    The sorted distinct specs (what a lookup table for the space measures).
  """
  n = sum(n for _, _, n, _ in MOBILENET_V2_STAGES[1:])
  base = mobilenet_v2_specs([kernels[0]] * n, [expands[0]] * n, **layout)
  # stem and first block, then the n searchable blocks, then conv + classifier
  specs = set(base[:2] + base[-2:])
  for spec in base[2:-2]:
    for k in kernels:
      for e in expands:
        specs.add(check_spec((*spec[:4], k, e, *spec[6:])))
  return tuple(sorted(specs, key=repr))
