"""Weight-sharing training: the sandwich rule with in-place distillation.

Every step trains, on one batch, the largest network (hard labels), the
smallest (of the current progressive-shrinking phase) and ``N`` random
sub-networks; the others learn from the largest's soft predictions (stop
gradient), and all gradients are summed into one update (Yu et al.'s sandwich
rule; Once-for-All's knowledge distillation).

The step compiles once: the largest runs in the discrete view (static shapes);
the other sub-networks (resolution included) are sampled with ``jax.random``
inside the step and run side by side in the masked view under ``jax.vmap``.
Which choices may be sampled (progressive shrinking) are arrays in the state,
so changing phase does not recompile either.

The same step trains every elastic family (MobileNet, ViT): the family
(:mod:`supernet.elastic.family`) turns tokens into masks; a family without
BatchNorm has empty ``batch_stats``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from supernet.elastic.masks import DIMENSIONS, sample_tokens
from supernet.errors import UserError

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """Everything a training step reads and returns.

  Attributes:
    step: number of updates done.
    params: supernet weights.
    batch_stats: BatchNorm running statistics (from the largest network;
      empty for a family without BatchNorm).
    opt_state: optimiser state.
    token_lo: lowest token each decision may be sampled at (inclusive).
    token_hi: highest token each decision may be sampled at (inclusive).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  token_lo: jax.Array
  token_hi: jax.Array

  def to_tree(self) -> dict[str, Any]:
    """A plain dict of the fields (what checkpoints store)."""
    return {f: getattr(self, f) for f in self.__dataclass_fields__}

  @classmethod
  def from_tree(cls, tree: dict[str, Any]) -> TrainState:
    return cls(**tree)


# Weight matrices of the ViT supernet (flat parameter names).
_VIT_MATRICES = ("patch_embed", "head")
_VIT_MATRIX_SUFFIXES = ("_qkv", "_proj", "_fc1", "_fc2")


def _decay_mask(params: Any) -> Any:
  """Weight decay on convolution and dense kernels only (not BN/LayerNorm,
  biases, position embeddings, kernel transformation matrices)."""
  def decays(name: str) -> bool:
    return (name in ("kernel", "dw_kernel") or name in _VIT_MATRICES
            or name.endswith(_VIT_MATRIX_SUFFIXES))
  flat = flax.traverse_util.flatten_dict(params)
  return flax.traverse_util.unflatten_dict({k: decays(k[-1]) for k in flat})


def make_optimizer(cfg: ml_collections.ConfigDict, total_steps: int,
                   steps_per_epoch: int) -> optax.GradientTransformation:
  """The optimiser of ``config.optim``: SGD (optionally Nesterov) or Adam.

  Args:
    cfg: ``name`` (``sgd``, ``nesterov``, ``adam``, ``adamw``),
      ``learning_rate``, ``momentum``, ``weight_decay``, ``warmup_epochs``,
      ``schedule`` (``cosine`` or ``constant``), ``grad_clip`` (0: off).
    total_steps: number of training steps (for the cosine schedule).
    steps_per_epoch: steps in one epoch (for the warm-up).

  Returns:
    The optax transformation.
  """
  warmup = int(cfg.get("warmup_epochs", 0) * steps_per_epoch)
  lr = float(cfg.learning_rate)
  schedule_name = cfg.get("schedule", "cosine")
  if schedule_name == "cosine":
    schedule = optax.warmup_cosine_decay_schedule(
        0.0 if warmup else lr, lr, max(warmup, 1) if warmup else 0,
        max(total_steps, warmup + 1), end_value=0.0)
  elif schedule_name == "constant":
    schedule = optax.constant_schedule(lr)
  else:
    raise UserError(f"optim.schedule: unknown schedule {schedule_name!r}; "
                    "valid: ['constant', 'cosine']")
  name = cfg.get("name", "sgd")
  parts = []
  if cfg.get("grad_clip", 0.0):
    parts.append(optax.clip_by_global_norm(float(cfg.grad_clip)))
  wd = float(cfg.get("weight_decay", 0.0))
  if name in ("sgd", "nesterov"):
    if wd:
      parts.append(optax.add_decayed_weights(wd, mask=_decay_mask))
    parts.append(optax.sgd(schedule, momentum=float(cfg.get("momentum", 0.9)),
                           nesterov=name == "nesterov" or bool(
                               cfg.get("nesterov", False))))
  elif name in ("adam", "adamw"):
    if name == "adamw":
      parts.append(optax.adamw(schedule, weight_decay=wd, mask=_decay_mask))
    else:
      if wd:
        parts.append(optax.add_decayed_weights(wd, mask=_decay_mask))
      parts.append(optax.adam(schedule))
  else:
    raise UserError(f"optim.name: unknown optimiser {name!r}; valid: "
                    "['adam', 'adamw', 'nesterov', 'sgd']")
  return optax.chain(*parts)


