"""The jitted training and evaluation steps (pure functions of their inputs).

``train_step(state, batch, key) -> (state, metrics)``: one SGD step on the
cross-entropy (with optional label smoothing) plus ``aux_weight`` times the
auxiliary head's loss. The step derives everything that changes over time
from ``state.step`` inside the compiled function -- the dropout key
(``fold_in(key, step)``) and the drop-path probability (linear in the epoch,
as DARTS) -- so one compilation serves the whole run and a resumed run
replays the same computation.

Data parallelism comes from the input shardings alone: the batch is split
over the ``data`` mesh axis, the state is replicated, and XLA inserts the
gradient all-reduce (and global BatchNorm statistics).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from supernet.train.state import TrainState

Batch = dict[str, jax.Array]


def classification_loss(logits: jax.Array, labels: jax.Array,
                        mask: jax.Array | None = None,
                        label_smoothing: float = 0.0
                        ) -> tuple[jax.Array, jax.Array]:
  """Masked mean cross-entropy and accuracy.

  Args:
    logits: ``(N, K)``.
    labels: ``(N,)`` integer labels.
    mask: ``(N,)``, 1 for real examples, 0 for padding (default all ones).
    label_smoothing: mixes ``label_smoothing / K`` uniform mass into the
      one-hot targets.

  Returns:
    ``(loss, accuracy)`` averaged over the real examples.
  """
  if mask is None:
    mask = jnp.ones(logits.shape[:1], logits.dtype)
  num_classes = logits.shape[-1]
  targets = jax.nn.one_hot(labels, num_classes, dtype=logits.dtype)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  losses = optax.softmax_cross_entropy(logits, targets)
  denom = jnp.maximum(mask.sum(), 1.0)
  correct = (jnp.argmax(logits, -1) == labels).astype(logits.dtype)
  return (losses * mask).sum() / denom, (correct * mask).sum() / denom


def make_train_step(module: nn.Module, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, *, steps_per_epoch: int,
                    epochs: int, aux_weight: float = 0.0,
                    label_smoothing: float = 0.0,
                    drop_path_prob: float = 0.0, jit: bool = True
                    ) -> Callable[[TrainState, Batch, jax.Array],
                                  tuple[TrainState, dict[str, jax.Array]]]:
  """Builds ``train_step(state, batch, key) -> (state, metrics)``.

  Args:
    module: the network (``module.apply(v, x, train=True, ...)``); DARTS
      networks with an auxiliary head return ``(logits, aux_logits)``.
    tx: the weight optimiser.
    schedule: its learning-rate schedule (logged as ``lr``).
    steps_per_epoch: steps per epoch (the drop-path schedule is per epoch).
    epochs: epochs of the run.
    aux_weight: weight of the auxiliary loss (ignored without that head).
    label_smoothing: of the training loss.
    drop_path_prob: final drop-path probability; epoch ``e`` uses
      ``drop_path_prob * e / epochs``. 0 leaves the argument out (networks
      without drop-path do not take it).
    jit: return the jitted step (donating the old state).

  Returns:
    The step. ``metrics`` holds ``train_loss`` (without the auxiliary
    term), ``train_acc``, ``total_loss``, ``grad_norm``, ``lr`` and
    ``drop_path_prob``; all are scalars of this step.
  """

  def train_step(state: TrainState, batch: Batch, key: jax.Array):
    step_key = jax.random.fold_in(key, state.step)
    epoch = (state.step // steps_per_epoch).astype(jnp.float32)
    dp = jnp.float32(drop_path_prob) * epoch / epochs
    extra = {"drop_path_prob": dp} if drop_path_prob > 0 else {}
    mutable = ["batch_stats"] if state.batch_stats else []

    def loss_fn(params):
      variables = {"params": params}
      if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
      out, updated = module.apply(
          variables, batch["image"], train=True, rngs={"dropout": step_key},
          mutable=mutable, **extra)
      logits, aux = out if isinstance(out, tuple) else (out, None)
      loss, acc = classification_loss(logits, batch["label"], batch["mask"],
                                      label_smoothing)
      total = loss
      if aux is not None and aux_weight:
        aux_loss, _ = classification_loss(aux, batch["label"], batch["mask"],
                                          label_smoothing)
        total = total + aux_weight * aux_loss
      return total, (loss, acc, updated.get("batch_stats", {}))

    (total, (loss, acc, batch_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"train_loss": loss, "train_acc": acc, "total_loss": total,
               "grad_norm": optax.global_norm(grads),
               "lr": jnp.asarray(schedule(state.step), jnp.float32),
               "drop_path_prob": dp}
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=batch_stats, opt_state=opt_state)
    return new_state, metrics

  return jax.jit(train_step, donate_argnums=0) if jit else train_step


def make_eval_step(module: nn.Module, jit: bool = True
                   ) -> Callable[[dict, Batch], dict[str, jax.Array]]:
  """Builds ``eval_step(variables, batch) -> sums`` in inference mode.

  Args:
    module: the network (``module.apply(v, x, train=False)`` -> logits).
    jit: return the jitted step.

  Returns:
    The step; its result holds the *sums* ``loss``, ``correct`` and
    ``count`` over the batch's real examples (``mask == 1``), to be added
    over batches.
  """

  def eval_step(variables, batch: Batch):
    logits = module.apply(variables, batch["image"], train=False)
    if isinstance(logits, tuple):
      logits = logits[0]
    n = batch["mask"].sum()
    loss, acc = classification_loss(logits, batch["label"], batch["mask"])
    return {"loss": loss * n, "correct": acc * n, "count": n}

  return jax.jit(eval_step) if jit else eval_step
