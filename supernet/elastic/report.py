"""What an elastic run reports: sub-network table, plot, rank correlation."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def spearman(x: Sequence[float], y: Sequence[float]
             ) -> tuple[float, float]:
  """Spearman rank correlation and its two-sided p-value (scipy).

  Returns ``(nan, nan)`` when there are fewer than three points or either
  side is constant (no ranking to correlate).
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
    return float("nan"), float("nan")
  from scipy import stats
  result = stats.spearmanr(x, y)
  return float(result.statistic), float(result.pvalue)


def write_subnets_csv(path: str, rows: Sequence[dict[str, Any]]) -> None:
  """Writes one row per sub-network (atomically)."""
  keys: list[str] = []
  for r in rows:
    keys += [k for k in r if k not in keys]
  with open(path + ".tmp", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
  os.replace(path + ".tmp", path)


def plot_accuracy_vs_macs(path: str, rows: Sequence[dict[str, Any]],
                          title: str, baseline: float | None = None,
                          ylabel: str = "test accuracy (BN re-calibrated)"
                          ) -> None:
  """Scatter of accuracy against MACs, largest and smallest marked."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
  kinds = {"random": ("tab:blue", "o"), "largest": ("tab:red", "^"),
           "smallest": ("tab:green", "v")}
  for kind, (colour, marker) in kinds.items():
    pts = [r for r in rows if r["kind"] == kind]
    if pts:
      ax.scatter([r["macs"] / 1e6 for r in pts], [r["accuracy"] for r in pts],
                 c=colour, marker=marker, label=kind, s=22)
  if baseline is not None:
    ax.axhline(baseline, color="grey", ls="--", lw=1, label="linear baseline")
  ax.set_xlabel("MMACs")
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path + ".tmp.png")
  plt.close(fig)
  os.replace(path + ".tmp.png", path)


def linear_baseline(train: tuple[np.ndarray, np.ndarray],
                    test: tuple[np.ndarray, np.ndarray],
                    max_iter: int = 1000) -> float:
  """Test accuracy of logistic regression on raw pixels (scaled to [0, 1]).

  Args:
    train: ``(uint8 images, labels)`` of the train split.
    test: the same of the test split.
    max_iter: solver iterations.

  Returns:
    The accuracy in [0, 1].
  """
  from sklearn.linear_model import LogisticRegression
  flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1) / 255.0  # noqa: E731
  clf = LogisticRegression(max_iter=max_iter)
  clf.fit(flat(train[0]), train[1])
  return float(clf.score(flat(test[0]), test[1]))
