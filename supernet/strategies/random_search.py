"""Random search: independent uniform samples of the space."""

from __future__ import annotations

from collections.abc import Sequence

from flax import struct

from supernet.spaces.base import Arch, SearchSpace, numpy_rng
from supernet.strategies.base import (
    Constraint,
    Result,
    Strategy,
    check_positive,
    sample_valid,
)


@struct.dataclass
class RandomState:
  """Random search keeps nothing but a count.

  Attributes:
    space: the search space (static).
    num_told: number of architectures told.
  """

  space: SearchSpace = struct.field(pytree_node=False)
  num_told: int


def random_search(batch_size: int = 1, constraint: Constraint | None = None,
                  max_tries: int = 1000) -> Strategy:
  """Uniform random search (with replacement, as in the NAS literature).

  Args:
    batch_size: candidates per ask.
    constraint: hard constraint; violating samples are redrawn.
    max_tries: draws per candidate before the constraint is declared
      unsatisfiable.

  Returns:
    The strategy.
  """
  batch_size = check_positive("random batch_size", batch_size)
  max_tries = check_positive("random max_tries", max_tries)

  def init(key, space: SearchSpace) -> RandomState:
    del key  # nothing random to set up
    return RandomState(space=space, num_told=0)

  def ask(state: RandomState, key) -> list[Arch]:
    if constraint is None:
      return state.space.sample_many(key, batch_size)
    rng = numpy_rng(key)
    return [sample_valid(state.space, rng, constraint, max_tries)
            for _ in range(batch_size)]

  def tell(state: RandomState, archs: Sequence[Arch],
           results: Sequence[Result]) -> RandomState:
    if len(archs) != len(results):
      raise ValueError(f"tell got {len(archs)} archs but {len(results)} "
                       "results")
    return state.replace(num_told=state.num_told + len(archs))

  return Strategy(init, ask, tell)
