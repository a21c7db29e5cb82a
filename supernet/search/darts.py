"""The gradient-based search loop (DARTS, GDAS, PC-DARTS) behind ``search``.

``run_search(config, workdir)`` trains the supernet bilevel, epoch by epoch,
writes metrics, plots and resumable checkpoints to the run directory, and
derives the architecture to ``workdir/arch.json``. Killing it at any moment
and running it again with the same workdir resumes from the newest complete
checkpoint and ends bitwise identical (on the CPU) to an uninterrupted run:
data order is a function of (seed, epoch) and step keys of (seed, step).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from supernet import parallel
from supernet.data import load_dataset
from supernet.errors import UserError
from supernet.models import build_search_model, init_arch_params
from supernet.models.mixed import MIXING_MODES, mixing_weights
from supernet.rundir import RunDir
from supernet.search import bilevel, derive, plots
from supernet.search.bilevel import cross_entropy
from supernet.spaces import Arch, make_space, save_arch
from supernet.spaces import darts as darts_space
from supernet.spaces import nb201 as nb201_space


def check_search_config(config: ml_collections.ConfigDict) -> None:
  """Fails early, with one line, on an invalid search config."""
  s = config.search
  if config.space.name not in ("darts", "nb201"):
    raise UserError(f"gradient search supports spaces 'darts' and 'nb201', "
                    f"not {config.space.name!r}")
  if s.mixing not in MIXING_MODES:
    raise UserError(f"unknown search.mixing {s.mixing!r}; valid: "
                    f"{sorted(MIXING_MODES)}")
  if s.hypergradient not in bilevel.HYPERGRADIENTS:
    raise UserError(f"unknown search.hypergradient {s.hypergradient!r}; "
                    f"valid: {list(bilevel.HYPERGRADIENTS)}")
  if s.mixing == "pc_darts" and config.space.name != "darts":
    raise UserError("search.mixing='pc_darts' needs the darts space")
  if s.epochs < 1:
    raise UserError("search.epochs must be >= 1")


def derive_arch(config: ml_collections.ConfigDict, alphas) -> Arch:
  """The discrete architecture the space's derivation rule picks."""
  if config.space.name == "darts":
    return derive.derive_darts(alphas)
  return derive.derive_nb201(alphas)


class SearchSetup:
  """Everything built from a config before the first step (no side effects).

  Attributes: ``dataset``, ``model``, ``weight_tx``, ``arch_tx``, ``step_fn``
  (jitted search step), ``eval_fn`` (jitted masked-accuracy step),
  ``steps_per_epoch``, ``total_steps``, ``mesh``.
  """

  def __init__(self, config: ml_collections.ConfigDict,
               batch_size: int | None = None, dataset=None):
    check_search_config(config)
    self.config = config
    self.dataset = dataset if dataset is not None else load_dataset(config.data)
    self.info = self.dataset.info
    self.batch_size = batch_size or config.data.batch_size
    self.mesh = parallel.make_mesh()
    s, o = config.search, config.optim
    self.model = build_search_model(config, self.info.num_classes)
    self.steps_per_epoch = self.dataset.steps_per_epoch("weights",
                                                        self.batch_size)
    if self.steps_per_epoch < 1:
      raise UserError(f"batch size {self.batch_size} is larger than the "
                      "weight half of the training split")
    self.total_steps = self.steps_per_epoch * s.epochs
    w = o.weights
    self.weight_tx, self.weight_lr = bilevel.weight_optimizer(
        w.lr, w.lr_min, w.momentum, w.weight_decay, w.grad_clip,
        self.total_steps)
    a = o.arch
    self.arch_tx = bilevel.arch_optimizer(a.lr, a.b1, a.b2, a.weight_decay)
    self.step_fn = bilevel.make_search_step(
        self.model, hypergradient=s.hypergradient, mixing=s.mixing,
        weight_tx=self.weight_tx, arch_tx=self.arch_tx,
        weight_lr=self.weight_lr, total_steps=self.total_steps,
        tau_max=s.tau_max, tau_min=s.tau_min, fd_epsilon=s.fd_epsilon,
        arch_start_step=s.warmup_epochs * self.steps_per_epoch)
    self.eval_fn = jax.jit(self._eval_batch)

  def eval_weights(self, alphas):
    """Mixing weights used for evaluation (GDAS evaluates its argmax)."""
    if self.config.search.mixing == "gumbel":
      return {k: jax.nn.one_hot(jnp.argmax(v, -1), v.shape[-1])
              for k, v in alphas.items()}
    return mixing_weights(alphas, self.config.search.mixing)

  def _eval_batch(self, state: bilevel.SearchState, batch):
    logits = self.model.apply(
        {"params": state.params, "batch_stats": state.batch_stats},
        batch["image"], self.eval_weights(state.alphas), train=False)
    loss, acc = cross_entropy(logits, batch)
    n = batch["mask"].sum()
    return loss * n, acc * n, n

  def init_state(self) -> bilevel.SearchState:
    key = jax.random.key(self.config.seed)
    k_alpha, k_init = jax.random.split(jax.random.fold_in(key, 1))
    alphas = init_arch_params(self.config, k_alpha)
    h, w, c = self.info.image_shape
    sample = jnp.zeros((1, h, w, c), jnp.float32)
    state = bilevel.init_search_state(self.model, alphas, sample, k_init,
                                      self.config.search.mixing,
                                      self.weight_tx, self.arch_tx)
    return parallel.replicate(state, self.mesh)

  def step_key(self) -> jax.Array:
    return jax.random.fold_in(jax.random.key(self.config.seed), 2)

  def evaluate(self, state, split: str = "train", part: str | None = "arch"
               ) -> dict[str, float]:
    """Loss and accuracy of the current supernet on a split/part."""
    tot_loss = tot_acc = tot_n = 0.0
    for batch in self.dataset.eval_batches(split, part=part):
      loss, acc, n = self.eval_fn(state, parallel.shard_batch(batch, self.mesh))
      tot_loss += float(loss)
      tot_acc += float(acc)
      tot_n += float(n)
    return {"loss": tot_loss / max(tot_n, 1), "acc": tot_acc / max(tot_n, 1)}


