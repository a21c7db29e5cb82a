"""Channel re-ordering by importance before width slicing (as Once-for-All).

Width and expand ratio keep the *first* channels, so the most useful channels
should come first. These pure functions sort, per block, the hidden channels
by the L1 norm of the project convolution weights reading them, and, per
stage (and the stem), the output channels by the L1 norm of the weights
writing them. A permutation of hidden units leaves the largest network's
function unchanged (tested); only which channels the smaller sub-networks
keep changes.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from supernet.elastic.layout import mbv_layout
from supernet.spaces.elastic import ElasticMobileNetSpace

Tree = Any
# What a permutation of a layer's channels touches, per variable.
_BN_KEYS = ("scale", "bias", "mean", "var")


def channel_permutations(space: ElasticMobileNetSpace, params: Tree
                         ) -> dict[str, np.ndarray]:
  """Importance orders (most important first) of every permutable group.

  Args:
    space: the elastic MobileNet space.
    params: supernet parameters.

  Returns:
    ``{"stem": perm, "stage{s}": perm, "<block>/mid": perm, ...}``.
  """
  full = mbv_layout(space, space.largest())
  # A stage whose first block has an identity shortcut shares its channel
  # order with its input (stem or previous stage): residual sums must line up.
  group = {"stem": "stem"}
  previous = "stem"
  for s in range(space.num_stages):
    group[f"stage{s}"] = (group[previous] if space.block_residual(s, 0)
                          else f"stage{s}")
    previous = f"stage{s}"
  importance: dict[str, Any] = {
      "stem": np.abs(np.asarray(params["stem_conv"]["kernel"])).sum(
          axis=(0, 1, 2))}
  perms: dict[str, np.ndarray] = {}
  for b in full.blocks:
    project = np.abs(np.asarray(params[b.name]["project_conv"]["kernel"]))
    perms[f"{b.name}/mid"] = np.argsort(-project.sum(axis=(0, 1, 3)),
                                        kind="stable")
    g = group[f"stage{b.stage}"]
    importance[g] = importance.get(g, 0) + project.sum(axis=(0, 1, 2))
  for name, g in group.items():
    perms[name] = np.argsort(-importance[g], kind="stable")
  return perms


def _take(x: Any, perm: np.ndarray, axis: int) -> Any:
  return jnp.take(jnp.asarray(x), jnp.asarray(perm), axis=axis)


def _permute_bn(bn: dict, perm: np.ndarray) -> dict:
  return {k: _take(v, perm, 0) if k in _BN_KEYS else v for k, v in bn.items()}


def permute_tree(space: ElasticMobileNetSpace, tree: Tree,
                 perms: dict[str, np.ndarray]) -> Tree:
  """Applies channel permutations to a params- or batch_stats-shaped tree.

  Works on parameters, BatchNorm statistics and any optimiser-state subtree
  shaped like the parameters (momentum buffers), so training resumes
  consistently.

  Args:
    space: the elastic MobileNet space.
    tree: a dict keyed like the supernet's top-level scopes.
    perms: from :func:`channel_permutations`.

  Returns:
    The permuted tree (a new dict).
  """
  full = mbv_layout(space, space.largest())
  out = dict(tree)

  def conv(node: dict, perm_in, perm_out) -> dict:
    node = dict(node)
    if "kernel" in node:
      k = node["kernel"]
      if perm_in is not None:
        k = _take(k, perm_in, 2)
      if perm_out is not None:
        k = _take(k, perm_out, 3)
      node["kernel"] = k
    return node

  if "stem_conv" in out:
    out["stem_conv"] = conv(out["stem_conv"], None, perms["stem"])
  if "stem_bn" in out:
    out["stem_bn"] = _permute_bn(out["stem_bn"], perms["stem"])
  for b in full.blocks:
    if b.name not in out:
      continue
    node = dict(out[b.name])
    mid = perms[f"{b.name}/mid"]
    stage = perms[f"stage{b.stage}"]
    if b.index > 0:
      source = stage
    elif b.stage == 0:
      source = perms["stem"]
    else:
      source = perms[f"stage{b.stage - 1}"]
    if "expand_conv" in node:
      node["expand_conv"] = conv(node["expand_conv"], source, mid)
    if "dw_kernel" in node:
      node["dw_kernel"] = _take(node["dw_kernel"], mid, 3)
    if "project_conv" in node:
      node["project_conv"] = conv(node["project_conv"], mid, stage)
    for name, perm in (("expand_bn", mid), ("dw_bn", mid),
                       ("project_bn", stage)):
      if name in node:
        node[name] = _permute_bn(node[name], perm)
    out[b.name] = node
  if "head_conv" in out:
    out["head_conv"] = conv(out["head_conv"],
                            perms[f"stage{space.num_stages - 1}"], None)
  return out


def reorder_channels(space: ElasticMobileNetSpace, params: Tree,
                     batch_stats: Tree, opt_state: Any = None
                     ) -> tuple[Tree, Tree, Any]:
  """Sorts channels by importance; the largest network's function is kept.

  Args:
    space: the elastic MobileNet space.
    params: supernet parameters.
    batch_stats: BatchNorm statistics.
    opt_state: optional optimiser state; subtrees shaped like ``params``
      (momentum, Adam moments) are permuted alike.

  Returns:
    ``(params, batch_stats, opt_state)`` permuted.
  """
  perms = channel_permutations(space, params)
  new_params = permute_tree(space, params, perms)
  new_stats = permute_tree(space, batch_stats, perms)
  if opt_state is not None:
    keys = set(params)

    def visit(node):
      if isinstance(node, dict) and set(node) == keys:
        return permute_tree(space, node, perms)
      if isinstance(node, tuple) and hasattr(node, "_fields"):
        return type(node)(*(visit(v) for v in node))
      if isinstance(node, (list, tuple)):
        return type(node)(visit(v) for v in node)
      return node

    opt_state = visit(opt_state)
  return new_params, new_stats, opt_state
