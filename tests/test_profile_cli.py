"""``supernet profile``: zoo models, searched architectures, user errors."""

import json
import sys
import types

import flax.linen as nn
import pytest

from supernet.cli import main
from supernet.cli.profile import format_lut_error

NB201_CELL = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+"
              "|skip_connect~0|none~1|nor_conv_3x3~2|")


def _run(capsys, *argv):
  code = main(["profile", *argv])
  out, err = capsys.readouterr()
  return code, out, err


def test_model_json_with_latency(capsys):
  code, out, _ = _run(capsys, "--model", "mobilenet_v2", "--width", "0.35",
                      "--resolution", "32", "--num-classes", "10",
                      "--latency", "--runs", "2", "--warmup", "1", "--json")
  assert code == 0
  r = json.loads(out)
  assert r["model"] == "mobilenet_v2" and r["width"] == 0.35
  assert r["params"] > 0 and r["macs"] > 0 and r["activation_bytes"] > 0
  assert r["activation_bytes_method"] == "xla:temp+output"
  lat = r["latency_ms"]
  assert lat["min_ms"] <= lat["median_ms"] <= lat["max_ms"]
  assert lat["runs"] == 2 and lat["backend"] == "cpu"


def test_model_readable_table(capsys):
  code, out, _ = _run(capsys, "--model", "shufflenet_v2", "--width", "0.5",
                      "--resolution", "64", "--memory", "jaxpr_liveness")
  assert code == 0
  assert "params       1,366,792" in out
  assert "MACs" in out and "jaxpr_liveness" in out


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet51"], "unknown model 'resnet51'; valid models"),
    (["--model", "resnet50", "--width", "0.5"], "no width multiplier"),
    (["--model", "mobilenet_v2", "--width", "wide"], "invalid float"),
    (["--model", "mobilenet_v2", "--lut-error"], "exactly one of"),
    (["--config", "c.py"], "--config needs --arch"),
    (["--model", "mobilenet_v2", "--batch", "0"], "--batch"),
])
def test_user_errors_are_one_line(capsys, argv, message):
  code, out, err = _run(capsys, *argv)
  assert code == 2 and out == ""
  assert err.startswith("error: ") and message in err
  assert err.count("\n") == 1


class _Searched(nn.Module):
  """Stands in for supernet.models' network: returns (logits, aux)."""

  @nn.compact
  def __call__(self, x, train=False):
    h = nn.relu(nn.Conv(4, (3, 3), name="stem")(x)).mean(axis=(1, 2))
    aux = nn.Dense(7, name="auxiliary")(h)
    return nn.Dense(10, name="head")(h), aux


@pytest.fixture
def searched_files(tmp_path):
  config = tmp_path / "config.py"
  config.write_text(
      "import ml_collections\n\n"
      "def get_config():\n"
      "  return ml_collections.ConfigDict(\n"
      "      {'space': {'name': 'nb201'}, 'resolution': 8})\n")
  arch = tmp_path / "arch.json"
  arch.write_text(json.dumps({"space": "nb201", "cell": NB201_CELL}))
  return str(config), str(arch)


def test_searched_architecture_excludes_auxiliary_head(capsys, monkeypatch,
                                                       searched_files):
  seen = {}

  def build_network(config, arch, num_classes=None):
    seen["resolution"], seen["arch"] = config.resolution, arch
    r = config.resolution
    return _Searched(), (r, r, 3)

  fake = types.ModuleType("supernet.models")
  fake.build_network = build_network
  monkeypatch.setitem(sys.modules, "supernet.models", fake)
  config, arch = searched_files
  code, out, _ = _run(capsys, "--config", config, "--arch", arch,
                      "--config.resolution=6", "--json",
                      "--memory", "jaxpr_liveness")
  assert code == 0
  r = json.loads(out)
  assert seen["resolution"] == 6 and seen["arch"].cell == NB201_CELL
  assert r["params"] == (27 * 4 + 4) + (4 * 10 + 10)  # no auxiliary head
  assert r["macs"] == 6 * 6 * 4 * 27 + 4 * 10
  assert r["input_shape"] == [6, 6, 3] and r["space"] == "nb201"


def test_searched_architecture_without_models_package(capsys, monkeypatch,
                                                      searched_files):
  monkeypatch.setitem(sys.modules, "supernet.models", None)
  config, arch = searched_files
  code, _, err = _run(capsys, "--config", config, "--arch", arch)
  assert code == 2 and "supernet.models.build_network" in err


def test_lut_error_summary_format():
  result = {"rows": [{"blocks": 20, "measured_ms": 10.0, "predicted_ms": 9.0,
                      "ape_percent": 10.0}],
            "table_blocks": 103, "num_archs": 1, "mape_percent": 10.0,
            "max_ape_percent": 10.0,
            "signature": {"backend": "cpu", "device_kind": "cpu",
                          "jax_version": "x", "batch": 1, "clock": "wall"}}
  text = format_lut_error(result)
  assert "mean absolute percentage error over 1 architectures: 10.0%" in text
