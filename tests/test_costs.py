"""Cost model: params, MACs from jaxprs, memory, latency and the latency LUT."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from jax import lax

from supernet.blocks import MBConv, TransformerBlock
from supernet.costs import (
    activation_bytes,
    count_macs,
    count_params,
    macs_by_primitive,
    measure_latency,
    profile_module,
)
from supernet.costs import latency_lut as lut
from supernet.costs.block_specs import (
    check_chain,
    mobilenet_v2_space_specs,
    mobilenet_v2_specs,
    sample_mobilenet_v2_specs,
)
from supernet.costs.studies import transformer_macs_formula
from supernet.errors import UserError

KEY = jax.random.key(0)
F32 = jnp.float32


def _s(*shape):
  return jax.ShapeDtypeStruct(shape, F32)


def test_count_params_excludes_named_subtrees():
  params = {"body": {"w": _s(3, 4), "b": _s(4)},
            "auxiliary": {"fc": {"w": _s(10, 2)}}}
  assert count_params(params) == 36
  assert count_params(params, exclude=("auxiliary",)) == 16


def test_dense_and_conv_macs_from_shapes():
  assert count_macs(lambda a, b: a @ b, _s(3, 8), _s(8, 4)) == 3 * 8 * 4
  x, k = _s(2, 10, 10, 6), _s(3, 3, 2, 12)  # 3 groups of 2 input channels
  conv = lambda x, k: lax.conv_general_dilated(  # noqa: E731
      x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=3)
  assert count_macs(conv, x, k) == 2 * 10 * 10 * 12 * 2 * 9


def test_macs_follow_nested_jaxprs():
  w = _s(16, 16)

  def fn(w, x):
    x = jax.jit(lambda a: a @ w)(x)  # pjit: 1 matmul
    x = jax.checkpoint(lambda a: a @ w)(x)  # remat: 1
    x, _ = lax.scan(lambda c, _: (c @ w, None), x, None, length=3)  # 3
    x = lax.cond(True, lambda a: (a @ w) @ w, lambda a: a, x)  # max branch: 2
    return jax.nn.relu(x)  # custom_jvp: no MACs

  one = 4 * 16 * 16
  assert count_macs(fn, w, _s(4, 16)) == 7 * one
  assert macs_by_primitive(fn, w, _s(4, 16)) == {"dot_general": 7 * one}


def test_dead_outputs_are_not_counted():
  def fn(w, x):
    aux = jax.jit(lambda a: (a @ w, (a @ w) @ w))(x)[1]  # dropped output
    return x @ w, aux

  assert count_macs(lambda w, x: fn(w, x)[0], _s(8, 8), _s(2, 8)) == 128


def test_depthwise_counts_as_native_grouped_conv():
  block = MBConv(16, 1, kernel_size=5, depthwise_impl="native")
  x = _s(1, 8, 8, 16)
  v = jax.eval_shape(lambda k: block.init(k, jnp.zeros(x.shape), False), KEY)
  macs = count_macs(lambda v, x: block.apply(v, x, False), v, x)
  assert macs == 8 * 8 * 16 * 25 + 8 * 8 * 16 * 16  # depthwise + project
  # profile_module traces MACs with depthwise_impl='native' whatever is set
  wrapped = _Wrapper(depthwise_impl="dense")
  r = profile_module(wrapped, None, (8, 8, 16), memory="jaxpr_liveness")
  assert r["macs"] == macs


class _Wrapper(nn.Module):
  depthwise_impl: str = "auto"

  @nn.compact
  def __call__(self, x, train=False):
    return MBConv(16, 1, kernel_size=5, depthwise_impl=self.depthwise_impl)(
        x, train)


@pytest.mark.parametrize("tokens", [16, 32])
def test_attention_macs_scale_as_n_squared(tokens):
  d = 32
  block = TransformerBlock(num_heads=4)

  def macs(n):
    v = jax.eval_shape(lambda k: block.init(k, jnp.zeros((1, n, d)), False),
                       KEY)
    return count_macs(lambda v, x: block.apply(v, x, False), v, _s(1, n, d))

  linear, attention = transformer_macs_formula(tokens, d)
  assert macs(tokens) == linear + attention
  assert attention == 2 * tokens**2 * d
  # doubling N: linear terms double, the N^2 d term quadruples
  attention_2n = macs(2 * tokens) - 2 * linear
  assert attention_2n == 4 * attention


def test_activation_bytes_methods():
  fn = lambda w, x: jnp.tanh(x @ w) @ w  # noqa: E731
  args = (_s(64, 64), _s(32, 64))
  xla = activation_bytes(fn, *args)
  assert xla["method"] == "xla:temp+output"
  assert xla["bytes"] == xla["temp_bytes"] + xla["output_bytes"]
  assert xla["output_bytes"] == 32 * 64 * 4
  assert xla["argument_bytes"] == (64 * 64 + 32 * 64) * 4
  live = activation_bytes(fn, *args, method="jaxpr_liveness")
  assert live["method"] == "jaxpr_liveness"
  assert live["bytes"] >= 2 * 32 * 64 * 4  # an intermediate and the output
  with pytest.raises(UserError, match="jaxpr_liveness"):
    activation_bytes(fn, *args, method="guess")


def test_measure_latency_reports_device_and_statistics():
  r = measure_latency(lambda x: jnp.sin(x) * 2, _s(64), warmup=1, runs=5)
  assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
  assert r["runs"] == 5 and r["backend"] == jax.default_backend()
  assert r["clock"] == "wall" and "device_kind" in r
  assert measure_latency(jnp.sin, _s(8), warmup=0, runs=2,
                         clock="process")["clock"] == "process"
  with pytest.raises(UserError, match="clock"):
    measure_latency(jnp.sin, _s(8), clock="sundial")


class _WithAux(nn.Module):
  """A network whose inference output is ``(logits, aux_logits)``."""

  @nn.compact
  def __call__(self, x, train=False):
    h = nn.Dense(8, name="body")(x.reshape(x.shape[0], -1))
    aux = nn.Dense(5, name="auxiliary")(h)
    return nn.Dense(3, name="head")(h), aux


def test_profile_module_counts_only_what_inference_needs():
  r = profile_module(_WithAux(), None, (2, 2, 3), batch=4, latency=True,
                     exclude=("auxiliary",), runs=2, warmup=1)
  assert r["params"] == (12 * 8 + 8) + (8 * 3 + 3)
  assert r["macs"] == 12 * 8 + 8 * 3  # per example, aux head not counted
  assert r["activation_bytes_method"] == "xla:temp+output"
  assert r["activation_detail"]["output_bytes"] == 4 * 3 * 4
  assert r["latency_ms"]["median_ms"] > 0 and r["batch"] == 4


# ---- latency lookup table ---------------------------------------------------
TINY = (("conv_bn", 3, 8, 2, 3, 1, 8, 8), ("mbconv", 8, 8, 1, 3, 3, 4, 4),
        ("classifier", 8, 5, 1, 1, 1, 4, 4))


def test_block_specs_validate_the_chain():
  assert check_chain(TINY) == TINY
  with pytest.raises(UserError, match="expects input"):
    check_chain((TINY[0], ("mbconv", 16, 8, 1, 3, 3, 4, 4)))
  with pytest.raises(UserError, match="valid"):
    check_chain((("conv3d",) + TINY[0][1:],))


def test_mobilenet_v2_space_covers_sampled_architectures():
  space = set(mobilenet_v2_space_specs(resolution=64, width=0.5))
  # stem, first block, last conv, classifier + 9 choices x 11 distinct
  # shapes among the 16 searchable blocks (later blocks of a stage repeat)
  assert len(space) == 4 + 9 * 11
  for k in jax.random.split(KEY, 5):
    arch = sample_mobilenet_v2_specs(k, elastic_depth=True, resolution=64,
                                     width=0.5)
    assert set(arch) <= space
  full = mobilenet_v2_specs([3] * 16, [6] * 16)
  assert len(full) == 20 and full[-1] == ("classifier", 1280, 1000, 1, 1, 1, 7,
                                          7)


def test_lut_builds_caches_and_predicts(tmp_path, monkeypatch):
  path = tmp_path / "lut.json"
  table = lut.build_table(TINY, path, warmup=0, runs=2)
  doc = json.loads(path.read_text())
  assert doc["signature"] == lut.table_signature()
  assert {tuple(e["spec"]) for e in doc["entries"]} == set(TINY)
  assert table.predict(TINY) == pytest.approx(
      sum(table.entries.values()) - 2 * table.overhead_ms)

  calls = []
  real = lut.measure_specs
  monkeypatch.setattr(lut, "measure_specs",
                      lambda *a, **k: calls.append(a) or real(*a, **k))
  again = lut.build_table(TINY[::-1], path, warmup=0, runs=2)
  assert calls == [] and again.entries == table.entries  # reused, not measured

  doc["signature"]["jax_version"] = "0.0.1"  # as if JAX had been upgraded
  path.write_text(json.dumps(doc))
  assert lut.load_table(path, lut.table_signature()) is None
  lut.build_table(TINY, path, warmup=0, runs=2)
  assert len(calls) == len(TINY)  # stale cache ignored and rebuilt
  assert json.loads(path.read_text())["signature"]["jax_version"] == (
      jax.__version__)


def test_lut_default_path_is_per_device(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  sig = lut.table_signature(batch=4, clock="process")
  path = lut.default_table_path(sig)
  assert path.parent == tmp_path / "supernet" / "latency_lut"
  assert "b4" in path.name and "process" in path.name


def test_lut_prediction_errors(tmp_path):
  table = lut.build_table(TINY[:1], tmp_path / "t.json", warmup=0, runs=1)
  with pytest.raises(UserError, match="not in the latency table"):
    lut.predict_latency(table, TINY)
  result = lut.compare_predictions(table, [TINY[:1]], warmup=0, runs=2)
  assert result["num_archs"] == 1 and result["mape_percent"] >= 0
  with pytest.raises(UserError, match="batch"):
    lut.compare_predictions(table, [TINY[:1]], batch=2)
