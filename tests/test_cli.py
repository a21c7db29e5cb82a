"""The command line on bad input: one line, exit status 2, nothing written."""

import os
import subprocess
import sys

import pytest

from supernet.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "experiments", "configs", "darts_digits.py")


def _run(argv, capsys):
  rc = main(argv)
  err = capsys.readouterr().err.strip()
  return rc, err


@pytest.mark.parametrize("argv, message", [
    (["search", "--config", CONFIG + ":smoke", "--config.search.epochz=3"],
     "config key 'search.epochz' does not exist"),
    (["search", "--config", CONFIG, "--config.search.epochs=many"],
     "expected int"),
    (["search", "--config", CONFIG + ":huge"], "unknown variant"),
    (["search", "--config", "/nope/config.py"], "config file not found"),
    (["search", "--config", CONFIG, "--config.data.name=imagenot"],
     "unknown dataset 'imagenot'"),
    (["search", "--config", CONFIG, "--config.search.mixing=fancy"],
     "unknown search.mixing 'fancy'"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys, tmp_path):
  workdir = tmp_path / "run"
  if argv[0] == "search":
    argv = argv + ["--workdir", str(workdir)]
  rc, err = _run(argv, capsys)
  assert rc == 2
  assert len(err.splitlines()) == 1, err
  assert err.startswith("error: ") and message in err, err
  assert not workdir.exists()  # nothing written


def test_workdir_of_another_config_is_refused(capsys, tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text('{"seed": 123}')
  rc, err = _run(["search", "--config", CONFIG + ":smoke", "--workdir",
                  str(workdir)], capsys)
  assert rc == 2 and "different config" in err
  assert (workdir / "config.json").read_text() == '{"seed": 123}'


def test_console_entry_point_help():
  out = subprocess.run([sys.executable, "-m", "supernet", "--help"],
                       capture_output=True, text=True, check=True).stdout
  for verb in ("search", "train", "export", "evaluate", "profile", "bench"):
    assert verb in out
