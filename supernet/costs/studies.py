"""Cost studies behind the experiments: width x resolution, attention scaling.

The entry points in ``experiments/`` only parse arguments and call these.
Plotting imports matplotlib (Agg) inside the functions, so importing this
module stays light.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from tqdm import tqdm

from supernet.blocks import TransformerBlock
from supernet.costs.latency import measure_latency
from supernet.costs.macs import count_macs
from supernet.costs.profile import abstract_variables, profile_module
from supernet.zoo import build_model

WIDTH_RESOLUTION_COLUMNS = ("width", "resolution", "mflops", "params",
                            "activation_bytes", "latency_ms")


def config_label(width: float, resolution: int) -> str:
  """``w0.3-r160``: the label of one width/resolution pair."""
  return f"w{width:g}-r{resolution}"


def width_resolution_grid(widths: Sequence[float], resolutions: Sequence[int],
                          model: str = "mobilenet_v2", batch: int = 1,
                          warmup: int = 2, runs: int = 10,
                          clock: str = "wall", progress: bool = False
                          ) -> list[dict[str, Any]]:
  """Costs of ``model`` over a grid of width multipliers and resolutions.

  Args:
    widths: width multipliers.
    resolutions: input resolutions.
    model: a :data:`supernet.zoo.MODELS` name with a width multiplier.
    batch: batch size for memory and latency.
    warmup: untimed runs per configuration.
    runs: timed runs per configuration (median reported).
    clock: ``"wall"`` or ``"process"``.
    progress: show a tqdm bar.

  Returns:
    One row per pair with :data:`WIDTH_RESOLUTION_COLUMNS` (``mflops`` is
    MACs / 1e6 per example, the MobileNet papers' "MFLOPs"; activation bytes
    from XLA's memory analysis; latency the median in ms).
  """
  rows = []
  grid = list(itertools.product(widths, resolutions))
  for width, resolution in tqdm(grid, desc="width x resolution",
                                disable=not progress):
    module, shape = build_model(model, width=width, resolution=resolution)
    r = profile_module(module, None, shape, batch=batch, latency=True,
                       warmup=warmup, runs=runs, clock=clock)
    rows.append({"width": width, "resolution": resolution,
                 "mflops": r["macs"] / 1e6, "params": r["params"],
                 "activation_bytes": r["activation_bytes"],
                 "latency_ms": r["latency_ms"]["median_ms"]})
  return rows


def near_equal_mflops_pairs(rows: Sequence[dict[str, Any]],
                            mflops_tol: float = 0.05,
                            latency_tol: float = 0.10
                            ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
  """Pairs of configurations with near-equal MFLOPs but different latency.

  Args:
    rows: rows of :func:`width_resolution_grid`.
    mflops_tol: largest relative MFLOPs difference (to the larger one).
    latency_tol: smallest relative latency difference (to the faster one).

  Returns:
    ``(faster, slower)`` pairs, largest latency gap first.
  """
  pairs = []
  for a, b in itertools.combinations(rows, 2):
    if a["width"] == b["width"]:
      continue  # same network at two resolutions: not a trade-off
    big = max(a["mflops"], b["mflops"])
    if abs(a["mflops"] - b["mflops"]) > mflops_tol * big:
      continue
    fast, slow = sorted((a, b), key=lambda r: r["latency_ms"])
    if slow["latency_ms"] >= (1 + latency_tol) * fast["latency_ms"]:
      pairs.append((fast, slow))
  pairs.sort(key=lambda p: p[1]["latency_ms"] / p[0]["latency_ms"],
             reverse=True)
  return pairs


def write_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike,
              columns: Sequence[str]) -> None:
  """Writes ``rows`` (dicts) with ``columns`` as a CSV file."""
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns),
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


def plot_latency_vs_mflops(rows: Sequence[dict[str, Any]],
                           pairs: Sequence[tuple[dict, dict]],
                           path: str | os.PathLike,
                           highlight: Sequence[tuple[float, int]] = (),
                           max_pairs: int = 8, title: str = "") -> None:
  """Scatter of latency against MFLOPs, near-equal-MFLOPs pairs joined.

  Args:
    rows: grid rows.
    pairs: ``(faster, slower)`` pairs to mark (the first ``max_pairs``).
    path: PNG file to write.
    highlight: ``(width, resolution)`` configurations always labelled.
    max_pairs: most pairs drawn (the plot stays readable).
    title: plot title.
  """
  import matplotlib  # noqa: PLC0415 - heavy, only when plotting
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  fig, ax = plt.subplots(figsize=(8, 6))
  widths = sorted({r["width"] for r in rows})
  cmap = plt.get_cmap("viridis")
  for i, w in enumerate(widths):
    pts = [r for r in rows if r["width"] == w]
    ax.scatter([r["mflops"] for r in pts], [r["latency_ms"] for r in pts],
               color=cmap(i / max(1, len(widths) - 1)), label=f"width {w:g}",
               s=[12 + r["resolution"] / 4 for r in pts], zorder=3)
  labelled = set()
  for fast, slow in list(pairs)[:max_pairs]:
    ax.plot([fast["mflops"], slow["mflops"]],
            [fast["latency_ms"], slow["latency_ms"]], "r--", lw=1, zorder=2)
    for r in (fast, slow):
      labelled.add((r["width"], r["resolution"]))
  shown = [r for r in rows
           if (r["width"], r["resolution"]) in labelled | set(highlight)]
  for i, r in enumerate(sorted(shown, key=lambda r: r["mflops"])):
    key = (r["width"], r["resolution"])
    # alternate label sides so neighbours with similar MFLOPs stay legible
    offset = (5, 4) if i % 2 == 0 else (-5, -10)
    ax.annotate(config_label(*key), (r["mflops"], r["latency_ms"]),
                textcoords="offset points", xytext=offset, fontsize=7,
                ha="left" if i % 2 == 0 else "right",
                color="red" if key in labelled else "black")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("MFLOPs (= MACs / 1e6 per image, log scale)")
  ax.set_ylabel("latency (ms, median, log scale)")
  ax.set_title(title or "latency vs MFLOPs; dashed: near-equal MFLOPs, "
               "different latency")
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


class TransformerStack(nn.Module):
  """``layers`` Transformer blocks on ``(batch, tokens, dim)`` inputs.

  Attributes:
    num_heads: attention heads.
    layers: blocks.
    mlp_ratio: MLP width over model width.
  """

  num_heads: int
  layers: int = 1
  mlp_ratio: float = 4.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for i in range(self.layers):
      x = TransformerBlock(self.num_heads, self.mlp_ratio,
                           name=f"block{i + 1}")(x, train)
    return x


ATTENTION_COLUMNS = ("tokens", "dim", "heads", "layers", "macs",
                     "attention_macs", "latency_ms")


def transformer_macs_formula(tokens: int, dim: int, mlp_ratio: float = 4.0
                             ) -> tuple[int, int]:
  """MACs of one pre-norm Transformer block on ``tokens`` tokens.

  Args:
    tokens: sequence length N.
    dim: model width d.
    mlp_ratio: MLP hidden width over d.

  Returns:
    ``(linear, attention)``: the projections and MLP, ``N (4 d^2 + 2 d h)``
    with ``h = mlp_ratio d``, and the two N x N products ``2 N^2 d``.
  """
  hidden = int(dim * mlp_ratio)
  return tokens * (4 * dim * dim + 2 * dim * hidden), 2 * tokens * tokens * dim


def attention_scaling(token_counts: Sequence[int], dim: int = 192,
                      heads: int = 3, layers: int = 2, batch: int = 1,
                      warmup: int = 2, runs: int = 10, clock: str = "wall",
                      progress: bool = False) -> list[dict[str, Any]]:
  """MACs and measured latency of Transformer blocks against sequence length.

  Args:
    token_counts: sequence lengths N.
    dim: model width.
    heads: attention heads.
    layers: stacked blocks.
    batch: batch size.
    warmup: untimed runs.
    runs: timed runs (median reported).
    clock: ``"wall"`` or ``"process"``.
    progress: show a tqdm bar.

  Returns:
    Rows with :data:`ATTENTION_COLUMNS`: traced MACs (per example), the
    formula's attention term ``2 N^2 d`` times ``layers``, median latency.
  """
  rows = []
  for n in tqdm(token_counts, desc="sequence length", disable=not progress):
    module = TransformerStack(heads, layers)
    variables = abstract_variables(module, (n, dim), batch)
    x = jax.ShapeDtypeStruct((batch, n, dim), jnp.float32)

    def fn(v, x, module=module):
      return module.apply(v, x, train=False)

    macs = count_macs(fn, variables, jax.ShapeDtypeStruct((1, n, dim),
                                                          jnp.float32))
    lat = measure_latency(fn, variables, x, warmup=warmup, runs=runs,
                          clock=clock)
    rows.append({"tokens": n, "dim": dim, "heads": heads, "layers": layers,
                 "macs": macs,
                 "attention_macs": layers * transformer_macs_formula(n, dim)[1],
                 "latency_ms": lat["median_ms"]})
  return rows


def plot_attention_scaling(rows: Sequence[dict[str, Any]],
                           path: str | os.PathLike) -> None:
  """Log-log plot of latency and MACs against sequence length."""
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  n = [r["tokens"] for r in rows]
  fig, ax = plt.subplots(figsize=(7, 5))
  ax.loglog(n, [r["latency_ms"] for r in rows], "o-", label="latency (ms)")
  ax.set_xlabel("sequence length N")
  ax.set_ylabel("latency (ms, median)")
  ax2 = ax.twinx()
  ax2.loglog(n, [r["macs"] / 1e6 for r in rows], "s--", color="gray",
             label="MACs (M)")
  ax2.loglog(n, [r["attention_macs"] / 1e6 for r in rows], ":", color="red",
             label="attention 2N^2d (M)")
  ax2.set_ylabel("MMACs")
  lines = ax.get_legend_handles_labels()
  lines2 = ax2.get_legend_handles_labels()
  ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8)
  ax.set_title(f"Transformer blocks, d={rows[0]['dim']}, "
               f"{rows[0]['layers']} layers")
  ax.grid(alpha=0.3, which="both")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