def parse_phases(phases: Sequence[str],
                 dimensions: Sequence[str] = DIMENSIONS
                 ) -> list[tuple[int, tuple[str, ...]]]:
  """Parses progressive-shrinking phases ``"EPOCH:dim,dim"`` (sorted by epoch).

  ``"all"`` means every dimension; an empty list of dimensions trains the
  largest network only.

  Args:
    phases: e.g. ``("0:resolution", "4:resolution,kernel", "8:all")``.
    dimensions: the family's elastic dimensions (default: the MobileNet's).

  Returns:
    ``[(start_epoch, elastic_dimensions), ...]``; empty when ``phases`` is.
  """
  out = []
  for text in phases:
    start, sep, dims = str(text).partition(":")
    try:
      epoch = int(start)
    except ValueError:
      epoch = -1
    if not sep or epoch < 0:
      raise UserError(f"train.phases: {text!r} must read 'EPOCH:dim,dim'")
    names = tuple(d.strip() for d in dims.split(",") if d.strip())
    if names == ("all",):
      names = tuple(dimensions)
    bad = [d for d in names if d not in dimensions]
    if bad:
      raise UserError(f"train.phases: unknown dimension(s) {bad} in {text!r}; "
                      f"valid: {list(dimensions) + ['all']}")
    out.append((epoch, names))
  out.sort()
  if out and out[0][0] != 0:
    raise UserError("train.phases: the first phase must start at epoch 0")
  return out


def phase_dimensions(phases: Sequence[tuple[int, tuple[str, ...]]],
                     epoch: int, dimensions: Sequence[str] = DIMENSIONS
                     ) -> tuple[str, ...]:
  """The elastic dimensions trained at ``epoch`` (all ``dimensions``, without
  phases)."""
  dims = tuple(dimensions)
  for start, names in phases:
    if epoch >= start:
      dims = names
  return dims


def cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array,
                  smoothing: float = 0.0) -> jax.Array:
  """Mean (over real examples) softmax cross-entropy with label smoothing."""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]),
                                smoothing) if smoothing else jax.nn.one_hot(
                                    labels, logits.shape[-1])
  loss = optax.softmax_cross_entropy(logits, targets)
  return jnp.sum(loss * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def distillation_loss(logits: jax.Array, teacher_probs: jax.Array,
                      weights: jax.Array, temperature: float = 1.0
                      ) -> jax.Array:
  """Cross-entropy to the teacher's soft targets at ``temperature``.

  Scaled by ``temperature**2`` so its gradient does not shrink as the
  temperature grows (Hinton et al.).
  """
  loss = optax.softmax_cross_entropy(logits / temperature, teacher_probs)
  return (temperature ** 2) * jnp.sum(loss * weights) / jnp.maximum(
      jnp.sum(weights), 1.0)


def _accuracy(logits: jax.Array, labels: jax.Array, weights: jax.Array
              ) -> jax.Array:
  hits = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return jnp.sum(hits * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def make_train_step(model: Any, tx: optax.GradientTransformation,
                    cfg: ml_collections.ConfigDict
                    ) -> Callable[[TrainState, Batch, jax.Array],
                                  tuple[TrainState, Metrics]]:
  """The (un-jitted) sandwich-rule training step.

  Args:
    model: the elastic supernet (any family).
    tx: its optimiser.
    cfg: ``config.train`` with ``num_random_subnets`` (N), ``sandwich`` (also
      train the smallest), ``distill_alpha`` (weight of the soft-target loss
      for sub-networks; 1 is pure in-place distillation), ``distill_temperature``
      and ``label_smoothing``.

  Returns:
    ``train_step(state, batch, key) -> (state, metrics)``; ``key`` is folded
    with ``state.step``, so one key serves the whole run.
  """
  from supernet.elastic.family import family_of
  space = model.space
  masks_from_tokens = family_of(model).masks_from_tokens
  largest = space.largest()
  num_random = int(cfg.get("num_random_subnets", 2))
  sandwich = bool(cfg.get("sandwich", True))
  alpha = float(cfg.get("distill_alpha", 1.0))
  temperature = float(cfg.get("distill_temperature", 1.0))
  smoothing = float(cfg.get("label_smoothing", 0.0))

  def train_step(state: TrainState, batch: Batch, key: jax.Array
                 ) -> tuple[TrainState, Metrics]:
    key = jax.random.fold_in(key, state.step)
    images, labels = batch["image"], batch["label"]
    weights = batch.get("mask", jnp.ones(labels.shape, jnp.float32))

    def teacher_loss(params):
      logits, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, images,
          largest, train=True, mutable=["batch_stats"])
      loss = cross_entropy(logits, labels, weights, smoothing)
      # A family without BatchNorm updates nothing (its batch_stats is {}).
      return loss, (logits, updates.get("batch_stats", state.batch_stats))

    (t_loss, (t_logits, batch_stats)), grads = jax.value_and_grad(
        teacher_loss, has_aux=True)(state.params)
    soft = jax.nn.softmax(jax.lax.stop_gradient(t_logits) / temperature)

    def subnet_loss(params, tokens):
      """Summed loss of sub-networks run side by side (vmap, masked view)."""
      masks = jax.vmap(lambda t: masks_from_tokens(space, t))(tokens)
      variables = {"params": params, "batch_stats": state.batch_stats}
      logits = jax.vmap(
          lambda m: model.apply(variables, images, m, train=True))(masks)
      losses = jax.vmap(lambda z: (
          (1.0 - alpha) * cross_entropy(z, labels, weights, smoothing)
          + alpha * distillation_loss(z, soft, weights, temperature)))(logits)
      accs = jax.vmap(lambda z: _accuracy(z, labels, weights))(logits)
      return jnp.sum(losses), (losses, accs)

    metrics = {"loss_largest": t_loss,
               "acc_largest": _accuracy(t_logits, labels, weights)}
    tokens = sample_tokens(key, state.token_lo, state.token_hi, num_random)
    if sandwich:
      tokens = jnp.concatenate([state.token_lo[None], tokens])
    if tokens.shape[0]:
      (_, (losses, accs)), g = jax.value_and_grad(subnet_loss, has_aux=True)(
          state.params, tokens)
      grads = jax.tree.map(jnp.add, grads, g)
      metrics.update(loss_subnets=jnp.mean(losses), acc_subnets=jnp.mean(accs))
      if sandwich:
        metrics.update(loss_smallest=losses[0], acc_smallest=accs[0])
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=batch_stats, opt_state=opt_state)
    return new_state, metrics

  return train_step


def create_train_state(model: Any, key: jax.Array,
                       image_shape: tuple[int, int, int],
                       tx: optax.GradientTransformation,
                       bounds: tuple[Any, Any]) -> TrainState:
  """A fresh state: initial weights of the largest network, optimiser state.

  Args:
    model: the elastic supernet (any family).
    key: PRNG key for the weights.
    image_shape: ``(H, W, C)`` of the training images.
    tx: the optimiser.
    bounds: ``(token_lo, token_hi)`` sampling bounds (the family's
      ``token_bounds``, e.g. :func:`~supernet.elastic.masks.token_bounds`).

  Returns:
    The state at step 0.
  """
  from supernet.elastic.mbv import init_supernet
  variables = init_supernet(model, key, image_shape)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx.init(params),
                    token_lo=jnp.asarray(bounds[0], jnp.int32),
                    token_hi=jnp.asarray(bounds[1], jnp.int32))
