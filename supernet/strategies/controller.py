"""An LSTM controller that writes an architecture token by token (ENAS style).

At step ``i`` the LSTM reads the embedding of the previous token (a learned
start vector first) and a per-token head gives logits over the
``cardinalities[i]`` choices (heads are stacked to the largest cardinality and
masked). Logits are squashed as ``c * tanh(z / T)``, the ENAS trick that keeps
the policy from collapsing after a few lucky rewards.

Built for a cheap search loop on CPU:

* the token loop is one ``nn.scan`` (compiled once, not unrolled), so compiling
  the sampler and the update takes a fraction of the unrolled graph's time;
* sampling is Gumbel-max with noise drawn on the host from the ask key (no
  PRNG inside the jitted code);
* parameters are initialised on the host, uniformly in ``[-0.1, 0.1]`` as in
  ENAS, from the structure ``jax.eval_shape`` gives;
* the jitted functions are built once per configuration and cached at module
  level, so every search (every seed of a comparison) shares one compilation;
  updates take a fixed batch (shorter ones are padded with zero weights).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = Any
INIT_RANGE = 0.1


class _Step(nn.Module):
  """One token: LSTM step, masked head, choice, embedding of the choice."""

  cardinalities: tuple[int, ...]
  hidden_size: int
  tanh_constant: float
  temperature: float

  @nn.compact
  def __call__(self, carry, position, noise, forced):
    # ``noise`` is Gumbel noise when sampling, None when scoring ``forced``.
    lstm, x = carry
    cards = jnp.asarray(self.cardinalities)
    width = max(self.cardinalities)
    lstm, h = nn.OptimizedLSTMCell(self.hidden_size, name="cell")(lstm, x)
    kernel = self.param("head_kernel", nn.initializers.zeros,
                        (len(self.cardinalities), self.hidden_size, width))
    bias = self.param("head_bias", nn.initializers.zeros,
                      (len(self.cardinalities), width))
    logits = h @ kernel[position] + bias[position]
    if self.tanh_constant:
      logits = self.tanh_constant * jnp.tanh(logits / self.temperature)
    logits = jnp.where(jnp.arange(width) < cards[position], logits, -1e9)
    logp = jax.nn.log_softmax(logits)
    token = (forced if noise is None
             else jnp.argmax(logits + noise, axis=-1).astype(jnp.int32))
    # One-hot products instead of gathers: their gradients are dense
    # products, which XLA compiles much faster on CPU than scatters.
    chosen = jnp.sum(jax.nn.one_hot(token, width) * logp, axis=-1)
    entropy = -jnp.sum(jnp.where(logits > -1e8, jnp.exp(logp) * logp, 0.0),
                       axis=-1)
    offsets = jnp.cumsum(jnp.asarray((0,) + self.cardinalities[:-1]))
    embedding = self.param("embedding", nn.initializers.zeros,
                           (sum(self.cardinalities), self.hidden_size))
    x = jax.nn.one_hot(offsets[position] + token,
                       embedding.shape[0]) @ embedding
    return (lstm, x), (token, chosen, entropy)


class LstmController(nn.Module):
  """Autoregressive policy over a sequence of categorical tokens.

  Attributes:
    cardinalities: choices of each token.
    hidden_size: LSTM width.
    tanh_constant: ``c`` of the logit squashing (0 disables it).
    temperature: ``T`` of the logit squashing.
  """

  cardinalities: tuple[int, ...]
  hidden_size: int = 32
  tanh_constant: float = 2.5
  temperature: float = 5.0

  @nn.compact
  def __call__(self, tokens: jax.Array | None = None,
               noise: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Scores ``tokens`` (``int[B, L]``) or samples with Gumbel ``noise``.

    Args:
      tokens: sequences to score (teacher forcing); ``None`` to sample.
      noise: ``float[B, L, max_cardinality]`` Gumbel noise when sampling.

    Returns:
      ``(tokens[B, L], log_prob[B], entropy[B])``.
    """
    length = len(self.cardinalities)
    batch = (tokens if tokens is not None else noise).shape[0]
    start = self.param("start", nn.initializers.zeros, (self.hidden_size,))
    zeros = jnp.zeros((batch, self.hidden_size))
    carry = ((zeros, zeros), jnp.broadcast_to(start, (batch, self.hidden_size)))
    steps = nn.scan(_Step, variable_broadcast="params",
                    split_rngs={"params": False}, in_axes=(0, 1, 1),
                    out_axes=1, length=length)(
                        self.cardinalities, self.hidden_size,
                        self.tanh_constant, self.temperature, name="steps")
    if tokens is None:
      tokens = jnp.zeros((batch, length), jnp.int32)
    else:
      noise = None
    _, (out, log_prob, entropy) = steps(carry, jnp.arange(length), noise,
                                        tokens)
    return out, log_prob.sum(axis=1), entropy.sum(axis=1)


