"""Generational evolution under hard constraints, as in Once-for-All.

Each generation keeps the best ``parent_ratio`` of the population as parents
and fills the rest with children: a ``mutation_ratio`` share by mutation (each
token resampled with probability ``mutate_prob``) of a random parent, the
others by uniform crossover of two random parents (each token from either).
The first population is random. Every candidate meets the constraint: a
violating one is redrawn and never evaluated, so the search stays inside the
feasible region (e.g. a latency budget on the target device).

One ``ask`` returns a whole generation of children, a batch the evaluator can
process in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flax import struct

from supernet.spaces.base import Arch, SearchSpace, numpy_rng
from supernet.strategies.base import (
    Constraint,
    Result,
    Strategy,
    accuracies_of,
    check_fraction,
    check_positive,
    propose,
    sample_valid,
    tokens_of,
)


@struct.dataclass
class GenerationState:
  """The history and which of it forms the current population.

  Attributes:
    space: the search space (static).
    tokens: ``int32[n, num_tokens]``, every evaluated architecture.
    accuracy: ``float64[n]``, their accuracies.
    population: ``int64[m]``, rows of the history in the population.
  """

  space: SearchSpace = struct.field(pytree_node=False)
  tokens: np.ndarray
  accuracy: np.ndarray
  population: np.ndarray


def constrained_evolution(population_size: int = 20, parent_ratio: float = 0.25,
                          mutation_ratio: float = 0.5,
                          mutate_prob: float = 0.2,
                          constraint: Constraint | None = None,
                          avoid_duplicates: bool = True,
                          max_tries: int = 1000) -> Strategy:
  """OFA-style evolution: elitist parents, mutation and crossover.

  Args:
    population_size: members of each generation.
    parent_ratio: share of the population kept as parents.
    mutation_ratio: share of the children made by mutation (the rest by
      crossover).
    mutate_prob: probability of resampling each token in a mutation.
    constraint: hard constraint; violating candidates are redrawn.
    avoid_duplicates: redraw children equal to an evaluated architecture.
    max_tries: draws per candidate before falling back to random samples (and
      then declaring the constraint unsatisfiable).

  Returns:
    The strategy.
  """
  population_size = check_positive("population_size", population_size, 2)
  parent_ratio = check_fraction("parent_ratio", parent_ratio)
  mutation_ratio = check_fraction("mutation_ratio", mutation_ratio)
  mutate_prob = check_fraction("mutate_prob", mutate_prob)
  max_tries = check_positive("max_tries", max_tries)
  num_parents = min(population_size - 1, max(1, round(parent_ratio
                                                      * population_size)))
  num_children = population_size - num_parents
  num_mutants = round(mutation_ratio * num_children)

  def init(key, space: SearchSpace) -> GenerationState:
    del key  # the first generation is drawn in ask
    width = len(space.cardinalities())
    return GenerationState(space=space, tokens=np.zeros((0, width), np.int32),
                           accuracy=np.zeros((0,), np.float64),
                           population=np.zeros((0,), np.int64))

  def parents_of(state: GenerationState) -> np.ndarray:
    order = np.argsort(-state.accuracy[state.population], kind="stable")
    return state.population[order[:num_parents]]

  def ask(state: GenerationState, key) -> list[Arch]:
    space = state.space
    rng = numpy_rng(key)
    seen = ({tuple(t) for t in state.tokens.tolist()} if avoid_duplicates
            else set())

    def reject(arch: Arch) -> bool:
      return avoid_duplicates and tuple(space.encode(arch)) in seen

    out: list[Arch] = []

    def keep(arch: Arch) -> None:
      out.append(arch)
      if avoid_duplicates:
        seen.add(tuple(space.encode(arch)))

    if len(state.population) < population_size:
      for _ in range(population_size - len(state.population)):
        keep(sample_valid(space, rng, constraint, max_tries, reject))
      return out
    parents = [state.tokens[i] for i in parents_of(state)]
    cards = np.asarray(space.cardinalities())

    def mutant(key) -> Arch:
      parent = space.decode(parents[rng.integers(len(parents))])
      return space.mutate(key, parent, rate=mutate_prob)

    def crossover(_key) -> Arch:
      a, b = (parents[i] for i in rng.integers(len(parents), size=2))
      tokens = np.where(rng.random(len(cards)) < 0.5, a, b)
      return space.decode([int(t) for t in tokens])

    def new_or_parent(arch: Arch) -> bool:
      # Without duplicate avoidance a child equal to its parent is still a
      # wasted evaluation; reject it either way.
      return reject(arch) or any(
          tuple(space.encode(arch)) == tuple(p) for p in parents)

    for i in range(num_children):
      # A crossover of near-identical parents falls back to a mutation, and
      # a mutation to a random sample.
      makers = ((mutant,) if i < num_mutants else (crossover, mutant))
      keep(propose(rng, makers[0], constraint, max_tries,
                   fallbacks=makers[1:] + (space.sample,),
                   reject=new_or_parent))
    return out

  def tell(state: GenerationState, archs: Sequence[Arch],
           results: Sequence[Result]) -> GenerationState:
    n = len(state.accuracy)
    accuracy = np.concatenate([state.accuracy, accuracies_of(archs, results)])
    tokens = np.concatenate([state.tokens, tokens_of(state.space, archs)])
    new = np.arange(n, n + len(archs), dtype=np.int64)
    if len(state.population) < population_size:
      population = np.concatenate([state.population, new])
    else:
      population = np.concatenate([parents_of(state), new])
    return state.replace(tokens=tokens, accuracy=accuracy,
                         population=population)

  return Strategy(init, ask, tell)
