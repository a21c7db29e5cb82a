"""Grid search over ``space.enumerate()``, whole or sub-sampled.

Grid position ``p`` is the ``p``-th architecture of ``space.enumerate()``
(token order, last token fastest), computed directly from ``p`` so that a huge
space is never materialised. The visiting order is one of:

* ``sequential``: positions 0, 1, 2, ... (the plain grid);
* ``strided``: ``(offset + i * stride) mod N`` with ``stride`` coprime to N
  and the offset drawn from the init key; the default stride is the golden
  ratio of N, so every prefix (a budget of the first n points) is spread
  evenly over the grid;
* ``shuffled``: a random permutation from the init key (spaces up to 10^7).

Points that violate the constraint are skipped, never evaluated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from flax import struct

from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace
from supernet.strategies.base import (
    Constraint,
    Result,
    Strategy,
    check_positive,
    raw_key,
)

ORDERS = ("sequential", "strided", "shuffled")
_MAX_SHUFFLED = 10**7
_GOLDEN = (math.sqrt(5) - 1) / 2


@struct.dataclass
class GridState:
  """Where the grid walk stands.

  Attributes:
    space: the search space (static).
    offset: first grid position.
    stride: step between positions (strided order).
    perm_seed: seed of the permutation (shuffled order).
    cursor: number of grid positions consumed (evaluated or skipped).
    num_told: number of architectures told.
  """

  space: SearchSpace = struct.field(pytree_node=False)
  offset: int
  stride: int
  perm_seed: int
  cursor: int
  num_told: int


def position_to_tokens(position: int, cardinalities: Sequence[int]
                       ) -> tuple[int, ...]:
  """Tokens of the ``position``-th architecture of ``space.enumerate()``."""
  tokens = []
  for c in reversed(cardinalities):
    position, t = divmod(position, c)
    tokens.append(t)
  return tuple(reversed(tokens))


@functools.lru_cache(maxsize=8)
def _permutation(seed: int, size: int) -> np.ndarray:
  # Cached: the walk recomputes it on every ask and tell.
  return np.random.default_rng(seed).permutation(size)


def _coprime_stride(size: int, target: int) -> int:
  stride = max(1, target % size) if size > 1 else 1
  while math.gcd(stride, size) != 1:
    stride += 1
  return stride


def grid_search(order: str = "sequential", stride: int = 0,
                batch_size: int = 1, constraint: Constraint | None = None
                ) -> Strategy:
  """Grid search, optionally strided or shuffled.

  Args:
    order: ``sequential``, ``strided`` or ``shuffled`` (see module doc).
    stride: step of the strided order; 0 picks the golden-ratio stride. It is
      increased to the next value coprime to the space size, so the walk
      visits every point once.
    batch_size: candidates per ask.
    constraint: hard constraint; violating points are skipped.

  Returns:
    The strategy.
  """
  if order not in ORDERS:
    raise UserError(f"unknown grid order {order!r}; valid orders: "
                    f"{list(ORDERS)}")
  batch_size = check_positive("grid batch_size", batch_size)
  check_positive("grid stride", stride, minimum=0)

  def init(key, space: SearchSpace) -> GridState:
    size = space.size()
    if order == "shuffled" and size > _MAX_SHUFFLED:
      raise UserError(f"a shuffled grid needs a space of at most "
                      f"{_MAX_SHUFFLED} points ({space.name} has {size}); use "
                      "the strided order")
    rng = np.random.default_rng([int(v) for v in raw_key(key)])
    offset = int(rng.integers(size)) if order == "strided" else 0
    target = stride or round(_GOLDEN * size)
    return GridState(space=space, offset=offset,
                     stride=_coprime_stride(size, target),
                     perm_seed=int(rng.integers(2**31)), cursor=0, num_told=0)

  def walk(state: GridState, n: int) -> tuple[list[Arch], int]:
    """The next ``n`` valid archs and the cursor after the last of them."""
    space = state.space
    size = space.size()
    cards = space.cardinalities()
    perm = _permutation(state.perm_seed, size) if order == "shuffled" else None
    archs, cursor = [], state.cursor
    while len(archs) < n and cursor < size:
      if order == "sequential":
        position = cursor
      elif order == "strided":
        position = (state.offset + cursor * state.stride) % size
      else:
        position = int(perm[cursor])
      cursor += 1
      arch = space.decode(position_to_tokens(position, cards))
      if constraint is None or constraint(arch):
        archs.append(arch)
    return archs, cursor

  def ask(state: GridState, key) -> list[Arch]:
    del key  # the walk is fixed at init
    return walk(state, batch_size)[0]

  def tell(state: GridState, archs: Sequence[Arch], results: Sequence[Result]
           ) -> GridState:
    if len(archs) != len(results):
      raise ValueError(f"tell got {len(archs)} archs but {len(results)} "
                       "results")
    _, cursor = walk(state, len(archs))
    return state.replace(cursor=cursor, num_told=state.num_told + len(archs))

  return Strategy(init, ask, tell)
