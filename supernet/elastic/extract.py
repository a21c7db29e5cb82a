"""Extracting a sub-network: a static module and its sliced variables."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from supernet.elastic.layers import kernel_for_size
from supernet.elastic.layout import mbv_layout
from supernet.elastic.mbv import ElasticMobileNet, transform_name
from supernet.elastic.static import MobileNet
from supernet.spaces.elastic import ElasticMbvArch


def _bn(params: dict, stats: dict, c: int) -> tuple[dict, dict]:
  return ({"scale": params["scale"][:c], "bias": params["bias"][:c]},
          {"mean": stats["mean"][:c], "var": stats["var"][:c]})


def extract_subnet(model: ElasticMobileNet, params: dict[str, Any],
                   batch_stats: dict[str, Any], arch: ElasticMbvArch
                   ) -> tuple[MobileNet, dict[str, Any]]:
  """The sub-network ``arch`` as a standalone network and its own variables.

  The weights are sliced exactly as the discrete view slices them (first
  channels, centre kernels after any kernel transformation, first blocks), so
  the standalone network's logits equal ``model.apply(..., arch)``. Pass
  BatchNorm statistics re-calibrated for ``arch`` (see
  :func:`~supernet.elastic.bn.recalibrate_bn`) for a usable network.

  Args:
    model: the supernet module.
    params: its ``params``.
    batch_stats: its ``batch_stats``.
    arch: the architecture to extract.

  Returns:
    ``(module, variables)`` with ``variables = {"params", "batch_stats"}``.
  """
  space = model.space
  layout = mbv_layout(space, arch)
  out_p: dict[str, Any] = {}
  out_s: dict[str, Any] = {}
  c_in = None

  def conv(p: dict, cin: int, cout: int) -> dict:
    return {"kernel": p["kernel"][:, :, :cin, :cout]}

  out_p["stem_conv"] = {"kernel": params["stem_conv"]["kernel"][
      ..., :layout.stem_channels]}
  out_p["stem_bn"], out_s["stem_bn"] = _bn(params["stem_bn"],
                                           batch_stats["stem_bn"],
                                           layout.stem_channels)
  for b in layout.blocks:
    p, s = params[b.name], batch_stats[b.name]
    transforms = None
    if model.kernel_transform:
      transforms = {k: params[transform_name(b.stage, k)]
                    for k in space.kernel_choices[:-1]}
    dw = kernel_for_size(p["dw_kernel"], b.kernel, space.kernel_choices,
                         transforms)[..., :b.mid_channels]
    bp, bs = {}, {}
    bp["expand_conv"] = conv(p["expand_conv"], b.in_channels, b.mid_channels)
    bp["expand_bn"], bs["expand_bn"] = _bn(p["expand_bn"], s["expand_bn"],
                                           b.mid_channels)
    bp["dw_conv"] = {"kernel": dw}
    bp["dw_bn"], bs["dw_bn"] = _bn(p["dw_bn"], s["dw_bn"], b.mid_channels)
    bp["project_conv"] = conv(p["project_conv"], b.mid_channels,
                              b.out_channels)
    bp["project_bn"], bs["project_bn"] = _bn(p["project_bn"], s["project_bn"],
                                             b.out_channels)
    out_p[b.name], out_s[b.name] = bp, bs
    c_in = b.out_channels
  out_p["head_conv"] = conv(params["head_conv"], c_in, layout.head_channels)
  out_p["head_bn"], out_s["head_bn"] = _bn(params["head_bn"],
                                           batch_stats["head_bn"],
                                           layout.head_channels)
  out_p["classifier"] = dict(params["classifier"])
  module = MobileNet(layout, model.num_classes, model.dw_impl,
                     model.bn_momentum, model.bn_epsilon)
  variables = jax.tree.map(jnp.asarray, {"params": out_p, "batch_stats": out_s})
  return module, variables


def extract_from_run(workdir: str, arch: Any, bn_batches: int | None = None
                     ) -> dict[str, Any]:
  """Extracts ``arch`` from the newest checkpoint of an elastic training run.

  BatchNorm statistics are re-calibrated for ``arch`` on training batches
  first, so the standalone network is ready to use.

  Args:
    workdir: the run directory of ``supernet train``.
    arch: an architecture of the run's space, or the path of an
      ``arch.json`` file.
    bn_batches: training batches for BN re-calibration (default: the run's
      ``evaluate.bn_batches``).

  Returns:
    ``{"arch", "module", "variables", "input_shape", "metadata"}``.
  """
  import os

  import numpy as np

  from supernet.data import load_dataset
  from supernet.elastic.bn import recalibrate_bn
  from supernet.elastic.layout import mbv_costs
  from supernet.elastic.masks import token_bounds
  from supernet.elastic.step import TrainState, create_train_state, make_optimizer
  from supernet.elastic.train import build_model
  from supernet.errors import UserError
  from supernet.rundir import Checkpoints, read_run_config
  from supernet.spaces import load_arch

  config = read_run_config(workdir)
  data = load_dataset(config.data)
  info = data.info
  model, space = build_model(config, info.num_classes)
  if not isinstance(arch, ElasticMbvArch):
    arch = load_arch(arch, space)
  space.validate(arch)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise UserError(f"{workdir} holds no checkpoints; train it first")
  steps = data.steps_per_epoch()
  tx = make_optimizer(config.optim, int(config.train.epochs) * steps, steps)
  template = create_train_state(model, jax.random.key(0), info.image_shape,
                                tx, token_bounds(space)).to_tree()
  checkpoints = Checkpoints(ckpt_dir)
  restored = checkpoints.restore_latest(template)
  checkpoints.close()
  if restored is None:
    raise UserError(f"{workdir} holds no complete checkpoint; train it first")
  step, tree = restored
  state = TrainState.from_tree(tree)
  num = int(bn_batches or config.evaluate.bn_batches)
  images = [jnp.asarray(b["image"]) for b, _ in zip(
      data.train_batches(0, int(config.seed)), range(num))]
  stats = recalibrate_bn(model, state.params, state.batch_stats, arch, images)
  module, variables = extract_subnet(model, state.params, stats, arch)

  apply = jax.jit(lambda v, x: module.apply(v, x))
  hits = total = 0.0
  for b in data.eval_batches("test"):
    logits = apply(variables, jnp.asarray(b["image"]))
    hits += float(np.sum((np.argmax(np.asarray(logits), -1) == b["label"])
                         * b["mask"]))
    total += float(np.sum(b["mask"]))
  cost = mbv_costs(module.layout, info.image_shape[-1], info.num_classes)
  from supernet.export import dataset_metadata
  metadata = {**dataset_metadata(info, config.data),
              "config": config.to_dict(),
              "source_run": os.path.abspath(workdir),
              "checkpoint_step": int(step),
              "test_accuracy": hits / max(total, 1),
              "bn_recalibration_batches": len(images), **cost}
  shape = (arch.resolution, arch.resolution, info.image_shape[-1])
  return {"arch": arch, "module": module, "variables": variables,
          "input_shape": shape, "metadata": metadata}


def build_standalone(config: Any, arch: ElasticMbvArch, num_classes: int
                     ) -> MobileNet:
  """The standalone network of ``arch`` from an experiment config.

  What reading an export needs: ``metadata["config"]`` and ``arch.json``
  rebuild the module that ``weights.msgpack`` fits.

  Args:
    config: the experiment config (or its dict).
    arch: the architecture.
    num_classes: classifier outputs.

  Returns:
    The static module.
  """
  import ml_collections

  from supernet.elastic.train import build_model
  if not isinstance(config, ml_collections.ConfigDict):
    config = ml_collections.ConfigDict(config)
  model, space = build_model(config, num_classes)
  if isinstance(arch, dict):
    arch = space.arch_from_json(arch)
  return MobileNet(mbv_layout(space, arch), num_classes, model.dw_impl,
                   model.bn_momentum, model.bn_epsilon)
