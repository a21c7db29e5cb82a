"""Elastic search spaces: JSON round trips, tokens, validation messages."""

import json

import jax
import pytest

from supernet.errors import UserError
from supernet.spaces import arch_from_json, make_space
from supernet.spaces.elastic import (
  ElasticMbvArch,
  ElasticMobileNetSpace,
  ElasticTransformerSpace,
  ElasticVitArch,
)

MBV = dict(name="elastic_mbv", stem_width=8, stage_widths=(8, 16),
           stage_strides=(1, 2), depths=(1, 2, 3), kernels=(3, 5, 7),
           expands=(3, 4, 6), widths=(0.75, 1.0), resolutions=(12, 16),
           head_width=32, channel_divisor=4)
VIT = dict(name="elastic_vit", embed_dims=(32, 48), depths=(2, 3),
           heads=(2, 4), mlp_ratios=(2, 3, 4), head_dim=8, patch_size=4,
           resolution=16)


@pytest.fixture(scope="module")
def mbv():
  return make_space("elastic_mbv", MBV)


@pytest.fixture(scope="module")
def vit():
  return make_space("elastic_vit", VIT)


def test_registry_builds_both_spaces(mbv, vit):
  assert isinstance(mbv, ElasticMobileNetSpace)
  assert isinstance(vit, ElasticTransformerSpace)
  # A whole config (with a space sub-dict) is accepted too.
  assert make_space("elastic_mbv", {"space": MBV}).cardinalities() == \
      mbv.cardinalities()


@pytest.mark.parametrize("which", ["mbv", "vit"])
def test_json_round_trip_and_tokens(which, request):
  space = request.getfixturevalue(which)
  for arch in space.sample_many(jax.random.key(0), 20) + [
      space.largest(), space.smallest()]:
    doc = json.loads(arch.dumps())
    assert doc["space"] == space.name
    assert arch_from_json(doc, space) == arch
    assert space.decode(space.encode(arch)) == arch
    assert len(space.encode(arch)) == len(space.cardinalities())
    hash(arch)


def test_arch_json_format(mbv):
  arch = mbv.arch_from_json({
      "space": "elastic_mbv", "resolution": 12, "width": 1,
      "depths": [2, 1], "kernels": [[3, 7], [5]], "expands": [[6, 3], [4]]})
  assert arch == ElasticMbvArch(12, 1.0, (2, 1), ((3, 7), (5,)),
                                ((6, 3), (4,)))
  assert mbv.largest().depths == (3, 3)
  assert mbv.smallest().resolution == 12


@pytest.mark.parametrize("doc, message", [
    ({"resolution": 20}, "resolution: 20 is not one of [12, 16]"),
    ({"width": 0.5}, "width: 0.5 is not one of [0.75, 1.0]"),
    ({"depths": [2, 4]}, "depth of stage 1: 4 is not one of [1, 2, 3]"),
    ({"kernels": [[3, 4], [5]]}, "kernel of stage 0 block 1: 4"),
    ({"kernels": [[3], [5]]}, "stage 0 has depth 2 but kernels[0] lists 1"),
    ({"depths": [2]}, "'depths' lists 1 stages, the space has 2"),
    ({"width": None}, "'width' must be a number"),
])
def test_validation_names_the_problem(mbv, doc, message):
  base = {"space": "elastic_mbv", "resolution": 12, "width": 1.0,
          "depths": [2, 1], "kernels": [[3, 7], [5]],
          "expands": [[6, 3], [4]]}
  base.update(doc)
  with pytest.raises(UserError, match=message.replace("[", r"\[").replace(
      "]", r"\]").replace("(", r"\(").replace(")", r"\)")):
    mbv.arch_from_json(base)


def test_config_errors_are_user_errors():
  with pytest.raises(UserError, match="not divisible by the network's total"):
    ElasticMobileNetSpace.from_config(dict(MBV, resolutions=(9, 16)))
  with pytest.raises(UserError, match="missing field 'kernels'"):
    ElasticMobileNetSpace.from_config(
        {k: v for k, v in MBV.items() if k != "kernels"})
  with pytest.raises(UserError, match="kernel sizes must be odd"):
    ElasticMobileNetSpace.from_config(dict(MBV, kernels=(3, 4)))
  with pytest.raises(UserError, match="not a multiple of patch_size"):
    ElasticTransformerSpace.from_config(dict(VIT, resolution=18))


def test_vit_validation(vit):
  with pytest.raises(UserError, match="heads of layer 1: 3 is not one of"):
    vit.arch_from_json({"space": "elastic_vit", "embed_dim": 32, "depth": 2,
                        "heads": [2, 3], "mlp_ratios": [2, 4]})
  with pytest.raises(UserError, match="depth is 3 but 'heads' lists 2"):
    vit.encode(ElasticVitArch(32, 3, (2, 2), (2, 2, 2)))


@pytest.mark.parametrize("which", ["mbv", "vit"])
def test_mutate_always_changes_a_live_choice(which, request):
  space = request.getfixturevalue(which)
  arch = space.smallest()
  for i in range(30):
    child = space.mutate(jax.random.key(i), arch)
    assert child != arch
    space.validate(child)
    arch = child


def test_enumerate_yields_distinct_archs():
  space = ElasticMobileNetSpace.from_config(dict(
      MBV, depths=(1, 2), kernels=(3, 5), expands=(3,), widths=(1.0,),
      resolutions=(16,)))
  archs = list(space.enumerate())
  assert len(archs) == len(set(archs))
  # Per stage: depth 1 (2 kernels) + depth 2 (4 kernel pairs) = 6.
  assert len(archs) == 6 * 6


def test_channel_counts_are_monotone(mbv):
  for s in range(mbv.num_stages):
    assert mbv.stage_channels(s, 0.75) <= mbv.stage_channels(s, 1.0)
    for e1, e2 in zip(mbv.expand_choices, mbv.expand_choices[1:]):
      assert mbv.mid_channels(12, e1) <= mbv.mid_channels(12, e2)
