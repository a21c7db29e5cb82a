"""Latency lookup table: per-block latencies measured once on this device.

A block-structured network's latency is predicted as the sum of its blocks'
latencies (stem, blocks, last conv and classifier are all blocks, see
:mod:`supernet.costs.block_specs`). Each block is measured alone: compiled,
warmed up, timed ``runs`` times with ``block_until_ready``, median kept.

Every call of a compiled function pays a fixed dispatch cost that a whole
network pays once but a sum of N blocks would pay N times; we measure it
(a trivial jitted function) and store it as ``overhead_ms``, so

    predicted = sum(block_ms - overhead_ms) + overhead_ms.

The table is cached as JSON, keyed by device kind, backend, JAX/jaxlib
version, batch size, depthwise implementation and clock (its *signature*);
entries
are keyed by the full block spec, shapes included. A cache whose signature
differs from the current one (another device, a JAX upgrade) is ignored and
rebuilt. Default location: ``$XDG_CACHE_HOME/supernet/latency_lut/`` (or
``~/.cache/...``), one file per device kind, batch, implementation and clock.

On a CPU shared with other processes, wall-clock timings swing with their
load; ``clock="process"`` (CPU time of this process, see
:mod:`supernet.costs.latency`) keeps the table and the check stable.

Measuring the predictor's error: :func:`lut_error`, from the command line
``supernet profile --lut-error`` (or ``python experiments/latency_lut_error.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from supernet.costs.block_specs import (
    BlockSpec,
    SpecNetwork,
    check_chain,
    check_spec,
    input_shape,
    mobilenet_v2_space_specs,
    sample_mobilenet_v2_specs,
)
from supernet.costs.latency import device_info, materialize, time_compiled
from supernet.costs.profile import abstract_variables, inference_fn
from supernet.errors import UserError

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class LatencyTable:
  """Measured block latencies of one device.

  Attributes:
    signature: what the measurements depend on (device kind, backend,
      versions, batch, depthwise implementation, format).
    overhead_ms: per-call dispatch cost included in every entry.
    entries: block spec -> median milliseconds of one call of that block.
  """

  signature: Mapping[str, Any]
  overhead_ms: float
  entries: Mapping[BlockSpec, float]

  def predict(self, specs: Sequence[Sequence[Any]]) -> float:
    """Predicted milliseconds of the network made of ``specs``."""
    return predict_latency(self, specs)


def table_signature(batch: int = 1, depthwise_impl: str = "auto",
                    clock: str = "wall") -> dict[str, Any]:
  """The signature of measurements made now, on the default device.

  Args:
    batch: batch size of the measurements.
    depthwise_impl: depthwise implementation of the blocks.
    clock: ``"wall"`` or ``"process"``.

  Returns:
    A JSON-serialisable dict; tables whose signature differs are stale.
  """
  info = device_info()
  return {"format": FORMAT_VERSION, "backend": info["backend"],
          "device_kind": info["device_kind"],
          "jax_version": info["jax_version"],
          "jaxlib_version": info["jaxlib_version"], "batch": int(batch),
          "dtype": "float32", "depthwise_impl": depthwise_impl,
          "clock": clock}


def default_table_path(signature: Mapping[str, Any]) -> pathlib.Path:
  """Default cache file of a signature (one per device kind/batch/impl)."""
  root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  slug = re.sub(r"[^A-Za-z0-9._-]+", "_",
                f"{signature['backend']}-{signature['device_kind']}")
  name = (f"{slug}-b{signature['batch']}-{signature['depthwise_impl']}-"
          f"{signature['clock']}.json")
  return pathlib.Path(root) / "supernet" / "latency_lut" / name


def load_table(path: str | os.PathLike, signature: Mapping[str, Any]
               ) -> LatencyTable | None:
  """Reads a cached table; ``None`` if missing, unreadable or stale.

  Args:
    path: the JSON file.
    signature: the current signature (:func:`table_signature`).

  Returns:
    The table, or ``None`` when it must be (re)built.
  """
  try:
    with open(path) as f:
      doc = json.load(f)
    if doc.get("signature") != dict(signature):
      return None
    entries = {check_spec(e["spec"]): float(e["ms"]) for e in doc["entries"]}
    return LatencyTable(dict(signature), float(doc["overhead_ms"]), entries)
  except (OSError, ValueError, KeyError, TypeError, UserError):
    return None


def save_table(table: LatencyTable, path: str | os.PathLike) -> None:
  """Writes ``table`` as JSON (atomically: a crash leaves the old file)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  doc = {"signature": dict(table.signature), "overhead_ms": table.overhead_ms,
         "entries": [{"spec": list(s), "ms": ms}
                     for s, ms in sorted(table.entries.items(), key=repr)]}
  tmp = path.with_suffix(path.suffix + ".tmp")
  tmp.write_text(json.dumps(doc, indent=1) + "\n")
  os.replace(tmp, path)