class ControllerFns(NamedTuple):
  """The functions of one controller configuration.

  Attributes:
    init: ``(rng, learning_rate) -> (params, opt_state)``; parameters are
      drawn from the NumPy generator ``rng``.
    sample: ``(params, rng, n) -> int32[n, L]``; the Gumbel noise is drawn
      from ``rng`` (one compilation per distinct ``n``).
    update: ``(params, opt_state, tokens[B, L], weights[B], advantages[B],
      entropy_weight) -> (params, opt_state)``, one jitted REINFORCE step.
    jitted: the jitted functions, to check they compile once.
  """

  init: Callable[[np.random.Generator, float], tuple[Params, Any]]
  sample: Callable[[Params, np.random.Generator, int], np.ndarray]
  update: Callable[..., tuple[Params, Any]]
  jitted: tuple[Any, ...]


@functools.lru_cache(maxsize=32)
def controller_fns(cardinalities: tuple[int, ...], hidden_size: int,
                   tanh_constant: float, temperature: float) -> ControllerFns:
  """Builds (once per configuration) the controller functions.

  The learning rate (in the optimiser state, via ``optax.inject_hyperparams``)
  and the entropy weight are traced values, so searches that differ only in
  them share one compilation.

  Args:
    cardinalities: choices of each token.
    hidden_size: LSTM width.
    tanh_constant: logit squashing constant (0 disables it).
    temperature: logit squashing temperature.

  Returns:
    The controller's ``init``, ``sample`` and ``update``.
  """
  model = LstmController(cardinalities, hidden_size, tanh_constant,
                         temperature)
  optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=0.0)
  length, width = len(cardinalities), max(cardinalities)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, length), jnp.int32))

  @jax.jit
  def opt_init(params, learning_rate):
    state = optimizer.init(params)
    state.hyperparams["learning_rate"] = jnp.asarray(learning_rate,
                                                     jnp.float32)
    return state

  def init(rng: np.random.Generator, learning_rate: float):
    params = jax.tree_util.tree_map(
        lambda s: jnp.asarray(rng.uniform(-INIT_RANGE, INIT_RANGE, s.shape),
                              s.dtype), shapes)
    return params, opt_init(params, np.float32(learning_rate))

  @jax.jit
  def sample_jit(params, noise):
    return model.apply(params, noise=noise)[0]

  def sample(params, rng: np.random.Generator, n: int) -> np.ndarray:
    noise = rng.gumbel(size=(n, length, width)).astype(np.float32)
    return np.asarray(sample_jit(params, noise))

  def loss_fn(params, tokens, weights, advantages, entropy_weight):
    _, log_prob, entropy = model.apply(params, tokens)
    objective = advantages * log_prob + entropy_weight * entropy
    return -jnp.sum(weights * objective) / jnp.maximum(jnp.sum(weights), 1.0)

  @jax.jit
  def update(params, opt_state, tokens, weights, advantages, entropy_weight):
    grads = jax.grad(loss_fn)(params, tokens, weights, advantages,
                              entropy_weight)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  return ControllerFns(init, sample, update, (sample_jit, update, opt_init))
