"""Search-space selection (TinyNAS): which width x resolution space to search.

For each variant of the elastic MobileNet space (one width multiplier and one
input resolution; depths, kernels and expand ratios stay elastic), sample
many sub-networks, keep those that fit the device, and compare the
distribution of the survivors' FLOPs. TinyNAS's heuristic: under the same
constraint, a space whose fitting models have more FLOPs holds more capable
models, so pick the variant with the highest mean FLOPs of survivors.

The constraint is any of (all that are set must hold):

* peak activation memory (SRAM) and parameters (flash), analytic
  (:func:`~supernet.elastic.layout.mbv_costs`, :func:`peak_activation_bytes`):
  no network runs, 1,000 samples per variant take about a second;
* latency on the current device, predicted by the measured lookup table of
  :mod:`supernet.costs.latency_lut` (each distinct block measured once,
  compiled and timed; the table is cached in the run directory, so a re-run
  measures nothing). Measuring is what takes time: about half a second per
  distinct block on 2 CPU cores, a few hundred blocks for a space.

``supernet search`` runs it through :func:`run_space_selection` when
``config.search.strategy == "space_selection"``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from supernet.elastic.layout import MbvLayout, mbv_costs, mbv_layout
from supernet.errors import UserError
from supernet.spaces.elastic import ElasticMbvArch, ElasticMobileNetSpace
from supernet.strategies.base import fold_in_host

# Files :func:`run_space_selection` writes in the run directory.
OUTPUTS = ("best_space.json", "table.csv", "report.md", "mflops_cdf.png",
           "arch.json")


def peak_activation_bytes(layout: MbvLayout, in_channels: int,
                          bytes_per_value: int = 1) -> int:
  """Peak memory of the activations alive at once, layer by layer.

  Each layer holds its input and its output; an MBConv block with a
  shortcut also keeps its input alive until the addition (the TinyNAS /
  MCUNet SRAM model; weights live in flash and are not counted).

  Args:
    layout: the sub-network.
    in_channels: image channels.
    bytes_per_value: bytes per activation (1 for int8 deployment).

  Returns:
    The peak, in bytes.
  """
  size = layout.resolution
  out = math.ceil(size / layout.stem_stride)
  peak = size * size * in_channels + out * out * layout.stem_channels
  size = out
  for b in layout.blocks:
    keep = size * size * b.in_channels if b.residual else 0
    inp = size * size * b.in_channels
    mid = size * size * b.mid_channels
    after = math.ceil(size / b.stride)
    mid_out = after * after * b.mid_channels
    proj = after * after * b.out_channels
    # expand (its input is the kept one), depthwise, project.
    peak = max(peak, inp + mid, keep + mid + mid_out, keep + mid_out + proj)
    size = after
  last = layout.blocks[-1].out_channels if layout.blocks else (
      layout.stem_channels)
  peak = max(peak, size * size * (last + layout.head_channels))
  return int(peak * bytes_per_value)


def variant_space(config: ml_collections.ConfigDict, width: float,
                  resolution: int) -> ElasticMobileNetSpace:
  """The elastic space of ``config`` with one width and one resolution."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  cfg.widths = (float(width),)
  cfg.resolutions = (int(resolution),)
  return ElasticMobileNetSpace.from_config(cfg)


def sample_costs(space: ElasticMobileNetSpace, num: int, key: Any,
                 in_channels: int, num_classes: int,
                 bytes_per_value: int = 1
                 ) -> tuple[list[ElasticMbvArch], dict[str, np.ndarray]]:
  """Samples ``num`` sub-networks and their costs (NumPy only).

  Args:
    space: a (variant) space.
    num: number of samples.
    key: PRNG key (raw or typed).
    in_channels: image channels.
    num_classes: classifier outputs.
    bytes_per_value: bytes per activation for the peak memory.

  Returns:
    ``(archs, {"macs", "params", "peak_bytes"})`` with ``int64[num]`` arrays.
  """
  archs = space.sample_many(key, num)
  macs, params, peak = [], [], []
  for arch in archs:
    layout = mbv_layout(space, arch)
    cost = mbv_costs(layout, in_channels, num_classes)
    macs.append(cost["macs"])
    params.append(cost["params"])
    peak.append(peak_activation_bytes(layout, in_channels, bytes_per_value))
  return archs, {"macs": np.asarray(macs, np.int64),
                 "params": np.asarray(params, np.int64),
                 "peak_bytes": np.asarray(peak, np.int64)}


