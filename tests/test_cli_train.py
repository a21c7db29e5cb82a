"""``supernet train / export / evaluate``: the pipeline and user errors.

The pipeline runs the real commands in a subprocess on the embedded digits
(smoke config); compiled programs go to a persistent JAX cache shared with
tests/test_resume.py, which trains the same smoke config.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from supernet.cli import main
from supernet.spaces import DARTS_V2, save_arch
from supernet.spaces.darts import PC_DARTS

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TRAIN_CONFIG = os.path.join(ROOT, "experiments", "configs",
                            "darts_digits_train.py")
NB201_CELL = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+"
              "|skip_connect~0|none~1|nor_conv_3x3~2|")


def cli_env(tmp_path_factory) -> dict:
  """Environment of CLI subprocesses: CPU, one persistent compile cache."""
  cache = tmp_path_factory.getbasetemp() / "jax_cache"
  return dict(os.environ, JAX_PLATFORMS="cpu", SUPERNET_JAX_CACHE=str(cache))


def run_cli(args, env, timeout=300) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "supernet", *args], env=env,
                        capture_output=True, text=True, timeout=timeout,
                        cwd=ROOT, check=False)


def smoke_train_args(workdir, arch, data_dir) -> list:
  """``supernet train`` of the digits smoke config (3 epochs)."""
  return ["train", "--config", TRAIN_CONFIG + ":smoke", "--arch", arch,
          "--workdir", workdir, "--no-progress",
          f"--config.data.data_dir={data_dir}"]


def smoke_train_run(tmp_path_factory, data_dir):
  """The uninterrupted smoke training run, made once per test session.

  tests/test_resume.py compares its killed-and-resumed run against it.

  Returns:
    ``(workdir, arch_path, completed_process_or_None)``.
  """
  base = tmp_path_factory.getbasetemp() / "smoke_train"
  run, arch = base / "run", base / "arch.json"
  if (run / "results.json").exists():
    return str(run), str(arch), None
  base.mkdir(exist_ok=True)
  save_arch(DARTS_V2, str(arch))
  proc = run_cli(smoke_train_args(str(run), str(arch), data_dir),
                 cli_env(tmp_path_factory))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return str(run), str(arch), proc


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, digits_data_dir):
  """train (smoke) -> export -> evaluate, once for this module."""
  env = cli_env(tmp_path_factory)
  tmp = tmp_path_factory.mktemp("pipeline")
  run, arch, train = smoke_train_run(tmp_path_factory, digits_data_dir)
  out = str(tmp / "export")
  data = f"--config.data.data_dir={digits_data_dir}"
  export = run_cli(["export", "--workdir", run, "--out", out], env)
  assert export.returncode == 0, export.stderr[-3000:]
  evaluate = run_cli(["evaluate", "--export", out], env)
  assert evaluate.returncode == 0, evaluate.stderr[-3000:]
  return {"arch": arch, "run": run, "out": out, "data": data,
          "train": train, "export": export, "evaluate": evaluate,
          "tmp": tmp}


def test_train_writes_a_complete_run(pipeline):
  run = pipeline["run"]
  for name in ("config.json", "arch.json", "metrics.csv", "results.json",
               "accuracy.png", "loss.png", "checkpoints", "tensorboard",
               "dataset_info.json"):
    assert os.path.exists(os.path.join(run, name)), name
  with open(os.path.join(run, "arch.json")) as f:
    assert json.load(f) == DARTS_V2.to_json()
  with open(os.path.join(run, "metrics.csv")) as f:
    lines = f.read().splitlines()
  assert len(lines) == 1 + 3  # header + one row per epoch
  assert "test_acc" in lines[0] and "drop_path_prob" in lines[0]
  with open(os.path.join(run, "results.json")) as f:
    results = json.load(f)
  assert results["test_examples"] == 355
  assert results["params"] > 0 and results["wall_s"] > 0
  assert results["steps"] == 3 * 22
  if pipeline["train"] is not None:  # None: test_resume.py made the run
    out = pipeline["train"].stdout
    assert "epoch 3/3" in out and "test accuracy" in out


def test_evaluate_reproduces_the_training_accuracy_exactly(pipeline):
  with open(os.path.join(pipeline["run"], "results.json")) as f:
    results = json.load(f)
  doc = json.loads(pipeline["evaluate"].stdout.strip().splitlines()[-1])
  assert doc["split"] == "test" and doc["dataset"] == "digits"
  assert doc["examples"] == 355
  assert doc["accuracy"] == results["test_accuracy"]
  assert doc["correct"] == results["test_correct"]
  with open(os.path.join(pipeline["out"], "metadata.json")) as f:
    meta = json.load(f)
  assert meta["input_shape"] == [8, 8, 1] and meta["dataset"] == "digits"
  assert meta["test_accuracy"] == results["test_accuracy"]
  assert meta["num_params"] == results["params"]
  assert meta["config"]["model"]["layers"] == 3


def _main(capsys, *argv):
  code = main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def _assert_one_line_error(code, err, message):
  assert code == 2, err
  assert err.startswith("error: ") and message in err, err
  assert err.count("\n") == 1 and "Traceback" not in err


def test_arch_of_another_space_is_refused(capsys, tmp_path):
  arch = tmp_path / "arch.json"
  arch.write_text(json.dumps({"space": "nb201", "cell": NB201_CELL}))
  code, _, err = _main(capsys, "train", "--config", TRAIN_CONFIG + ":smoke",
                       "--arch", str(arch), "--workdir", str(tmp_path / "r"))
  _assert_one_line_error(code, err, "arch.json is of space 'nb201' but the "
                         "config's space is 'darts'")
  assert not os.path.exists(tmp_path / "r")


@pytest.mark.parametrize("text, message", [
    ('{"space": "darts", "normal": [["sep_conv_3x3", 0]', "not valid JSON"),
    ("", "not valid JSON"),
    ('{"space": "darts", "normal": []}', "missing field"),
])
def test_corrupt_arch_is_refused(capsys, tmp_path, text, message):
  arch = tmp_path / "arch.json"
  arch.write_text(text)
  code, _, err = _main(capsys, "train", "--config", TRAIN_CONFIG + ":smoke",
                       "--arch", str(arch), "--workdir", str(tmp_path / "r"))
  _assert_one_line_error(code, err, message)
  assert not os.path.exists(tmp_path / "r")


def test_train_needs_an_arch(capsys, tmp_path):
  code, _, err = _main(capsys, "train", "--config", TRAIN_CONFIG + ":smoke",
                       "--workdir", str(tmp_path / "r"))
  _assert_one_line_error(code, err, "--arch ARCH.json is required")


def test_elastic_config_takes_no_arch(capsys, tmp_path):
  config = tmp_path / "elastic.py"
  config.write_text(
      "import ml_collections\n\n"
      "def get_config():\n"
      "  return ml_collections.ConfigDict({'space': {'name': 'elastic_mbv'}})"
      "\n")
  code, _, err = _main(capsys, "train", "--config", str(config), "--arch",
                       "a.json", "--workdir", str(tmp_path / "r"))
  _assert_one_line_error(code, err, "drop --arch")


def _snapshot(path):
  return {name: open(os.path.join(path, name), "rb").read()
          for name in ("config.json", "metrics.csv", "arch.json",
                       "results.json")}


def test_workdir_with_another_config_is_refused(pipeline, capsys):
  before = _snapshot(pipeline["run"])
  code, _, err = _main(capsys, "train", "--config", TRAIN_CONFIG + ":smoke",
                       "--arch", pipeline["arch"], "--workdir",
                       pipeline["run"], pipeline["data"],
                       "--config.train.epochs=5")
  _assert_one_line_error(code, err, "holds a run with a different config")
  assert _snapshot(pipeline["run"]) == before


def test_workdir_with_another_arch_is_refused(pipeline, capsys, tmp_path):
  before = _snapshot(pipeline["run"])
  other = tmp_path / "other.json"
  save_arch(PC_DARTS, str(other))
  code, _, err = _main(capsys, "train", "--config", TRAIN_CONFIG + ":smoke",
                       "--arch", str(other), "--workdir", pipeline["run"],
                       pipeline["data"])
  _assert_one_line_error(code, err, "trained on a different architecture")
  assert _snapshot(pipeline["run"]) == before


def test_export_refuses_a_non_empty_out(pipeline, capsys, tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  (out / "keep.txt").write_text("mine")
  code, _, err = _main(capsys, "export", "--workdir", pipeline["run"],
                       "--out", str(out))
  _assert_one_line_error(code, err, "is not empty; pass --overwrite")
  assert os.listdir(out) == ["keep.txt"]


def test_export_never_replaces_the_run(pipeline, capsys):
  before = _snapshot(pipeline["run"])
  code, _, err = _main(capsys, "export", "--workdir", pipeline["run"],
                       "--out", pipeline["run"], "--overwrite")
  _assert_one_line_error(code, err, "would replace the run directory")
  assert _snapshot(pipeline["run"]) == before


def test_export_without_checkpoint(pipeline, capsys, tmp_path):
  run = tmp_path / "run"
  os.makedirs(run)
  for name in ("config.json", "run.json", "arch.json", "dataset_info.json"):
    shutil.copy(os.path.join(pipeline["run"], name), run / name)
  code, _, err = _main(capsys, "export", "--workdir", str(run), "--out",
                       str(tmp_path / "out"))
  _assert_one_line_error(code, err, "has no checkpoint yet")
  assert not os.path.exists(tmp_path / "out")
  assert not os.path.exists(run / "checkpoints")


def test_export_of_a_directory_that_is_no_run(capsys, tmp_path):
  code, _, err = _main(capsys, "export", "--workdir", str(tmp_path), "--out",
                       str(tmp_path / "out"))
  _assert_one_line_error(code, err, "is not a run directory")


def test_export_with_weights_of_another_arch(pipeline, capsys, tmp_path):
  run = tmp_path / "run"
  shutil.copytree(pipeline["run"], run)
  save_arch(PC_DARTS, str(run / "arch.json"))
  code, _, err = _main(capsys, "export", "--workdir", str(run), "--out",
                       str(tmp_path / "out"))
  _assert_one_line_error(code, err, "do not fit its arch.json and config")
  assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("name, message", [
    ("weights.msgpack", "weights.msgpack is corrupt or truncated"),
    ("model.jax_export", "model.jax_export is corrupt"),
    ("metadata.json", "metadata.json is corrupt"),
])
def test_evaluate_truncated_export(pipeline, capsys, tmp_path, name, message):
  out = tmp_path / "export"
  shutil.copytree(pipeline["out"], out)
  data = (out / name).read_bytes()
  (out / name).write_bytes(data[:len(data) // 3])
  code, stdout, err = _main(capsys, "evaluate", "--export", str(out))
  _assert_one_line_error(code, err, message)
  assert stdout == ""


def test_evaluate_missing_metadata(pipeline, capsys, tmp_path):
  out = tmp_path / "export"
  shutil.copytree(pipeline["out"], out)
  os.remove(out / "metadata.json")
  code, _, err = _main(capsys, "evaluate", "--export", str(out))
  _assert_one_line_error(code, err, "metadata.json is missing")


def test_evaluate_unknown_dataset(pipeline, capsys):
  code, _, err = _main(capsys, "evaluate", "--export", pipeline["out"],
                       "--dataset", "no_such_dataset_xyz")
  assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
