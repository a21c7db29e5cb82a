"""Training a derived network from scratch: the resumable loop behind ``train``.

``train_and_evaluate(config, workdir, arch)`` trains ``build_network(config,
arch)`` on ``config.data`` and writes, into the run directory: ``config.json``,
``arch.json``, ``dataset_info.json``, ``metrics.csv`` + TensorBoard events (one
row per epoch), orbax checkpoints after every epoch, ``loss.png`` /
``accuracy.png`` and ``results.json`` (final test accuracy, parameters, wall
time).

Killing it at any moment and running it again with the same workdir resumes
from the newest complete checkpoint and ends bitwise identical (on the CPU)
to an uninterrupted run: the epoch's data order and augmentation are a
function of ``(seed, epoch)``, step keys are ``fold_in(key, step)``, and
metric rows written after the restored checkpoint are dropped.

The final test accuracy is counted with the very function an export ships
(``jax.export``, weights baked in, padded batches), so ``supernet evaluate``
on the export reproduces it exactly.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from supernet import parallel
from supernet.data import load_dataset, normalize, with_defaults
from supernet.errors import UserError
from supernet.models import build_network
from supernet.rundir import RunDir
from supernet.spaces import Arch, load_arch, make_space, save_arch
from supernet.train import config as train_config
from supernet.train.optim import make_optimizer
from supernet.train.state import (
    TrainState,
    count_params,
    create_train_state,
    inference_variables,
)
from supernet.train.steps import make_eval_step, make_train_step

# Wall-clock columns of metrics.csv: they differ between runs by nature.
WALL_CLOCK_COLUMNS = ("epoch_s", "wall_s")
# Root-key streams (fold_in of the seed's key): keep purposes apart.
_INIT_STREAM, _STEP_STREAM = 1, 2
INIT_PRNG_IMPL = "unsafe_rbg"


class TrainSetup:
  """Everything built from a config and an arch before the first step.

  Attributes:
    config, arch, dataset, info, module, input_shape, steps_per_epoch,
    epochs, total_steps, tx, schedule, mesh, train_step (jitted), eval_step
    (jitted), eval_batch_size.
  """

  def __init__(self, config: ml_collections.ConfigDict, arch: Arch,
               dataset=None):
    train_config.check_train_config(config)
    if arch.space != config.space.name:
      raise UserError(f"the architecture is of space {arch.space!r} but the "
                      f"config's space is {config.space.name!r}")
    self.config = config
    self.arch = arch
    self.dataset = dataset if dataset is not None else load_dataset(
        config.data)
    self.info = self.dataset.info
    train_config.check_model_matches_data(config, self.info)
    self.module, self.input_shape = build_network(config, arch)
    self.steps_per_epoch = self.dataset.steps_per_epoch("all")
    if self.steps_per_epoch < 1:
      raise UserError(f"data.batch_size {config.data.batch_size} is larger "
                      "than the train split")
    self.epochs = int(train_config.train_value(config, "epochs"))
    self.total_steps = self.epochs * self.steps_per_epoch
    self.eval_batch_size = int(with_defaults(config.data).eval_batch_size)
    self.tx, self.schedule = make_optimizer(config, self.steps_per_epoch)
    self.mesh = parallel.make_mesh()
    aux = (config.space.name == "darts"
           and bool(train_config.model_value(config, "auxiliary")))
    self.train_step = make_train_step(
        self.module, self.tx, self.schedule,
        steps_per_epoch=self.steps_per_epoch, epochs=self.epochs,
        aux_weight=float(train_config.model_value(config, "auxiliary_weight"))
        if aux else 0.0,
        label_smoothing=float(train_config.train_value(config,
                                                       "label_smoothing")),
        drop_path_prob=float(config.model.get("drop_path_prob", 0.0)))
    self.eval_step = make_eval_step(self.module)

  def root_key(self) -> jax.Array:
    return jax.random.key(self.config.seed)

  def init_state(self) -> TrainState:
    """A fresh state, replicated over the mesh.

    The initialisation key uses the ``unsafe_rbg`` PRNG: XLA:CPU compiles
    one threefry hash per parameter in about 0.3 s, so a DARTS network's
    init took 30 s to compile with threefry and 5 s with XLA's own bit
    generator (statistical quality is ample for weight initialisation).
    """
    key = jax.random.fold_in(
        jax.random.key(self.config.seed, impl=INIT_PRNG_IMPL), _INIT_STREAM)
    state = create_train_state(self.module, self.tx, self.input_shape, key)
    return parallel.replicate(state, self.mesh)

  def step_key(self) -> jax.Array:
    """The key every step folds its step number into."""
    return jax.random.fold_in(self.root_key(), _STEP_STREAM)

  def evaluate(self, state: TrainState, split: str = "test"
               ) -> dict[str, float]:
    """Loss and accuracy of the flax network on a whole split."""
    variables = state.variables()
    sums = None
    for batch in self.dataset.eval_batches(split):
      out = self.eval_step(variables, parallel.shard_batch(batch, self.mesh))
      sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
    n = max(float(sums["count"]), 1.0)
    return {"loss": float(sums["loss"]) / n, "acc": float(sums["correct"]) / n}

  def exported_accuracy(self, state: TrainState, split: str = "test"
                        ) -> tuple[int, int]:
    """``(correct, examples)`` counted by the export's inference function.

    The function is built, serialised and deserialised exactly as
    ``supernet export`` / ``supernet evaluate`` do, and fed the same
    normalised images in the same padded batches.
    """
    from supernet import export  # noqa: PLC0415 - only at the end
    variables = inference_variables(self.module, state, self.input_shape)
    exported = export.export_inference(self.module, variables,
                                       self.input_shape)
    exported = jax.export.deserialize(exported.serialize())
    images, labels = self.dataset.raw_arrays(split)
    return export.count_correct(exported.call, normalize(images, self.info),
                                labels, self.eval_batch_size)


def _prepare_arch(run: RunDir, arch: Arch, space) -> None:
  """Copies the arch into the run, or checks a resumed run's copy."""
  path = run.path("arch.json")
  if os.path.isfile(path):
    old = load_arch(path, space)
    if old != arch:
      raise UserError(f"workdir {run.workdir} was trained on a different "
                      "architecture; use another --workdir")
    return
  save_arch(arch, path)


