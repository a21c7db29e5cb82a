"""The strategy interface: pure ``init / ask / tell`` over explicit state.

A strategy is a NamedTuple of three pure functions, like an optax
``GradientTransformation``::

  strategy = regularized_evolution(population_size=20, sample_size=5)
  state = strategy.init(key, space)
  archs = strategy.ask(state, key_t)                 # a batch of candidates
  state = strategy.tell(state, archs, evaluate(archs))

Hyper-parameters (and a hard ``constraint(arch) -> bool``) are fixed when the
strategy is built. The state is a pytree whose *structure* depends only on the
strategy, its hyper-parameters and the space (which it carries as static
metadata), never on progress; its leaves are NumPy/JAX arrays and Python
numbers. So a state is saved as its list of leaves (see ``state_io``) and
restored into the structure of a fresh ``init``.

``ask`` never changes the state: asking twice with the same key gives the same
candidates, and everything a strategy learns arrives through ``tell``.

Strategies that do not propose tokens fit the same shape: compound scaling asks
for scaling coefficients inside ``ask`` and returns the architectures the
(elastic) space builds from them. A search that runs by itself, such as
differentiable (DARTS) search, is a :class:`OneShot` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace

Result = dict[str, Any]
Constraint = Callable[[Arch], bool]
State = Any


class Strategy(NamedTuple):
  """An iterative search strategy: three pure functions over explicit state.

  Attributes:
    init: ``(key, space) -> state``.
    ask: ``(state, key) -> list[Arch]``, a batch of candidates (empty when the
      strategy has nothing left to propose, e.g. an exhausted grid).
    tell: ``(state, archs, results) -> state``; ``results[i]`` is the dict
      the evaluator returned for ``archs[i]`` (at least ``accuracy``). A
      prefix of the asked batch may be told (the budget ran out).
  """

  init: Callable[[jax.Array, SearchSpace], State]
  ask: Callable[[State, jax.Array], list[Arch]]
  tell: Callable[[State, Sequence[Arch], Sequence[Result]], State]


class OneShot(NamedTuple):
  """A search that runs by itself and returns what it evaluated.

  Attributes:
    run: ``(config, space, key) -> list[(arch, result)]``, e.g. a
      differentiable search returning its derived architecture(s).
    config: the strategy's own config section, passed to ``run``.
  """

  run: Callable[[ml_collections.ConfigDict, SearchSpace, jax.Array],
                list[tuple[Arch, Result]]]
  config: ml_collections.ConfigDict


def raw_key(key: jax.Array | np.ndarray) -> np.ndarray:
  """The ``uint32`` data of a PRNG key as a host array (raw legacy key)."""
  if isinstance(key, jax.Array) and jax.dtypes.issubdtype(
      key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return np.asarray(key, dtype=np.uint32).reshape(-1)


def fold_in_host(key: jax.Array | np.ndarray, data: int) -> np.ndarray:
  """Like ``jax.random.fold_in`` but computed on the host with NumPy.

  Search loops derive one key per ask; ``jax.random.fold_in`` costs about half
  a millisecond of dispatch on CPU, which dominates a tabular search. The
  result is a raw ``uint32[2]`` key, valid wherever a JAX key is.

  Args:
    key: a typed or raw PRNG key.
    data: the integer to fold in (e.g. the ask number).

  Returns:
    A new raw key, a deterministic function of ``(key, data)``.
  """
  seed = [int(v) for v in raw_key(key)] + [int(data)]
  return np.random.default_rng(seed).integers(
      0, 2**32, size=2, dtype=np.uint64).astype(np.uint32)


def host_key(rng: np.random.Generator) -> np.ndarray:
  """A fresh raw PRNG key drawn from a NumPy generator (no JAX dispatch)."""
  return rng.integers(0, 2**32, size=2, dtype=np.uint64).astype(np.uint32)


def tokens_of(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
  """``int32[len(archs), num_tokens]`` token matrix of ``archs``."""
  width = len(space.cardinalities())
  if not archs:
    return np.zeros((0, width), np.int32)
  return np.asarray([space.encode(a) for a in archs], np.int32).reshape(
      len(archs), width)


def accuracies_of(archs: Sequence[Arch], results: Sequence[Result]
                  ) -> np.ndarray:
  """``float64`` accuracies of ``results``, checking they match ``archs``."""
  if len(archs) != len(results):
    raise ValueError(f"tell got {len(archs)} archs but {len(results)} results")
  try:
    return np.asarray([float(r["accuracy"]) for r in results], np.float64)
  except (KeyError, TypeError):
    raise UserError("evaluator results must be dicts with an 'accuracy' "
                    "field") from None


def propose(rng: np.random.Generator, make: Callable[[np.ndarray], Arch],
            constraint: Constraint | None, max_tries: int, *,
            fallbacks: Sequence[Callable[[np.ndarray], Arch]] = (),
            reject: Callable[[Arch], bool] | None = None,
            patience: int = 20) -> Arch:
  """Draws candidates until one meets the constraint (and is not rejected).

  Candidates that violate the constraint are redrawn, never returned, so they
  are never evaluated.

  Args:
    rng: host generator; each draw gets a fresh key from it.
    make: ``key -> arch``, e.g. a mutation of a fixed parent.
    constraint: hard constraint, or ``None``.
    max_tries: draws of each maker that may violate the constraint before
      moving on to the next maker.
    fallbacks: makers tried in turn when the previous one keeps failing (a
      parent whose every neighbour violates the constraint falls back to
      random sampling).
    reject: soft filter (e.g. already evaluated). A maker whose draws are
      rejected ``patience`` times gives way to the next; when every maker
      is exhausted, the last rejected candidate that meets the constraint is
      returned rather than failing.
    patience: rejected draws allowed per maker.

  Returns:
    An architecture that meets ``constraint``.
  """
  spare = None
  for maker in (make, *fallbacks):
    rejected = 0
    for _ in range(max_tries):
      arch = maker(host_key(rng))
      if constraint is not None and not constraint(arch):
        continue
      if reject is not None and reject(arch):
        spare = arch
        rejected += 1
        if rejected >= patience:
          break
        continue
      return arch
  if spare is not None:
    return spare
  raise UserError(f"no architecture meeting the constraint found in "
                  f"{max_tries} tries; loosen the constraint")


def sample_valid(space: SearchSpace, rng: np.random.Generator,
                 constraint: Constraint | None, max_tries: int,
                 reject: Callable[[Arch], bool] | None = None) -> Arch:
  """A uniform sample of ``space`` that meets ``constraint``."""
  return propose(rng, space.sample, constraint, max_tries, reject=reject)


def check_positive(name: str, value: Any, minimum: int = 1) -> int:
  """``value`` as an int ``>= minimum`` or a ``UserError`` naming it."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (
      value < minimum):
    raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0
                   ) -> float:
  """``value`` as a float in ``[low, high]`` or a ``UserError`` naming it."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
      low <= value <= high):
    raise UserError(f"{name} must be a number in [{low}, {high}], got "
                    f"{value!r}")
  return float(value)
