"""Bilevel architecture search as one pure, jitted step.

``search_step(state, train_batch, val_batch, key) -> (state, metrics)``:

1. architecture step: the hypergradient of the validation loss with respect
   to the architecture parameters, by one of
     * ``first``  -- first order: d L_val(w, a) / da;
     * ``second`` -- DARTS second order: the unrolled weights
       ``w' = w - xi * dL_train/dw`` (one real optimiser step) and the
       finite-difference Hessian-vector product with eps = 0.01 / ||v||
       (configurable: on small, very non-smooth networks a ReLU kink within
       eps makes the difference quotient inaccurate);
     * ``exact``  -- autodiff through the unrolled optimiser step:
       d L_val(w'(a), a) / da, the quantity ``second`` approximates
       (forward-over-reverse, see ``exact_hypergrad``);
   then an optax update of the architecture parameters;
2. weight step: d L_train(w, a_new) / dw and an optax update of the weights.

Weights and architecture parameters are separate pytrees with separate optax
optimisers: their updates use different data at different times of the step
(DARTS order), so one ``multi_transform`` over a joint tree would either
change the algorithm or feed zero gradients into the momenta.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from supernet.errors import UserError
from supernet.models.init import fast_init
from supernet.models.mixed import gumbel_temperature, mixing_weights

HYPERGRADIENTS = ("first", "second", "exact")
Batch = dict[str, jax.Array]


@flax.struct.dataclass
class SearchState:
  """Everything a search step reads and writes (a pytree)."""

  step: jax.Array
  params: Any
  batch_stats: Any
  alphas: dict[str, jax.Array]
  weight_opt_state: optax.OptState
  arch_opt_state: optax.OptState


def cross_entropy(logits: jax.Array, batch: Batch) -> tuple[jax.Array,
                                                            jax.Array]:
  """Masked mean cross-entropy and accuracy (mask marks real examples)."""
  mask = batch.get("mask")
  if mask is None:
    mask = jnp.ones(logits.shape[:1], logits.dtype)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           batch["label"])
  denom = jnp.maximum(mask.sum(), 1.0)
  correct = (jnp.argmax(logits, -1) == batch["label"]).astype(logits.dtype)
  return (losses * mask).sum() / denom, (correct * mask).sum() / denom


def weight_optimizer(lr: float, lr_min: float, momentum: float,
                     weight_decay: float, grad_clip: float, total_steps: int
                     ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """DARTS weights: clip, L2 weight decay, SGD momentum on a cosine schedule.

  Returns:
    ``(optimizer, schedule)``; the schedule maps a step to the learning rate
    (the ``xi`` of the second-order hypergradient).
  """
  schedule = optax.cosine_decay_schedule(lr, max(total_steps, 1),
                                         alpha=lr_min / lr if lr else 0.0)
  parts = []
  if grad_clip > 0:
    parts.append(optax.clip_by_global_norm(grad_clip))
  parts += [optax.add_decayed_weights(weight_decay),
            optax.sgd(schedule, momentum=momentum or None)]
  return optax.chain(*parts), schedule


def arch_optimizer(lr: float, b1: float, b2: float, weight_decay: float
                   ) -> optax.GradientTransformation:
  """DARTS architecture parameters: Adam with (coupled, torch-style) L2."""
  return optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.adam(lr, b1=b1, b2=b2))


def make_search_step(model: nn.Module, *, hypergradient: str, mixing: str,
                     weight_tx: optax.GradientTransformation,
                     arch_tx: optax.GradientTransformation,
                     weight_lr: Callable[[jax.Array], jax.Array],
                     total_steps: int, tau_max: float = 10.0,
                     tau_min: float = 0.1, arch_start_step: int = 0,
                     fd_epsilon: float = 0.01, jit: bool = True) -> Callable:
  """Builds ``search_step(state, train_batch, val_batch, key)``.

  Args:
    model: the supernet, called as ``model.apply(vars, x, weights, train)``.
    hypergradient: ``first``, ``second`` or ``exact``.
    mixing: a mixing mode of :mod:`supernet.models.mixed`.
    weight_tx: optimiser of the weights (the unrolled inner step uses it).
    arch_tx: optimiser of the architecture parameters.
    weight_lr: ``step -> learning rate`` of the weights (xi of ``second``).
    total_steps: number of search steps (Gumbel temperature annealing).
    tau_max: initial Gumbel temperature.
    tau_min: final Gumbel temperature.
    fd_epsilon: ``second`` perturbs the weights by ``fd_epsilon / ||v||``
      along v (0.01 in DARTS).
    arch_start_step: architecture parameters stay fixed before this step
      (weight warm-up, as PC-DARTS does); a traced condition, no recompile.
    jit: return the jitted step (tests can use the plain function).

  Returns:
    The step function; it is pure and compiles once.
  """
  if hypergradient not in HYPERGRADIENTS:
    raise UserError(f"unknown hypergradient mode {hypergradient!r}; valid: "
                    f"{list(HYPERGRADIENTS)}")

  def loss_fn(params, alphas, batch_stats, batch, key, tau):
    weights = mixing_weights(alphas, mixing, key, tau)
    logits, updates = model.apply(
        {"params": params, "batch_stats": batch_stats}, batch["image"],
        weights, train=True, mutable=["batch_stats"])
    loss, acc = cross_entropy(logits, batch)
    return loss, (updates["batch_stats"], acc)

  # Traced once, however many gradients of it a mode takes: the step is
  # otherwise retraced per gradient (each a full pass over the supernet's
  # Python). Inlined by XLA, so the compiled step is the same. Measured on
  # the DARTS CIFAR-10 search step (2 CPU cores): lowering first 16 -> 15 s,
  # second 48 -> 25 s, exact 65 -> 31 s.
  loss_fn = jax.jit(loss_fn)
  grad_w = jax.grad(loss_fn, argnums=0, has_aux=True)
  grad_a = jax.grad(loss_fn, argnums=1, has_aux=True)
  grad_wa = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
  grad_a_value = jax.value_and_grad(loss_fn, argnums=1, has_aux=True)
  grad_w_value = jax.value_and_grad(loss_fn, argnums=0, has_aux=True)

  def unrolled(params, alphas, state, train_batch, key, tau):
    """One real optimiser step of the weights on the training batch."""
    g, _ = grad_w(params, alphas, state.batch_stats, train_batch, key, tau)
    updates, _ = weight_tx.update(g, state.weight_opt_state, params)
    return optax.apply_updates(params, updates)

  def exact_hypergrad(state, train_batch, val_batch, k_train, k_val, tau):
    """``d L_val(w'(a), a) / da`` with ``w' = w + U(dL_train(w, a) / dw)``.

    The chain rule through the unrolled step, evaluated forward-over-reverse:
    ``dL_val/da = dL_val/da|_w' + (d g_w / da)^T U'^T dL_val/dw'`` where
    ``g_w = dL_train/dw``; the transposed mixed second derivative applied to
    ``u = U'^T dL_val/dw'`` equals ``d/dw (dL_train/da) . u`` (mixed partials
    commute), a Jacobian-vector product of the architecture gradient.

    Measured on 2 CPU cores for one scanned DARTS cell (batch 16, 32x32,
    C=16), in units of its weight gradient: ``jax.jvp`` of the gradient 2.4,
    ``jax.linearize`` (to share the training pass with ``g_w``) 6 -- it
    stores every residual of the backward pass -- and reverse-over-reverse
    (``jax.grad`` of the unrolled validation loss) 14.

    The JVP's primal pass recomputes ``g_w`` (minus its weight-gradient
    parts, which XLA removes as dead code): ``u`` depends on ``g_w``, so the
    JVP cannot run before it, and the measured ways of sharing the pass
    (``linearize``, reverse-over-reverse) cost more than the recomputation
    (on that cell: gradient 413 ms, JVP 848 ms, JVP also returning ``g_w``
    952 ms). On the full CIFAR-10 search network at batch 16: weight
    gradient 1.48 s, architecture gradient 1.05 s, this JVP 3.45 s (about
    three architecture gradients, the least forward-over-reverse can do);
    through ``jax.linearize`` the whole hypergradient took 12.9 s and 11.6 GB
    of temporaries against 6.7 s.
    """
    bs = state.batch_stats

    def train_arch_grad(params):
      # The weight gradient is taken too (and dropped): the CPU ops are
      # custom_vjp functions, which forward mode can only cross inside a
      # reverse pass over the same inputs (grad_a alone raises in jax.jvp).
      _, (_, grads) = grad_wa(params, state.alphas, bs, train_batch, k_train,
                              tau)
      return grads

    g_w, _ = grad_w(state.params, state.alphas, bs, train_batch, k_train,
                    tau)

    def step_from_grad(g):
      updates, _ = weight_tx.update(g, state.weight_opt_state, state.params)
      return optax.apply_updates(state.params, updates)

    w1, step_vjp = jax.vjp(step_from_grad, g_w)
    (loss, (_, acc)), (dw1, da) = grad_wa(w1, state.alphas, bs, val_batch,
                                          k_val, tau)
    (u,) = step_vjp(dw1)
    _, indirect = jax.jvp(train_arch_grad, (state.params,), (u,))
    return jax.tree.map(jnp.add, da, indirect), loss, acc

  def hypergrad(state, train_batch, val_batch, key, tau):
    k_train, k_val = jax.random.split(key)
    bs = state.batch_stats
    if hypergradient == "first":
      (loss, (_, acc)), g = grad_a_value(state.params, state.alphas, bs,
                                         val_batch, k_val, tau)
      return g, loss, acc
    if hypergradient == "exact":
      return exact_hypergrad(state, train_batch, val_batch, k_train, k_val,
                             tau)
    # second: DARTS finite-difference Hessian-vector product.
    w1 = unrolled(state.params, state.alphas, state, train_batch, k_train, tau)
    (loss, (_, acc)), (dw, da) = grad_wa(w1, state.alphas, bs, val_batch,
                                         k_val, tau)
    eps = fd_epsilon / (optax.global_norm(dw) + 1e-12)
    w_plus = jax.tree.map(lambda w, v: w + eps * v, state.params, dw)
    w_minus = jax.tree.map(lambda w, v: w - eps * v, state.params, dw)
    g_plus, _ = grad_a(w_plus, state.alphas, bs, train_batch, k_train, tau)
    g_minus, _ = grad_a(w_minus, state.alphas, bs, train_batch, k_train, tau)
    xi = weight_lr(state.step)
    g = jax.tree.map(lambda d, p, m: d - xi * (p - m) / (2 * eps), da, g_plus,
                     g_minus)
    return g, loss, acc

  def search_step(state: SearchState, train_batch: Batch, val_batch: Batch,
                  key: jax.Array) -> tuple[SearchState, dict[str, jax.Array]]:
    key = jax.random.fold_in(key, state.step)
    k_arch, k_weight = jax.random.split(key)
    tau = gumbel_temperature(state.step, total_steps, tau_max, tau_min)
    # 1. architecture step on the validation batch.
    g_alpha, val_loss, val_acc = hypergrad(state, train_batch, val_batch,
                                           k_arch, tau)
    a_updates, arch_opt_state = arch_tx.update(g_alpha, state.arch_opt_state,
                                               state.alphas)
    alphas = optax.apply_updates(state.alphas, a_updates)
    if arch_start_step > 0:
      active = state.step >= arch_start_step
      keep = lambda new, old: jax.tree.map(  # noqa: E731
          lambda n, o: jnp.where(active, n, o), new, old)
      alphas = keep(alphas, state.alphas)
      arch_opt_state = keep(arch_opt_state, state.arch_opt_state)
    # 2. weight step on the training batch, under the new alphas.
    (loss, (batch_stats, acc)), g_w = grad_w_value(
        state.params, alphas, state.batch_stats, train_batch, k_weight, tau)
    w_updates, weight_opt_state = weight_tx.update(
        g_w, state.weight_opt_state, state.params)
    params = optax.apply_updates(state.params, w_updates)
    new_state = SearchState(state.step + 1, params, batch_stats, alphas,
                            weight_opt_state, arch_opt_state)
    metrics = {"train_loss": loss, "train_acc": acc, "val_loss": val_loss,
               "val_acc": val_acc, "lr": weight_lr(state.step), "tau": tau,
               "hypergrad_norm": optax.global_norm(g_alpha)}
    return new_state, metrics

  search_step.hypergrad = hypergrad  # exposed for tests
  search_step.loss_fn = loss_fn
  return jax.jit(search_step) if jit else search_step


def init_search_state(model: nn.Module, alphas: dict[str, jax.Array],
                      sample_input: jax.Array, key: jax.Array, mixing: str,
                      weight_tx: optax.GradientTransformation,
                      arch_tx: optax.GradientTransformation) -> SearchState:
  """Initialises weights, batch statistics and both optimiser states."""
  weights = mixing_weights(alphas, mixing, jax.random.key(0), 1.0)
  # jit(model.init) of a DARTS supernet takes minutes to compile on XLA:CPU.
  variables = fast_init(model, key, sample_input, weights, train=False)
  params = variables["params"]
  return SearchState(step=jnp.zeros((), jnp.int32), params=params,
                     batch_stats=variables.get("batch_stats", {}),
                     alphas=alphas, weight_opt_state=weight_tx.init(params),
                     arch_opt_state=arch_tx.init(alphas))