def fits(costs: dict[str, np.ndarray], max_peak_bytes: float = 0.0,
         max_params: float = 0.0, max_latency_ms: float = 0.0) -> np.ndarray:
  """Boolean mask of the samples within the limits (0 means no limit).

  ``max_latency_ms`` needs a ``latency_ms`` entry in ``costs``.
  """
  ok = np.ones(len(costs["macs"]), bool)
  if max_peak_bytes:
    ok &= costs["peak_bytes"] <= max_peak_bytes
  if max_params:
    ok &= costs["params"] <= max_params
  if max_latency_ms:
    ok &= costs["latency_ms"] <= max_latency_ms
  return ok


def predict_latencies(space: ElasticMobileNetSpace,
                      archs: Sequence[ElasticMbvArch], table: Any,
                      in_channels: int, num_classes: int) -> np.ndarray:
  """Latency (ms) the lookup table predicts for each architecture.

  Args:
    space: the (variant) space of ``archs``.
    archs: its sub-networks.
    table: a :class:`~supernet.costs.latency_lut.LatencyTable` holding
      every block of ``archs`` (see :func:`latency_table`).
    in_channels: image channels.
    num_classes: classifier outputs.

  Returns:
    ``float64[len(archs)]``.
  """
  from supernet.costs.latency_lut import mbv_layout_specs, predict_latency
  return np.asarray([predict_latency(table, mbv_layout_specs(
      mbv_layout(space, a), in_channels, num_classes)) for a in archs])


def latency_table(samples: Sequence[tuple[ElasticMobileNetSpace,
                                          Sequence[ElasticMbvArch]]],
                  path: str, in_channels: int, num_classes: int,
                  warmup: int = 3, runs: int = 20, clock: str = "wall",
                  progress: bool = True) -> Any:
  """The latency lookup table of every block of the sampled sub-networks.

  Blocks missing from the cached table at ``path`` are measured on the
  current device (batch 1) and the table is saved back; a table measured
  elsewhere (another device, JAX version or clock) is re-measured.

  Args:
    samples: ``(space, archs)`` per variant.
    path: the table's JSON file (e.g. in the run directory).
    in_channels: image channels.
    num_classes: classifier outputs.
    warmup: untimed runs per block.
    runs: timed runs per block (median kept).
    clock: ``wall`` or ``process`` (see :mod:`supernet.costs.latency`).
    progress: show a progress bar while measuring.

  Returns:
    The :class:`~supernet.costs.latency_lut.LatencyTable`.
  """
  from supernet.costs.latency_lut import build_table, mbv_layout_specs
  specs = set()
  for space, archs in samples:
    for arch in archs:
      specs.update(mbv_layout_specs(mbv_layout(space, arch), in_channels,
                                    num_classes))
  return build_table(sorted(specs, key=repr), path, batch=1, warmup=warmup,
                     runs=runs, progress=progress, clock=clock)


def mflops(macs: np.ndarray) -> np.ndarray:
  """MFLOPs of MAC counts (one multiply-accumulate = 2 FLOPs)."""
  return 2.0 * np.asarray(macs, np.float64) / 1e6


def best_variant(rows: Sequence[dict[str, Any]]) -> int:
  """Index of the row with the highest mean MFLOPs of survivors.

  Rows without survivors never win; ties go to the first row.
  """
  means = [r["mean_mflops"] if r["survivors"] else -math.inf for r in rows]
  if not rows or means[int(np.argmax(means))] == -math.inf:
    raise UserError("no sub-network of any variant meets the constraint; "
                    "loosen search.constraint or add smaller variants")
  return int(np.argmax(means))


