"""Mixing weights of continuous architecture parameters (the "continuous view").

Architecture parameters (alphas) are a dict of ``(edges, ops)`` logit arrays
kept apart from the network weights. Before every forward pass they become
mixing weights by one of the rules below; the network only sees weights, so
the same module serves DARTS, GDAS, PC-DARTS and FairDARTS, and a derived
architecture (a one-hot weight matrix) too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# name -> what it does; checked when a config is read.
MIXING_MODES: dict[str, str] = {
    "softmax": "DARTS: softmax over the candidate ops of each edge",
    "gumbel": "GDAS: hard Gumbel-softmax sample, straight-through gradient",
    "pc_darts": "PC-DARTS: softmax, partial channels, edge normalisation",
    "sigmoid": "FairDARTS: independent sigmoid per op",
}


def hard_gumbel_softmax(logits: jax.Array, key: jax.Array, tau: jax.Array
                        ) -> jax.Array:
  """One-hot sample per row whose gradient is that of the soft sample."""
  gumbels = jax.random.gumbel(key, logits.shape, logits.dtype)
  soft = jax.nn.softmax((logits + gumbels) / tau, axis=-1)
  hard = jax.nn.one_hot(jnp.argmax(soft, axis=-1), logits.shape[-1],
                        dtype=soft.dtype)
  return hard + soft - jax.lax.stop_gradient(soft)


def mixing_weights(alphas: dict[str, jax.Array], mode: str,
                   key: jax.Array | None = None,
                   tau: jax.Array | float = 1.0) -> dict[str, jax.Array]:
  """Turns architecture logits into the weights a supernet consumes.

  Args:
    alphas: ``{"normal": (E, K), "reduce": (E, K)}`` (DARTS) or
      ``{"cell": (E, K)}`` (NB201) logits; PC-DARTS adds ``"<cell>_beta"``
      ``(E,)`` edge-normalisation logits.
    mode: a key of :data:`MIXING_MODES`.
    key: PRNG key (``gumbel`` only).
    tau: Gumbel-softmax temperature (``gumbel`` only).

  Returns:
    A dict with the same op-weight keys (rows sum to 1 except ``sigmoid``) and,
    for PC-DARTS, raw ``"<cell>_beta"`` logits passed through (the network
    normalises them per node, since nodes have different numbers of inputs).
  """
  out = {}
  names = sorted(k for k in alphas if not k.endswith("_beta"))
  for i, name in enumerate(names):
    a = alphas[name]
    if mode in ("softmax", "pc_darts"):
      out[name] = jax.nn.softmax(a, axis=-1)
    elif mode == "gumbel":
      if key is None:
        raise ValueError("gumbel mixing needs a PRNG key")
      out[name] = hard_gumbel_softmax(a, jax.random.fold_in(key, i), tau)
    elif mode == "sigmoid":
      out[name] = jax.nn.sigmoid(a)
    else:
      raise ValueError(f"unknown mixing mode {mode!r}")
  if mode == "pc_darts":
    for name in names:
      out[name + "_beta"] = alphas[name + "_beta"]
  return out


def gumbel_temperature(step: jax.Array, total_steps: int, tau_max: float,
                       tau_min: float) -> jax.Array:
  """GDAS's linear temperature annealing from ``tau_max`` to ``tau_min``."""
  frac = jnp.clip(step / jnp.maximum(total_steps - 1, 1), 0.0, 1.0)
  return tau_max - (tau_max - tau_min) * frac
