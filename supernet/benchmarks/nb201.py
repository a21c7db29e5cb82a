"""The NAS-Bench-201 table: accuracy and device latency of all 15,625 cells.

The package ships ``nb201.csv.gz`` (about 1.5 MB), converted from the public
NATS-Bench topology table (test accuracy after 200 epochs, mean over seeds) and
the HELP / HW-NAS-Bench latency table, which are index-aligned. One row per
benchmark index with the columns ``index, arch, cifar10, cifar100,
imagenet16`` and one ``<device>_ms`` column per device.

A different copy can be loaded with ``load_nb201(path)``: either a file in the
shipped format, or a directory holding the two original CSV files
(``nats_bench_tss_200ep_mean.csv`` and ``nb201_latency_help.csv``, as in
``../shared/data/nb201``). The shipped file is made by
:mod:`supernet.benchmarks.build_nb201`.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import os
from collections.abc import Sequence

import numpy as np

from supernet.errors import UserError
from supernet.spaces.base import Arch
from supernet.spaces.nb201 import EDGES, OPS, Nb201Arch

SHIPPED_FILE = os.path.join(os.path.dirname(__file__), "nb201.csv.gz")
ACCURACY_FILE = "nats_bench_tss_200ep_mean.csv"
LATENCY_FILE = "nb201_latency_help.csv"
# Our dataset names -> column of the NATS-Bench accuracy file.
DATASETS: dict[str, str] = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16": "ImageNetTestAccuracy200Epochs",
}
NUM_ARCHS = len(OPS) ** len(EDGES)
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
# Weight of each edge's op in the token code (first edge most significant, so
# code order is the order of ``SearchSpace.enumerate``).
_RADIX = len(OPS) ** np.arange(len(EDGES) - 1, -1, -1)


def cell_tokens(cell: str) -> tuple[int, ...]:
  """Tokens of a benchmark string, in ``EDGES`` order (no validation)."""
  return tuple(_OP_INDEX[part.split("~")[0]] for node in cell.split("+")
               for part in node.strip("|").split("|"))


@dataclasses.dataclass(frozen=True, eq=False)
class Nb201Table:
  """All NAS-Bench-201 cells, in benchmark index order.

  Attributes:
    archs: the benchmark string of every index.
    accuracy: dataset name -> test accuracy (percent) of every index.
    latency: device name (without ``_ms``) -> latency in ms of every index.
    index_of_code: token code (``sum(token * 5**(5-edge))``) -> benchmark index.
  """

  archs: tuple[str, ...]
  accuracy: dict[str, np.ndarray]
  latency: dict[str, np.ndarray]
  index_of_code: np.ndarray

  @property
  def devices(self) -> tuple[str, ...]:
    """Names of the latency columns."""
    return tuple(self.latency)

  def index(self, arch: Arch | Sequence[int]) -> int:
    """Benchmark index of an architecture (or of its six tokens)."""
    if isinstance(arch, Nb201Arch):
      tokens = [_OP_INDEX.get(op, -1) for op in arch.ops]
    elif isinstance(arch, Arch):
      raise UserError(f"the NAS-Bench-201 table holds nb201 cells, not "
                      f"{getattr(arch, 'space', '?')!r} architectures")
    else:
      tokens = list(arch)
    if len(tokens) != len(EDGES) or min(tokens) < 0:
      raise UserError(f"not an nb201 cell: {arch!r}")
    return int(self.index_of_code[int(np.dot(tokens, _RADIX))])

  def accuracy_column(self, dataset: str) -> np.ndarray:
    """Accuracy of every index on ``dataset``; unknown names fail clearly."""
    if dataset not in self.accuracy:
      raise UserError(f"unknown NAS-Bench-201 dataset {dataset!r}; valid: "
                      f"{sorted(self.accuracy)}")
    return self.accuracy[dataset]

  def latency_column(self, device: str) -> np.ndarray:
    """Latency (ms) of every index on ``device``; unknown names fail clearly."""
    name = device[:-3] if device.endswith("_ms") else device
    if name not in self.latency:
      raise UserError(f"unknown NAS-Bench-201 latency device {device!r}; "
                      f"valid: {sorted(self.latency)}")
    return self.latency[name]

  def arch(self, index: int) -> Nb201Arch:
    """The architecture value of a benchmark index."""
    return Nb201Arch(tuple(OPS[t] for t in cell_tokens(self.archs[index])))

  def optimum(self, dataset: str, device: str | None = None,
              max_latency_ms: float | None = None) -> int:
    """Index of the most accurate cell, optionally under a latency budget.

    Args:
      dataset: accuracy column to maximise.
      device: latency column the budget applies to (needed with the budget).
      max_latency_ms: keep only cells with ``latency <= max_latency_ms``.

    Returns:
      The benchmark index of the best cell (lowest index on ties).
    """
    acc = self.accuracy_column(dataset)
    if max_latency_ms is None:
      return int(np.argmax(acc))
    if device is None:
      raise UserError("a latency budget needs a device")
    ok = self.latency_column(device) <= max_latency_ms
    if not ok.any():
      raise UserError(f"no NAS-Bench-201 cell runs within {max_latency_ms} ms "
                      f"on {device}")
    return int(np.argmax(np.where(ok, acc, -np.inf)))


def _table_from_rows(archs: list[str], acc: dict[str, list[float]],
                     lat: dict[str, list[float]], where: str) -> Nb201Table:
  if len(archs) != NUM_ARCHS:
    raise UserError(f"{where}: expected {NUM_ARCHS} architectures, found "
                    f"{len(archs)}")
  try:
    codes = np.array([cell_tokens(a) for a in archs]) @ _RADIX
  except (KeyError, IndexError, ValueError):
    raise UserError(f"{where}: malformed architecture strings") from None
  index_of_code = np.full(NUM_ARCHS, -1, np.int64)
  index_of_code[codes] = np.arange(NUM_ARCHS)
  if (index_of_code < 0).any():
    raise UserError(f"{where}: architectures are not all distinct")
  return Nb201Table(
      archs=tuple(archs),
      accuracy={k: np.asarray(v, np.float64) for k, v in acc.items()},
      latency={k: np.asarray(v, np.float64) for k, v in lat.items()},
      index_of_code=index_of_code)


def _read_shipped(path: str) -> Nb201Table:
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rt", newline="") as f:
      rows = list(csv.reader(f))
  except (OSError, EOFError, UnicodeDecodeError) as e:
    raise UserError(f"cannot read NAS-Bench-201 table {path}: {e}") from None
  header = rows[0] if rows else []
  if header[:2] != ["index", "arch"] or not all(d in header for d in DATASETS):
    raise UserError(f"{path} is not a NAS-Bench-201 table (expected columns "
                    f"index, arch, {', '.join(DATASETS)}, <device>_ms...)")
  body = rows[1:]
  col = {name: j for j, name in enumerate(header)}
  try:
    acc = {d: [float(r[col[d]]) for r in body] for d in DATASETS}
    lat = {h[:-3]: [float(r[j]) for r in body]
           for h, j in col.items() if h.endswith("_ms")}
  except (ValueError, IndexError):
    raise UserError(f"{path}: non-numeric or missing values") from None
  return _table_from_rows([r[1] for r in body], acc, lat, path)


def read_original_csvs(directory: str) -> Nb201Table:
  """Reads the two original CSV files of ``directory`` (see module doc)."""
  paths = [os.path.join(directory, n) for n in (ACCURACY_FILE, LATENCY_FILE)]
  for p in paths:
    if not os.path.isfile(p):
      raise UserError(f"NAS-Bench-201 directory {directory} lacks {p}")
  with open(paths[0], newline="") as f:
    acc_rows = list(csv.DictReader(f))
  with open(paths[1], newline="") as f:
    lat_rows = list(csv.DictReader(f))
  if len(acc_rows) != len(lat_rows):
    raise UserError(f"{directory}: accuracy and latency tables differ in "
                    "length")
  try:
    if any(int(r["index"]) != i for i, r in enumerate(lat_rows)):
      raise UserError(f"{paths[1]}: rows are not in index order")
    acc = {d: [float(r[c]) for r in acc_rows] for d, c in DATASETS.items()}
    lat = {h[:-3]: [float(r[h]) for r in lat_rows]
           for h in lat_rows[0] if h.endswith("_ms")}
    archs = [r["ArchitectureString"] for r in acc_rows]
  except (KeyError, ValueError) as e:
    raise UserError(f"{directory}: unexpected CSV content ({e})") from None
  return _table_from_rows(archs, acc, lat, directory)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> Nb201Table:
  if os.path.isdir(path):
    return read_original_csvs(path)
  if not os.path.isfile(path):
    raise UserError(f"NAS-Bench-201 table not found: {path}")
  return _read_shipped(path)


def load_nb201(path: str | os.PathLike | None = None) -> Nb201Table:
  """Loads (once per process) the NAS-Bench-201 table.

  Args:
    path: ``None`` or ``""`` for the copy shipped in the package; a file in
      the shipped format; or a directory with the two original CSV files.

  Returns:
    The table. Problems with the files raise a one-line ``UserError``.
  """
  path = os.path.abspath(os.fspath(path)) if path else SHIPPED_FILE
  return _load_cached(path)
