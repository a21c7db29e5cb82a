"""Extracting a sub-network: a static module and its sliced variables.

:func:`extract_subnet` (MobileNet) and :func:`extract_vit_subnet` (ViT) slice
the shared weights exactly as the supernet's discrete view does;
:func:`extract_from_run` restores a training run, picks the family from the
run's space and returns everything an export directory needs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from supernet.elastic.layers import kernel_for_size
from supernet.elastic.layout import mbv_layout
from supernet.elastic.mbv import ElasticMobileNet, transform_name
from supernet.elastic.static import MobileNet
from supernet.elastic.vit import ElasticViT
from supernet.elastic.vit_static import ViT, vit_layout
from supernet.spaces.elastic import ElasticMbvArch, ElasticVitArch


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


def extract_vit_subnet(model: ElasticViT, params: dict[str, Any],
                       batch_stats: dict[str, Any] | None, arch: ElasticVitArch
                       ) -> tuple[ViT, dict[str, Any]]:
  """The ViT sub-network ``arch`` as a standalone network and its variables.

  The weights are sliced as the discrete view slices them (first embedding
  channels, first heads, first MLP units, first layers), so the standalone
  network's logits equal ``model.apply(..., arch)``.

  Args:
    model: the ViT supernet module.
    params: its ``params``.
    batch_stats: ignored (a ViT has no BatchNorm); kept so every family's
      extraction has one signature.
    arch: the architecture to extract.

  Returns:
    ``(module, variables)`` with ``variables = {"params"}``.
  """
  del batch_stats
  layout = vit_layout(model.space, arch)
  e = layout.embed_dim
  p = params
  out: dict[str, Any] = {
      "patch_embed": {"kernel": p["patch_embed"][..., :e],
                      "bias": p["patch_bias"][:e]},
      "pos_embed": p["pos_embed"][:, :e],
  }
  for j, (h, m) in enumerate(zip(layout.heads, layout.mlp_hidden)):
    n = f"layer{j}"
    out[n] = {
        "ln1": {"scale": p[f"{n}_ln1_scale"][:e], "bias": p[f"{n}_ln1_bias"][:e]},
        "qkv": {"kernel": p[f"{n}_qkv"][:e, :, :h],
                "bias": p[f"{n}_qkv_bias"][:, :h]},
        "proj": {"kernel": p[f"{n}_proj"][:h, :, :e],
                 "bias": p[f"{n}_proj_bias"][:e]},
        "ln2": {"scale": p[f"{n}_ln2_scale"][:e], "bias": p[f"{n}_ln2_bias"][:e]},
        "fc1": {"kernel": p[f"{n}_fc1"][:e, :m], "bias": p[f"{n}_fc1_bias"][:m]},
        "fc2": {"kernel": p[f"{n}_fc2"][:m, :e], "bias": p[f"{n}_fc2_bias"][:e]},
    }
  out["final_ln"] = {"scale": p["final_ln_scale"][:e],
                     "bias": p["final_ln_bias"][:e]}
  out["head"] = {"kernel": p["head"][:e], "bias": p["head_bias"]}
  module = ViT(layout, model.num_classes)
  return module, jax.tree.map(jnp.asarray, {"params": out})


def _check_elastic_run(workdir: str) -> Any:
  """The config of ``workdir`` if it is an elastic ``supernet train`` run."""
  import json
  import os

  from supernet.elastic.family import FAMILIES
  from supernet.errors import UserError
  from supernet.rundir import read_run_config

  config = read_run_config(workdir)
  run_file = os.path.join(workdir, "run.json")
  if os.path.isfile(run_file):
    try:
      with open(run_file) as f:
        command = json.load(f).get("command")
    except (OSError, ValueError, AttributeError):
      raise UserError(f"{run_file} is corrupt") from None
    if command != "train":
      raise UserError(f"{workdir} is a '{command}' run, not an elastic "
                      "'supernet train' run")
  name = config.get("space", {}).get("name")
  if name not in FAMILIES:
    raise UserError(f"{workdir} did not train an elastic supernet (its space "
                    f"is {name!r}, extraction needs one of "
                    f"{sorted(FAMILIES)}); use 'supernet export' for a trained "
                    "network")
  return config


def extract_from_run(workdir: str, arch: Any, bn_batches: int | None = None
                     ) -> dict[str, Any]:
  """Extracts ``arch`` from the newest checkpoint of an elastic training run.

  Works for every elastic family (the run's space says which). BatchNorm
  statistics are re-calibrated for ``arch`` on training batches first, so
  the standalone network is ready to use (the ViT has no BatchNorm: nothing
  to re-calibrate).

  Args:
    workdir: the run directory of ``supernet train``.
    arch: an architecture of the run's space, or the path of an
      ``arch.json`` file.
    bn_batches: training batches for BN re-calibration (default: the run's
      ``evaluate.bn_batches``).

  Returns:
    ``{"arch", "module", "variables", "input_shape", "metadata"}``.

  Raises:
    UserError: ``workdir`` is not an elastic training run or has no
      checkpoint, or ``arch`` is not an architecture of its space.
  """
  import os

  import numpy as np

  from supernet.data import load_dataset
  from supernet.elastic.bn import recalibrate_bn
  from supernet.elastic.family import build_supernet
  from supernet.elastic.step import TrainState, create_train_state, make_optimizer
  from supernet.errors import UserError
  from supernet.rundir import Checkpoints
  from supernet.spaces import load_arch

  config = _check_elastic_run(workdir)
  data = load_dataset(config.data)
  info = data.info
  family, model, space = build_supernet(config, info.num_classes)
  if not isinstance(arch, family.arch_type):
    if hasattr(arch, "to_json"):
      raise UserError(f"arch of space {arch.space!r} does not belong to the "
                      f"run's space {space.name!r}")
    arch = load_arch(arch, space)
  space.validate(arch)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise UserError(f"{workdir} holds no checkpoints; train it first")
  steps = data.steps_per_epoch()
  tx = make_optimizer(config.optim, int(config.train.epochs) * steps, steps)
  # Shapes suffice to restore; real initial weights would cost compilations.
  template = jax.eval_shape(lambda k: create_train_state(
      model, k, info.image_shape, tx, family.token_bounds(space)),
      jax.random.key(0)).to_tree()
  checkpoints = Checkpoints(ckpt_dir)
  restored = checkpoints.restore_latest(template)
  checkpoints.close()
  if restored is None:
    raise UserError(f"{workdir} holds no complete checkpoint; train it first")
  step, tree = restored
  state = TrainState.from_tree(tree)
  images = []
  if family.batch_norm:
    num = int(bn_batches or config.evaluate.bn_batches)
    images = [jnp.asarray(b["image"]) for b, _ in zip(
        data.train_batches(0, int(config.seed)), range(num))]
  stats = recalibrate_bn(model, state.params, state.batch_stats, arch, images)
  module, variables = family.extract(model, state.params, stats, arch)

  apply = jax.jit(lambda v, x: module.apply(v, x))
  hits = total = 0.0
  for b in data.eval_batches("test"):
    logits = apply(variables, jnp.asarray(b["image"]))
    hits += float(np.sum((np.argmax(np.asarray(logits), -1) == b["label"])
                         * b["mask"]))
    total += float(np.sum(b["mask"]))
  cost = family.costs(space, arch, info.image_shape[-1], info.num_classes)
  from supernet.export import dataset_metadata
  metadata = {**dataset_metadata(info, config.data),
              "config": config.to_dict(),
              "source_run": os.path.abspath(workdir),
              "checkpoint_step": int(step),
              "test_accuracy": hits / max(total, 1),
              "eval_batch_size": int(config.data.get("eval_batch_size", 256)),
              "bn_recalibration_batches": len(images), **cost}
  # The sub-network takes the dataset's images and resizes them to its
  # resolution itself (the function every view uses), so the export's input
  # is what the run trained and evaluated on.
  shape = tuple(info.image_shape)
  return {"arch": arch, "module": module, "variables": variables,
          "input_shape": shape, "metadata": metadata}


def build_standalone(config: Any, arch: Any, num_classes: int) -> Any:
  """The standalone network of ``arch`` from an experiment config.

  What reading an export needs: ``metadata["config"]`` and ``arch.json``
  rebuild the module that ``weights.msgpack`` fits (a MobileNet or a ViT,
  by the config's space).

  Args:
    config: the experiment config (or its dict).
    arch: the architecture (or its ``arch.json`` document).
    num_classes: classifier outputs.

  Returns:
    The static module.
  """
  import ml_collections

  from supernet.elastic.family import build_supernet
  if not isinstance(config, ml_collections.ConfigDict):
    config = ml_collections.ConfigDict(config)
  family, model, space = build_supernet(config, num_classes)
  if isinstance(arch, dict):
    arch = space.arch_from_json(arch)
  return family.standalone(model, arch)
