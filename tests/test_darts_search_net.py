"""The DARTS search network: the paper's size, and its scanned edges."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from supernet.models import darts_search
from supernet.models.init import fast_init
from supernet.spaces.darts import NUM_NODES, edge_index


def _weights(key, edge_normalisation=False):
  alphas = darts_search.init_alphas(key, edge_normalisation=edge_normalisation,
                                    scale=1.0)
  return {k: v if k.endswith("_beta") else jax.nn.softmax(v, -1)
          for k, v in alphas.items()}


def test_search_network_has_the_papers_weight_count():
  # DARTS train_search.py on CIFAR-10 (8 cells, C=16) logs
  # "param size = 1.930618MB": its weights, architecture parameters apart.
  model = darts_search.DartsSearchNetwork(num_classes=10, channels=16,
                                          layers=8)
  x = jnp.zeros((1, 32, 32, 3))
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), x, _weights(jax.random.key(1)), train=False))
  assert sum(int(np.prod(v.shape))
             for v in jax.tree.leaves(shapes["params"])) == 1_930_618


def test_fast_init_fan_in_ignores_the_stacking_axis():
  model = darts_search.DartsSearchNetwork(num_classes=3, channels=8, layers=3)
  x = jnp.zeros((1, 8, 8, 3))
  variables = fast_init(model, jax.random.key(0), x,
                        _weights(jax.random.key(1)), train=False)
  flat = flax.traverse_util.flatten_dict(variables["params"])
  # 14 stacked pointwise 8->8 kernels: lecun_normal std 1/sqrt(8); depthwise
  # 3x3 ones: 1/3.
  prefix = ("cell0", "stacked_edges", "mixed", "sep_conv_3x3", "DilConv_0")
  pointwise = flat[prefix + ("Conv_0", "kernel")]
  depthwise = flat[prefix + ("DepthwiseConv_0", "kernel")]
  assert pointwise.shape == (14, 1, 1, 8, 8)
  assert depthwise.shape == (14, 3, 3, 1, 8)
  assert float(jnp.std(pointwise)) == pytest.approx(8 ** -0.5, rel=0.15)
  assert float(jnp.std(depthwise)) == pytest.approx(1 / 3, rel=0.15)


def _unrolled_cell(cell, variables, s0, s1, weights, betas):
  """The cell written out edge by edge from the stacked parameters."""
  def sub(*path):
    out = {}
    for collection, tree in variables.items():
      for name in path:
        tree = tree.get(name, {})
      if tree:
        out[collection] = tree
    return out

  c = cell.channels
  if cell.reduction_prev:
    pre0 = darts_search.darts_ops.FactorizedReduce(c, affine=False)
  else:
    pre0 = darts_search.darts_ops.ReLUConvBN(c, 1, 1, affine=False)
  pre1 = darts_search.darts_ops.ReLUConvBN(c, 1, 1, affine=False)
  states = [pre0.apply(sub("preprocess0"), s0, False),
            pre1.apply(sub("preprocess1"), s1, False)]
  groups = darts_search._edge_table(cell.reduction)
  names = (["stacked_edges"] if not cell.reduction
           else ["stacked_reduce_edges", "stacked_node_edges"])
  slot = {}
  for name, group in zip(names, groups):
    for i, (e, _, _) in enumerate(group):
      slot[e] = (name, i)
  for node in range(NUM_NODES):
    total = 0.0
    n_in = node + 2
    first = edge_index(node, 0)
    scale = (jax.nn.softmax(betas[first:first + n_in]) if betas is not None
             else jnp.ones(n_in))
    for src in range(n_in):
      e = edge_index(node, src)
      name, i = slot[e]
      edge_vars = jax.tree.map(lambda v, i=i: v[i], sub(name, "mixed"))
      strides = 2 if cell.reduction and src < 2 else 1
      op = darts_search.MixedOp(cell.channels, strides, cell.partial_channels)
      total = total + scale[src] * op.apply(edge_vars, states[src], weights[e],
                                            False)
    states.append(total)
  return jnp.concatenate(states[2:], axis=-1)


@pytest.mark.parametrize("reduction,reduction_prev,pc", [
    (True, False, 1), (False, True, 2)])
def test_scanned_cell_equals_the_unrolled_cell(reduction, reduction_prev, pc):
  cell = darts_search.SearchCell(8, reduction, reduction_prev, pc)
  k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
  size = 12 if reduction_prev else 6
  s0 = jax.random.normal(k0, (2, size, size, 6))
  s1 = jax.random.normal(k1, (2, 6, 6, 6))
  w = _weights(k2, edge_normalisation=pc > 1)
  kind = "reduce" if reduction else "normal"
  betas = w.get(kind + "_beta")
  variables = cell.init(jax.random.key(3), s0, s1, w[kind], betas, False)
  # Non-trivial running statistics, so BatchNorm slices are checked too.
  variables = jax.tree.map(lambda v: v + 0.1 * jnp.arange(v.size).reshape(
      v.shape) / v.size, variables)
  got = cell.apply(variables, s0, s1, w[kind], betas, False)
  want = jax.jit(lambda v, a, b, ww: _unrolled_cell(cell, v, a, b, ww, betas))(
      variables, s0, s1, w[kind])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_second_order_through_the_scanned_cell_matches_native_ops():
  """What the exact hypergradient differentiates: the weight gradient of a
  scanned, rematerialised cell, differentiated again by the mixing weights,
  in reverse and (as ``exact`` does) forward-over-reverse. With the CPU
  shift depthwise convolution and pooling (custom VJPs) it equals the one
  through XLA's native operations."""
  k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
  s0 = jax.random.normal(k0, (2, 4, 4, 4))
  weights = _weights(k1)["normal"]
  results = {}
  for impl in ("shift", "native"):
    cell = darts_search.SearchCell(4, False, False, depthwise_impl=impl)
    variables = cell.init(jax.random.key(3), s0, s0, weights, None, True)
    v = jax.tree.map(lambda p: jax.random.normal(k2, p.shape),
                     variables["params"])

    def loss(params, w, cell=cell, variables=variables):
      out, _ = cell.apply({"params": params,
                           "batch_stats": variables["batch_stats"]},
                          s0, s0, w, None, True, mutable=["batch_stats"])
      return jnp.mean(jnp.sin(out) ** 2)

    def directional(w, params=variables["params"], v=v, loss=loss):
      g = jax.grad(loss)(params, w)
      return sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g),
                                                jax.tree.leaves(v)))

    def forward_over_reverse(w, params=variables["params"], v=v, loss=loss):
      # What ``exact`` evaluates: d/dparams (dloss/dw) along v. Like
      # ``exact``, the inner gradient is taken by params too: forward mode
      # crosses the custom_vjp ops only inside a reverse pass over params.
      grad_w = lambda p: jax.grad(loss, argnums=(0, 1))(p, w)[1]  # noqa: E731
      return jax.jvp(grad_w, (params,), (v,))[1]

    results[impl] = jax.jit(jax.grad(directional))(weights)
    results[impl + "_fwd"] = jax.jit(forward_over_reverse)(weights)
  np.testing.assert_allclose(results["shift"], results["native"], rtol=2e-3,
                             atol=1e-6)
  np.testing.assert_allclose(results["shift_fwd"], results["native_fwd"],
                             rtol=2e-3, atol=1e-6)
  # Mixed partials commute: both orders give the same second derivative.
  np.testing.assert_allclose(results["shift_fwd"], results["shift"],
                             rtol=2e-3, atol=1e-6)
