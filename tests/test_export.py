"""Export directories: round trip, jax.export artifact alone, bad files."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from supernet import export
from supernet.data import normalize
from supernet.data.info import DatasetInfo
from supernet.errors import UserError
from supernet.models import build_network
from supernet.spaces import DARTS_V2
from supernet.train import inference_structure

INPUT_SHAPE = (8, 8, 1)
INFO = DatasetInfo(name="digits", num_classes=10, image_shape=INPUT_SHAPE,
                   mean=(0.3,), std=(0.4,),
                   class_names=tuple(str(i) for i in range(10)),
                   num_train=1, num_test=1)


def _darts_module():
  config = ml_collections.ConfigDict({"model": {
      "stem": "cifar", "channels": 4, "layers": 3, "auxiliary": True,
      "depthwise_impl": "auto", "num_classes": 10,
      "input_shape": INPUT_SHAPE}})
  module, shape = build_network(config, DARTS_V2)
  return module, shape


def _random_variables(module, seed):
  """Non-trivial inference variables (random BN statistics too)."""
  structure = inference_structure(module, INPUT_SHAPE)
  leaves, treedef = jax.tree.flatten(structure)
  rng = np.random.default_rng(seed)
  values = [(0.3 * rng.standard_normal(s.shape)).astype(s.dtype)
            for s in leaves]
  variables = flax.core.unfreeze(jax.tree.unflatten(treedef, values))
  variables["batch_stats"] = jax.tree.map(np.abs, variables["batch_stats"])
  return variables


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  module, shape = _darts_module()
  variables = _random_variables(module, 0)
  out = str(tmp_path_factory.mktemp("exports") / "exp")
  meta = export.dataset_metadata(INFO)
  meta["eval_batch_size"] = 16
  export.write_export(out, arch=DARTS_V2, module=module, variables=variables,
                      input_shape=shape, metadata=meta)
  return out, module, variables


def _images(n, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, *INPUT_SHAPE),
                                              dtype=np.uint8)


def test_files_and_metadata(written):
  out, module, variables = written
  assert sorted(os.listdir(out)) == sorted(
      ["arch.json", "weights.msgpack", "metadata.json", "model.jax_export",
       "README.md"])
  meta = json.load(open(os.path.join(out, "metadata.json")))
  assert meta["input_shape"] == [8, 8, 1]
  assert meta["mean"] == [0.3] and meta["std"] == [0.4]
  assert meta["class_names"] == [str(i) for i in range(10)]
  assert meta["dataset"] == "digits" and meta["batch_polymorphic"]
  assert "cpu" in meta["platforms"]
  # The auxiliary head is training-only: not in the export.
  assert not any(p.startswith("params/auxiliary") for p in meta["variables"])
  n = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(variables["params"]))
  assert meta["num_params"] == n
  assert json.load(open(os.path.join(out, "arch.json"))) == DARTS_V2.to_json()


def test_load_export_matches_flax_model(written):
  out, module, variables = written
  exp = export.load_export(out)
  assert exp.arch_json["space"] == "darts"
  np.testing.assert_array_equal(
      exp.variables["params"]["stem_conv"]["kernel"],
      variables["params"]["stem_conv"]["kernel"])
  for n in (1, 5):  # a polymorphic batch: any size runs
    images = _images(n, seed=n)
    x = exp.preprocess(images)
    np.testing.assert_array_equal(x, normalize(images, INFO))
    got = np.asarray(exp.call(x))
    want = np.asarray(module.apply(variables, x, train=False))
    assert got.shape == (n, 10)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_artifact_runs_with_jax_alone(written, tmp_path):
  """Only jax + numpy: the package's modules are never imported."""
  out, module, variables = written
  x = normalize(_images(3, seed=7), INFO)
  np.save(tmp_path / "x.npy", x)
  want = np.asarray(module.apply(variables, x, train=False))
  code = textwrap.dedent(f"""
      import sys, jax, numpy as np
      with open({os.path.join(out, 'model.jax_export')!r}, "rb") as f:
        exp = jax.export.deserialize(f.read())
      x = np.load({str(tmp_path / 'x.npy')!r})
      np.save({str(tmp_path / 'y.npy')!r}, np.asarray(exp.call(x)))
      assert not [m for m in sys.modules if m.startswith("supernet")]
      """)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path),
                        env=env, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  got = np.load(tmp_path / "y.npy")
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_count_correct_pads_and_masks():
  labels = np.array([0, 1, 2, 1, 0])
  images = np.zeros((5, 1, 1, 1), np.float32)
  images[:, 0, 0, 0] = [0, 1, 2, 2, 0]  # the 4th is wrong
  seen = []

  def call(x):
    seen.append(x.shape[0])
    return jax.nn.one_hot(x[:, 0, 0, 0].astype(jnp.int32), 3)

  assert export.count_correct(call, images, labels, 2) == (4, 5)
  assert seen == [2, 2, 2]  # fixed batch: the last is padded, not shorter