def run_space_selection(config: ml_collections.ConfigDict, workdir: str
                        ) -> ElasticMbvArch:
  """Compares the variants of ``config`` and writes the run directory.

  Config fields: ``seed``; ``space`` (an ``elastic_mbv`` space; its
  ``widths``/``resolutions`` are replaced per variant); ``data`` fields
  ``in_channels`` and ``num_classes`` under ``search``;
  ``search.strategy`` (``space_selection``), ``search.variants.widths``,
  ``search.variants.resolutions``, ``search.num_samples`` (1,000),
  ``search.constraint``: ``max_peak_kb``, ``max_params_k``,
  ``max_latency_ms`` (0: no limit), ``bytes_per_value`` (1, int8) and, for
  the latency, ``latency_runs`` (20), ``latency_warmup`` (3),
  ``latency_clock`` (``wall``) and ``latency_lut`` (the table's file; ``""``:
  ``RUN/latency_lut.json``).

  Writes ``RUN/config.json``, ``RUN/table.csv``, ``RUN/report.md``,
  ``RUN/mflops_cdf.png``, ``RUN/best_space.json`` (the chosen space config),
  ``RUN/arch.json`` (the surviving sub-network of the chosen space with
  the most FLOPs, a starting point for a search in it) and, with a latency
  limit, ``RUN/latency_lut.json``.

  Args:
    config: the experiment config.
    workdir: the run directory.

  Returns:
    The surviving sub-network of the chosen space with the most FLOPs.
  """
  from supernet.rundir import RunDir

  search = config.search
  variants = search.variants
  widths = [float(w) for w in variants.widths]
  resolutions = [int(r) for r in variants.resolutions]
  if not widths or not resolutions:
    raise UserError("search.variants needs widths and resolutions")
  num = int(search.get("num_samples", 1000))
  if num < 1:
    raise UserError(f"search.num_samples must be >= 1, got {num}")
  cons = search.get("constraint", ml_collections.ConfigDict())
  max_peak = float(cons.get("max_peak_kb", 0.0)) * 1024
  max_params = float(cons.get("max_params_k", 0.0)) * 1000
  bpv = int(cons.get("bytes_per_value", 1))
  max_latency = float(cons.get("max_latency_ms", 0.0))
  if max_latency < 0:
    raise UserError(f"search.constraint.max_latency_ms must be >= 0, got "
                    f"{max_latency}")
  if max_latency:
    from supernet.costs.latency import check_clock
    clock = str(cons.get("latency_clock", "wall"))
    check_clock(clock)
  in_channels = int(search.get("in_channels", 1))
  num_classes = int(search.get("num_classes", 10))
  spaces = [(w, r, variant_space(config.space, w, r))
            for w in widths for r in resolutions]  # fail before writing
  run = RunDir(workdir, config, "search")
  run.close()

  samples = [sample_costs(space, num, fold_in_host(
      np.asarray([0, int(config.seed)], np.uint32), i), in_channels,
      num_classes, bpv) for i, (_, _, space) in enumerate(spaces)]
  table = None
  if max_latency:
    path = cons.get("latency_lut", "") or run.path("latency_lut.json")
    table = latency_table(
        [(space, archs) for (_, _, space), (archs, _) in zip(spaces, samples)],
        os.path.expanduser(path), in_channels, num_classes,
        warmup=int(cons.get("latency_warmup", 3)),
        runs=int(cons.get("latency_runs", 20)), clock=clock)
    for (_, _, space), (archs, costs) in zip(spaces, samples):
      costs["latency_ms"] = predict_latencies(space, archs, table,
                                              in_channels, num_classes)

  rows, survivors, best_archs = [], {}, {}
  for (w, r, _), (archs, costs) in zip(spaces, samples):
    ok = fits(costs, max_peak, max_params, max_latency)
    flops = mflops(costs["macs"])[ok]
    label = f"w{w:g}-r{r}"
    survivors[label] = flops
    if ok.any():
      best_archs[label] = archs[int(np.flatnonzero(ok)[np.argmax(flops)])]
    rows.append({
        "variant": label, "width": w, "resolution": r, "sampled": num,
        "survivors": int(ok.sum()), "survivor_fraction": float(ok.mean()),
        "mean_mflops": float(flops.mean()) if ok.any() else float("nan"),
        "median_mflops": float(np.median(flops)) if ok.any() else float("nan"),
        "max_mflops": float(flops.max()) if ok.any() else float("nan"),
        "min_peak_kb": float(costs["peak_bytes"].min()) / 1024,
        "min_params_k": float(costs["params"].min()) / 1000})
    if table is not None:
      rows[-1]["min_latency_ms"] = float(costs["latency_ms"].min())
      rows[-1]["median_latency_ms"] = float(np.median(costs["latency_ms"]))
  best = best_variant(rows)
  for i, row in enumerate(rows):
    row["selected"] = i == best
  chosen = rows[best]
  arch = best_archs[chosen["variant"]]
  _write_table(run.path("table.csv"), rows)
  _plot_cdf(run.path("mflops_cdf.png"), survivors, chosen["variant"])
  space_doc = config.space.to_dict()
  space_doc.update(widths=[chosen["width"]], resolutions=[chosen["resolution"]])
  for k, v in space_doc.items():
    if isinstance(v, tuple):
      space_doc[k] = list(v)
  with open(run.path("best_space.json"), "w") as f:
    json.dump({"variant": chosen["variant"], "width": chosen["width"],
               "resolution": chosen["resolution"],
               "mean_mflops": chosen["mean_mflops"],
               "survivor_fraction": chosen["survivor_fraction"],
               "constraint": {"max_peak_kb": max_peak / 1024,
                              "max_params_k": max_params / 1000,
                              "max_latency_ms": max_latency,
                              "bytes_per_value": bpv},
               "space": space_doc}, f, indent=1)
    f.write("\n")
  with open(run.path("arch.json"), "w") as f:
    json.dump(arch.to_json(), f, indent=1)
    f.write("\n")
  _write_report(run.path("report.md"), rows, chosen, max_peak, max_params,
                bpv, num, max_latency, table)
  for line in summary_lines(rows):
    print(line)
  return arch


