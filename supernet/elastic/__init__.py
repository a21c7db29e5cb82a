"""Elastic (Once-for-All style) supernets: one module, many sub-networks.

The architecture is a value: an :class:`~supernet.spaces.elastic.ElasticMbvArch`
runs the discrete view (sliced static shapes), its :class:`MbvMasks` the
masked view (arrays, so ``jax.vmap`` evaluates a population). Modules here
are imported lazily by their users; nothing runs at import.

Public API:
  * models: :class:`ElasticMobileNet`, :class:`ElasticViT` (both views;
    training and extraction are for the MobileNet), :func:`init_supernet`,
    :class:`MobileNet` (standalone static network), :func:`mbv_layout`,
    :func:`mbv_costs`;
  * masks: :class:`MbvMasks`, :func:`arch_masks`, :func:`population_masks`,
    :func:`masks_from_tokens`, :func:`sample_tokens`, :func:`token_bounds`;
  * training: :class:`TrainState`, :func:`create_train_state`,
    :func:`make_train_step`, :func:`make_optimizer`,
    :func:`train_and_evaluate`;
  * BN re-calibration: :func:`recalibrate_bn`, :func:`recalibrate_bn_masked`;
  * evaluation: :func:`evaluate_population`, :func:`evaluate_subnet`,
    :func:`bench_population`;
  * extraction: :func:`extract_subnet`, :func:`extract_from_run`;
  * OFA extras: :func:`reorder_channels`, kernel transformation matrices
    (``ElasticMobileNet(kernel_transform=True)``).
"""

from supernet.elastic.bench import bench_population
from supernet.elastic.bn import recalibrate_bn, recalibrate_bn_masked
from supernet.elastic.extract import extract_from_run, extract_subnet
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
)

__all__ = [
    "BlockSpec", "ElasticMobileNet", "ElasticViT", "VitMasks", "MbvLayout", "MbvMasks", "MobileNet",
    "TrainState", "arch_masks", "bench_population", "build_model",
    "create_train_state", "evaluate_population", "evaluate_subnet",
    "extract_from_run", "extract_subnet", "init_supernet", "make_optimizer",
    "make_train_step", "masks_from_tokens", "mbv_costs", "mbv_layout",
    "population_masks", "recalibrate_bn", "recalibrate_bn_masked",
    "reorder_channels", "sample_tokens", "token_bounds",
    "train_and_evaluate", "vit_arch_masks", "vit_masks_from_tokens",
]
