"""Comparison reports: ``report.md``, CSV files and PNG plots."""

from supernet.report.plots import (
    best_so_far,
    pareto_front,
    plot_best_so_far,
    plot_pareto,
)
from supernet.report.records import (
    Experiment,
    Reference,
    SearchRecord,
    arch_label,
)
from supernet.report.writer import write_report

__all__ = ["Experiment", "Reference", "SearchRecord", "arch_label",
           "best_so_far", "pareto_front", "plot_best_so_far", "plot_pareto",
           "write_report"]
