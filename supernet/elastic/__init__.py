"""Elastic (Once-for-All style) supernets: one module, many sub-networks.

The architecture is a value. Two families share one training step, one
training loop, population evaluation and extraction, each supplying its
pieces through an :class:`ElasticFamily` (:data:`FAMILIES`, keyed by space
name):

* ``elastic_mbv``: an :class:`~supernet.spaces.elastic.ElasticMbvArch` runs
  the discrete view of :class:`ElasticMobileNet` (sliced static shapes), its
  :class:`MbvMasks` the masked view (arrays, so ``jax.vmap`` evaluates a
  population); BatchNorm is re-calibrated per sub-network; the standalone
  network is :class:`MobileNet`.
* ``elastic_vit``: an :class:`~supernet.spaces.elastic.ElasticVitArch` runs
  the discrete view of :class:`ElasticViT`, its :class:`VitMasks` the masked
  view; there is no BatchNorm (re-calibration is a no-op); the standalone
  network is :class:`ViT`; costs are :func:`vit_costs`.

Modules here are imported lazily by their users; nothing runs at import.

Public API:
  * models: :class:`ElasticMobileNet`, :class:`ElasticViT` (both views),
    :func:`init_supernet`, :class:`MobileNet` and :class:`ViT` (standalone
    static networks), :func:`mbv_layout`, :func:`mbv_costs`,
    :func:`vit_layout`, :func:`vit_costs`;
  * families: :class:`ElasticFamily`, :data:`FAMILIES`, :func:`family_of`,
    :func:`build_supernet`;
  * masks: :class:`MbvMasks`, :func:`arch_masks`, :func:`population_masks`,
    :func:`masks_from_tokens`, :func:`sample_tokens`, :func:`token_bounds`,
    :class:`VitMasks`, :func:`vit_arch_masks`, :func:`vit_masks_from_tokens`,
    :func:`vit_token_bounds`;
  * training (either family): :class:`TrainState`,
    :func:`create_train_state`, :func:`make_train_step`,
    :func:`make_optimizer`, :func:`train_and_evaluate`;
  * BN re-calibration: :func:`recalibrate_bn`, :func:`recalibrate_bn_masked`
    (no-ops for the ViT);
  * evaluation (either family): :func:`evaluate_population`,
    :func:`evaluate_subnet`, :func:`bench_population`;
  * extraction: :func:`extract_subnet` (MobileNet),
    :func:`extract_vit_subnet` (ViT), :func:`extract_from_run` (either);
  * OFA extras (MobileNet): :func:`reorder_channels`, kernel transformation
    matrices (``ElasticMobileNet(kernel_transform=True)``).
"""

from supernet.elastic.bench import bench_population
from supernet.elastic.bn import recalibrate_bn, recalibrate_bn_masked
from supernet.elastic.extract import (
                                    extract_from_run,
                                    extract_subnet,
                                    extract_vit_subnet,
)
from supernet.elastic.family import (
                                    FAMILIES,
                                    ElasticFamily,
                                    build_supernet,
                                    family_of,
)
from supernet.elastic.layout import BlockSpec, MbvLayout, mbv_costs, mbv_layout
from supernet.elastic.masks import (
                                    MbvMasks,
                                    arch_masks,
                                    masks_from_tokens,
                                    population_masks,
                                    sample_tokens,
                                    token_bounds,
)
from supernet.elastic.mbv import ElasticMobileNet, init_supernet
from supernet.elastic.population import evaluate_population, evaluate_subnet
from supernet.elastic.reorder import reorder_channels
from supernet.elastic.static import MobileNet
from supernet.elastic.step import (
                                    TrainState,
                                    create_train_state,
                                    make_optimizer,
                                    make_train_step,
)
from supernet.elastic.train import build_model, train_and_evaluate
from supernet.elastic.vit import (
                                    ElasticViT,
                                    VitMasks,
                                    vit_arch_masks,
                                    vit_masks_from_tokens,
                                    vit_token_bounds,
)
from supernet.elastic.vit_static import ViT, VitLayout, vit_costs, vit_layout

__all__ = [
    "FAMILIES", "BlockSpec", "ElasticFamily", "ElasticMobileNet",
    "ElasticViT", "MbvLayout", "MbvMasks", "MobileNet", "TrainState", "ViT",
    "VitLayout", "VitMasks", "arch_masks", "bench_population", "build_model",
    "build_supernet", "create_train_state", "evaluate_population",
    "evaluate_subnet", "extract_from_run", "extract_subnet",
    "extract_vit_subnet", "family_of", "init_supernet", "make_optimizer",
    "make_train_step", "masks_from_tokens", "mbv_costs", "mbv_layout",
    "population_masks", "recalibrate_bn", "recalibrate_bn_masked",
    "reorder_channels", "sample_tokens", "token_bounds",
    "train_and_evaluate", "vit_arch_masks", "vit_costs", "vit_layout",
    "vit_masks_from_tokens", "vit_token_bounds",
]
