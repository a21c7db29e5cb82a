"""Running a strategy against an evaluator, and the ``search`` entry point.

:func:`run_search` is the ask/evaluate/tell loop under a budget of evaluated
architectures; :func:`run_oneshot` adapts a one-shot search to the same
record; :func:`run_strategy_search` is what ``supernet search`` calls for a
non-gradient ``config.search.strategy``: it writes ``RUN/config.json``,
``RUN/history.csv``, ``RUN/arch.json`` and ``RUN/best_so_far.png``, and
resumes from ``RUN/strategy_state.json``.

Keys: the search key ``k`` gives ``init`` the key ``fold_in(k, 0)`` and the
``t``-th ask (from 0) the key ``fold_in(k, t + 1)``, so a resumed search asks
with the same keys as an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np

from supernet.errors import UserError
from supernet.evaluators import Evaluator, make_evaluator
from supernet.report import arch_label, plot_best_so_far
from supernet.rundir import RunDir
from supernet.spaces import make_space, save_arch
from supernet.spaces.base import Arch, SearchSpace
from supernet.strategies.base import (
    OneShot,
    Result,
    Strategy,
    check_positive,
    fold_in_host,
)
from supernet.strategies.constraints import make_constraint
from supernet.strategies.registry import make_strategy
from supernet.strategies.state_io import state_from_json, state_to_json

CHECKPOINT_FILE = "strategy_state.json"


@dataclasses.dataclass
class SearchRun:
  """A search in progress (or finished).

  Attributes:
    state: the strategy state after the last tell.
    archs: evaluated architectures, in order.
    results: their results.
    num_asks: asks made so far (the next ask's key index).
    wall_s: wall-clock seconds spent searching (over all sessions).
  """

  state: Any
  archs: list[Arch] = dataclasses.field(default_factory=list)
  results: list[Result] = dataclasses.field(default_factory=list)
  num_asks: int = 0
  wall_s: float = 0.0

  def best(self) -> tuple[Arch, Result]:
    """The most accurate evaluated architecture (first on ties)."""
    if not self.results:
      raise UserError("the search evaluated no architecture")
    i = max(range(len(self.results)),
            key=lambda j: (self.results[j]["accuracy"], -j))
    return self.archs[i], self.results[i]


def run_search(strategy: Strategy, space: SearchSpace, evaluator: Evaluator,
               budget: int, key: jax.Array, *, run: SearchRun | None = None,
               on_tell: Callable[[SearchRun, int], None] | None = None
               ) -> SearchRun:
  """Asks, evaluates and tells until ``budget`` architectures are evaluated.

  Args:
    strategy: the strategy.
    space: the search space.
    evaluator: scores the candidates; every candidate is one evaluation.
    budget: number of architectures to evaluate in all (a last batch is cut
      to fit).
    key: the search's PRNG key.
    run: a search to continue (e.g. restored from a checkpoint).
    on_tell: called after each tell with the run and the batch size.

  Returns:
    The run, with ``budget`` evaluations unless the strategy ran out of
    candidates first.
  """
  if run is None:
    run = SearchRun(state=strategy.init(fold_in_host(key, 0), space))
  start, spent = time.perf_counter(), run.wall_s
  while len(run.archs) < budget:
    archs = strategy.ask(run.state, fold_in_host(key, run.num_asks + 1))
    run.num_asks += 1
    if not archs:
      break
    archs = list(archs[:budget - len(run.archs)])
    results = evaluator.evaluate(archs)
    run.state = strategy.tell(run.state, archs, results)
    run.archs += archs
    run.results += results
    run.wall_s = spent + time.perf_counter() - start
    if on_tell is not None:
      on_tell(run, len(archs))
  return run


def run_oneshot(oneshot: OneShot, space: SearchSpace, evaluator: Evaluator,
                key: jax.Array) -> SearchRun:
  """Runs a one-shot search and scores what it returns with ``evaluator``.

  The returned architectures are re-evaluated by the comparison's evaluator
  (one evaluation each), so every strategy is judged by the same numbers;
  the search's own figures are kept with a ``search_`` prefix.

  Args:
    oneshot: the one-shot strategy.
    space: the search space.
    evaluator: the common evaluator.
    key: the search's PRNG key.

  Returns:
    A finished run (its state is ``None``).
  """
  start = time.perf_counter()
  pairs = list(oneshot.run(oneshot.config, space, key))
  archs = [space.validate(arch) for arch, _ in pairs]
  scored = evaluator.evaluate(archs) if archs else []
  results = [{**{f"search_{k}": v for k, v in dict(own or {}).items()}, **res}
             for (_, own), res in zip(pairs, scored)]
  return SearchRun(state=None, archs=archs, results=results, num_asks=1,
                   wall_s=time.perf_counter() - start)


# --------------------------------------------------------------------------
# Checkpoints and outputs.

def _write_text(path: str, text: str) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)  # atomic: a crash never leaves half a file


def save_checkpoint(path: str, run: SearchRun) -> None:
  """Saves a run (state, history, counters) as JSON."""
  doc = {"num_asks": run.num_asks, "wall_s": run.wall_s,
         "archs": [a.to_json() for a in run.archs], "results": run.results,
         "state": state_to_json(run.state)}
  _write_text(path, json.dumps(doc))


def load_checkpoint(path: str, template: Any, space: SearchSpace) -> SearchRun:
  """Restores a run saved with :func:`save_checkpoint`.

  Args:
    path: the checkpoint file.
    template: a fresh state of the same strategy (gives the structure).
    space: the search space of the archs.

  Returns:
    The run, ready to continue.
  """
  try:
    with open(path) as f:
      doc = json.load(f)
    archs = [space.arch_from_json(a) for a in doc["archs"]]
    return SearchRun(state=state_from_json(doc["state"], template),
                     archs=archs, results=list(doc["results"]),
                     num_asks=int(doc["num_asks"]), wall_s=float(doc["wall_s"]))
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UserError(f"cannot resume from {path}: {e}") from None


def write_history_csv(path: str, run: SearchRun) -> None:
  """``step, arch, accuracy, best_accuracy`` and the other result fields."""
  fields = []
  for r in run.results:
    fields += [k for k in r if k != "accuracy" and k not in fields]
  best = float("-inf")
  with open(path, "w", newline="") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["step", "arch", "accuracy", "best_accuracy", *fields])
    for i, (arch, r) in enumerate(zip(run.archs, run.results)):
      best = max(best, float(r["accuracy"]))
      writer.writerow([i + 1, arch_label(arch), r["accuracy"], best,
                       *(r.get(k, "") for k in fields)])


# --------------------------------------------------------------------------
# ``supernet search`` with a non-gradient strategy.

def strategy_from_config(config: ml_collections.ConfigDict, space: SearchSpace
                         ) -> Strategy | OneShot:
  """Builds ``config.search.strategy`` with its hyper-parameters and the
  constraint of ``config.search.constraint``."""
  search = config.search
  constraint = make_constraint(search.get("constraint"), space)
  return make_strategy(search.strategy, search.get("hparams"), constraint)


def run_strategy_search(config: ml_collections.ConfigDict, workdir: str
                        ) -> Arch:
  """Runs one strategy (``config.search``) and writes the run directory.

  Config fields: ``seed``; ``space.name``; ``evaluator`` (see
  ``supernet.evaluators``); ``search.strategy`` (a name in ``STRATEGIES``),
  ``search.hparams``, ``search.budget`` (evaluated architectures),
  ``search.constraint`` (``cost``/``limit``/..., optional) and
  ``search.checkpoint_every`` (tells between checkpoints).

  Args:
    config: the experiment config.
    workdir: the run directory. A directory holding this config's run
      resumes it; one holding another config's results is refused.

  Returns:
    The best architecture found (also written to ``workdir/arch.json``).
  """
  space = make_space(config.space.name, config.space)
  evaluator = make_evaluator(config.evaluator, space)
  strategy = strategy_from_config(config, space)
  budget = check_positive("search.budget", config.search.budget)
  every = check_positive("search.checkpoint_every",
                         config.search.get("checkpoint_every", 10))
  key = jax.random.key(config.seed)
  # Writes config.json, or checks the workdir holds this config's run.
  RunDir(workdir, config, "search").close()
  checkpoint = os.path.join(workdir, CHECKPOINT_FILE)

  if isinstance(strategy, OneShot):
    run = run_oneshot(strategy, space, evaluator, key)
  else:
    run = None
    if os.path.isfile(checkpoint):
      run = load_checkpoint(checkpoint, strategy.init(fold_in_host(key, 0),
                                                      space), space)
      evaluator.num_queries = len(run.archs)
    last = [len(run.archs) if run else 0]

    def on_tell(run: SearchRun, _: int) -> None:
      if len(run.archs) - last[0] >= every or len(run.archs) >= budget:
        save_checkpoint(checkpoint, run)
        last[0] = len(run.archs)

    run = run_search(strategy, space, evaluator, budget, key, run=run,
                     on_tell=on_tell)
    save_checkpoint(checkpoint, run)
  return _write_search_outputs(workdir, config, run)


def _write_search_outputs(workdir: str, config: ml_collections.ConfigDict,
                          run: SearchRun) -> Arch:
  arch, result = run.best()
  write_history_csv(os.path.join(workdir, "history.csv"), run)
  save_arch(arch, os.path.join(workdir, "arch.json"))
  curve = np.maximum.accumulate([r["accuracy"] for r in run.results])
  plot_best_so_far({config.search.strategy: curve[None]},
                   os.path.join(workdir, "best_so_far.png"),
                   f"{config.search.strategy} on {config.space.name}")
  _write_text(os.path.join(workdir, "best.json"), json.dumps(
      {"arch": arch.to_json(), "result": result,
       "evaluations": len(run.results), "wall_s": run.wall_s}, indent=1) + "\n")
  return arch
