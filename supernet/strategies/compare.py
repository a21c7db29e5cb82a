"""Search strategies side by side: same space, evaluator, budget and seeds.

:func:`run_comparison` runs the ``config.run_strategies`` entries for
``config.num_seeds`` seeds with a budget of ``config.budget`` evaluated
architectures, then (if ``config.constrained.enabled``) the entries named in
``config.constrained.strategies`` again under a hard cost constraint, and
writes one report directory (``supernet.report``). On NAS-Bench-201 the exact
optima (with and without the constraint) come from the table.

Config fields (see ``experiments/configs/compare_nb201.py``):

* ``seed``, ``num_seeds``, ``budget``;
* ``space.name``; ``evaluator`` (``name``, and for ``nb201``: ``dataset``,
  ``device``, ``data_path``);
* ``strategies.<label>``: ``strategy`` (a name in ``STRATEGIES``),
  ``hparams`` and optional ``num_seeds`` (fewer seeds for an expensive
  strategy: the first ``num_seeds`` of the common seeds); labels name the
  rows of the report;
* ``run_strategies``: the labels to compare, in report order;
* ``constrained``: ``enabled``, ``cost`` (a name in ``COSTS``), ``device``,
  ``limit``, ``strategies`` (labels of ``strategies``), ``tolerance``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from supernet.benchmarks.nb201 import load_nb201
from supernet.errors import UserError
from supernet.evaluators import make_evaluator
from supernet.report import Experiment, Reference, SearchRecord, write_report
from supernet.rundir import RunDir
from supernet.spaces import make_space
from supernet.spaces.base import SearchSpace
from supernet.strategies.base import OneShot, Strategy, check_positive
from supernet.strategies.constraints import make_constraint
from supernet.strategies.registry import make_strategy
from supernet.strategies.runner import (
    SearchRun,
    run_oneshot,
    run_search,
)

# NAS-Bench-201 paper (Dong & Yang, ICLR 2020), Table 5, CIFAR-10 test
# accuracy, mean ± std over 500 runs.
PUBLISHED_NB201: dict[str, dict[str, tuple[float, float]]] = {
    "cifar10": {"optimum": (94.37, 0.0),
                "regularized_evolution": (93.92, 0.30),
                "reinforce": (93.85, 0.37),
                "random": (93.70, 0.36)},
}
PUBLISHED_NOTE = (
    "Published: NAS-Bench-201 paper (Dong & Yang, 2020), Table 5. Those "
    "searches ran under a simulated *time* budget (12,000 s of training) and "
    "selected by validation accuracy; here every search has the same budget "
    "of *evaluated architectures* and reads the 200-epoch test accuracy "
    "directly, so compare the ordering rather than the digits.")


@dataclasses.dataclass
class _Entry:
  label: str
  name: str
  strategy: Strategy | OneShot
  num_seeds: int | None = None  # None: all the comparison's seeds


@dataclasses.dataclass
class ComparisonResult:
  """What :func:`run_comparison` produced.

  Attributes:
    experiments: the unconstrained and (optionally) constrained experiments.
    report_path: path of ``report.md``.
    wall_s: wall-clock seconds of all searches.
  """

  experiments: list[Experiment]
  report_path: str
  wall_s: float


def _entries(config: ml_collections.ConfigDict, labels: Sequence[str],
             field: str, constraint=None) -> list[_Entry]:
  if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
    raise UserError(f"{field} must be a list of labels of config.strategies")
  out = []
  for label in labels:
    if label not in config.strategies:
      raise UserError(f"{field} names {label!r}, which is not in "
                      f"config.strategies {sorted(config.strategies)}")
    entry = config.strategies[label]
    if (not isinstance(entry, ml_collections.ConfigDict)
        or "strategy" not in entry):
      raise UserError(f"strategies.{label} needs a 'strategy' field (and "
                      "optional 'hparams')")
    num_seeds = entry.get("num_seeds")
    if num_seeds is not None:
      num_seeds = check_positive(f"strategies.{label}.num_seeds", num_seeds)
      if num_seeds > config.num_seeds:
        raise UserError(f"strategies.{label}.num_seeds={num_seeds} exceeds "
                        f"num_seeds={config.num_seeds}")
    out.append(_Entry(label, entry.strategy,
                      make_strategy(entry.strategy, entry.get("hparams"),
                                    constraint), num_seeds))
  return out


def _constrained_evaluator_config(config: ml_collections.ConfigDict
                                  ) -> ml_collections.ConfigDict:
  # The constrained searches report latency on the constraint's device.
  ev = ml_collections.ConfigDict(config.evaluator.to_dict())
  if "device" in ev and config.constrained.get("device"):
    ev.device = config.constrained.device
  return ev


def _constraint_config(config: ml_collections.ConfigDict
                       ) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(config.constrained.to_dict())
  c.data_path = config.evaluator.get("data_path", "")
  return c


def _run_one(entry: _Entry, space: SearchSpace, evaluator_config, budget: int,
             seed: int, bar: tqdm) -> SearchRecord:
  evaluator = make_evaluator(evaluator_config, space)
  key = jax.random.key(seed)
  if isinstance(entry.strategy, OneShot):
    run: SearchRun = run_oneshot(entry.strategy, space, evaluator, key)
    bar.update(budget)
  else:
    done = [0]

    def on_tell(run: SearchRun, n: int) -> None:
      bar.update(n)
      done[0] += n

    run = run_search(entry.strategy, space, evaluator, budget, key,
                     on_tell=on_tell)
    bar.update(budget - done[0])  # a search that stopped early
  return SearchRecord.from_search(entry.label, entry.name, seed, run.archs,
                                  run.results, run.wall_s)


def _nb201_context(config, dataset: str, device: str, limit=None):
  table = load_nb201(config.evaluator.get("data_path") or None)
  best = table.optimum(dataset, device, limit)
  acc = table.accuracy_column(dataset)
  lat = table.latency_column(device)
  ref = Reference(float(acc[best]), table.archs[best], float(lat[best]))
  return ref, (lat, acc)


def run_comparison(config: ml_collections.ConfigDict, workdir: str, *,
                   command: str = "", progress: bool = True
                   ) -> ComparisonResult:
  """Runs the comparison of ``config`` and writes ``workdir``'s report.

  Args:
    config: the comparison config (see module doc).
    workdir: the report directory; one holding another config's results is
      refused.
    command: the command line, quoted in the report.
    progress: show a tqdm progress bar (with ETA) on stderr.

  Returns:
    The experiments, the report path and the total wall time.
  """
  # Build everything first, so a config mistake fails before any search.
  budget = check_positive("budget", config.budget)
  num_seeds = check_positive("num_seeds", config.num_seeds)
  space = make_space(config.space.name, config.space)
  make_evaluator(config.evaluator, space)
  entries = _entries(config, config.run_strategies, "run_strategies")
  if not entries:
    raise UserError("run_strategies is empty")
  constrained = config.get("constrained")
  plans = [("unconstrained", config.evaluator, entries, None)]
  if constrained is not None and constrained.get("enabled", False):
    constraint = make_constraint(_constraint_config(config), space)
    if constraint is None:
      raise UserError("constrained.enabled needs constrained.cost (e.g. "
                      "'nb201_latency')")
    ev_config = _constrained_evaluator_config(config)
    make_evaluator(ev_config, space)
    plans.append(("constrained", ev_config,
                  _entries(config, constrained.strategies,
                           "constrained.strategies", constraint),
                  constraint))
  # Writes config.json, or refuses a workdir holding another config's run.
  RunDir(workdir, config, "compare").close()

  seeds = [int(config.seed) + s for s in range(num_seeds)]

  def seeds_of(entry: _Entry) -> list[int]:
    return seeds[:entry.num_seeds or num_seeds]

  total = budget * sum(len(seeds_of(e)) for p in plans for e in p[2])
  records: dict[str, list[SearchRecord]] = {name: [] for name, *_ in plans}
  start = time.perf_counter()
  with tqdm(total=total, unit="eval", desc="compare", file=sys.stderr,
            disable=not progress, mininterval=0.5, smoothing=0.05) as bar:
    for name, ev_config, plan_entries, _ in plans:
      for entry in plan_entries:
        bar.set_postfix_str(f"{name}:{entry.label}")
        for seed in seeds_of(entry):
          records[name].append(_run_one(entry, space, ev_config, budget, seed,
                                        bar))
  wall_s = time.perf_counter() - start

  experiments = _experiments(config, plans, records)
  fewer = {e.label: len(seeds_of(e)) for e in entries
           if len(seeds_of(e)) < num_seeds}
  intro = _intro(config, budget, seeds, wall_s, command, fewer)
  oneshot = [e.label for e in entries if isinstance(e.strategy, OneShot)]
  if oneshot:
    intro += _oneshot_intro(config, oneshot)
  title = f"Search strategies on {config.space.name}"
  if config.evaluator.name == "nb201":
    title += f" ({config.evaluator.dataset})"
  path = write_report(workdir, title, intro, experiments)
  return ComparisonResult(experiments, path, wall_s)


def _experiments(config, plans, records) -> list[Experiment]:
  ev = config.evaluator
  is_nb201 = ev.name == "nb201"
  out = []
  for name, ev_config, _, constraint in plans:
    device = ev_config.get("device", "")
    exp = Experiment(
        name=name, records=records[name],
        title=("Unconstrained search" if constraint is None
               else f"Constrained search: {constraint}"),
        cost_field="latency_ms",
        cost_label=f"latency on {device} (ms)" if device else "latency (ms)",
        tolerance=float(config.get("constrained", {}).get("tolerance", 0.5)))
    if is_nb201:
      limit = None if constraint is None else float(config.constrained.limit)
      exp.optimum, exp.background = _nb201_context(config, ev.dataset, device,
                                                   limit)
      exp.limit = limit
      if constraint is None:
        exp.published = PUBLISHED_NB201.get(ev.dataset, {})
        exp.published_note = PUBLISHED_NOTE if exp.published else ""
    out.append(exp)
  return out


def _intro(config, budget: int, seeds: Sequence[int], wall_s: float,
           command: str, fewer: dict[str, int] | None = None) -> list[str]:
  ev = config.evaluator
  lines = []
  if command:
    lines += [f"Command: `{command}`", ""]
  except_ = "".join(f"; {label} runs the first {n} of them"
                    for label, n in (fewer or {}).items())
  lines += [
      f"Each search evaluates **{budget}** architectures; every strategy runs "
      f"with the same **{len(seeds)}** seeds ({seeds[0]}..{seeds[-1]}"
      f"{except_}) and the same evaluator (`{ev.name}`"
      + (f": 200-epoch test accuracy on {ev.dataset}, latency on "
         f"{ev.device}" if ev.name == "nb201" else "") + ").",
      f"Total wall time of all searches: {wall_s:.1f} s. Hyper-parameters: "
      "`config.json`; every search: `results.csv` (one row per strategy and "
      "seed) and `histories.csv` (every evaluation).",
  ]
  return lines


def _oneshot_intro(config, labels: Sequence[str]) -> list[str]:
  names = ", ".join(labels)
  lines = ["", f"One-shot searches ({names}) train their own weight-sharing "
           "supernet instead of querying the evaluator: only the "
           "architectures they derive are evaluated (the `evaluations` "
           "column), and their wall time includes the supernet training (for "
           "the first seed, also its compilation)."]
  for label in labels:
    note = config.strategies[label].get("note", "")
    if note:
      lines += ["", f"{label}: {note}"]
  return lines


def summary_lines(result: ComparisonResult) -> list[str]:
  """A short plain-text summary of a comparison (printed by the CLI)."""
  lines = []
  for exp in result.experiments:
    lines.append(f"{exp.title}:")
    if exp.optimum is not None:
      lines.append(f"  optimum of the table: {exp.optimum.accuracy:.2f} "
                   f"({exp.cost_label} {exp.optimum.cost:.2f}) "
                   f"{exp.optimum.arch}")
    for label in exp.labels():
      runs = exp.by_label(label)
      best = np.asarray([r.best_accuracy for r in runs])
      line = (f"  {label:<24} best {best.mean():.2f} ± {best.std():.2f} over "
              f"{len(runs)} seeds")
      if exp.optimum is not None:
        line += f", gap {exp.optimum.accuracy - best.mean():.2f}"
      lines.append(line)
  lines.append(f"wall time {result.wall_s:.1f} s; report: "
               f"{result.report_path}")
  return lines
