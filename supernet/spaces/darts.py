"""The DARTS cell search space (Liu et al., 2019).

A cell has two inputs (nodes 0 and 1: the outputs of the two previous cells)
and four intermediate nodes (2..5). In the supernet every intermediate node sums
a mixed operation over *every* earlier node (2+3+4+5 = 14 edges). A derived
cell keeps two incoming edges per node, each with one operation, and the cell
output concatenates nodes 2..5.

The value type is :class:`Genotype` with the field names of the DARTS code, so a
published genotype such as ``DARTS_V2`` loads from ``arch.json`` as it is.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace, check_token

# Order matters: it is the column order of the architecture parameters.
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
# Operations a derived cell may use: everything but ``none``.
CELL_OPS: tuple[str, ...] = PRIMITIVES[1:]
NUM_NODES = 4   # intermediate nodes per cell
NUM_EDGES = sum(range(2, 2 + NUM_NODES))  # 14 mixed edges per cell
CONCAT: tuple[int, ...] = tuple(range(2, 2 + NUM_NODES))

Pair = tuple[str, int]


def edge_index(node: int, source: int) -> int:
  """Row of the alpha matrix for the edge ``source -> node`` (node in 0..3)."""
  return sum(range(2, 2 + node)) + source


@dataclasses.dataclass(frozen=True)
class Genotype(Arch):
  """A derived DARTS cell pair (the DARTS repository's ``Genotype``)."""

  normal: tuple[Pair, ...]
  normal_concat: tuple[int, ...]
  reduce: tuple[Pair, ...]
  reduce_concat: tuple[int, ...]
  space: ClassVar[str] = "darts"

  def to_json(self) -> dict[str, Any]:
    return {
        "space": self.space,
        "normal": [[op, i] for op, i in self.normal],
        "normal_concat": list(self.normal_concat),
        "reduce": [[op, i] for op, i in self.reduce],
        "reduce_concat": list(self.reduce_concat),
    }


def _pairs_from_json(value: Any, field: str) -> tuple[Pair, ...]:
  if not isinstance(value, (list, tuple)):
    raise UserError(f"darts arch: {field!r} must be a list of [op, input] pairs")
  if len(value) != 2 * NUM_NODES:
    raise UserError(f"darts arch: {field!r} has {len(value)} edges, expected "
                    f"{2 * NUM_NODES} (two per intermediate node)")
  pairs = []
  for k, item in enumerate(value):
    if (not isinstance(item, (list, tuple)) or len(item) != 2
        or not isinstance(item[0], str) or isinstance(item[1], bool)
        or not isinstance(item[1], int)):
      raise UserError(f"darts arch: {field}[{k}] must be [op_name, input_index]"
                      f", got {item!r}")
    op, src = item
    if op not in PRIMITIVES:
      raise UserError(f"darts arch: unknown op {op!r} in {field}[{k}]; valid "
                      f"ops: {list(CELL_OPS)}")
    if op == "none":
      raise UserError(f"darts arch: op 'none' in {field}[{k}] is not allowed in "
                      "a derived cell")
    node = k // 2
    if not 0 <= src < node + 2:
      raise UserError(f"darts arch: {field}[{k}] input index {src} out of range"
                      f" for node {node + 2} (valid: 0..{node + 1})")
    pairs.append((op, src))
  return tuple(pairs)


def _concat_from_json(value: Any, field: str) -> tuple[int, ...]:
  if list(value or []) != list(CONCAT):
    raise UserError(f"darts arch: {field!r} must be {list(CONCAT)}, got {value!r}")
  return CONCAT


class DartsSpace(SearchSpace):
  """Derived DARTS cells, tokenised per node as (input pair, op, op)."""

  name: ClassVar[str] = "darts"

  def __init__(self) -> None:
    self._pairs = [list(itertools.combinations(range(n + 2), 2))
                   for n in range(NUM_NODES)]

  def cardinalities(self) -> tuple[int, ...]:
    cards = []
    for _ in ("normal", "reduce"):
      for n in range(NUM_NODES):
        cards += [len(self._pairs[n]), len(CELL_OPS), len(CELL_OPS)]
    return tuple(cards)

  def token_names(self) -> tuple[str, ...]:
    names = []
    for cell in ("normal", "reduce"):
      for n in range(NUM_NODES):
        names += [f"{cell}.node{n + 2}.inputs", f"{cell}.node{n + 2}.op_a",
                  f"{cell}.node{n + 2}.op_b"]
    return tuple(names)

  def _encode_cell(self, pairs: Sequence[Pair], field: str) -> list[int]:
    tokens = []
    for n in range(NUM_NODES):
      (op_a, a), (op_b, b) = sorted(pairs[2 * n:2 * n + 2], key=lambda p: p[1])
      if a == b:
        raise UserError(f"darts arch: node {n + 2} of {field!r} takes input {a}"
                        " twice; the DARTS space keeps two distinct edges")
      tokens += [self._pairs[n].index((a, b)),
                 check_token(op_a, CELL_OPS, f"darts arch {field} op"),
                 check_token(op_b, CELL_OPS, f"darts arch {field} op")]
    return tokens

  def encode(self, arch: Arch) -> tuple[int, ...]:
    if not isinstance(arch, Genotype):
      raise UserError(f"expected a darts Genotype, got {type(arch).__name__}")
    return tuple(self._encode_cell(arch.normal, "normal")
                 + self._encode_cell(arch.reduce, "reduce"))

  def decode(self, tokens: Sequence[int]) -> Genotype:
    tokens = list(tokens)
    if len(tokens) != len(self.cardinalities()):
      raise UserError(f"darts space expects {len(self.cardinalities())} tokens")
    cells = []
    for c in range(2):
      pairs = []
      for n in range(NUM_NODES):
        p, oa, ob = tokens[(c * NUM_NODES + n) * 3:(c * NUM_NODES + n) * 3 + 3]
        a, b = self._pairs[n][p]
        pairs += [(CELL_OPS[oa], a), (CELL_OPS[ob], b)]
      cells.append(tuple(pairs))
    return Genotype(cells[0], CONCAT, cells[1], CONCAT)

  def arch_from_json(self, doc: dict[str, Any]) -> Genotype:
    missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat")
               if k not in doc]
    if missing:
      raise UserError(f"darts arch: missing field(s) {missing}")
    g = Genotype(_pairs_from_json(doc["normal"], "normal"),
                 _concat_from_json(doc["normal_concat"], "normal_concat"),
                 _pairs_from_json(doc["reduce"], "reduce"),
                 _concat_from_json(doc["reduce_concat"], "reduce_concat"))
    return g


def _genotype(normal, reduce) -> Genotype:
  return Genotype(tuple(normal), CONCAT, tuple(reduce), CONCAT)


# Published genotypes (cells as printed in the DARTS and PC-DARTS papers' code).
DARTS_V1 = _genotype(
    [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0),
     ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
     ("sep_conv_3x3", 0), ("skip_connect", 2)],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2),
     ("max_pool_3x3", 0), ("max_pool_3x3", 0), ("skip_connect", 2),
     ("skip_connect", 2), ("avg_pool_3x3", 0)])
DARTS_V2 = _genotype(
    [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
     ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 0),
     ("skip_connect", 0), ("dil_conv_3x3", 2)],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2),
     ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("skip_connect", 2),
     ("skip_connect", 2), ("max_pool_3x3", 1)])
PC_DARTS = _genotype(
    [("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0),
     ("dil_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 1),
     ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
    [("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1),
     ("sep_conv_5x5", 2), ("sep_conv_3x3", 0), ("sep_conv_3x3", 3),
     ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)])
PUBLISHED_GENOTYPES: dict[str, Genotype] = {
    "DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "PC_DARTS": PC_DARTS}
