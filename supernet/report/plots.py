"""Plots of search results (PNG), drawn without pyplot's global state.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, so
nothing here changes the process-wide backend and plotting works headless.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: str | os.PathLike) -> None:
  FigureCanvasAgg(fig)
  fig.tight_layout()
  fig.savefig(os.fspath(path), dpi=120)


def best_so_far(accuracy: Sequence[float]) -> np.ndarray:
  """Running maximum of a sequence of accuracies."""
  return np.maximum.accumulate(np.asarray(accuracy, np.float64))


def plot_best_so_far(curves: Mapping[str, np.ndarray], path: str | os.PathLike,
                     title: str, optimum: float | None = None,
                     ylabel: str = "best accuracy so far (%)") -> None:
  """Mean ± std of best-so-far curves over seeds, one line per strategy.

  Args:
    curves: label -> ``float[num_seeds, num_evaluations]`` best-so-far
      accuracies (shorter runs padded with NaN).
    path: PNG file to write.
    title: figure title.
    optimum: a reference level drawn as a dashed line (e.g. the table's best).
    ylabel: y-axis label.
  """
  fig = Figure(figsize=(7, 4.5))
  ax = fig.add_subplot()
  lows = []
  for label, curve in curves.items():
    curve = np.atleast_2d(np.asarray(curve, np.float64))
    steps = np.arange(1, curve.shape[1] + 1)
    mean = np.nanmean(curve, axis=0)
    std = np.nanstd(curve, axis=0)
    ax.plot(steps, mean, label=label)
    ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    # Zoom on the interesting range: past the first few random samples.
    lows.append(np.nanmin(mean[min(len(mean) - 1, len(mean) // 10):]))
  if optimum is not None:
    ax.axhline(optimum, color="k", linestyle="--", linewidth=1,
               label=f"optimum {optimum:.2f}")
  if lows:
    top = optimum if optimum is not None else max(
        np.nanmax(np.atleast_2d(c)) for c in curves.values())
    low = min(lows)
    ax.set_ylim(low - 0.2 * (top - low + 0.1), top + 0.1 * (top - low + 0.1))
  ax.set_xlabel("evaluated architectures")
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right", fontsize=8)
  _save(fig, path)


def pareto_front(accuracy: np.ndarray, cost: np.ndarray) -> np.ndarray:
  """Indices of the accuracy-vs-cost Pareto front, by increasing cost."""
  order = np.lexsort((-accuracy, cost))
  front, best = [], -np.inf
  for i in order:
    if accuracy[i] > best:
      front.append(i)
      best = accuracy[i]
  return np.asarray(front, np.int64)


def plot_pareto(found: Mapping[str, tuple[np.ndarray, np.ndarray]],
                path: str | os.PathLike, title: str, cost_label: str,
                background: tuple[np.ndarray, np.ndarray] | None = None,
                budget: float | None = None) -> None:
  """Accuracy vs cost: every known architecture, its front, and the finds.

  Args:
    found: label -> ``(cost[k], accuracy[k])`` of the architectures a
      strategy found (one per seed).
    path: PNG file to write.
    title: figure title.
    cost_label: x-axis label (e.g. ``latency on pixel3 (ms)``).
    background: ``(cost[n], accuracy[n])`` of the whole space, when known
      (tabular benchmark): drawn in grey with its Pareto front.
    budget: a cost budget drawn as a vertical line.
  """
  fig = Figure(figsize=(7, 4.5))
  ax = fig.add_subplot()
  if background is not None:
    cost, acc = (np.asarray(v, np.float64) for v in background)
    ax.scatter(cost, acc, s=2, color="0.8", label="all architectures",
               rasterized=True)
    front = pareto_front(acc, cost)
    ax.step(cost[front], acc[front], where="post", color="0.4", linewidth=1,
            label="Pareto front")
  markers = "os^Dv<>pP*"
  low = np.inf
  for k, (label, (cost, acc)) in enumerate(found.items()):
    ax.scatter(cost, acc, s=22, marker=markers[k % len(markers)], label=label,
               alpha=0.8)
    if len(acc):
      low = min(low, float(np.min(acc)))
  if budget is not None:
    ax.axvline(budget, color="r", linestyle="--", linewidth=1,
               label=f"budget {budget:g}")
  if np.isfinite(low) and background is not None:
    top = float(np.max(background[1]))
    ax.set_ylim(min(low, top - 2.0) - 1.0, top + 0.5)
  ax.set_xlabel(cost_label)
  ax.set_ylabel("accuracy (%)")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right", fontsize=8)
  _save(fig, path)
