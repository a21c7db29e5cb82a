"""Elastic search spaces: OFA-style MobileNet and a ViT-style transformer.

Both spaces describe sub-networks of one weight-sharing supernet. Every elastic
dimension is a list of choices taken from the experiment config, so the same
code serves 8x8 digits, CIFAR and ImageNet.

``elastic_mbv`` (MobileNet of MBConv blocks, as in ProxylessNAS / Once-for-All):
an input resolution, a global width multiplier (channels are the first ``k`` of
the largest network's), and per stage a depth (the first ``d`` blocks run); each
running block has its own depthwise kernel size and expand ratio. Its
``arch.json``::

  {"space": "elastic_mbv", "resolution": 16, "width": 1.0,
   "depths": [2, 3, 1],
   "kernels": [[3, 5], [7, 3, 3], [5]],
   "expands": [[3, 6], [4, 4, 6], [3]]}

``kernels[s]`` and ``expands[s]`` list the choices of the ``depths[s]`` running
blocks of stage ``s``, in order. Resolutions must be multiples of the
network's total stride (the masked view runs smaller images in the corner of
the largest and needs identical padding at every strided layer).

``elastic_vit`` (AutoFormer-style transformer): an embedding width, a depth
(the first ``d`` layers run), and per running layer a number of attention heads
and an MLP ratio. Its ``arch.json``::

  {"space": "elastic_vit", "embed_dim": 64, "depth": 3,
   "heads": [4, 2, 4], "mlp_ratios": [2, 4, 3]}

Architectures are canonical: choices of blocks that do not run are not part of
the value, so two equal networks are equal values. Tokens still have a fixed
length (a token per block of the deepest network); tokens of blocks that do not
run decode to nothing and encode as 0.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import jax

from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace, check_token, numpy_rng


def round_channels(value: float, divisor: int) -> int:
  """Rounds a channel count up to a multiple of ``divisor`` (at least one).

  Rounding up (not to the nearest, as MobileNet's ``make_divisible`` does) keeps
  channel counts monotone in the width and expand ratio, so a smaller choice
  never has more channels than a larger one: first-k slicing stays valid.
  """
  return max(divisor, int(math.ceil(value / divisor - 1e-9)) * divisor)


class _number:  # noqa: N801 - marker: an int when integral, else a float
  pass


def _choices(cfg: Any, key: str, kind: type, where: str) -> tuple[Any, ...]:
  """Reads a non-empty list of positive, distinct choices, sorted ascending."""
  if key not in cfg:
    raise UserError(f"{where}: missing field {key!r}")
  raw = cfg[key]
  if isinstance(raw, (int, float)) and not isinstance(raw, bool):
    raw = (raw,)
  values = []
  for v in raw:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
      raise UserError(f"{where}.{key}: choices must be positive numbers, got "
                      f"{list(raw)}")
    if kind is int and v != int(v):
      raise UserError(f"{where}.{key}: choices must be integers, got {list(raw)}")
    if kind is _number:
      values.append(int(v) if float(v).is_integer() else float(v))
    else:
      values.append(kind(v))
  if not values:
    raise UserError(f"{where}.{key}: needs at least one choice")
  if len(set(values)) != len(values):
    raise UserError(f"{where}.{key}: repeated choice in {list(raw)}")
  return tuple(sorted(values))


def _ints(cfg: Any, key: str, where: str) -> tuple[int, ...]:
  """Reads a non-empty per-stage list of positive integers (order kept)."""
  if key not in cfg:
    raise UserError(f"{where}: missing field {key!r}")
  raw = cfg[key]
  if isinstance(raw, int) and not isinstance(raw, bool):
    raw = (raw,)
  try:
    values = tuple(raw)
  except TypeError:
    raise UserError(f"{where}.{key}: expected a list, got {raw!r}") from None
  if not values or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0
                       for v in values):
    raise UserError(f"{where}.{key}: expected positive integers, got {raw!r}")
  return values


def _space_cfg(cfg: Any) -> Any:
  """Accepts a whole experiment config or its ``space`` sub-config."""
  if cfg is None:
    raise UserError("elastic spaces need a 'space' config")
  if "space" in cfg and hasattr(cfg["space"], "keys"):
    return cfg["space"]
  return cfg


def _json_list(doc: dict[str, Any], key: str, where: str) -> list[Any]:
  if key not in doc:
    raise UserError(f"{where}: missing field {key!r}")
  value = doc[key]
  if not isinstance(value, (list, tuple)):
    raise UserError(f"{where}: {key!r} must be a list, got {value!r}")
  return list(value)


def _json_number(doc: dict[str, Any], key: str, where: str) -> Any:
  if key not in doc:
    raise UserError(f"{where}: missing field {key!r}")
  value = doc[key]
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise UserError(f"{where}: {key!r} must be a number, got {value!r}")
  return value


class _CanonicalSpace(SearchSpace):
  """Shared behaviour of spaces whose inactive-block tokens mean nothing."""

  def live_tokens(self, arch: Arch) -> tuple[int, ...]:
    """Indices of the tokens that change ``arch`` (those of running blocks)."""
    raise NotImplementedError

  def mutate(self, key: jax.Array, arch: Arch, rate: float | None = None
             ) -> Arch:
    """Like :meth:`SearchSpace.mutate`, but only tokens that matter change.

    Args:
      key: PRNG key.
      arch: the parent architecture.
      rate: probability of resampling each token; ``None`` changes exactly one
        live token (one of a running block, the depth, width...) to a different
        value, so the child always differs from the parent.

    Returns:
      The child architecture.
    """
    if rate is not None:
      return super().mutate(key, arch, rate)
    rng = numpy_rng(key)
    tokens = list(self.encode(arch))
    cards = self.cardinalities()
    mutable = [i for i in self.live_tokens(arch) if cards[i] > 1]
    if not mutable:
      return arch
    i = int(rng.choice(mutable))
    new = int(rng.integers(cards[i] - 1))
    tokens[i] = new if new < tokens[i] else new + 1
    return self.decode(tokens)

  def enumerate(self) -> Iterator[Arch]:
    """Every distinct architecture once, in token order."""
    seen = set()
    for tokens in itertools.product(*(range(c) for c in self.cardinalities())):
      arch = self.decode(tokens)
      if arch not in seen:
        seen.add(arch)
        yield arch


# --------------------------------------------------------------------------
# Elastic MobileNet
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ElasticMbvArch(Arch):
  """One sub-network of an elastic MobileNet.

  Attributes:
    resolution: input image side length.
    width: global width multiplier of stem and stage channels.
    depths: number of running blocks of each stage.
    kernels: per stage, the depthwise kernel size of each running block.
    expands: per stage, the expand ratio of each running block.
  """

  resolution: int
  width: float
  depths: tuple[int, ...]
  kernels: tuple[tuple[int, ...], ...]
  expands: tuple[tuple[float, ...], ...]
  space: ClassVar[str] = "elastic_mbv"

  def to_json(self) -> dict[str, Any]:
    return {"space": self.space, "resolution": self.resolution,
            "width": self.width, "depths": list(self.depths),
            "kernels": [list(k) for k in self.kernels],
            "expands": [list(e) for e in self.expands]}


class ElasticMobileNetSpace(_CanonicalSpace):
  """Sub-networks of an elastic MobileNet (see the module docstring).

  Tokens, in order: resolution, width, then per stage its depth followed by
  (kernel, expand) of each of its ``max(depth_choices)`` blocks.
  """

  name: ClassVar[str] = "elastic_mbv"

  def __init__(self, *, stage_widths: Sequence[int],
               stage_strides: Sequence[int], depth_choices: Sequence[int],
               kernel_choices: Sequence[int], expand_choices: Sequence[float],
               width_choices: Sequence[float], resolutions: Sequence[int],
               stem_width: int, stem_stride: int = 1, head_width: int = 128,
               channel_divisor: int = 8) -> None:
    """Builds the space; arguments as the fields of :meth:`from_config`."""
    self.stage_widths = tuple(int(w) for w in stage_widths)
    self.stage_strides = tuple(int(s) for s in stage_strides)
    self.depth_choices = tuple(sorted(int(d) for d in depth_choices))
    self.kernel_choices = tuple(sorted(int(k) for k in kernel_choices))
    self.expand_choices = tuple(sorted(expand_choices))
    self.width_choices = tuple(sorted(float(w) for w in width_choices))
    self.resolutions = tuple(sorted(int(r) for r in resolutions))
    self.stem_width = int(stem_width)
    self.stem_stride = int(stem_stride)
    self.head_width = int(head_width)
    self.channel_divisor = int(channel_divisor)
    where = "space"
    if len(self.stage_widths) != len(self.stage_strides):
      raise UserError(f"{where}: stage_widths has {len(self.stage_widths)} "
                      f"stages but stage_strides has {len(self.stage_strides)}")
    if any(k % 2 == 0 for k in self.kernel_choices):
      raise UserError(f"{where}.kernels: kernel sizes must be odd, got "
                      f"{list(self.kernel_choices)}")
    if any(s not in (1, 2) for s in self.stage_strides + (self.stem_stride,)):
      raise UserError(f"{where}: strides must be 1 or 2")
    self.num_stages = len(self.stage_widths)
    self.max_depth = self.depth_choices[-1]
    stride = self.total_stride
    bad = [r for r in self.resolutions if r % stride]
    if bad:
      # The masked view runs every resolution inside the largest one and
      # needs the same padding at every strided layer: even sizes there.
      raise UserError(f"{where}.resolutions: {bad} not divisible by the "
                      f"network's total stride {stride}; use multiples of "
                      f"{stride}")

  @property
  def total_stride(self) -> int:
    """Product of the stem's and the stages' strides."""
    return self.stem_stride * math.prod(self.stage_strides)

  @classmethod
  def from_config(cls, cfg: Any) -> ElasticMobileNetSpace:
    """Builds the space from a config's ``space`` sub-ConfigDict.

    Args:
      cfg: the ``space`` ConfigDict (or a whole config holding one) with fields
        ``stage_widths``, ``stage_strides`` (per stage), ``depths``,
        ``kernels``, ``expands``, ``widths``, ``resolutions`` (choice lists),
        ``stem_width`` and optional ``stem_stride`` (1), ``head_width`` (128)
        and ``channel_divisor`` (8).

    Returns:
      The space. Raises ``UserError`` naming the bad field.
    """
    cfg = _space_cfg(cfg)
    where = "space"
    get = lambda k, d: cfg[k] if k in cfg else d  # noqa: E731
    return cls(
        stage_widths=_ints(cfg, "stage_widths", where),
        stage_strides=_ints(cfg, "stage_strides", where),
        depth_choices=_choices(cfg, "depths", int, where),
        kernel_choices=_choices(cfg, "kernels", int, where),
        expand_choices=_choices(cfg, "expands", _number, where),
        width_choices=_choices(cfg, "widths", float, where),
        resolutions=_choices(cfg, "resolutions", int, where),
        stem_width=_ints(cfg, "stem_width", where)[0],
        stem_stride=int(get("stem_stride", 1)),
        head_width=int(get("head_width", 128)),
        channel_divisor=int(get("channel_divisor", 8)))

  # ---- channel arithmetic (shared by the model, masks and costs) ----------
  def stem_channels(self, width: float) -> int:
    """Stem output channels at width multiplier ``width``."""
    return round_channels(self.stem_width * width, self.channel_divisor)

  def stage_channels(self, stage: int, width: float) -> int:
    """Output channels of ``stage`` at width multiplier ``width``."""
    return round_channels(self.stage_widths[stage] * width,
                          self.channel_divisor)

  def mid_channels(self, in_channels: int, expand: float) -> int:
    """Hidden channels of a block with ``in_channels`` inputs."""
    return round_channels(in_channels * expand, self.channel_divisor)

  def block_in_channels(self, stage: int, index: int, width: float) -> int:
    """Input channels of block ``index`` of ``stage``."""
    if index > 0:
      return self.stage_channels(stage, width)
    if stage == 0:
      return self.stem_channels(width)
    return self.stage_channels(stage - 1, width)

  def block_stride(self, stage: int, index: int) -> int:
    return self.stage_strides[stage] if index == 0 else 1

  def block_residual(self, stage: int, index: int) -> bool:
    """Identity shortcut: stride 1 and equal in/out channels at every width.

    Every block after the first of a stage has one, so any of them can be
    skipped (elastic depth); a stage's first block always runs.
    """
    return self.block_stride(stage, index) == 1 and all(
        self.block_in_channels(stage, index, w) == self.stage_channels(stage, w)
        for w in self.width_choices)

  # ---- tokens --------------------------------------------------------------
  def token_index(self, stage: int, block: int | None = None,
                  what: str = "depth") -> int:
    """Position of a token: a stage's depth, or a block's kernel/expand."""
    base = 2 + stage * (1 + 2 * self.max_depth)
    if block is None:
      return base
    return base + 1 + 2 * block + (0 if what == "kernel" else 1)

  def cardinalities(self) -> tuple[int, ...]:
    cards = [len(self.resolutions), len(self.width_choices)]
    for _ in range(self.num_stages):
      cards.append(len(self.depth_choices))
      cards += [len(self.kernel_choices), len(self.expand_choices)
                ] * self.max_depth
    return tuple(cards)

  def token_names(self) -> tuple[str, ...]:
    names = ["resolution", "width"]
    for s in range(self.num_stages):
      names.append(f"stage{s}.depth")
      for j in range(self.max_depth):
        names += [f"stage{s}.block{j}.kernel", f"stage{s}.block{j}.expand"]
    return tuple(names)

  def encode(self, arch: Arch) -> tuple[int, ...]:
    if not isinstance(arch, ElasticMbvArch):
      raise UserError(f"expected an elastic_mbv arch, got "
                      f"{type(arch).__name__}")
    w = "elastic_mbv arch"
    if len(arch.depths) != self.num_stages:
      raise UserError(f"{w}: 'depths' lists {len(arch.depths)} stages, the "
                      f"space has {self.num_stages}")
    for field in ("kernels", "expands"):
      if len(getattr(arch, field)) != self.num_stages:
        raise UserError(f"{w}: {field!r} lists {len(getattr(arch, field))} "
                        f"stages, the space has {self.num_stages}")
    tokens = [check_token(arch.resolution, self.resolutions,
                          f"{w}: resolution"),
              check_token(arch.width, self.width_choices, f"{w}: width")]
    for s in range(self.num_stages):
      d = arch.depths[s]
      tokens.append(check_token(d, self.depth_choices, f"{w}: depth of stage {s}"))
      for field in ("kernels", "expands"):
        if len(getattr(arch, field)[s]) != d:
          raise UserError(f"{w}: stage {s} has depth {d} but {field}[{s}] "
                          f"lists {len(getattr(arch, field)[s])} blocks")
      for j in range(self.max_depth):
        if j < d:
          tokens.append(check_token(arch.kernels[s][j], self.kernel_choices,
                                    f"{w}: kernel of stage {s} block {j}"))
          tokens.append(check_token(arch.expands[s][j], self.expand_choices,
                                    f"{w}: expand of stage {s} block {j}"))
        else:
          tokens += [0, 0]
    return tuple(tokens)

  def decode(self, tokens: Sequence[int]) -> ElasticMbvArch:
    tokens = [int(t) for t in tokens]
    if len(tokens) != len(self.cardinalities()):
      raise UserError(f"elastic_mbv space expects {len(self.cardinalities())} "
                      f"tokens, got {len(tokens)}")
    depths, kernels, expands = [], [], []
    for s in range(self.num_stages):
      d = self.depth_choices[tokens[self.token_index(s)]]
      depths.append(d)
      kernels.append(tuple(
          self.kernel_choices[tokens[self.token_index(s, j, "kernel")]]
          for j in range(d)))
      expands.append(tuple(
          self.expand_choices[tokens[self.token_index(s, j, "expand")]]
          for j in range(d)))
    return ElasticMbvArch(self.resolutions[tokens[0]],
                          self.width_choices[tokens[1]], tuple(depths),
                          tuple(kernels), tuple(expands))

  def live_tokens(self, arch: Arch) -> tuple[int, ...]:
    live = [0, 1]
    for s, d in enumerate(arch.depths):
      live.append(self.token_index(s))
      for j in range(d):
        live += [self.token_index(s, j, "kernel"),
                 self.token_index(s, j, "expand")]
    return tuple(live)

  def arch_from_json(self, doc: dict[str, Any]) -> ElasticMbvArch:
    w = "elastic_mbv arch"
    if doc.get("space", self.name) != self.name:
      raise UserError(f"{w}: document is of space {doc.get('space')!r}")
    depths = _json_list(doc, "depths", w)
    kernels = _json_list(doc, "kernels", w)
    expands = _json_list(doc, "expands", w)
    for field, value in (("kernels", kernels), ("expands", expands)):
      if not all(isinstance(v, (list, tuple)) for v in value):
        raise UserError(f"{w}: {field!r} must be a list of per-stage lists")
    resolution = _json_number(doc, "resolution", w)
    width = _json_number(doc, "width", w)
    # Store the space's own values (1 and 1.0 both mean width 1.0).
    arch = ElasticMbvArch(
        self.resolutions[check_token(resolution, self.resolutions,
                                     f"{w}: resolution")],
        self.width_choices[check_token(width, self.width_choices,
                                       f"{w}: width")],
        tuple(depths), tuple(tuple(k) for k in kernels),
        tuple(tuple(e) for e in expands))
    return self.decode(self.encode(arch))

  def largest(self) -> ElasticMbvArch:
    return self.decode([c - 1 for c in self.cardinalities()])

  def smallest(self) -> ElasticMbvArch:
    return self.decode([0] * len(self.cardinalities()))


# --------------------------------------------------------------------------
# Elastic transformer
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ElasticVitArch(Arch):
  """One sub-network of an elastic ViT.

  Attributes:
    embed_dim: embedding width (first ``embed_dim`` channels of the largest).
    depth: number of running layers (the first ``depth``).
    heads: attention heads of each running layer.
    mlp_ratios: MLP hidden width / embedding width of each running layer.
  """

  embed_dim: int
  depth: int
  heads: tuple[int, ...]
  mlp_ratios: tuple[float, ...]
  space: ClassVar[str] = "elastic_vit"

  def to_json(self) -> dict[str, Any]:
    return {"space": self.space, "embed_dim": self.embed_dim,
            "depth": self.depth, "heads": list(self.heads),
            "mlp_ratios": list(self.mlp_ratios)}


class ElasticTransformerSpace(_CanonicalSpace):
  """Sub-networks of an elastic ViT (see the module docstring).

  Tokens, in order: embed_dim, depth, then (heads, mlp_ratio) of each of the
  ``max(depth_choices)`` layers.
  """

  name: ClassVar[str] = "elastic_vit"

  def __init__(self, *, embed_choices: Sequence[int],
               depth_choices: Sequence[int], head_choices: Sequence[int],
               mlp_ratio_choices: Sequence[float], head_dim: int = 16,
               patch_size: int = 4, resolution: int = 32) -> None:
    """Builds the space; arguments as the fields of :meth:`from_config`."""
    self.embed_choices = tuple(sorted(int(e) for e in embed_choices))
    self.depth_choices = tuple(sorted(int(d) for d in depth_choices))
    self.head_choices = tuple(sorted(int(h) for h in head_choices))
    self.mlp_ratio_choices = tuple(sorted(mlp_ratio_choices))
    self.head_dim = int(head_dim)
    self.patch_size = int(patch_size)
    self.resolution = int(resolution)
    self.max_depth = self.depth_choices[-1]
    if self.resolution % self.patch_size:
      raise UserError(f"space: resolution {self.resolution} is not a multiple "
                      f"of patch_size {self.patch_size}")

  @classmethod
  def from_config(cls, cfg: Any) -> ElasticTransformerSpace:
    """Builds the space from a config's ``space`` sub-ConfigDict.

    Args:
      cfg: the ``space`` ConfigDict (or a whole config holding one) with choice
        lists ``embed_dims``, ``depths``, ``heads``, ``mlp_ratios`` and
        optional ``head_dim`` (16), ``patch_size`` (4), ``resolution`` (32).

    Returns:
      The space. Raises ``UserError`` naming the bad field.
    """
    cfg = _space_cfg(cfg)
    where = "space"
    get = lambda k, d: cfg[k] if k in cfg else d  # noqa: E731
    return cls(embed_choices=_choices(cfg, "embed_dims", int, where),
               depth_choices=_choices(cfg, "depths", int, where),
               head_choices=_choices(cfg, "heads", int, where),
               mlp_ratio_choices=_choices(cfg, "mlp_ratios", _number, where),
               head_dim=int(get("head_dim", 16)),
               patch_size=int(get("patch_size", 4)),
               resolution=int(get("resolution", 32)))

  def cardinalities(self) -> tuple[int, ...]:
    return (len(self.embed_choices), len(self.depth_choices)) + (
        len(self.head_choices), len(self.mlp_ratio_choices)) * self.max_depth

  def token_names(self) -> tuple[str, ...]:
    names = ["embed_dim", "depth"]
    for j in range(self.max_depth):
      names += [f"layer{j}.heads", f"layer{j}.mlp_ratio"]
    return tuple(names)

  def mlp_channels(self, embed_dim: int, ratio: float) -> int:
    """Hidden width of an MLP (monotone in both arguments)."""
    return max(1, int(math.ceil(embed_dim * ratio - 1e-9)))

  def encode(self, arch: Arch) -> tuple[int, ...]:
    if not isinstance(arch, ElasticVitArch):
      raise UserError(f"expected an elastic_vit arch, got "
                      f"{type(arch).__name__}")
    w = "elastic_vit arch"
    tokens = [check_token(arch.embed_dim, self.embed_choices, f"{w}: embed_dim"),
              check_token(arch.depth, self.depth_choices, f"{w}: depth")]
    for field in ("heads", "mlp_ratios"):
      if len(getattr(arch, field)) != arch.depth:
        raise UserError(f"{w}: depth is {arch.depth} but {field!r} lists "
                        f"{len(getattr(arch, field))} layers")
    for j in range(self.max_depth):
      if j < arch.depth:
        tokens += [check_token(arch.heads[j], self.head_choices,
                               f"{w}: heads of layer {j}"),
                   check_token(arch.mlp_ratios[j], self.mlp_ratio_choices,
                               f"{w}: mlp_ratio of layer {j}")]
      else:
        tokens += [0, 0]
    return tuple(tokens)

  def decode(self, tokens: Sequence[int]) -> ElasticVitArch:
    tokens = [int(t) for t in tokens]
    if len(tokens) != len(self.cardinalities()):
      raise UserError(f"elastic_vit space expects {len(self.cardinalities())} "
                      f"tokens, got {len(tokens)}")
    depth = self.depth_choices[tokens[1]]
    return ElasticVitArch(
        self.embed_choices[tokens[0]], depth,
        tuple(self.head_choices[tokens[2 + 2 * j]] for j in range(depth)),
        tuple(self.mlp_ratio_choices[tokens[3 + 2 * j]] for j in range(depth)))

  def live_tokens(self, arch: Arch) -> tuple[int, ...]:
    return (0, 1) + tuple(itertools.chain.from_iterable(
        (2 + 2 * j, 3 + 2 * j) for j in range(arch.depth)))

  def arch_from_json(self, doc: dict[str, Any]) -> ElasticVitArch:
    w = "elastic_vit arch"
    if doc.get("space", self.name) != self.name:
      raise UserError(f"{w}: document is of space {doc.get('space')!r}")
    embed = _json_number(doc, "embed_dim", w)
    depth = _json_number(doc, "depth", w)
    heads = _json_list(doc, "heads", w)
    ratios = _json_list(doc, "mlp_ratios", w)
    arch = ElasticVitArch(embed, depth, tuple(heads), tuple(ratios))
    return self.decode(self.encode(arch))

  def largest(self) -> ElasticVitArch:
    return self.decode([c - 1 for c in self.cardinalities()])

  def smallest(self) -> ElasticVitArch:
    return self.decode([0] * len(self.cardinalities()))