def _alpha_snapshot(alphas) -> dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in alphas.items()}


def run_search(config: ml_collections.ConfigDict, workdir: str,
               progress: bool = True) -> Arch:
  """Runs (or resumes) a gradient-based search; returns the derived arch.

  Writes ``config.json``, ``metrics.csv``, TensorBoard events, orbax
  checkpoints, ``alphas.npz`` (architecture parameters per epoch),
  ``arch.json`` (the derived architecture) and PNG plots into ``workdir``.
  """
  from tqdm.auto import tqdm

  check_search_config(config)
  space = make_space(config.space.name)
  setup = SearchSetup(config)  # bad data config fails before any file is written
  run = RunDir(workdir, config, "search")
  state = setup.init_state()
  epochs = config.search.epochs
  history: list[dict[str, np.ndarray]] = []
  start_epoch = 0
  restored = run.checkpoints.restore_latest(
      {"state": state, "history": _history_template(state, epochs)})
  if restored is not None:
    step, tree = restored
    state = tree["state"]
    start_epoch = step // setup.steps_per_epoch
    history = [{k: np.asarray(v[e]) for k, v in tree["history"].items()}
               for e in range(start_epoch)]
    run.metrics.truncate_after(step)
    print(f"resuming {workdir} from epoch {start_epoch} (step {step})")
  key = setup.step_key()
  t_start = time.time()
  bar = tqdm(total=setup.total_steps, initial=start_epoch *
             setup.steps_per_epoch, desc="search", unit="step",
             disable=not progress, dynamic_ncols=True)
  for epoch in range(start_epoch, epochs):
    sums: dict[str, float] = {}
    n = 0
    for train_b, val_b in setup.dataset.bilevel_batches(
        epoch, config.seed, batch_size=setup.batch_size):
      state, metrics = setup.step_fn(
          state, parallel.shard_batch(train_b, setup.mesh),
          parallel.shard_batch(val_b, setup.mesh), key)
      n += 1
      bar.update(1)
      if n % 5 == 0 or n == setup.steps_per_epoch:
        bar.set_postfix(loss=f"{float(metrics['train_loss']):.3f}")
      for k, v in metrics.items():
        sums[k] = sums.get(k, 0.0) + v
    means = {k: float(v) / max(n, 1) for k, v in sums.items()}
    val = setup.evaluate(state, "train", "arch")
    history.append(_alpha_snapshot(state.alphas))
    step = int(state.step)
    arch = derive_arch(config, state.alphas)
    row = {"epoch": epoch + 1, **means, "search_val_loss": val["loss"],
           "search_val_acc": val["acc"], "wall_s": time.time() - t_start}
    run.metrics.log(step, row)
    run.checkpoints.save(step, {"state": state, "history":
                                _history_array(history, epochs)})
    tqdm.write(f"epoch {epoch + 1}/{epochs}  train_loss {means['train_loss']:.4f}"
               f"  train_acc {means['train_acc']:.4f}  val_acc {val['acc']:.4f}"
               f"  lr {means['lr']:.4g}  arch {_short(arch)}")
  bar.close()
  arch = space.validate(derive_arch(config, state.alphas))
  save_arch(arch, run.path("arch.json"))
  np.savez(run.path("alphas.npz"), **{
      f"{k}_epoch{e + 1}": v for e, h in enumerate(history) for k, v in h.items()})
  _write_plots(config, run, history, arch)
  run.close()
  return arch


