"""Writes a comparison report directory.

``report.md`` (tables and figures), ``results.csv`` (one row per experiment,
strategy and seed), ``histories.csv`` (every evaluation, to re-plot) and, per
experiment, ``curves_<name>.png`` and ``pareto_<name>.png``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence

import numpy as np

from supernet.report.plots import best_so_far, plot_best_so_far, plot_pareto
from supernet.report.records import Experiment, SearchRecord

RESULT_COLUMNS = ("experiment", "strategy", "algorithm", "seed",
                  "best_accuracy", "evaluations", "wall_s", "best_arch")


def _fmt(x: float, digits: int = 2) -> str:
  return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _mean_std(values: Sequence[float], digits: int = 2) -> str:
  v = np.asarray(values, np.float64)
  v = v[np.isfinite(v)]
  if not len(v):
    return "n/a"
  return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def _row(exp: Experiment, r: SearchRecord) -> dict[str, object]:
  row: dict[str, object] = {
      "experiment": exp.name, "strategy": r.label, "algorithm": r.strategy,
      "seed": r.seed, "best_accuracy": f"{r.best_accuracy:.6f}",
      "evaluations": len(r.results), "wall_s": f"{r.wall_s:.4f}",
      "best_arch": r.archs[r.best] if r.results else ""}
  best = r.results[r.best] if r.results else {}
  for field in (exp.cost_field, "params", "macs"):
    value = best.get(field)
    row[f"best_{field}"] = "" if value is None else f"{float(value):.6g}"
  costs = r.cost(exp.cost_field)
  row[f"max_{exp.cost_field}_evaluated"] = (
      f"{np.nanmax(costs):.6g}" if np.isfinite(costs).any() else "")
  return row


def write_results_csv(experiments: Sequence[Experiment], path: str) -> None:
  """One row per experiment, strategy and seed (see ``RESULT_COLUMNS``)."""
  rows = [_row(e, r) for e in experiments for r in e.records]
  columns = list(RESULT_COLUMNS)
  for row in rows:
    columns += [k for k in row if k not in columns]
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def write_histories_csv(experiments: Sequence[Experiment], path: str) -> None:
  """Every evaluation of every search, with the running best."""
  with open(path, "w", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["experiment", "strategy", "seed", "step", "accuracy",
                     "best_so_far", "cost", "arch"])
    for e in experiments:
      for r in e.records:
        curve = best_so_far(r.accuracy)
        costs = r.cost(e.cost_field)
        for i, arch in enumerate(r.archs):
          writer.writerow([e.name, r.label, r.seed, i + 1,
                           f"{r.accuracy[i]:.6f}", f"{curve[i]:.6f}",
                           f"{costs[i]:.6g}", arch])


def curves_of(exp: Experiment) -> dict[str, np.ndarray]:
  """label -> best-so-far matrix ``[seeds, evaluations]`` (NaN-padded)."""
  out = {}
  for label in exp.labels():
    runs = [best_so_far(r.accuracy) for r in exp.by_label(label)]
    width = max((len(c) for c in runs), default=0)
    m = np.full((len(runs), max(width, 1)), np.nan)
    for i, c in enumerate(runs):
      m[i, :len(c)] = c
      m[i, len(c):] = c[-1] if len(c) else np.nan  # a finished search stays
    out[label] = m
  return out


def _has(exp: Experiment, field: str) -> bool:
  return any(field in res for r in exp.records for res in r.results)


def _experiment_markdown(exp: Experiment, curves_png: str, pareto_png: str
                         ) -> list[str]:
  lines = [f"## {exp.title}", ""]
  opt = exp.optimum
  constrained = exp.limit is not None
  if opt is not None:
    where = " under the constraint" if constrained else ""
    lines += [f"Exact optimum of the table{where}: **{opt.accuracy:.2f}** "
              f"({exp.cost_label}: {_fmt(opt.cost)}), `{opt.arch}`.", ""]
  extra_costs = [f for f in ("params", "macs") if _has(exp, f)]
  header = ["strategy", "best accuracy (mean ± std)"]
  if opt is not None:
    header += ["gap to optimum", f"seeds within {exp.tolerance:g}"]
  header += [f"found arch: {exp.cost_label}"]
  header += [f"found arch: {f}" for f in extra_costs]
  header += ["evaluations", "wall time / search (s, median)"]
  if constrained:
    header += [f"max {exp.cost_field} evaluated"]
  if exp.published:
    header += ["published (time budget)"]
  lines += ["| " + " | ".join(header) + " |",
            "|" + "---|" * len(header)]
  for label in exp.labels():
    runs = exp.by_label(label)
    best = np.asarray([r.best_accuracy for r in runs])
    name = runs[0].strategy
    cells = [label if label == name else f"{label} ({name})", _mean_std(best)]
    if opt is not None:
      gap = opt.accuracy - best
      cells += [_fmt(float(gap.mean())),
                f"{int((gap <= exp.tolerance + 1e-9).sum())}/{len(runs)}"]
    found = [r.results[r.best] if r.results else {} for r in runs]
    cells += [_mean_std([f.get(exp.cost_field, np.nan) for f in found])]
    cells += [_mean_std([f.get(c, np.nan) for f in found], 0)
              for c in extra_costs]
    cells += [_fmt(float(np.mean([len(r.results) for r in runs])), 1),
              _fmt(float(np.median([r.wall_s for r in runs])), 3)]
    if constrained:
      worst = max((np.nanmax(r.cost(exp.cost_field)) for r in runs
                   if r.results), default=float("nan"))
      ok = "ok" if worst <= exp.limit else "VIOLATED"
      cells += [f"{_fmt(worst)} ({ok})"]
    if exp.published:
      pub = exp.published.get(name)
      cells += [f"{pub[0]:.2f} ± {pub[1]:.2f}" if pub else "—"]
    lines.append("| " + " | ".join(cells) + " |")
  if opt is not None:
    cells = ["optimum of the table", f"{opt.accuracy:.2f}", "0.00", "—",
             _fmt(opt.cost), *("—" for _ in extra_costs), "all", "—"]
    if constrained:
      cells += ["—"]
    if exp.published:
      pub_opt = exp.published.get("optimum")
      cells += [f"{pub_opt[0]:.2f}" if pub_opt else "—"]
    lines.append("| " + " | ".join(cells) + " |")
  lines.append("")
  if opt is not None and constrained:
    lines += [f"Best architecture meeting the constraint: {opt.accuracy:.2f} "
              f"(exact, from the table). Found (mean over seeds; within "
              f"{exp.tolerance:g} points?):", ""]
    for label in exp.labels():
      runs = exp.by_label(label)
      best = np.asarray([r.best_accuracy for r in runs])
      gap = opt.accuracy - best.mean()
      top = runs[int(np.argmax(best))]
      lines.append(
          f"- {label}: {best.mean():.2f} (gap {gap:.2f}, "
          f"{'yes' if gap <= exp.tolerance else 'no'}; best seed "
          f"{best.max():.2f}, {exp.cost_field} "
          f"{_fmt(top.cost(exp.cost_field)[top.best])}, "
          f"`{top.archs[top.best]}`)")
    lines.append("")
  if exp.published_note:
    lines += [exp.published_note, ""]
  lines += [f"![best accuracy so far]({curves_png})", "",
            f"![accuracy vs cost]({pareto_png})", ""]
  return lines


def write_report(workdir: str, title: str, intro: Sequence[str],
                 experiments: Sequence[Experiment]) -> str:
  """Writes the report directory (see module doc).

  Args:
    workdir: output directory (exists).
    title: report title.
    intro: Markdown lines after the title (setup, budget, command).
    experiments: the experiments, in report order.

  Returns:
    The path of ``report.md``.
  """
  lines = [f"# {title}", "", *intro, ""]
  for exp in experiments:
    curves_png = f"curves_{exp.name}.png"
    pareto_png = f"pareto_{exp.name}.png"
    plot_best_so_far(curves_of(exp), os.path.join(workdir, curves_png),
                     exp.title,
                     optimum=exp.optimum.accuracy if exp.optimum else None)
    found = {}
    for label in exp.labels():
      runs = [r for r in exp.by_label(label) if r.results]
      found[label] = (
          np.asarray([r.cost(exp.cost_field)[r.best] for r in runs]),
          np.asarray([r.best_accuracy for r in runs]))
    plot_pareto(found, os.path.join(workdir, pareto_png), exp.title,
                exp.cost_label, background=exp.background, budget=exp.limit)
    lines += _experiment_markdown(exp, curves_png, pareto_png)
  write_results_csv(experiments, os.path.join(workdir, "results.csv"))
  write_histories_csv(experiments, os.path.join(workdir, "histories.csv"))
  path = os.path.join(workdir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines).rstrip() + "\n")
  return path
