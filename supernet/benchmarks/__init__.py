"""Tabular benchmarks shipped with the package (NAS-Bench-201)."""

from supernet.benchmarks.nb201 import DATASETS, Nb201Table, load_nb201

__all__ = ["DATASETS", "Nb201Table", "load_nb201"]
