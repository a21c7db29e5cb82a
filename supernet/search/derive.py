"""Deriving a discrete architecture from architecture parameters."""

from __future__ import annotations

import jax
import numpy as np

from supernet.spaces import darts as darts_space
from supernet.spaces import nb201 as nb201_space


def _darts_cell(weights: np.ndarray, edge_strength: np.ndarray | None
                ) -> tuple[tuple[str, int], ...]:
  """DARTS rule for one cell.

  Each intermediate node keeps its two incoming edges with the largest
  non-``none`` op weight (times the PC-DARTS edge weight when given); each kept
  edge takes its strongest non-``none`` op.
  """
  none = darts_space.PRIMITIVES.index("none")
  pairs = []
  for node in range(darts_space.NUM_NODES):
    first = darts_space.edge_index(node, 0)
    rows = weights[first:first + node + 2].copy()
    rows[:, none] = -np.inf
    if edge_strength is not None:
      rows = rows * edge_strength[first:first + node + 2, None]
    strength = rows.max(axis=1)
    # Stable order: strongest first; ties broken by the lower input index.
    kept = sorted(np.argsort(-strength, kind="stable")[:2])
    kept = sorted(kept, key=lambda j: -strength[j])
    for j in kept:
      pairs.append((darts_space.PRIMITIVES[int(np.argmax(rows[j]))], int(j)))
  return tuple(pairs)


def _edge_strength(beta: np.ndarray) -> np.ndarray:
  """PC-DARTS: softmax of the edge logits within each node's inputs."""
  out = np.zeros_like(beta)
  for node in range(darts_space.NUM_NODES):
    first = darts_space.edge_index(node, 0)
    b = beta[first:first + node + 2]
    e = np.exp(b - b.max())
    out[first:first + node + 2] = e / e.sum()
  return out


def derive_darts(alphas: dict[str, jax.Array]) -> darts_space.Genotype:
  """The DARTS genotype of architecture parameters (softmaxed per edge)."""
  cells = {}
  for cell in ("normal", "reduce"):
    a = np.asarray(alphas[cell], np.float64)
    w = np.exp(a - a.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    beta = alphas.get(cell + "_beta")
    strength = _edge_strength(np.asarray(beta)) if beta is not None else None
    cells[cell] = _darts_cell(w, strength)
  return darts_space.Genotype(cells["normal"], darts_space.CONCAT,
                              cells["reduce"], darts_space.CONCAT)


def derive_nb201(alphas: dict[str, jax.Array]) -> nb201_space.Nb201Arch:
  """NB201 rule: the argmax op of every edge."""
  a = np.asarray(alphas["cell"])
  return nb201_space.Nb201Arch(
      tuple(nb201_space.OPS[int(i)] for i in np.argmax(a, axis=1)))


def softmax_np(a: np.ndarray) -> np.ndarray:
  a = np.asarray(a, np.float64)
  e = np.exp(a - a.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)
