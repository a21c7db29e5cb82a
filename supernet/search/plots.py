"""Pictures of a differentiable search: weights over epochs, derived cells."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from supernet.search.derive import softmax_np


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")  # files only; never needs a display
  import matplotlib.pyplot as plt
  return plt


def plot_alpha_history(history: Sequence[dict[str, np.ndarray]],
                       op_names: Sequence[str], path: str,
                       edge_labels: Sequence[str] | None = None) -> None:
  """One panel per edge: the softmaxed op weights over epochs.

  Args:
    history: per epoch, ``{cell_name: (edges, ops) logits}``.
    op_names: column names.
    path: PNG file to write.
    edge_labels: titles of the edges (default ``edge i``).
  """
  plt = _pyplot()
  cells = [k for k in history[0] if not k.endswith("_beta")]
  n_edges = sum(np.asarray(history[0][c]).shape[0] for c in cells)
  cols = 7 if n_edges > 12 else min(n_edges, 6)
  rows = math.ceil(n_edges / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 1.9 * rows + 0.8),
                           squeeze=False, sharey=True)
  epochs = np.arange(1, len(history) + 1)
  k = 0
  lines = []
  for cell in cells:
    weights = np.stack([softmax_np(np.asarray(h[cell])) for h in history])
    for e in range(weights.shape[1]):
      ax = axes[k // cols][k % cols]
      lines = ax.plot(epochs, weights[:, e, :])
      label = edge_labels[k] if edge_labels else f"edge {e}"
      ax.set_title(f"{cell} {label}" if len(cells) > 1 else label, fontsize=8)
      ax.tick_params(labelsize=7)
      k += 1
  for j in range(k, rows * cols):
    axes[j // cols][j % cols].axis("off")
  fig.legend(lines, op_names, loc="lower center", ncol=min(len(op_names), 8),
             fontsize=8)
  fig.suptitle("softmaxed architecture weights per edge over epochs")
  fig.tight_layout(rect=(0, 0.06, 1, 0.97))
  fig.savefig(path, dpi=110)
  plt.close(fig)


def draw_cell(pairs: Sequence[tuple[str, int]], path: str, title: str,
              num_inputs: int = 2, input_names: Sequence[str] = ("c_{k-2}",
                                                                 "c_{k-1}")
              ) -> None:
  """Draws a derived cell as a DAG (inputs left, nodes middle, output right).

  Args:
    pairs: ``(op, input)`` pairs, two per intermediate node (DARTS), or one
      list per node for other spaces given as ``(op, input)`` with node order.
    path: PNG file.
    title: figure title.
    num_inputs: number of cell inputs.
    input_names: labels of the inputs.
  """
  plt = _pyplot()
  per_node = 2
  n_nodes = len(pairs) // per_node
  fig, ax = plt.subplots(figsize=(3 + 1.6 * n_nodes, 3.6))
  pos = {}
  for i in range(num_inputs):
    pos[i] = (0.0, 1.0 - 2.0 * i / max(num_inputs - 1, 1))
  for n in range(n_nodes):
    pos[num_inputs + n] = (1.0 + n, 0.9 - 1.8 * (n % 2))
  out_pos = (n_nodes + 1.0, 0.0)
  colours = plt.get_cmap("tab10")
  ops = sorted({op for op, _ in pairs})
  for k, (op, src) in enumerate(pairs):
    dst = num_inputs + k // per_node
    (x0, y0), (x1, y1) = pos[src], pos[dst]
    c = colours(ops.index(op) % 10)
    ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(
        arrowstyle="->", color=c, lw=1.6, connectionstyle="arc3,rad=0.15"))
    ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, op, fontsize=7, color=c,
            ha="center")
  for n in range(n_nodes):
    (x0, y0) = pos[num_inputs + n]
    ax.annotate("", out_pos, (x0, y0), arrowprops=dict(
        arrowstyle="->", color="0.7", lw=0.8, linestyle="--"))
  for node, (x, y) in pos.items():
    label = input_names[node] if node < num_inputs else str(node)
    ax.text(x, y, label, ha="center", va="center", fontsize=9, bbox=dict(
        boxstyle="round", fc="lightblue" if node < num_inputs else "wheat"))
  ax.text(*out_pos, "c_{k}", ha="center", va="center", fontsize=9,
          bbox=dict(boxstyle="round", fc="palegreen"))
  ax.set_xlim(-0.5, n_nodes + 1.5)
  ax.set_ylim(-1.4, 1.4)
  ax.axis("off")
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def draw_nb201_cell(ops: Sequence[str], path: str, title: str) -> None:
  """Draws an NB201 cell: 4 nodes, an edge per (i < j) labelled by its op."""
  from supernet.spaces.nb201 import EDGES
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 3))
  pos = {0: (0, 0), 1: (1, 0.8), 2: (2, -0.8), 3: (3, 0)}
  colours = plt.get_cmap("tab10")
  for (j, i), op in zip(EDGES, ops):
    if op == "none":
      continue
    (x0, y0), (x1, y1) = pos[i], pos[j]
    c = colours(hash(op) % 10)
    ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(
        arrowstyle="->", color=c, lw=1.6, connectionstyle="arc3,rad=0.1"))
    ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.1, op, fontsize=7, color=c,
            ha="center")
  for n, (x, y) in pos.items():
    ax.text(x, y, str(n), ha="center", va="center", bbox=dict(boxstyle="round",
                                                               fc="wheat"))
  ax.set_xlim(-0.5, 3.5)
  ax.set_ylim(-1.4, 1.4)
  ax.axis("off")
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_curves(rows: Sequence[dict], keys: Sequence[str], path: str,
                x: str = "epoch", title: str = "") -> None:
  """Line plot of metric columns (``keys``) against ``x`` from metric rows."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for k in keys:
    pts = [(float(r[x]), float(r[k])) for r in rows
           if r.get(k) not in (None, "") and r.get(x) not in (None, "")]
    if pts:
      xs, ys = zip(*pts)
      ax.plot(xs, ys, marker="o", ms=3, label=k)
  ax.set_xlabel(x)
  ax.legend()
  ax.grid(alpha=0.3)
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
