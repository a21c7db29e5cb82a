"""The gradient-based search loop (DARTS, GDAS, PC-DARTS) behind ``search``.

``run_search(config, workdir)`` trains the supernet bilevel, epoch by epoch,
writes metrics, plots and resumable checkpoints to the run directory, and
derives the architecture to ``workdir/arch.json``. Killing it at any moment
and running it again with the same workdir resumes from the newest complete
checkpoint and ends bitwise identical (on the CPU) to an uninterrupted run:
data order is a function of (seed, epoch) and step keys of (seed, step).

Hardware-aware search (ProxylessNAS / FBNet): with
``search.latency_penalty.weight > 0`` the architecture loss gains
``weight * E[latency]``, the expected latency of the cell under the softmax
of its alphas with per-op latencies fitted to a NAS-Bench-201 device column
(:func:`nb201_op_latency`, :func:`expected_latency`). The penalty depends on
the alphas only, so it enters as an optax transformation in front of the
architecture optimiser (:func:`latency_penalty`); the search step and its
three hypergradients are unchanged.

:func:`run_oneshot` runs the same steps inside ``supernet compare``.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

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
  penalty_op_latency(config)  # a bad latency_penalty section fails here


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
    # Hardware-aware search: None (and the optimiser untouched) unless
    # search.latency_penalty.weight > 0.
    self.op_latency = penalty_op_latency(config)
    if self.op_latency is not None:
      self.arch_tx = optax.chain(
          latency_penalty(float(s.latency_penalty.weight), self.op_latency),
          self.arch_tx)
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
    if setup.op_latency is not None:
      row["expected_latency_ms"] = float(expected_latency(state.alphas,
                                                          setup.op_latency))
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


# --------------------------------------------------------------------------
# Hardware-aware search: a differentiable expected-latency penalty.

class OpLatency(NamedTuple):
  """An additive latency model of NAS-Bench-201 cells on one device.

  ``latency(cell) ~= base_ms + sum_e per_op_ms[e, op_e]``.

  Attributes:
    base_ms: the intercept (the skeleton; may be negative, it is a fit).
    per_op_ms: ``float32[edges, ops]``, ``0`` for ``none`` (the reference).
    r2: coefficient of determination of the fit over all 15,625 cells.
    device: the latency column it was fitted to.
  """

  base_ms: float
  per_op_ms: np.ndarray
  r2: float
  device: str


@functools.lru_cache(maxsize=8)
def nb201_op_latency(device: str, data_path: str = "") -> OpLatency:
  """Per-edge, per-op latencies fitted to a NAS-Bench-201 device column.

  The table gives the latency of whole cells only; least squares over all
  15,625 cells on one-hot op indicators gives the lookup table an expected
  latency needs (FBNet's per-op LUT). The fit is good, not exact: ``r2`` is
  0.89 on ``pixel3``, 1.0 on ``eyeriss``.

  Args:
    device: a latency column of the table (e.g. ``pixel3``).
    data_path: the table (``""``: the copy shipped in the package).

  Returns:
    The fitted model.
  """
  from supernet.benchmarks.nb201 import cell_tokens, load_nb201
  table = load_nb201(data_path or None)
  y = table.latency_column(device)
  tokens = np.array([cell_tokens(a) for a in table.archs])
  n, edges, ops = len(tokens), len(nb201_space.EDGES), len(nb201_space.OPS)
  onehot = np.zeros((n, edges, ops))
  onehot[np.arange(n)[:, None], np.arange(edges), tokens] = 1.0
  # Column 0 of every edge ("none") is the reference level: dropping it
  # makes the design full rank next to the intercept.
  design = np.hstack([np.ones((n, 1)), onehot[:, :, 1:].reshape(n, -1)])
  coef, *_ = np.linalg.lstsq(design, y, rcond=None)
  residual = y - design @ coef
  per_op = np.zeros((edges, ops), np.float32)
  per_op[:, 1:] = coef[1:].reshape(edges, ops - 1)
  return OpLatency(float(coef[0]), per_op,
                   float(1.0 - residual.var() / y.var()), device)


def expected_latency(alphas: dict[str, jax.Array], op_latency: OpLatency
                     ) -> jax.Array:
  """Expected latency (ms) of the cell under the softmax of its alphas.

  ``E[latency] = base_ms + sum_e sum_k softmax(alpha_e)_k * per_op_ms[e, k]``
  whatever the mixing rule: it is the mean latency of the categorical
  distribution over cells the alphas define, which the derived cell (argmax
  per edge) is the mode of.

  Args:
    alphas: architecture logits with a ``"cell"`` ``(edges, ops)`` entry.
    op_latency: the per-op model (:func:`nb201_op_latency`).

  Returns:
    A scalar, differentiable in the alphas.
  """
  probs = jax.nn.softmax(alphas["cell"], axis=-1)
  return op_latency.base_ms + jnp.sum(probs * op_latency.per_op_ms)


def latency_penalty(weight: float, op_latency: OpLatency
                    ) -> optax.GradientTransformation:
  """Adds ``weight * d E[latency] / d alphas`` to the architecture gradient.

  Chained in front of the architecture optimiser, this is the gradient of
  ``L_val + weight * E[latency]``: the penalty does not depend on the
  weights, so its hypergradient is its plain gradient whichever of
  ``first``/``second``/``exact`` the step uses.

  Args:
    weight: the penalty coefficient (per ms).
    op_latency: the per-op model.

  Returns:
    An optax transformation that needs ``params`` (the alphas).
  """

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("latency_penalty needs the alphas as params")
    grad = jax.grad(expected_latency)(params, op_latency)
    return jax.tree.map(lambda u, g: u + weight * g, updates, grad), state

  return optax.GradientTransformation(init_fn, update_fn)


def penalty_op_latency(config: ml_collections.ConfigDict) -> OpLatency | None:
  """The per-op model of ``config.search.latency_penalty``, or ``None``.

  Fields: ``weight`` (0 or absent: no penalty), ``device`` (a NAS-Bench-201
  latency column), ``data_path`` (``""``: the shipped table).
  """
  section = config.search.get("latency_penalty")
  if section is None:
    return None
  weight = section.get("weight", 0.0)
  if isinstance(weight, bool) or not isinstance(weight, (int, float)) or (
      weight < 0):
    raise UserError(f"search.latency_penalty.weight must be a number >= 0, "
                    f"got {weight!r}")
  if not weight:
    return None
  if config.space.name != "nb201":
    raise UserError("search.latency_penalty needs the nb201 space (its "
                    "per-op latencies come from a NAS-Bench-201 device "
                    "column)")
  return nb201_op_latency(str(section.get("device", "")),
                          str(section.get("data_path", "") or ""))


# --------------------------------------------------------------------------
# The gradient search as a one-shot strategy of ``supernet compare``.

# Setups (data, jitted step) by config without its seed: the seeds of one
# comparison share one compilation. One entry, so memory stays bounded.
_SETUP_CACHE: dict[str, SearchSetup] = {}


def _shared_setup(config: ml_collections.ConfigDict) -> SearchSetup:
  doc = config.to_dict()
  doc.pop("seed", None)
  key = json.dumps(doc, sort_keys=True, default=str)
  if key not in _SETUP_CACHE:
    _SETUP_CACHE.clear()
    _SETUP_CACHE[key] = SearchSetup(config)
  # Seed-dependent parts (init, step keys, data order) read setup.config.
  setup = copy.copy(_SETUP_CACHE[key])
  setup.config = config
  return setup


def search_epochs(setup: SearchSetup):
  """Runs ``setup``'s search from scratch, yielding ``(epoch, state)``.

  The same steps as :func:`run_search` (same state, data order and step
  keys for the seed of ``setup.config``), without a run directory.
  """
  config = setup.config
  state = setup.init_state()
  key = setup.step_key()
  for epoch in range(config.search.epochs):
    for train_b, val_b in setup.dataset.bilevel_batches(
        epoch, config.seed, batch_size=setup.batch_size):
      state, _ = setup.step_fn(
          state, parallel.shard_batch(train_b, setup.mesh),
          parallel.shard_batch(val_b, setup.mesh), key)
    yield epoch, state


def _flat_overrides(tree: Any, prefix: str = "") -> list[tuple[str, str]]:
  """``{"model": {"channels": 8}}`` -> ``[("model.channels", "8")]``."""
  if isinstance(tree, ml_collections.ConfigDict):
    tree = tree.to_dict()
  out = []
  for k, v in dict(tree or {}).items():
    if isinstance(v, (dict, ml_collections.ConfigDict)):
      out += _flat_overrides(v, f"{prefix}{k}.")
    else:
      out.append((f"{prefix}{k}", repr(v)))
  return out


def run_oneshot(hparams: ml_collections.ConfigDict, space, key: jax.Array
                ) -> list[tuple[Arch, dict[str, float]]]:
  """The gradient search as a one-shot strategy of ``supernet compare``.

  Runs the search of ``hparams.search_config`` (``path.py[:variant]``,
  overridden by ``hparams.overrides``, a dict) seeded from ``key``, and
  returns the derived cell with the supernet's own accuracy on the
  architecture half of the training split (``val_acc``). The seeds of
  one comparison share one compiled step (the first search pays the
  compilation).

  Args:
    hparams: ``search_config``; optional ``overrides`` (nested, e.g.
      ``{"search": {"epochs": 4}}``) and ``every_epoch``
      (return the cell derived after every epoch, the search's trajectory,
      instead of the final one only; each is one evaluation).
    space: the comparison's space; the search config's space must match.
    key: PRNG key of this comparison seed.

  Returns:
    ``[(arch, {"val_acc", "epoch"[, "expected_latency_ms"]})]``: one pair,
    or one per epoch.
  """
  from supernet.config import load_config

  spec = hparams.get("search_config", "")
  if not spec:
    raise UserError("the darts strategy needs hparams.search_config")
  config = load_config(spec, _flat_overrides(hparams.get("overrides", {})))
  if config.space.name != space.name:
    raise UserError(f"darts strategy: search config space "
                    f"{config.space.name!r} differs from {space.name!r}")
  config.seed = int(jax.random.randint(key, (), 0, 2**30))
  setup = _shared_setup(config)
  every_epoch = bool(hparams.get("every_epoch", False))
  out = []
  for epoch, state in search_epochs(setup):
    if not every_epoch and epoch + 1 < config.search.epochs:
      continue
    # The comparison prefixes these with "search_" next to its own figures.
    info = {"epoch": epoch + 1,
            "val_acc": setup.evaluate(state, "train", "arch")["acc"]}
    if setup.op_latency is not None:
      info["expected_latency_ms"] = float(
          expected_latency(state.alphas, setup.op_latency))
    out.append((space.validate(derive_arch(config, state.alphas)), info))
  return out