def _epoch_means(sums: dict[str, jax.Array], n: int) -> dict[str, float]:
  return {k: float(v) / max(n, 1) for k, v in sums.items()}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       arch: Arch, *, progress: bool = True,
                       dataset=None) -> dict[str, Any]:
  """Trains (or resumes training of) ``arch`` under ``config`` in ``workdir``.

  Args:
    config: a training config (``seed``, ``space``, ``data``, ``model``,
      ``train``).
    workdir: the run directory.
    arch: the architecture (its space must be ``config.space.name``).
    progress: show a tqdm progress bar.
    dataset: an already loaded dataset (tests); default
      ``load_dataset(config.data)``.

  Returns:
    The ``results.json`` document.
  """
  from tqdm.auto import tqdm

  t_start = time.time()
  setup = TrainSetup(config, arch, dataset)
  space = make_space(config.space.name)
  run = RunDir(workdir, config, "train")
  _prepare_arch(run, arch, space)
  run.write_json("dataset_info.json", setup.info.to_json())
  state = setup.init_state()
  start_epoch = 0
  restored = run.checkpoints.restore_latest(
      {"state": state, "epoch": np.zeros((), np.int32)})
  if restored is not None:
    step, tree = restored
    state = tree["state"]
    start_epoch = int(tree["epoch"])
    if int(state.step) != step or step != start_epoch * setup.steps_per_epoch:
      raise UserError(f"checkpoint step {step} in {run.workdir} does not "
                      "match this config's steps per epoch")
    run.metrics.truncate_after(step)
    print(f"resuming {workdir} from epoch {start_epoch} (step {step})")
  key = setup.step_key()
  log_every = int(train_config.train_value(config, "log_every"))
  eval_every = int(train_config.train_value(config, "eval_every"))
  bar = tqdm(total=setup.total_steps,
             initial=start_epoch * setup.steps_per_epoch, desc="train",
             unit="step", disable=not progress, dynamic_ncols=True)
  test = None
  for epoch in range(start_epoch, setup.epochs):
    t_epoch = time.time()
    sums: dict[str, jax.Array] | None = None
    n = 0
    for batch in setup.dataset.train_batches(epoch, config.seed):
      state, metrics = setup.train_step(
          state, parallel.shard_batch(batch, setup.mesh), key)
      # Sums stay on the device: no host round trip per step.
      sums = metrics if sums is None else jax.tree.map(jnp.add, sums,
                                                       metrics)
      n += 1
      bar.update(1)
      if n % log_every == 0:
        bar.set_postfix(loss=f"{float(metrics['train_loss']):.3f}")
    row: dict[str, Any] = {"epoch": epoch + 1, **_epoch_means(sums, n)}
    last = epoch + 1 == setup.epochs
    if last or (epoch + 1) % eval_every == 0:
      test = setup.evaluate(state, "test")
      row.update(test_loss=test["loss"], test_acc=test["acc"])
    row.update(epoch_s=time.time() - t_epoch, wall_s=time.time() - t_start)
    step = int(state.step)
    run.metrics.log(step, row)
    run.checkpoints.save(step, {"state": state,
                                "epoch": np.asarray(epoch + 1, np.int32)})
    summary = (f"epoch {epoch + 1}/{setup.epochs}  "
               f"train_loss {row['train_loss']:.4f}  "
               f"train_acc {row['train_acc']:.4f}")
    if "test_acc" in row:
      summary += f"  test_acc {row['test_acc']:.4f}"
    tqdm.write(summary + f"  lr {row['lr']:.4g}  "
               f"drop_path {row['drop_path_prob']:.3f}  "
               f"({row['epoch_s']:.1f} s)")
  bar.close()
  if test is None:  # resumed after the last epoch: nothing left to train
    test = setup.evaluate(state, "test")
  correct, examples = setup.exported_accuracy(state, "test")
  results = _results(setup, state, run, correct, examples, test,
                     time.time() - t_start)
  run.write_json("results.json", results)
  _write_plots(run)
  run.close()
  return results


