"""The elastic ViT: discrete and masked views agree; largest is the whole."""

import jax
import numpy as np

from supernet.elastic.vit import ElasticViT, VitMasks, vit_arch_masks
from supernet.spaces.elastic import ElasticTransformerSpace

VIT = dict(embed_dims=(8, 12), depths=(1, 2), heads=(1, 2),
           mlp_ratios=(1, 2), head_dim=4, patch_size=4, resolution=8)


def test_vit_discrete_equals_masked():
  space = ElasticTransformerSpace.from_config(VIT)
  model = ElasticViT(space, 3)
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 1))
  params = jax.jit(lambda k: model.init(k, x, space.largest()))(
      jax.random.key(1))
  # Every parameter is used by the largest architecture.
  grads = jax.jit(jax.grad(
      lambda p: model.apply(p, x, space.largest()).sum()))(params)
  assert all(float(np.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))
  masked = jax.jit(jax.vmap(lambda m: model.apply(params, x, m)))
  archs = [space.largest(), space.smallest()] + space.sample_many(
      jax.random.key(2), 2)
  masks = jax.tree.map(lambda *a: np.stack(a),
                       *[vit_arch_masks(space, a) for a in archs])
  assert isinstance(masks, VitMasks)
  out = masked(masks)
  for i, arch in enumerate(archs):
    discrete = jax.jit(lambda p, a=arch: model.apply(p, x, a))
    np.testing.assert_allclose(out[i], discrete(params),
                               atol=1e-5, rtol=1e-5, err_msg=str(arch))