def measure_overhead(batch: int = 1, warmup: int = 3, runs: int = 20,
                     clock: str = "wall") -> float:
  """Median milliseconds of calling a trivial compiled function."""
  x = jnp.zeros((batch, 8), jnp.float32)
  compiled = jax.jit(lambda a: a + 1.0).lower(x).compile()
  return statistics.median(time_compiled(compiled, (x,), warmup, runs, clock))


def measure_specs(specs: Sequence[Sequence[Any]], batch: int = 1,
                  warmup: int = 3, runs: int = 20,
                  depthwise_impl: str = "auto",
                  key: jax.Array | None = None, clock: str = "wall") -> float:
  """Median milliseconds of the network made of ``specs``, measured whole.

  Args:
    specs: block specs in order (one spec measures one block).
    batch: batch size.
    warmup: untimed runs after compilation.
    runs: timed runs.
    depthwise_impl: depthwise implementation.
    key: PRNG key for the random weights and input.
    clock: ``"wall"`` or ``"process"``.

  Returns:
    Median milliseconds of one inference call.
  """
  specs = check_chain(specs)
  module = SpecNetwork(specs, depthwise_impl)
  shape = input_shape(specs)
  key = jax.random.key(0) if key is None else key
  variables = materialize(abstract_variables(module, shape, batch), key)
  x = materialize(jax.ShapeDtypeStruct((batch, *shape), jnp.float32), key)
  compiled = jax.jit(inference_fn(module)).lower(variables, x).compile()
  return statistics.median(time_compiled(compiled, (variables, x), warmup,
                                         runs, clock))


def build_table(specs: Sequence[Sequence[Any]],
                path: str | os.PathLike | None = None, batch: int = 1,
                warmup: int = 3, runs: int = 20, depthwise_impl: str = "auto",
                key: jax.Array | None = None, progress: bool = False,
                clock: str = "wall") -> LatencyTable:
  """Loads the cached table and measures the specs it lacks.

  Args:
    specs: block specs to have in the table (duplicates are fine).
    path: cache file (default :func:`default_table_path`); ``None`` uses the
      default. A stale or unreadable file is rebuilt from scratch.
    batch: batch size of the measurements.
    warmup: untimed runs per block.
    runs: timed runs per block (median kept).
    depthwise_impl: depthwise implementation.
    key: PRNG key for random weights.
    progress: show a tqdm bar while measuring.
    clock: ``"wall"`` or ``"process"``.

  Returns:
    The table, with every requested spec; saved to ``path`` if anything was
    measured.
  """
  signature = table_signature(batch, depthwise_impl, clock)
  path = default_table_path(signature) if path is None else pathlib.Path(path)
  table = load_table(path, signature)
  wanted = sorted({check_spec(s) for s in specs}, key=repr)
  if table is None:
    table = LatencyTable(signature,
                         measure_overhead(batch, warmup, runs, clock), {})
  missing = [s for s in wanted if s not in table.entries]
  if not missing and path.exists():
    return table
  entries = dict(table.entries)
  key = jax.random.key(0) if key is None else key
  for spec in tqdm(missing, desc="latency table", disable=not progress,
                   leave=False):
    entries[spec] = measure_specs((spec,), batch, warmup, runs,
                                  depthwise_impl, key, clock)
  table = dataclasses.replace(table, entries=entries)
  save_table(table, path)
  return table


def predict_latency(table: LatencyTable, specs: Sequence[Sequence[Any]]
                    ) -> float:
  """Predicted milliseconds: block latencies summed, dispatch paid once.

  Args:
    table: a table holding every spec (see :func:`build_table`).
    specs: the network's block specs.

  Returns:
    ``sum(entry - overhead) + overhead``.
  """
  specs = check_chain(specs)
  missing = [s for s in specs if s not in table.entries]
  if missing:
    raise UserError(f"{len(missing)} block spec(s) not in the latency table, "
                    f"e.g. {missing[0]}; build_table() them first")
  over = table.overhead_ms
  return sum(table.entries[s] - over for s in specs) + over