def _short(arch: Arch) -> str:
  if isinstance(arch, nb201_space.Nb201Arch):
    return arch.cell
  return " ".join(f"{op}~{i}" for op, i in arch.normal)


def _history_template(state, epochs: int) -> dict[str, jax.Array]:
  return {k: jnp.zeros((epochs,) + v.shape, v.dtype)
          for k, v in state.alphas.items()}


def _history_array(history, epochs: int) -> dict[str, np.ndarray]:
  out = {}
  for k in history[0]:
    arr = np.zeros((epochs,) + history[0][k].shape, history[0][k].dtype)
    for e, h in enumerate(history):
      arr[e] = h[k]
    out[k] = arr
  return out


def _write_plots(config, run: RunDir, history, arch: Arch) -> None:
  if config.space.name == "darts":
    ops = darts_space.PRIMITIVES
    labels = [f"{j}->{n + 2}" for n in range(darts_space.NUM_NODES)
              for j in range(n + 2)]
    plots.plot_alpha_history(history, ops, run.path("alphas.png"),
                             labels * 2)
    plots.draw_cell(arch.normal, run.path("cell_normal.png"),
                    "derived normal cell")
    plots.draw_cell(arch.reduce, run.path("cell_reduce.png"),
                    "derived reduction cell")
  else:
    labels = [f"{i}->{j}" for j, i in nb201_space.EDGES]
    plots.plot_alpha_history(history, nb201_space.OPS, run.path("alphas.png"),
                             labels)
    plots.draw_nb201_cell(arch.ops, run.path("cell.png"), "derived cell")
  plots.plot_curves(run.metrics.rows, ["train_acc", "search_val_acc"],
                    run.path("accuracy.png"), title="search accuracy")
  plots.plot_curves(run.metrics.rows, ["train_loss", "search_val_loss"],
                    run.path("loss.png"), title="search loss")


def search_summary(workdir: str) -> dict[str, Any]:
  """Paths of what a finished search wrote (for the CLI's closing lines)."""
  import os
  names = ["arch.json", "metrics.csv", "alphas.png", "cell_normal.png",
           "cell_reduce.png", "cell.png", "checkpoints", "tensorboard"]
  return {n: os.path.join(workdir, n) for n in names
          if os.path.exists(os.path.join(workdir, n))}


def run_oneshot(hparams: ml_collections.ConfigDict, space, key: jax.Array
                ) -> list[tuple[Arch, dict[str, float]]]:
  """The gradient search as a one-shot strategy of ``supernet compare``.

  Runs :func:`run_search` with the search config ``hparams.search_config``
  (``path.py[:variant]``, overridden by ``hparams.overrides``) in a temporary
  run directory, seeded from ``key``, and returns the derived architecture
  with the supernet's own final validation accuracy (``search_val_acc``).

  Args:
    hparams: ``search_config`` and optional ``overrides`` (a dict).
    space: the comparison's space; the search config's space must match.
    key: PRNG key of this comparison seed.

  Returns:
    ``[(arch, {"search_val_acc": ...})]``.
  """
  import tempfile

  from supernet.config import load_config

  spec = hparams.get("search_config", "")
  if not spec:
    raise UserError("the darts strategy needs hparams.search_config")
  overrides = [(k, repr(v)) for k, v in dict(hparams.get("overrides", {})
                                             ).items()]
  config = load_config(spec, overrides)
  config.seed = int(jax.random.randint(key, (), 0, 2**30))
  if config.space.name != space.name:
    raise UserError(f"darts strategy: search config space "
                    f"{config.space.name!r} differs from {space.name!r}")
  with tempfile.TemporaryDirectory() as tmp:
    arch = run_search(config, tmp, progress=False)
    from supernet.rundir import MetricsLogger
    rows = MetricsLogger(tmp).rows
  last = float(rows[-1]["search_val_acc"]) if rows else float("nan")
  return [(arch, {"search_val_acc": last})]
