"""Networks built from configs: supernets for search, networks for training.

``build_search_model(config, num_classes)`` and ``init_arch_params`` serve the
gradient search; ``build_network(config, arch)`` builds the network a config
trains for a fixed architecture (used by ``train``, ``profile`` and export).
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections

from supernet.errors import UserError
from supernet.models import darts_search
from supernet.models.nb201_net import Nb201Network
from supernet.spaces import Arch
from supernet.spaces import nb201 as nb201_space


def build_search_model(config: ml_collections.ConfigDict, num_classes: int):
  """The supernet of ``config.space`` with ``config.model`` hyper-parameters."""
  m = config.model
  name = config.space.name
  if name == "darts":
    k = config.search.pc_k if config.search.mixing == "pc_darts" else 1
    if m.channels % k:
      raise UserError(f"model.channels={m.channels} is not divisible by "
                      f"search.pc_k={k}")
    return darts_search.DartsSearchNetwork(
        num_classes=num_classes, channels=m.channels, layers=m.layers,
        stem_multiplier=m.stem_multiplier, partial_channels=k,
        depthwise_impl=m.depthwise_impl, remat=m.get("remat", True))
  if name == "nb201":
    return Nb201Network(num_classes=num_classes, channels=m.channels,
                        cells_per_stage=m.cells_per_stage, arch=None,
                        affine=False)
  raise UserError(f"no search network for space {name!r}")


def init_arch_params(config: ml_collections.ConfigDict, key: jax.Array
                     ) -> dict[str, jax.Array]:
  """Initial architecture logits (1e-3 * N(0, 1), as DARTS)."""
  if config.space.name == "darts":
    return darts_search.init_alphas(
        key, edge_normalisation=config.search.mixing == "pc_darts")
  return {"cell": 1e-3 * jax.random.normal(
      key, (len(nb201_space.EDGES), len(nb201_space.OPS)))}


def build_network(config: ml_collections.ConfigDict, arch: Arch,
                  num_classes: int | None = None) -> tuple[Any, tuple]:
  """The trainable network for a fixed ``arch`` under ``config``.

  Returns:
    ``(module, input_shape_hwc)``. The module is called as
    ``module.apply(variables, x, train=...)``; DARTS evaluation networks with
    an auxiliary head return ``(logits, aux_logits)`` when ``train=True``.
  """
  from supernet.models import darts_eval  # noqa: PLC0415 - heavy
  n = num_classes or config.model.get("num_classes", 0) or None
  if n is None:
    raise UserError("config.model.num_classes is not set (a training config "
                    "such as darts_cifar10_train.py has it; profile also "
                    "takes --num-classes N)")
  shape = tuple(config.model.input_shape)
  if arch.space == "darts":
    return darts_eval.build_darts_network(config, arch, n), shape
  if arch.space == "nb201":
    return Nb201Network(num_classes=n, channels=config.model.channels,
                        cells_per_stage=config.model.cells_per_stage,
                        arch=arch, affine=True), shape
  raise UserError(f"config cannot build a network for space {arch.space!r}")