def test_refuses_non_empty_out_and_overwrites_on_request(written, tmp_path):
  out, module, variables = written
  target = tmp_path / "exp"
  target.mkdir()
  (target / "mine.txt").write_text("user data")
  kwargs = dict(arch=DARTS_V2, module=module, variables=variables,
                input_shape=INPUT_SHAPE,
                metadata=export.dataset_metadata(INFO))
  with pytest.raises(UserError, match="not empty; pass --overwrite"):
    export.write_export(str(target), **kwargs)
  assert os.listdir(target) == ["mine.txt"]
  export.write_export(str(target), overwrite=True, **kwargs)
  assert "mine.txt" not in os.listdir(target)
  assert export.load_export(str(target)).metadata["dataset"] == "digits"
  # No temporary directories are left next to it.
  assert sorted(os.listdir(tmp_path)) == ["exp"]


def test_write_refuses_weights_of_another_architecture(written, tmp_path):
  out, module, variables = written
  bad = jax.tree.map(np.copy, variables)
  kernel = bad["params"]["classifier"]["kernel"]
  bad["params"]["classifier"]["kernel"] = np.zeros(
      (kernel.shape[0] + 1, kernel.shape[1]), np.float32)
  with pytest.raises(UserError, match=r"classifier/kernel has shape \(65, 10"):
    export.write_export(str(tmp_path / "x"), arch=DARTS_V2, module=module,
                        variables=bad, input_shape=INPUT_SHAPE,
                        metadata=export.dataset_metadata(INFO))
  assert not os.path.exists(tmp_path / "x")


def _corrupt(out, tmp_path, name, mutate):
  copy = tmp_path / "copy"
  shutil.copytree(out, copy)
  path = copy / name
  mutate(path)
  return str(copy)


def _truncate(path):
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def _flip_middle(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0xFF
  path.write_bytes(bytes(data))


def _other_shapes(path):
  tree = flax.serialization.msgpack_restore(path.read_bytes())
  k = tree["params"]["stem_conv"]["kernel"]
  tree["params"]["stem_conv"]["kernel"] = np.zeros(k.shape[:-1] + (5,),
                                                   k.dtype)
  path.write_bytes(flax.serialization.msgpack_serialize(tree))


@pytest.mark.parametrize("name, mutate, message", [
    ("weights.msgpack", _truncate, "weights.msgpack is corrupt or truncated"),
    ("weights.msgpack", _flip_middle, "weights.msgpack is corrupt"),
    ("weights.msgpack", _other_shapes,
     "do not match the architecture: params/stem_conv/kernel has shape "
     "(3, 3, 1, 5)"),
    ("metadata.json", os.remove, "metadata.json is missing"),
    ("metadata.json", _truncate, "metadata.json is corrupt"),
    ("model.jax_export", _truncate, "model.jax_export is corrupt"),
    ("model.jax_export", lambda p: p.write_bytes(b"junk"),
     "model.jax_export is corrupt"),
    ("model.jax_export", os.remove, "model.jax_export is missing"),
    ("arch.json", _truncate, "arch.json is corrupt"),
])
def test_load_export_names_the_bad_file(written, tmp_path, name, mutate,
                                        message):
  out, _, _ = written
  bad = _corrupt(out, tmp_path, name, mutate)
  with pytest.raises(UserError) as err:
    export.load_export(bad)
  assert message in str(err.value)
  assert "\n" not in str(err.value)


def test_load_export_of_a_missing_directory(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    export.load_export(str(tmp_path / "nope"))


def test_call_checks_the_input_shape(written):
  exp = export.load_export(written[0])
  with pytest.raises(UserError, match="does not fit"):
    exp.call(np.zeros((2, 8, 8, 3), np.float32))
