"""The NAS-Bench-201 cell space (Dong & Yang, 2020).

A cell has 4 nodes; node j sums one operation on every edge from an earlier
node, 6 edges in all, each choosing among 5 operations: 15,625 cells. The
architecture string is the benchmark's own, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace, check_token

# Column order of the architecture parameters and token values.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                        "avg_pool_3x3")
NUM_NODES = 4
# (target node, source node) of each edge, in the benchmark's string order.
EDGES: tuple[tuple[int, int], ...] = tuple(
    (j, i) for j in range(1, NUM_NODES) for i in range(j))


@dataclasses.dataclass(frozen=True)
class Nb201Arch(Arch):
  """One NAS-Bench-201 cell: the op on each of the 6 edges, in EDGES order."""

  ops: tuple[str, ...]
  space: ClassVar[str] = "nb201"

  @property
  def cell(self) -> str:
    """The benchmark's architecture string."""
    nodes = []
    for j in range(1, NUM_NODES):
      nodes.append("|" + "|".join(
          f"{self.ops[k]}~{i}" for k, (t, i) in enumerate(EDGES) if t == j) + "|")
    return "+".join(nodes)

  def to_json(self) -> dict[str, Any]:
    return {"space": self.space, "cell": self.cell}

  @classmethod
  def from_string(cls, cell: str) -> Nb201Arch:
    """Parses the benchmark string; raises ``UserError`` naming the problem."""
    if not isinstance(cell, str):
      raise UserError(f"nb201 arch: 'cell' must be a string, got {cell!r}")
    nodes = cell.split("+")
    if len(nodes) != NUM_NODES - 1:
      raise UserError(f"nb201 arch: expected {NUM_NODES - 1} nodes separated by "
                      f"'+', got {len(nodes)} in {cell!r}")
    ops = []
    for j, node in enumerate(nodes, start=1):
      parts = [p for p in node.strip("|").split("|")]
      if not (node.startswith("|") and node.endswith("|")) or len(parts) != j:
        raise UserError(f"nb201 arch: node {j} must list {j} edge(s) as "
                        f"|op~input|, got {node!r}")
      for i, part in enumerate(parts):
        op, sep, src = part.partition("~")
        if not sep or src != str(i):
          raise UserError(f"nb201 arch: edge {part!r} of node {j} must read "
                          f"op~{i}")
        check_token(op, OPS, f"nb201 arch: op of edge {i}->{j}")
        ops.append(op)
    return cls(tuple(ops))


class Nb201Space(SearchSpace):
  """6 tokens with 5 choices each, in the benchmark's edge order."""

  name: ClassVar[str] = "nb201"

  def cardinalities(self) -> tuple[int, ...]:
    return (len(OPS),) * len(EDGES)

  def token_names(self) -> tuple[str, ...]:
    return tuple(f"edge{i}->{j}" for j, i in EDGES)

  def encode(self, arch: Arch) -> tuple[int, ...]:
    if not isinstance(arch, Nb201Arch):
      raise UserError(f"expected an nb201 arch, got {type(arch).__name__}")
    if len(arch.ops) != len(EDGES):
      raise UserError(f"nb201 arch: expected {len(EDGES)} edges, got "
                      f"{len(arch.ops)}")
    return tuple(check_token(op, OPS, "nb201 op") for op in arch.ops)

  def decode(self, tokens: Sequence[int]) -> Nb201Arch:
    if len(tokens) != len(EDGES):
      raise UserError(f"nb201 space expects {len(EDGES)} tokens")
    return Nb201Arch(tuple(OPS[int(t)] for t in tokens))

  def arch_from_json(self, doc: dict[str, Any]) -> Nb201Arch:
    if "cell" not in doc:
      raise UserError("nb201 arch: missing field 'cell'")
    return Nb201Arch.from_string(doc["cell"])

  def largest(self) -> Nb201Arch:
    return Nb201Arch(("nor_conv_3x3",) * len(EDGES))

  def smallest(self) -> Nb201Arch:
    return Nb201Arch(("none",) * len(EDGES))
