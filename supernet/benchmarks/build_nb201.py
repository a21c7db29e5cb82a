"""Builds the shipped ``nb201.csv.gz`` from the original NAS-Bench-201 CSVs.

Usage (from the repository root)::

  python -m supernet.benchmarks.build_nb201 ../shared/data/nb201 \\
      supernet/benchmarks/nb201.csv.gz

Accuracies keep 6 decimals (the source values are means of 3 seeds, so this
loses nothing that matters); latencies keep 6 significant digits, as measured.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Sequence

from supernet.benchmarks.nb201 import DATASETS, Nb201Table, read_original_csvs


def write_table(table: Nb201Table, out_path: str) -> None:
  """Writes ``table`` in the shipped gzip CSV format (deterministic bytes).

  Args:
    table: the table to write.
    out_path: destination ``.csv.gz`` file.
  """
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  devices = list(table.latency)
  writer.writerow(["index", "arch", *DATASETS, *(f"{d}_ms" for d in devices)])
  for i, arch in enumerate(table.archs):
    writer.writerow([i, arch]
                    + [f"{table.accuracy[d][i]:.6f}" for d in DATASETS]
                    + [f"{table.latency[d][i]:.6g}" for d in devices])
  # mtime=0 so that regenerating the file does not change its bytes.
  with open(out_path, "wb") as raw, gzip.GzipFile(
      filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
    f.write(buf.getvalue().encode())


def main(argv: Sequence[str]) -> int:
  """Converts ``SRC_DIR`` (the original CSVs) into ``OUT.csv.gz``."""
  if len(argv) != 2:
    print(__doc__, file=sys.stderr)
    return 2
  write_table(read_original_csvs(argv[0]), argv[1])
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
