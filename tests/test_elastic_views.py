"""Discrete and masked views of the elastic MobileNet: one function."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from supernet.elastic.bn import recalibrate_bn, recalibrate_bn_masked
from supernet.elastic.extract import extract_subnet
from supernet.elastic.masks import arch_masks, population_masks
from supernet.elastic.mbv import ElasticMobileNet, init_supernet
from supernet.elastic.population import evaluate_population, evaluate_subnet, stack_eval
from supernet.elastic.reorder import reorder_channels
from supernet.spaces.elastic import ElasticMobileNetSpace

TINY = dict(stem_width=4, stage_widths=(4, 8), stage_strides=(1, 2),
            depths=(1, 2), kernels=(3, 5), expands=(2, 3), widths=(0.5, 1.0),
            resolutions=(4, 6, 8), head_width=16, channel_divisor=2)


@pytest.fixture(scope="module")
def setup():
  space = ElasticMobileNetSpace.from_config(TINY)
  model = ElasticMobileNet(space, 5, kernel_transform=True)
  variables = jax.jit(lambda k: init_supernet(model, k, (8, 8, 1)))(
      jax.random.key(0))
  # Non-trivial transforms and statistics, so slicing mistakes show.
  params, stats = jax.jit(lambda v: (
      jax.tree.map(lambda p: p + 0.1 * jax.random.normal(
          jax.random.key(1), p.shape), v["params"]),
      jax.tree.map(lambda s: s + jax.random.uniform(
          jax.random.key(2), s.shape), v["batch_stats"])))(variables)
  x = jax.random.normal(jax.random.key(3), (6, 8, 8, 1))
  # Largest, smallest and two random sub-networks at the other resolutions.
  archs = [space.largest(), space.smallest()] + [
      a for a in space.sample_many(jax.random.key(4), 40)
      if a.resolution == 6][:1] + [
      a for a in space.sample_many(jax.random.key(5), 40)
      if a.resolution == 8 and a.width == 0.5][:1]
  return space, model, params, stats, x, archs


def _apply(model, params, stats, x, arch, train=False):
  return _jitted_apply(model, arch, train)(params, stats, x)


@functools.cache
def _jitted_apply(model, arch, train):
  return jax.jit(lambda p, s, x: model.apply(
      {"params": p, "batch_stats": s}, x, arch, train=train))


def test_discrete_equals_masked(setup):
  space, model, params, stats, x, archs = setup
  masked = jax.jit(lambda m, train: model.apply(
      {"params": params, "batch_stats": stats}, x, m, train=train),
      static_argnums=1)
  for i, arch in enumerate(archs):
    for train in ((False, True) if i < 2 else (i == 3,)):
      d = _apply(model, params, stats, x, arch, train)
      m = masked(arch_masks(space, arch), train)
      np.testing.assert_allclose(d, m, atol=1e-5, rtol=1e-5,
                                 err_msg=f"{arch} train={train}")


def test_population_vmap_equals_each(setup):
  space, model, params, stats, x, archs = setup
  masks = population_masks(space, archs)
  out = jax.jit(jax.vmap(lambda m: model.apply(
      {"params": params, "batch_stats": stats}, x, m)))(masks)
  for i, arch in enumerate(archs):
    np.testing.assert_allclose(out[i], _apply(model, params, stats, x, arch),
                               atol=1e-5, rtol=1e-5)


def test_largest_slice_is_identity(setup):
  space, model, params, stats, x, _ = setup
  plain = ElasticMobileNet(space, 5, kernel_transform=False)
  module, variables = extract_subnet(plain, params, stats, space.largest())
  assert jax.tree.structure(variables["batch_stats"]) == jax.tree.structure(
      stats)
  # Every extracted weight is the supernet's whole array (no slicing).
  for name, sub in variables["params"].items():
    for leaf_path, leaf in jax.tree_util.tree_leaves_with_path(sub):
      keys = [k.key for k in leaf_path]
      src = params[name]
      if keys[0] == "dw_conv":
        keys = ["dw_kernel"]
      for k in keys:
        src = src[k]
      assert leaf.shape == src.shape
      np.testing.assert_array_equal(leaf, src)
  np.testing.assert_allclose(
      jax.jit(module.apply)(variables, x),
      _apply(plain, params, stats, x, space.largest()), atol=1e-6)


def test_extracted_subnet_matches_discrete_view(setup):
  space, model, params, stats, x, archs = setup
  calib = [jax.random.normal(jax.random.key(10 + i), (8, 8, 8, 1))
           for i in range(2)]
  for arch in archs[2:3]:
    new_stats = recalibrate_bn(model, params, stats, arch, calib)
    module, variables = extract_subnet(model, params, new_stats, arch)
    got = jax.jit(module.apply)(variables, x)
    want = _apply(model, params, new_stats, x, arch)
    assert float(jnp.max(jnp.abs(got - want))) <= 1e-5, arch
    # The masked re-calibration gives the same statistics where used.
    masks = arch_masks(space, arch)
    masked = jax.jit(lambda m: recalibrate_bn_masked(
        model, params, stats, m, jnp.stack(calib)))(masks)
    np.testing.assert_allclose(
        jax.jit(lambda s, m: model.apply({"params": params, "batch_stats": s},
                                         x, m))(masked, masks), want,
        atol=1e-4, rtol=1e-4)


def test_population_evaluation_matches_discrete_loop(setup):
  space, model, params, stats, _, archs = setup
  rng = np.random.default_rng(0)
  calib = jnp.asarray(rng.normal(size=(2, 8, 8, 8, 1)), jnp.float32)
  batches = [{"image": rng.normal(size=(8, 8, 8, 1)).astype(np.float32),
              "label": rng.integers(0, 5, 8).astype(np.int32),
              "mask": np.asarray([1.0] * 6 + [0.0] * 2, np.float32)}]
  evals = stack_eval(batches)
  accs = evaluate_population(model, params, stats, archs, calib, evals,
                             chunk=3)
  for arch, acc in zip(archs[1:2], accs[1:2]):
    assert abs(evaluate_subnet(model, params, stats, arch, calib, evals)
               - acc) < 1e-6


def test_reorder_keeps_largest_function(setup):
  space, model, params, stats, x, _ = setup
  new_params, new_stats, _ = reorder_channels(space, params, stats)
  np.testing.assert_allclose(
      _apply(model, new_params, new_stats, x, space.largest()),
      _apply(model, params, stats, x, space.largest()), atol=1e-5, rtol=1e-5)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), params,
                         new_params)
  assert any(jax.tree.leaves(changed))