def compare_predictions(table: LatencyTable,
                        archs: Sequence[Sequence[Sequence[Any]]],
                        batch: int = 1, warmup: int = 3, runs: int = 20,
                        key: jax.Array | None = None, clock: str = "wall",
                        progress: bool = False) -> dict[str, Any]:
  """Predicted against whole-network measured latency of ``archs``.

  Args:
    table: a table holding every block of ``archs`` (same batch and clock).
    archs: architectures, each a sequence of block specs.
    batch: batch size (must match the table's).
    warmup: untimed runs per network.
    runs: timed runs per network (median kept).
    key: PRNG key for random weights.
    clock: ``"wall"`` or ``"process"`` (must match the table's).
    progress: show a tqdm bar.

  Returns:
    ``{"mape_percent", "max_ape_percent", "num_archs", "rows"}``, each row
    ``{"blocks", "measured_ms", "predicted_ms", "ape_percent"}``.
  """
  if not archs:
    raise UserError("compare_predictions needs at least one architecture")
  if (table.signature.get("batch"), table.signature.get("clock")) != (batch,
                                                                      clock):
    raise UserError(f"table measured at batch {table.signature.get('batch')} "
                    f"with the {table.signature.get('clock')} clock cannot "
                    f"predict batch {batch} with the {clock} clock")
  key = jax.random.key(0) if key is None else key
  rows = []
  for specs in tqdm(archs, desc="architectures", disable=not progress):
    predicted = predict_latency(table, specs)
    measured = measure_specs(specs, batch, warmup, runs,
                             table.signature.get("depthwise_impl", "auto"),
                             key, clock)
    rows.append({"blocks": len(specs), "measured_ms": measured,
                 "predicted_ms": predicted,
                 "ape_percent": 100 * abs(predicted - measured) / measured})
  apes = np.array([r["ape_percent"] for r in rows])
  return {"mape_percent": float(apes.mean()),
          "max_ape_percent": float(apes.max()), "num_archs": len(rows),
          "rows": rows}


def lut_error(num_archs: int = 30, key: jax.Array | None = None,
              resolution: int = 224, width: float = 1.0, batch: int = 1,
              warmup: int = 3, runs: int = 20,
              path: str | os.PathLike | None = None,
              elastic_depth: bool = True, progress: bool = False,
              clock: str = "wall") -> dict[str, Any]:
  """The lookup table's error against whole-network measurements.

  Builds (or reuses) the table of the MobileNetV2-style space (kernel
  {3,5,7} x expand {3,4,6} per block), samples ``num_archs`` random
  architectures, and compares predicted with directly measured latency.

  Args:
    num_archs: random architectures to compare.
    key: PRNG key for sampling (default ``jax.random.key(0)``).
    resolution: input resolution of the space.
    width: width multiplier of the space.
    batch: batch size.
    warmup: untimed runs per measurement.
    runs: timed runs per measurement (median kept).
    path: table cache file (default per device).
    elastic_depth: also sample each stage's depth.
    progress: show tqdm bars.
    clock: ``"wall"`` or ``"process"``.

  Returns:
    ``{"mape_percent", "max_ape_percent", "num_archs", "table_blocks",
    "signature", "rows": [{"measured_ms", "predicted_ms", "ape_percent"}]}``.
  """
  if num_archs < 1:
    raise UserError(f"num_archs must be >= 1, got {num_archs}")
  key = jax.random.key(0) if key is None else key
  layout = dict(resolution=resolution, width=width)
  table = build_table(mobilenet_v2_space_specs(**layout), path, batch, warmup,
                      runs, key=key, progress=progress, clock=clock)
  archs = [sample_mobilenet_v2_specs(k, elastic_depth=elastic_depth, **layout)
           for k in jax.random.split(key, num_archs)]
  result = compare_predictions(table, archs, batch, warmup, runs, key, clock,
                               progress)
  return {**result, "table_blocks": len(table.entries),
          "overhead_ms": table.overhead_ms,
          "signature": dict(table.signature)}


def mbv_layout_specs(layout: Any, in_channels: int, num_classes: int
                     ) -> tuple[BlockSpec, ...]:
  """Block specs of an elastic MobileNet sub-network (its LUT entries).

  The standalone network of :class:`~supernet.elastic.layout.MbvLayout`:
  a 3x3 ``conv_bn`` stem, one ``mbconv`` per block (ReLU6, the expand ratio
  ``mid / in`` so the hidden width is the layout's), a 1x1 ``conv_bn`` head
  and the classifier. The input resize of the elastic network is not a
  block (it is the same for every sub-network of a resolution).

  Args:
    layout: an ``MbvLayout`` (resolution, stem, blocks, head).
    in_channels: image channels.
    num_classes: classifier outputs.

  Returns:
    The canonical specs, stem to classifier.
  """
  size = layout.resolution
  specs = [("conv_bn", in_channels, layout.stem_channels, layout.stem_stride,
            3, 1, size, size)]
  size = -(-size // layout.stem_stride)
  channels = layout.stem_channels
  for b in layout.blocks:
    specs.append(("mbconv", b.in_channels, b.out_channels, b.stride, b.kernel,
                  b.mid_channels / b.in_channels, size, size))
    size, channels = -(-size // b.stride), b.out_channels
  specs.append(("conv_bn", channels, layout.head_channels, 1, 1, 1, size,
                size))
  specs.append(("classifier", layout.head_channels, num_classes, 1, 1, 1,
                size, size))
  return check_chain(specs)
