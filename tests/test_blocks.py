"""Blocks: shapes, skips, parameters independent of the depthwise impl."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from supernet.blocks import (
    Bottleneck,
    DepthwiseSeparable,
    MBConv,
    MultiHeadSelfAttention,
    ShuffleV1Unit,
    ShuffleV2Unit,
    TransformerBlock,
    activation,
    channel_shuffle,
    make_divisible,
)
from supernet.costs import count_params, materialize
from supernet.errors import UserError

KEY = jax.random.key(0)


# Shapes and structure come from jax.eval_shape (nothing is compiled: the
# CPU is shared); numerics compile one function per test.
def _init(block, x):
  return jax.eval_shape(lambda k, x: block.init(k, x, False), KEY, x)


def _apply(block, variables, x):
  return jax.eval_shape(lambda v, x: block.apply(v, x, False), variables, x)


def _shapes(tree):
  return jax.tree.map(lambda a: a.shape, tree)


@pytest.mark.parametrize("value, expected", [
    (32 * 1.0, 32), (32 * 0.35, 16), (1280 * 1.4, 1792), (24 * 0.5, 16),
    (16 * 0.3, 8), (320 * 1.1, 352), (40 * 1.1, 48)])
def test_make_divisible(value, expected):
  assert make_divisible(value) == expected


def test_unknown_activation_lists_valid_names():
  with pytest.raises(UserError, match="relu6"):
    activation("relu7")


def test_channel_shuffle_interleaves_groups():
  x = jnp.arange(6.0).reshape(1, 1, 1, 6)
  np.testing.assert_array_equal(channel_shuffle(x, 2).ravel(),
                                [0, 3, 1, 4, 2, 5])
  np.testing.assert_array_equal(channel_shuffle(x, 3).ravel(),
                                [0, 2, 4, 1, 3, 5])


@pytest.mark.parametrize("strides, in_ch, projection", [
    (1, 64, False), (1, 32, True), (2, 64, True)])
def test_bottleneck_projection_only_when_shape_changes(strides, in_ch,
                                                       projection):
  block = Bottleneck(16, strides)
  x = jnp.ones((2, 8, 8, in_ch))
  v = _init(block, x)
  assert ("projection" in v["params"]) == projection
  assert _apply(block, v, x).shape == (2, 8 // strides, 8 // strides, 64)


def test_depthwise_separable_shapes_and_params():
  block = DepthwiseSeparable(24, strides=2, depthwise_impl="native")
  v = _init(block, jnp.ones((1, 8, 8, 16)))
  # depthwise 3x3x16 + BN(16) + pointwise 16x24 + BN(24)
  assert count_params(v["params"]) == 9 * 16 + 32 + 16 * 24 + 48
  assert _apply(block, v, jnp.ones((1, 8, 8, 16))).shape == (1, 4, 4, 24)


def test_mbconv_parameters_same_for_every_depthwise_impl():
  x = jax.random.normal(KEY, (2, 8, 8, 16))
  impls = ("native", "dense", "shift", "auto")
  blocks = [MBConv(16, 4, kernel_size=5, se_ratio=0.25, act="swish",
                   depthwise_impl=impl) for impl in impls]
  shapes = [_shapes(_init(b, x)) for b in blocks]
  assert all(s == shapes[0] for s in shapes)
  v = materialize(_init(blocks[0], x), KEY)
  outs = jax.jit(lambda v, x: [b.apply(v, x, False) for b in blocks])(v, x)
  for out in outs[1:]:
    np.testing.assert_allclose(out, outs[0], atol=1e-4, rtol=1e-4)


def test_mbconv_structure():
  x = jnp.ones((1, 8, 8, 32))
  v = _init(MBConv(32, 6, se_ratio=0.25), x)["params"]
  assert set(v) == {"expand", "depthwise", "se", "project"}
  # SE squeezes to a quarter of the block's *input* channels (EfficientNet)
  assert v["se"]["reduce"]["kernel"].shape == (1, 1, 192, 8)
  v1 = _init(MBConv(16, 1), x)["params"]
  assert "expand" not in v1  # expand ratio 1: no expansion conv


def test_mbconv_residual_only_with_stride1_and_same_channels():
  x = jax.random.normal(KEY, (1, 8, 8, 16))
  block = MBConv(16, 3)
  v = materialize(_init(block, x), KEY)
  # A zero projection (BN bias 0, mean 0) zeroes the branch: identity block.
  v = jax.tree_util.tree_map_with_path(
      lambda p, a: jnp.zeros_like(a) if "project" in str(p) and
      ("kernel" in str(p) or "bias" in str(p) or "mean" in str(p)) else a, v)
  y = jax.jit(lambda v, x: block.apply(v, x, False))(v, x)
  np.testing.assert_allclose(y, x, atol=1e-6)
  assert _apply(MBConv(16, 3, strides=2), _init(MBConv(16, 3, strides=2), x),
                x).shape == (1, 4, 4, 16)


def test_mbconv_drop_path_needs_rng_only_when_training():
  block = MBConv(16, 3, drop_path_rate=0.5)
  x = jnp.ones((4, 8, 8, 16))
  v = _init(block, x)
  y, updates = jax.eval_shape(
      lambda v, x, k: block.apply(v, x, True, rngs={"dropout": k},
                                  mutable=["batch_stats"]), v, x, KEY)
  assert y.shape == x.shape and "batch_stats" in updates


def test_shufflenet_v1_unit():
  x = jnp.ones((1, 8, 8, 24))
  down = ShuffleV1Unit(240, groups=3, strides=2, group_first_pointwise=False)
  v = _init(down, x)
  y = _apply(down, v, x)
  assert y.shape == (1, 4, 4, 240)  # 24 pooled + 216 from the branch
  same = ShuffleV1Unit(240, groups=3)
  assert _apply(same, _init(same, y), y).shape == y.shape
  with pytest.raises(ValueError):
    _init(ShuffleV1Unit(120, groups=3), y)


def test_shufflenet_v1_pointwise_convolutions_are_grouped():
  # a grouped 1x1 kernel sees in_channels / groups inputs per output
  x = jnp.ones((1, 4, 4, 48))
  unit = ShuffleV1Unit(48, groups=2)
  assert _shapes(_init(unit, x))["params"]["reduce"]["conv"]["kernel"] == (
      1, 1, 24, 12)


@pytest.mark.parametrize("strides, in_ch", [(1, 48), (2, 24)])
def test_shufflenet_v2_unit(strides, in_ch):
  block = ShuffleV2Unit(48, strides)
  x = jax.random.normal(KEY, (1, 8, 8, in_ch))
  v = _init(block, x)
  assert _apply(block, v, x).shape == (1, 8 // strides, 8 // strides, 48)
  has_left = any("left" in k for k in v["params"])
  assert has_left == (strides == 2)


def test_transformer_block_params_and_shape():
  d = 32
  block = TransformerBlock(num_heads=4)
  x = jax.random.normal(KEY, (2, 10, d))
  v = _init(block, x)
  # qkv 3d^2+3d, proj d^2+d, fc1 4d^2+4d, fc2 4d^2+d, two LayerNorms 4d
  assert count_params(v["params"]) == 12 * d * d + 13 * d
  assert _apply(block, v, x).shape == x.shape


def test_attention_matches_reference_softmax_attention():
  x = jax.random.normal(KEY, (2, 5, 8))
  attn = MultiHeadSelfAttention(num_heads=2)
  v = materialize(_init(attn, x), KEY)

  @jax.jit
  def both(v, x):
    p = v["params"]
    qkv = (x @ p["qkv"]["kernel"] + p["qkv"]["bias"]).reshape(2, 5, 3, 2, 4)
    ref = jax.nn.dot_product_attention(qkv[:, :, 0], qkv[:, :, 1],
                                       qkv[:, :, 2]).reshape(2, 5, 8)
    ref = ref @ p["proj"]["kernel"] + p["proj"]["bias"]
    return attn.apply(v, x, False), ref

  out, ref = both(v, x)
  np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)
