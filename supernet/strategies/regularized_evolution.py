"""Regularised (aging) evolution (Real et al., 2019).

The population is the ``population_size`` most recently evaluated
architectures: a child replaces the oldest member, not the worst, which
"regularises" the search towards architectures that stay good when re-found.
A child is a one-token mutation (``space.mutate``) of the best of
``sample_size`` members drawn without replacement (tournament selection).

Because the population is exactly the tail of the history, the state is just
the history (tokens and accuracies, in evaluation order), plus the parameters
of the optional accuracy predictor that pre-screens mutants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from flax import struct

from supernet.errors import UserError
from supernet.evaluators.predictor import AccuracyPredictor
from supernet.spaces.base import Arch, SearchSpace, numpy_rng
from supernet.strategies.base import (
    Constraint,
    Result,
    Strategy,
    accuracies_of,
    check_positive,
    propose,
    raw_key,
    sample_valid,
    tokens_of,
)


@struct.dataclass
class EvolutionState:
  """Everything evaluated so far, in order.

  Attributes:
    space: the search space (static).
    tokens: ``int32[n, num_tokens]``, the evaluated architectures.
    accuracy: ``float64[n]``, their accuracies.
    predictor_params: parameters of the accuracy predictor (``None``
      without one).
    predictor_seed: seed of the predictor's initialisation.
  """

  space: SearchSpace = struct.field(pytree_node=False)
  tokens: np.ndarray
  accuracy: np.ndarray
  predictor_params: Any
  predictor_seed: int


def _seen_filter(space: SearchSpace, tokens: np.ndarray, enabled: bool):
  """``reject(arch)`` for already evaluated (or already proposed) archs."""
  if not enabled:
    return None, lambda arch: None
  seen = {tuple(row) for row in tokens.tolist()}

  def reject(arch: Arch) -> bool:
    return tuple(space.encode(arch)) in seen

  def add(arch: Arch) -> None:
    seen.add(tuple(space.encode(arch)))

  return reject, add


def regularized_evolution(population_size: int = 20, sample_size: int = 5,
                          batch_size: int = 1,
                          constraint: Constraint | None = None,
                          avoid_duplicates: bool = True,
                          predictor: AccuracyPredictor | None = None,
                          screen_size: int = 8, max_tries: int = 1000
                          ) -> Strategy:
  """Regularised evolution with tournament selection and aging.

  Args:
    population_size: members of the population (the most recent ones).
    sample_size: tournament size.
    batch_size: candidates per ask (1 is the sequential algorithm).
    constraint: hard constraint; violating candidates are redrawn (mutation
      first, then random samples), never evaluated.
    avoid_duplicates: redraw children that were already evaluated (a tabular
      or cached evaluator would return the same number, wasting budget).
    predictor: optional accuracy predictor; when given, each child is the
      best-predicted of ``screen_size`` mutants once the population is full.
    screen_size: mutants ranked by the predictor per child.
    max_tries: draws per candidate before the constraint is declared
      unsatisfiable.

  Returns:
    The strategy.
  """
  population_size = check_positive("population_size", population_size, 2)
  sample_size = check_positive("sample_size", sample_size)
  batch_size = check_positive("batch_size", batch_size)
  screen_size = check_positive("screen_size", screen_size)
  max_tries = check_positive("max_tries", max_tries)
  if sample_size > population_size:
    raise UserError(f"sample_size ({sample_size}) must not exceed "
                    f"population_size ({population_size})")

  def init(key, space: SearchSpace) -> EvolutionState:
    width = len(space.cardinalities())
    seed = int(np.random.default_rng([int(v) for v in raw_key(key)]
                                     ).integers(2**31))
    params = None
    if predictor is not None:
      params = predictor.init(jax.random.key(seed),
                              int(sum(space.cardinalities())))
    return EvolutionState(space=space, tokens=np.zeros((0, width), np.int32),
                          accuracy=np.zeros((0,), np.float64),
                          predictor_params=params, predictor_seed=seed)

  def ask(state: EvolutionState, key) -> list[Arch]:
    space = state.space
    rng = numpy_rng(key)
    n = len(state.accuracy)
    reject, add = _seen_filter(space, state.tokens, avoid_duplicates)
    tail = (state.accuracy[n - population_size:] if n >= population_size
            else None)

    def child() -> Arch:
      # Tournament among the population (the last ``population_size``).
      picks = rng.choice(population_size, size=sample_size, replace=False)
      best = picks[np.argmax(tail[picks])]
      parent = space.decode(state.tokens[n - population_size + best])
      return propose(rng, lambda k: space.mutate(k, parent), constraint,
                     max_tries, fallbacks=(space.sample,), reject=reject)

    out = []
    for _ in range(batch_size):
      if tail is None:  # still filling the first population
        arch = sample_valid(space, rng, constraint, max_tries, reject)
      elif predictor is None or state.predictor_params is None:
        arch = child()
      else:
        candidates = [child() for _ in range(screen_size)]
        features = np.stack([space.one_hot(a) for a in candidates])
        scores = predictor.predict(state.predictor_params, features)
        arch = candidates[int(np.argmax(scores))]
      add(arch)
      out.append(arch)
    return out

  def tell(state: EvolutionState, archs: Sequence[Arch],
           results: Sequence[Result]) -> EvolutionState:
    accuracy = np.concatenate([state.accuracy, accuracies_of(archs, results)])
    tokens = np.concatenate([state.tokens, tokens_of(state.space, archs)])
    params = state.predictor_params
    if predictor is not None and len(accuracy) >= population_size:
      features = np.stack([state.space.one_hot(state.space.decode(t))
                           for t in tokens])
      params = predictor.fit(params, features, accuracy)
    return state.replace(tokens=tokens, accuracy=accuracy,
                         predictor_params=params)

  return Strategy(init, ask, tell)
