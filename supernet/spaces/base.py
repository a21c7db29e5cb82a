"""Search spaces as values.

A search space is a fixed list of categorical decisions ("tokens"). An
architecture (``Arch``) is a frozen, hashable value; every space maps it to and
from a tuple of integer tokens, which is what strategies, controllers,
predictors and masks work with. Sampling, mutation and enumeration are written
once here over tokens, so every space gets them for free.

Randomness is explicit: every random function takes a ``jax.random`` key and
derives a NumPy generator from it, so results are reproducible from the key and
cheap on the host (strategies call them thousands of times).
"""

from __future__ import annotations

import abc
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import jax
import numpy as np

from supernet.errors import UserError


class Arch(abc.ABC):
  """Base class of architecture values (frozen dataclasses in each space)."""

  space: ClassVar[str]

  @abc.abstractmethod
  def to_json(self) -> dict[str, Any]:
    """Returns the ``arch.json`` document of this architecture."""

  def dumps(self) -> str:
    """One-line JSON text of :meth:`to_json`."""
    return json.dumps(self.to_json())


def numpy_rng(key: jax.Array) -> np.random.Generator:
  """A NumPy generator seeded deterministically from a JAX PRNG key."""
  data = np.asarray(jax.random.key_data(key) if jax.dtypes.issubdtype(
      key.dtype, jax.dtypes.prng_key) else key, dtype=np.uint32).ravel()
  return np.random.default_rng([int(v) for v in data])


class SearchSpace(abc.ABC):
  """A space of architectures described by categorical tokens.

  Subclasses define ``name``, :meth:`cardinalities`, :meth:`encode`,
  :meth:`decode`, :meth:`arch_from_json` and may override :meth:`validate`,
  :meth:`largest` and :meth:`smallest`.
  """

  name: ClassVar[str]

  # ---- what each space defines -------------------------------------------
  @abc.abstractmethod
  def cardinalities(self) -> tuple[int, ...]:
    """Number of choices of each token, in encoding order."""

  @abc.abstractmethod
  def encode(self, arch: Arch) -> tuple[int, ...]:
    """Maps an architecture to its tokens (one int per decision)."""

  @abc.abstractmethod
  def decode(self, tokens: Sequence[int]) -> Arch:
    """Maps tokens back to an architecture (inverse of :meth:`encode`)."""

  @abc.abstractmethod
  def arch_from_json(self, doc: dict[str, Any]) -> Arch:
    """Parses and validates an ``arch.json`` document; raises ``UserError``."""

  # ---- generic behaviour ---------------------------------------------------
  def token_names(self) -> tuple[str, ...]:
    """Human-readable name of every token (for controllers and reports)."""
    return tuple(f"t{i}" for i in range(len(self.cardinalities())))

  def validate(self, arch: Arch) -> Arch:
    """Returns ``arch`` if it belongs to this space, else raises ``UserError``."""
    if getattr(arch, "space", None) != self.name:
      raise UserError(f"architecture of space {getattr(arch, 'space', '?')!r} "
                      f"given to space {self.name!r}")
    self.encode(arch)  # encode raises UserError on an unknown choice
    return arch

  def size(self) -> int:
    """Number of token combinations (an upper bound on distinct archs)."""
    return math.prod(self.cardinalities())

  def sample(self, key: jax.Array) -> Arch:
    """A uniformly random architecture (uniform over tokens)."""
    rng = numpy_rng(key)
    return self.decode([int(rng.integers(c)) for c in self.cardinalities()])

  def sample_many(self, key: jax.Array, n: int) -> list[Arch]:
    """``n`` independent uniform samples, cheaper than ``n`` calls."""
    rng = numpy_rng(key)
    cards = np.asarray(self.cardinalities())
    tokens = rng.integers(0, cards, size=(n, len(cards)))
    return [self.decode([int(t) for t in row]) for row in tokens]

  def mutate(self, key: jax.Array, arch: Arch, rate: float | None = None
             ) -> Arch:
    """Changes tokens of ``arch`` to other values.

    Args:
      key: PRNG key.
      arch: the parent architecture.
      rate: probability of resampling each token. ``None`` changes exactly
        one token (to a different value), as regularised evolution does.

    Returns:
      A new architecture (never equal to ``arch`` when ``rate`` is None and the
      space has a token with more than one choice).
    """
    rng = numpy_rng(key)
    tokens = list(self.encode(arch))
    cards = self.cardinalities()
    if rate is None:
      mutable = [i for i, c in enumerate(cards) if c > 1]
      if not mutable:
        return arch
      i = int(rng.choice(mutable))
      new = int(rng.integers(cards[i] - 1))
      tokens[i] = new if new < tokens[i] else new + 1
    else:
      for i, c in enumerate(cards):
        if rng.random() < rate:
          tokens[i] = int(rng.integers(c))
    return self.decode(tokens)

  def enumerate(self) -> Iterator[Arch]:
    """Every architecture of the space in token order (for grid search)."""
    for tokens in itertools.product(*(range(c) for c in self.cardinalities())):
      yield self.decode(tokens)

  def one_hot(self, arch: Arch) -> np.ndarray:
    """Concatenated one-hot encoding of the tokens (for predictors)."""
    parts = []
    for t, c in zip(self.encode(arch), self.cardinalities()):
      v = np.zeros(c, np.float32)
      v[t] = 1.0
      parts.append(v)
    return np.concatenate(parts)

  def largest(self) -> Arch:
    """The largest architecture (by default: every token at its last choice)."""
    return self.decode([c - 1 for c in self.cardinalities()])

  def smallest(self) -> Arch:
    """The smallest architecture (by default: every token at choice 0)."""
    return self.decode([0] * len(self.cardinalities()))


def check_token(value: Any, allowed: Sequence[Any], what: str) -> int:
  """Index of ``value`` in ``allowed`` or a ``UserError`` naming the field."""
  try:
    return list(allowed).index(value)
  except ValueError:
    raise UserError(f"{what}: {value!r} is not one of {list(allowed)}") from None
