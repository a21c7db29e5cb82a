"""Reference networks: published parameter counts and MACs, registry errors."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from supernet.costs import count_macs, count_params, inference_fn, materialize
from supernet.errors import UserError
from supernet.zoo import MODELS, build_model

# (name, width) -> trainable parameters with 1000 classes: torchvision's
# num_params, equal to Keras' "Trainable params" (Keras MobileNet for v1).
PUBLISHED_PARAMS = {
    ("resnet50", None): 25_557_032,
    ("mobilenet_v1", 1.0): 4_231_976,
    ("mobilenet_v2", 1.0): 3_504_872,
    ("shufflenet_v2", 0.5): 1_366_792,
    ("shufflenet_v2", 1.0): 2_278_604,
    ("shufflenet_v2", 1.5): 3_503_624,
    ("shufflenet_v2", 2.0): 7_393_996,
    ("efficientnet_b0", None): 5_288_548,
    ("efficientnet_b1", None): 7_794_184,
    ("efficientnet_b2", None): 9_109_994,
    ("efficientnet_b3", None): 12_233_232,
    ("efficientnet_b4", None): 19_341_616,
    ("efficientnet_b5", None): 30_389_784,
    ("efficientnet_b6", None): 43_040_704,
    ("efficientnet_b7", None): 66_347_960,
    ("vit_tiny", None): 5_717_416,  # the vit_tiny_patch16_224 layout
}


def _abstract(name, width=None, resolution=None, **kw):
  module, shape = build_model(name, width=width, resolution=resolution,
                              depthwise_impl="native", **kw)
  x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
  variables = jax.eval_shape(partial(module.init, train=False),
                             jax.random.key(0), x)
  return module, variables, x


def test_every_registered_model_has_a_published_count():
  assert {name for name, _ in PUBLISHED_PARAMS} == set(MODELS)


@pytest.mark.parametrize("name, width", sorted(PUBLISHED_PARAMS, key=str))
def test_param_count_matches_published(name, width):
  _, variables, _ = _abstract(name, width)
  assert count_params(variables["params"]) == PUBLISHED_PARAMS[name, width]


@pytest.mark.parametrize("name, mmacs", [("efficientnet_b0", 385.8),
                                         ("mobilenet_v2", 300.8)])
def test_macs_match_published(name, mmacs):
  module, variables, x = _abstract(name)
  assert x.shape == (1, 224, 224, 3)
  assert round(count_macs(inference_fn(module), variables, x) / 1e6, 1) == mmacs


def test_efficientnet_uses_paper_resolutions():
  expected = {"efficientnet_b0": 224, "efficientnet_b1": 240,
              "efficientnet_b3": 300, "efficientnet_b7": 600}
  for name, resolution in expected.items():
    assert build_model(name)[1] == (resolution, resolution, 3)


def test_num_classes_changes_only_the_classifier():
  _, v10, _ = _abstract("mobilenet_v2", num_classes=10)
  assert count_params(v10["params"]) == 3_504_872 - 990 * 1281


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="resnet51"), "valid models: .*resnet50"),
    (dict(name="resnet50", width=0.5), "no width multiplier"),
    (dict(name="shufflenet_v2", width=0.7), r"one of \[0.5, 1.0, 1.5, 2.0\]"),
    (dict(name="mobilenet_v2", width=-1.0), r"\(0, 4\]"),
    (dict(name="mobilenet_v2", resolution=8), ">= 32"),
    (dict(name="vit_tiny", resolution=100), "divisible"),
    (dict(name="mobilenet_v2", depthwise_impl="fast"), "native"),
])
def test_bad_requests_are_user_errors(kwargs, message):
  with pytest.raises(UserError, match=message):
    build_model(**kwargs)


def test_small_network_runs():
  # weights drawn on the host, one compilation of the CPU ('auto') forward;
  # agreement between depthwise implementations is tested in test_blocks
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  module, _ = build_model("mobilenet_v2", 10, 0.35, 32)
  _, abstract, _ = _abstract("mobilenet_v2", 0.35, 32, num_classes=10)
  v = materialize(abstract, jax.random.key(2))
  y = jax.jit(lambda v, x: module.apply(v, x, train=False))(v, x)
  assert y.shape == (2, 10) and np.all(np.isfinite(y))