def _results(setup: TrainSetup, state: TrainState, run: RunDir,
             correct: int, examples: int, test: dict[str, float],
             wall_s: float) -> dict[str, Any]:
  rows = run.metrics.rows
  epoch_times = [float(r["epoch_s"]) for r in rows if r.get("epoch_s")]
  return {
      "test_accuracy": correct / max(examples, 1),
      "test_correct": correct,
      "test_examples": examples,
      "test_loss": test["loss"],
      "test_accuracy_flax": test["acc"],
      "params": count_params(inference_variables(
          setup.module, state, setup.input_shape)["params"]),
      "params_with_training_heads": count_params(state.params),
      "epochs": setup.epochs,
      "steps": int(state.step),
      "train_time_s": float(sum(epoch_times)),
      "epoch_time_s": float(np.median(epoch_times)) if epoch_times else 0.0,
      "wall_s": wall_s,
      "devices": int(setup.mesh.devices.size),
      "dataset": setup.info.name,
      "space": setup.config.space.name,
      "arch": setup.arch.to_json(),
  }


def _write_plots(run: RunDir) -> None:
  from supernet.search import plots  # noqa: PLC0415 - matplotlib is heavy
  rows = run.metrics.rows
  plots.plot_curves(rows, ["train_loss", "test_loss"], run.path("loss.png"),
                    title="training loss")
  plots.plot_curves(rows, ["train_acc", "test_acc"], run.path("accuracy.png"),
                    title="accuracy")
