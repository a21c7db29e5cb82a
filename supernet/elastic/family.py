"""Elastic families: what the shared training, evaluation and extraction
code needs to know about one kind of elastic supernet.

The sandwich-rule step, the training loop, population evaluation and
extraction are written once; each family (the MobileNet of
``elastic_mbv``, the ViT of ``elastic_vit``) supplies its pieces through an
:class:`ElasticFamily`: how tokens become masks, which tokens each
progressive-shrinking dimension frees, the supernet module, analytic costs,
the standalone network and the weight slicing. The registry :data:`FAMILIES`
is an explicit dict keyed by space name, so an unknown space fails early
with the valid names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from supernet.elastic import masks as mbv_masks
from supernet.elastic import vit as vit_lib
from supernet.elastic.extract import extract_subnet, extract_vit_subnet
from supernet.elastic.layout import mbv_costs, mbv_layout
from supernet.elastic.mbv import ElasticMobileNet
from supernet.elastic.static import MobileNet
from supernet.elastic.vit_static import ViT, vit_costs, vit_layout
from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace
from supernet.spaces.elastic import (
  ElasticMbvArch,
  ElasticMobileNetSpace,
  ElasticTransformerSpace,
  ElasticVitArch,
)

Tree = Any


@dataclasses.dataclass(frozen=True)
class ElasticFamily:
  """One kind of elastic supernet, as the shared code sees it.

  Attributes:
    space_name: the registered name of its search space.
    space_type: the space class.
    arch_type: the architecture class.
    dimensions: names of its elastic dimensions (progressive shrinking).
    masks_from_tokens: ``(space, tokens) -> masks`` (traceable).
    token_bounds: ``(space, elastic_dims) -> (lo, hi)`` sampling bounds.
    build: ``(space, model_config, num_classes) -> supernet module``.
    standalone: ``(supernet, arch) -> static module`` of one sub-network.
    extract: ``(supernet, params, batch_stats, arch) -> (module, variables)``.
    costs: ``(space, arch, in_channels, num_classes) -> {"macs", "params"}``.
    batch_norm: whether the supernet has BatchNorm (else re-calibration is a
      no-op and ``batch_stats`` is empty).
    reorder_channels: importance re-ordering of first-k channels
      (``(space, params, batch_stats, opt_state) -> same``), or None.
    reorder_dims: dimensions whose enabling triggers re-ordering.
  """

  space_name: str
  space_type: type
  arch_type: type
  dimensions: tuple[str, ...]
  masks_from_tokens: Callable[[Any, jax.Array], Any]
  token_bounds: Callable[..., tuple[Any, Any]]
  build: Callable[[Any, ml_collections.ConfigDict, int], nn.Module]
  standalone: Callable[[nn.Module, Arch], nn.Module]
  extract: Callable[[nn.Module, Tree, Tree, Arch], tuple[nn.Module, Tree]]
  costs: Callable[[Any, Arch, int, int], dict[str, int]]
  batch_norm: bool
  reorder_channels: Callable[..., Any] | None = None
  reorder_dims: tuple[str, ...] = ()

  def population_masks(self, space: SearchSpace, archs: Sequence[Arch]
                       ) -> Any:
    """Masks of several architectures stacked along a leading axis."""
    tokens = jnp.asarray([space.encode(a) for a in archs], jnp.int32)
    return jax.vmap(lambda t: self.masks_from_tokens(space, t))(tokens)


def _build_mbv(space: ElasticMobileNetSpace, m: ml_collections.ConfigDict,
               num_classes: int) -> ElasticMobileNet:
  return ElasticMobileNet(
      space, num_classes,
      kernel_transform=bool(m.get("kernel_transform", False)),
      dw_impl=m.get("depthwise_impl", "auto"),
      bn_momentum=float(m.get("bn_momentum", 0.9)),
      bn_epsilon=float(m.get("bn_epsilon", 1e-5)))


def _mbv_standalone(model: ElasticMobileNet, arch: ElasticMbvArch
                    ) -> MobileNet:
  return MobileNet(mbv_layout(model.space, arch), model.num_classes,
                   model.dw_impl, model.bn_momentum, model.bn_epsilon)


def _reorder_mbv(space, params, batch_stats, opt_state):
  from supernet.elastic.reorder import reorder_channels
  return reorder_channels(space, params, batch_stats, opt_state)


def _build_vit(space: ElasticTransformerSpace, m: ml_collections.ConfigDict,
               num_classes: int) -> vit_lib.ElasticViT:
  unknown = sorted(set(m.keys()))
  if unknown:
    raise UserError(f"model: the elastic ViT takes no model fields, got "
                    f"{unknown} (its shapes are all in 'space')")
  return vit_lib.ElasticViT(space, num_classes)


MBV = ElasticFamily(
    space_name="elastic_mbv",
    space_type=ElasticMobileNetSpace,
    arch_type=ElasticMbvArch,
    dimensions=mbv_masks.DIMENSIONS,
    masks_from_tokens=mbv_masks.masks_from_tokens,
    token_bounds=mbv_masks.token_bounds,
    build=_build_mbv,
    standalone=_mbv_standalone,
    extract=extract_subnet,
    costs=lambda space, arch, c, k: mbv_costs(mbv_layout(space, arch), c, k),
    batch_norm=True,
    reorder_channels=_reorder_mbv,
    reorder_dims=("expand", "width"),
)

VIT = ElasticFamily(
    space_name="elastic_vit",
    space_type=ElasticTransformerSpace,
    arch_type=ElasticVitArch,
    dimensions=vit_lib.VIT_DIMENSIONS,
    masks_from_tokens=vit_lib.vit_masks_from_tokens,
    token_bounds=vit_lib.vit_token_bounds,
    build=_build_vit,
    standalone=lambda model, arch: ViT(vit_layout(model.space, arch),
                                       model.num_classes),
    extract=extract_vit_subnet,
    costs=lambda space, arch, c, k: vit_costs(vit_layout(space, arch), c, k),
    batch_norm=False,
)

# space name -> family (an explicit registry).
FAMILIES: dict[str, ElasticFamily] = {f.space_name: f for f in (MBV, VIT)}


def family_of(what: str | SearchSpace | nn.Module) -> ElasticFamily:
  """The family of a space name, a space, or a supernet module.

  Args:
    what: ``"elastic_mbv"``/``"elastic_vit"``, an elastic space, or a
      supernet (anything with a ``space`` attribute).

  Returns:
    The family. Raises a one-line ``UserError`` for anything else.
  """
  if isinstance(what, nn.Module):
    what = what.space
  name = what if isinstance(what, str) else getattr(what, "name", None)
  if name not in FAMILIES:
    raise UserError(f"space {name!r} is not an elastic supernet space; valid: "
                    f"{sorted(FAMILIES)}")
  return FAMILIES[name]


def build_supernet(config: ml_collections.ConfigDict, num_classes: int
                   ) -> tuple[ElasticFamily, nn.Module, SearchSpace]:
  """The family, supernet module and space of an experiment config.

  Args:
    config: with ``space`` (an elastic space) and optional ``model``.
    num_classes: classifier outputs (from the dataset).

  Returns:
    ``(family, model, space)``.
  """
  from supernet.spaces import make_space
  if "space" not in config or "name" not in config.space:
    raise UserError("the config has no space.name (elastic training needs "
                    f"one of {sorted(FAMILIES)})")
  name = config.space.name
  if name not in FAMILIES:
    raise UserError(f"elastic training needs an elastic space "
                    f"{sorted(FAMILIES)}, got {name!r}")
  family = FAMILIES[name]
  space = make_space(name, config.space)
  model_cfg = config.get("model", None) or ml_collections.ConfigDict()
  return family, family.build(space, model_cfg, num_classes), space
