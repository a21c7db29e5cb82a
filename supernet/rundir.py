"""A run directory: config, metrics (CSV + TensorBoard), checkpoints.

``RunDir(workdir, config, command)`` creates the directory and writes
``config.json``; when the directory already holds a run, its config must be
identical (then the run resumes) or the user gets a one-line error: a run's
results are never overwritten by a different experiment.

Checkpoints are orbax ``CheckpointManager`` steps written synchronously, so
the newest complete step is always restorable after a kill; metric rows
newer than the restored step are dropped on resume so ``metrics.csv`` reads as
if the run had never stopped.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from typing import Any

import ml_collections
import numpy as np

from supernet.config import config_to_json
from supernet.errors import UserError

_RUN_FILE = "run.json"


class MetricsLogger:
  """Appends rows to ``metrics.csv`` and TensorBoard event files."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, "metrics.csv")
    self.tb_dir = os.path.join(workdir, "tensorboard")
    self._writer = None
    self._rows: list[dict[str, Any]] = []
    if os.path.exists(self.path):
      with open(self.path, newline="") as f:
        self._rows = list(csv.DictReader(f))

  @property
  def rows(self) -> list[dict[str, Any]]:
    """Rows logged so far (values as read back from CSV are strings)."""
    return list(self._rows)

  def truncate_after(self, step: int) -> None:
    """Drops rows logged after ``step`` (they belong to an interrupted tail)."""
    self._rows = [r for r in self._rows if int(float(r["step"])) <= step]
    self._flush()

  def log(self, step: int, metrics: dict[str, Any]) -> None:
    """Records one row of scalar metrics at ``step``."""
    row = {"step": int(step)}
    for k, v in metrics.items():
      row[k] = float(np.asarray(v)) if not isinstance(v, str) else v
    self._rows.append(row)
    self._flush()
    if self._writer is None:
      from tensorboardX import SummaryWriter  # lazy: only runs that log
      self._writer = SummaryWriter(self.tb_dir)
    for k, v in row.items():
      if k != "step" and not isinstance(v, str):
        self._writer.add_scalar(k, v, int(step))
    self._writer.flush()

  def _flush(self) -> None:
    keys: list[str] = []
    for r in self._rows:
      keys += [k for k in r if k not in keys]
    tmp = self.path + ".tmp"
    with open(tmp, "w", newline="") as f:
      w = csv.DictWriter(f, fieldnames=keys or ["step"])
      w.writeheader()
      w.writerows(self._rows)
    os.replace(tmp, self.path)

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class Checkpoints:
  """Orbax checkpoints of one pytree, newest ``max_to_keep`` kept."""

  def __init__(self, directory: str, max_to_keep: int = 2):
    import orbax.checkpoint as ocp  # lazy: heavy import
    self._ocp = ocp
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False,
            create=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, tree: Any) -> None:
    """Writes ``tree`` as step ``step`` (atomically: temp dir, then rename)."""
    self._manager.save(int(step), args=self._ocp.args.StandardSave(tree),
                       force=True)
    self._manager.wait_until_finished()

  def restore(self, step: int, target: Any) -> Any:
    """Restores step ``step`` into the structure/shardings of ``target``."""
    import jax
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                       sharding=getattr(x, "sharding", None))
        if hasattr(x, "shape") else x, target)
    try:
      return self._manager.restore(
          int(step), args=self._ocp.args.StandardRestore(abstract))
    except (ValueError, KeyError, FileNotFoundError) as e:
      raise UserError(f"checkpoint step {step} in {self.directory} does not "
                      f"match this run ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:200]})") from None

  def restore_latest(self, target: Any) -> tuple[int, Any] | None:
    """``(step, tree)`` of the newest complete checkpoint, or None."""
    step = self.latest_step()
    if step is None:
      return None
    return step, self.restore(step, target)

  def close(self) -> None:
    self._manager.close()


class RunDir:
  """The directory of one run (search or training).

  Args:
    workdir: the directory (created if needed).
    config: the run's config; written to ``config.json``.
    command: what kind of run this is (``search``, ``train``...); a workdir
      made by another command is refused.
  """

  def __init__(self, workdir: str, config: ml_collections.ConfigDict,
               command: str):
    self.workdir = os.path.abspath(workdir)
    self.command = command
    config_text = config_to_json(config)
    config_path = os.path.join(self.workdir, "config.json")
    run_path = os.path.join(self.workdir, _RUN_FILE)
    if os.path.isfile(config_path):
      with open(config_path) as f:
        old_text = f.read()
      if json.loads(old_text) != json.loads(config_text):
        raise UserError(
            f"workdir {workdir} holds a run with a different config; use "
            "another --workdir (or the same command and config to resume)")
      if os.path.isfile(run_path):
        with open(run_path) as f:
          old_command = json.load(f).get("command")
        if old_command != command:
          raise UserError(f"workdir {workdir} holds a '{old_command}' run, not "
                          f"a '{command}' run; use another --workdir")
      self.resuming = True
    else:
      if os.path.isdir(self.workdir) and os.listdir(self.workdir):
        raise UserError(f"workdir {workdir} is not empty and holds no run; "
                        "use an empty or new directory")
      os.makedirs(self.workdir, exist_ok=True)
      with open(config_path + ".tmp", "w") as f:
        f.write(config_text)
      os.replace(config_path + ".tmp", config_path)
      with open(run_path, "w") as f:
        json.dump({"command": command}, f)
      self.resuming = False
    self.config = config
    self.metrics = MetricsLogger(self.workdir)
    self._checkpoints: Checkpoints | None = None

  @property
  def checkpoints(self) -> Checkpoints:
    if self._checkpoints is None:
      self._checkpoints = Checkpoints(self.path("checkpoints"))
    return self._checkpoints

  def path(self, *names: str) -> str:
    """A path inside the run directory."""
    return os.path.join(self.workdir, *names)

  def write_json(self, name: str, obj: Any) -> str:
    """Writes ``obj`` as JSON to ``name`` atomically; returns the path."""
    path = self.path(name)
    with open(path + ".tmp", "w") as f:
      json.dump(obj, f, indent=1, default=float)
      f.write("\n")
    os.replace(path + ".tmp", path)
    return path

  def close(self) -> None:
    self.metrics.close()
    if self._checkpoints is not None:
      self._checkpoints.close()


def read_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config of an existing run directory (UserError if there is none)."""
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      return ml_collections.ConfigDict(json.load(f))
  except FileNotFoundError:
    raise UserError(f"{workdir} is not a run directory (no config.json)"
                    ) from None
  except json.JSONDecodeError:
    raise UserError(f"{path} is corrupt (not valid JSON)") from None


def remove_tree(path: str) -> None:
  """Deletes a directory tree if it exists."""
  if os.path.isdir(path):
    shutil.rmtree(path)