def _write_table(path: str, rows: Sequence[dict[str, Any]]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _plot_cdf(path: str, survivors: dict[str, np.ndarray], chosen: str
              ) -> None:
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(6.5, 4.5))
  ax = fig.add_subplot()
  for label, flops in survivors.items():
    if not len(flops):
      continue
    x = np.sort(flops)
    y = np.arange(1, len(x) + 1) / len(x)
    ax.step(x, y, where="post", linewidth=2.5 if label == chosen else 1.0,
            label=f"{label} (mean {x.mean():.3f})")
  ax.set_xlabel("MFLOPs of sub-networks meeting the constraint")
  ax.set_ylabel("cumulative fraction")
  ax.set_title("Space selection: FLOPs CDF of survivors per variant")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  FigureCanvasAgg(fig)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def _write_report(path: str, rows, chosen, max_peak: float, max_params: float,
                  bpv: int, num: int, max_latency: float = 0.0,
                  table: Any = None) -> None:
  fields = ["variant", "survivors", "survivor_fraction", "mean_mflops",
            "median_mflops", "max_mflops", "min_peak_kb", "min_params_k"]
  if table is not None:
    fields += ["min_latency_ms", "median_latency_ms"]

  def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
  limits = []
  if max_peak:
    limits.append(f"peak activation memory <= {max_peak / 1024:g} KB "
                  f"({bpv} byte(s) per value)")
  if max_params:
    limits.append(f"parameters <= {max_params / 1000:g} k")
  if max_latency:
    sig = table.signature
    limits.append(
        f"latency <= {max_latency:g} ms (batch 1, {sig['clock']} clock, "
        f"predicted by the lookup table measured on {sig['backend']} "
        f"'{sig['device_kind']}', {len(table.entries)} blocks, "
        "`latency_lut.json` by default)")
  lines = [
      "# Search-space selection (TinyNAS)", "",
      f"{num} sub-networks sampled per variant (width multiplier x "
      f"resolution; depths, kernels and expand ratios elastic). Constraint: "
      f"{' and '.join(limits) or 'none'}. MFLOPs = 2 x MACs / 1e6 "
      "(analytic).", "",
      "| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
  for r in rows:
    mark = " **(selected)**" if r is chosen else ""
    lines.append("| " + " | ".join(fmt(r[k]) for k in fields) + mark + " |")
  lines += ["", f"Selected: **{chosen['variant']}** (highest mean MFLOPs of "
            "survivors), written to `best_space.json`.", "",
            "![MFLOPs CDF](mflops_cdf.png)", ""]
  with open(path, "w") as f:
    f.write("\n".join(lines))


def summary_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
  """The table as printed by ``supernet search``."""
  lines = [f"{'variant':<12}{'survivors':>10}{'mean MFLOPs':>13}"
           f"{'max MFLOPs':>12}"]
  for r in rows:
    lines.append(f"{r['variant']:<12}{r['survivors']:>10}"
                 f"{r['mean_mflops']:>13.4f}{r['max_mflops']:>12.4f}"
                 + ("  <- selected" if r["selected"] else ""))
  return lines
