"""An accuracy predictor: a small MLP on ``space.one_hot(arch)``.

Trained with optax on the architectures evaluated so far, it ranks candidates
before they are evaluated (regularised evolution uses it to pre-screen
mutants). Like a strategy it is a NamedTuple of pure functions over explicit
parameters, so the parameters live in the strategy state and are saved with it.

Training is one jitted full-batch loop. The data are padded to the next power
of two (with zero weights), so a growing history compiles only a handful of
shapes, all shared across searches with the same hyper-parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from supernet.errors import UserError

Params = Any


class AccuracyPredictor(NamedTuple):
  """Pure functions of an accuracy predictor.

  Attributes:
    init: ``(key, num_features) -> params``.
    fit: ``(params, features[n, d], accuracy[n]) -> params``, training from
      ``params`` on the given data.
    predict: ``(params, features[m, d]) -> predicted accuracy[m]`` (NumPy).
  """

  init: Callable[[jax.Array, int], Params]
  fit: Callable[[Params, np.ndarray, np.ndarray], Params]
  predict: Callable[[Params, np.ndarray], np.ndarray]


class _Mlp(nn.Module):
  hidden_sizes: tuple[int, ...]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for width in self.hidden_sizes:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(1)(x)[..., 0]


@functools.lru_cache(maxsize=16)
def _fit_fn(hidden_sizes: tuple[int, ...], learning_rate: float, steps: int,
            weight_decay: float):
  """The jitted training loop for one set of hyper-parameters (cached)."""
  model = _Mlp(hidden_sizes)
  optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)

  def loss_fn(net, x, y, w):
    err = model.apply(net, x) - y
    return jnp.sum(w * err * err) / jnp.maximum(jnp.sum(w), 1.0)

  @jax.jit
  def fit(net, x, y, w):
    def step(_, carry):
      net, opt_state = carry
      grads = jax.grad(loss_fn)(net, x, y, w)
      updates, opt_state = optimizer.update(grads, opt_state, net)
      return optax.apply_updates(net, updates), opt_state
    # A fresh optimiser state per fit: each fit is a short, complete training.
    net, _ = jax.lax.fori_loop(0, steps, step, (net, optimizer.init(net)))
    return net

  return model, fit, jax.jit(model.apply)


def _capacity(n: int) -> int:
  return max(16, 1 << (n - 1).bit_length())


def mlp_predictor(hidden_sizes: Sequence[int] = (64, 64),
                  learning_rate: float = 1e-2, steps: int = 300,
                  weight_decay: float = 1e-4) -> AccuracyPredictor:
  """A small MLP accuracy predictor on one-hot token features.

  Args:
    hidden_sizes: widths of the hidden layers.
    learning_rate: AdamW learning rate.
    steps: full-batch training steps per fit.
    weight_decay: AdamW weight decay.

  Returns:
    The predictor. Targets are standardised with the statistics of the data
    of the last fit, kept in the parameters.
  """
  hidden_sizes = tuple(int(h) for h in hidden_sizes)
  if not hidden_sizes or min(hidden_sizes) < 1 or steps < 1 or (
      learning_rate <= 0):
    raise UserError("predictor needs hidden_sizes >= 1, steps >= 1 and a "
                    "positive learning_rate")
  model, fit_jit, apply_jit = _fit_fn(hidden_sizes, float(learning_rate),
                                      int(steps), float(weight_decay))

  def init(key: jax.Array, num_features: int) -> Params:
    net = model.init(key, jnp.zeros((1, num_features), jnp.float32))
    return {"net": net, "mean": np.float32(0.0), "std": np.float32(1.0)}

  def fit(params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float64)
    n = len(y)
    if n == 0:
      return params
    mean, std = float(y.mean()), float(y.std()) or 1.0
    cap = _capacity(n)
    xp = np.zeros((cap, x.shape[1]), np.float32)
    xp[:n] = x
    yp = np.zeros(cap, np.float32)
    yp[:n] = (y - mean) / std
    w = np.zeros(cap, np.float32)
    w[:n] = 1.0
    net = fit_jit(params["net"], xp, yp, w)
    return {"net": net, "mean": np.float32(mean), "std": np.float32(std)}

  def predict(params: Params, x: np.ndarray) -> np.ndarray:
    out = apply_jit(params["net"], np.asarray(x, np.float32))
    return np.asarray(out) * float(params["std"]) + float(params["mean"])

  return AccuracyPredictor(init, fit, predict)
