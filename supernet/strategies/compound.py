"""Compound scaling (EfficientNet): one coefficient triple, a model family.

The base network is one architecture of an elastic MobileNet space (its
stages, kernels and expand ratios). Scaling by ``phi`` multiplies

* every stage's depth by ``alpha**phi`` (rounded up),
* every channel count (stem, stages, head) by ``beta**phi`` (rounded to a
  multiple of 8 as EfficientNet does, :func:`supernet.zoo.efficientnet.
  scale_width`); expanded channels are ``in * expand`` (rounded up to 8),
* the input resolution by ``gamma**phi`` (rounded to the nearest multiple of
  the network's total stride),

so MACs grow about ``(alpha * beta**2 * gamma**2)**phi``. Step 1 grid-searches
``(alpha, beta, gamma)`` at ``phi = 1`` under ``alpha * beta**2 * gamma**2 ~
target`` (2) with an evaluator; step 2 scales the best triple to ``phi = 1..k``
and, for comparison, scales a single dimension (depth, width or resolution)
to the MACs of each family member.

Scaled networks leave the elastic space (deeper, wider, larger), so they are
:class:`~supernet.elastic.layout.MbvLayout` values run as standalone
networks, and the evaluator must score layouts (``evaluate_layouts``: the
``proxy`` evaluator trains each briefly).

``supernet search`` runs it through :func:`run_compound_scaling` when
``config.search.strategy == "compound_scaling"``. The search's state is what
it has evaluated and measured (layout -> result, layout -> profile); it is
saved to ``RUN/compound_state.json`` after every evaluation, so re-running an
interrupted search with the same config and workdir evaluates only what is
missing and ends with the results of an uninterrupted run (the proxy
evaluator trains every layout from the same seed, independently of the
others).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import ml_collections
import numpy as np

from supernet.elastic.layout import BlockSpec, MbvLayout, mbv_costs
from supernet.errors import UserError
from supernet.spaces.base import Arch
from supernet.spaces.elastic import (
    ElasticMbvArch,
    ElasticMobileNetSpace,
    round_channels,
)
from supernet.zoo.efficientnet import scale_depth, scale_width

DIMENSIONS = ("depth", "width", "resolution")
# Files :func:`run_compound_scaling` writes in the run directory.
OUTPUTS = ("arch.json", "family.csv", "grid.csv", "report.md",
           "accuracy_vs_macs.png")
# The resumable state, in the run directory.
STATE_FILE = "compound_state.json"


class Coefficients(NamedTuple):
  """Per-unit-``phi`` multipliers of depth, width and resolution."""

  alpha: float
  beta: float
  gamma: float

  def flops_factor(self) -> float:
    """``alpha * beta**2 * gamma**2``: MACs growth per unit of ``phi``."""
    return self.alpha * self.beta ** 2 * self.gamma ** 2


def grid_candidates(alphas: Sequence[float], betas: Sequence[float],
                    gammas: Sequence[float], target: float = 2.0,
                    tolerance: float = 0.1) -> list[Coefficients]:
  """Coefficient triples whose MACs factor is within ``tolerance`` of target.

  Args:
    alphas: depth multipliers to try (each >= 1).
    betas: width multipliers to try (each >= 1).
    gammas: resolution multipliers to try (each >= 1).
    target: the wanted ``alpha * beta**2 * gamma**2`` (2 doubles MACs per
      unit of ``phi``).
    tolerance: relative tolerance, ``|factor / target - 1| <= tolerance``.

  Returns:
    The triples in grid order (alpha slowest).
  """
  for name, values in (("alphas", alphas), ("betas", betas),
                       ("gammas", gammas)):
    if not values or any(float(v) < 1.0 for v in values):
      raise UserError(f"compound.{name} must be a non-empty list of numbers "
                      f">= 1, got {list(values)}")
  out = [Coefficients(float(a), float(b), float(g))
         for a in alphas for b in betas for g in gammas]
  out = [c for c in out if abs(c.flops_factor() / target - 1.0) <= tolerance]
  if not out:
    raise UserError(f"no (alpha, beta, gamma) of the grid has alpha*beta^2*"
                    f"gamma^2 within {tolerance:.0%} of {target}; widen the "
                    "grid or the tolerance")
  return out


def best_coefficients(candidates: Sequence[Coefficients],
                      accuracies: Sequence[float]) -> Coefficients:
  """The most accurate triple (the first one on ties)."""
  if len(candidates) != len(accuracies) or not candidates:
    raise ValueError("need one accuracy per candidate")
  return candidates[int(np.argmax(np.asarray(accuracies, np.float64)))]


def scale_resolution(resolution: int, multiplier: float, stride: int) -> int:
  """``resolution * multiplier`` rounded to the nearest multiple of stride."""
  return stride * max(1, int(math.floor(resolution * multiplier / stride
                                        + 0.5)))


def scale_layout(space: ElasticMobileNetSpace, base: ElasticMbvArch,
                 depth: float, width: float, resolution: float,
                 divisor: int = 8) -> MbvLayout:
  """The base architecture scaled by the three multipliers.

  Args:
    space: the elastic space the base belongs to.
    base: the base architecture.
    depth: depth multiplier (stage depths rounded up).
    width: width multiplier (channels to multiples of ``divisor``).
    resolution: resolution multiplier (to a multiple of the total stride).
    divisor: channel divisor of the scaled network.

  Returns:
    The scaled network's layout; new blocks of a stage repeat the stage's
    last base block (kernel and expand ratio).
  """
  space.validate(base)
  stem = scale_width(space.stem_channels(base.width), width)
  outs = [scale_width(space.stage_channels(s, base.width), width)
          for s in range(space.num_stages)]
  blocks, cin = [], stem
  for s in range(space.num_stages):
    for j in range(scale_depth(base.depths[s], depth)):
      src = min(j, base.depths[s] - 1)
      stride = space.block_stride(s, j)
      mid = round_channels(cin * base.expands[s][src], divisor)
      blocks.append(BlockSpec(stage=s, index=j, in_channels=cin,
                              mid_channels=mid, out_channels=outs[s],
                              kernel=base.kernels[s][src], stride=stride,
                              residual=stride == 1 and cin == outs[s]))
      cin = outs[s]
  return MbvLayout(
      resolution=scale_resolution(base.resolution, resolution,
                                  space.total_stride),
      stem_channels=stem, stem_stride=space.stem_stride, blocks=tuple(blocks),
      head_channels=scale_width(space.head_width, width))


def compound_layout(space: ElasticMobileNetSpace, base: ElasticMbvArch,
                    coefficients: Coefficients, phi: float,
                    divisor: int = 8) -> MbvLayout:
  """Member ``phi`` of the family: multipliers ``alpha**phi`` etc."""
  a, b, g = coefficients
  return scale_layout(space, base, a ** phi, b ** phi, g ** phi, divisor)


def single_dimension_layout(space: ElasticMobileNetSpace,
                            base: ElasticMbvArch, dimension: str,
                            target_macs: float, macs: Callable[[MbvLayout],
                                                               float],
                            max_multiplier: float = 8.0, num: int = 400,
                            divisor: int = 8) -> tuple[float, MbvLayout]:
  """Scales one dimension only, to the MACs closest to ``target_macs``.

  Args:
    space: the elastic space.
    base: the base architecture.
    dimension: ``depth``, ``width`` or ``resolution``.
    target_macs: the MACs to match (e.g. of a compound-scaled member).
    macs: ``layout -> MACs``.
    max_multiplier: largest multiplier tried.
    num: multipliers tried (geometric grid from 1).
    divisor: channel divisor.

  Returns:
    ``(multiplier, layout)`` with the smallest ``|log(MACs / target)|``
    (the smallest multiplier among equals).
  """
  if dimension not in DIMENSIONS:
    raise UserError(f"unknown scaling dimension {dimension!r}; valid: "
                    f"{list(DIMENSIONS)}")
  best = None
  for m in np.geomspace(1.0, max_multiplier, num):
    mults = {d: 1.0 for d in DIMENSIONS}
    mults[dimension] = float(m)
    layout = scale_layout(space, base, mults["depth"], mults["width"],
                          mults["resolution"], divisor)
    gap = abs(math.log(macs(layout) / target_macs))
    if best is None or gap < best[0] - 1e-12:
      best = (gap, float(m), layout)
  return best[1], best[2]


@dataclasses.dataclass(frozen=True)
class ScaledArch(Arch):
  """A scaled network: the base, how it was scaled, and its layout.

  Attributes:
    base: the base architecture of the elastic space.
    kind: ``compound`` or the single dimension scaled.
    phi: compound coefficient (the member index of the family).
    multipliers: ``(depth, width, resolution)`` multipliers applied.
    layout: the resulting static network.
  """

  base: ElasticMbvArch
  kind: str
  phi: float
  multipliers: tuple[float, float, float]
  layout: MbvLayout
  space: ClassVar[str] = "compound_scaled"

  def to_json(self) -> dict[str, Any]:
    return {"space": self.space, "kind": self.kind, "phi": self.phi,
            "multipliers": dict(zip(DIMENSIONS, self.multipliers)),
            "base": self.base.to_json(),
            "layout": dataclasses.asdict(self.layout)}


# --------------------------------------------------------------------------
# ``supernet search`` with ``search.strategy == "compound_scaling"``.

def _base_arch(space: ElasticMobileNetSpace, spec: Any) -> ElasticMbvArch:
  if spec in (None, "", "smallest"):
    return space.smallest()
  if spec == "largest":
    return space.largest()
  if isinstance(spec, ml_collections.ConfigDict):
    spec = spec.to_dict()
  if isinstance(spec, dict):
    return space.arch_from_json(spec)
  raise UserError(f"search.base_arch must be 'smallest', 'largest' or an "
                  f"elastic_mbv arch dict, got {spec!r}")


def _profile(layout: MbvLayout, in_channels: int, num_classes: int,
             latency: bool, runs: int) -> dict[str, Any]:
  """Params, traced MACs and latency of the standalone network."""
  from supernet.costs import profile_module
  from supernet.elastic.static import MobileNet
  shape = (layout.resolution, layout.resolution, in_channels)
  prof = profile_module(MobileNet(layout, num_classes), None, shape,
                        latency=latency, runs=runs)
  out = {"params_counted": int(prof["params"]),
         "macs_traced": int(prof["macs"]),
         "activation_bytes": int(prof["activation_bytes"])}
  if latency:
    out["latency_ms"] = float(prof["latency_ms"]["median_ms"])
  return out


def layout_to_json(layout: MbvLayout) -> dict[str, Any]:
  """A JSON-serialisable dict of a layout."""
  return dataclasses.asdict(layout)


def layout_from_json(doc: dict[str, Any]) -> MbvLayout:
  """The layout of :func:`layout_to_json` (a ``TypeError`` if malformed)."""
  fields = dict(doc)
  fields["blocks"] = tuple(BlockSpec(**b) for b in fields["blocks"])
  return MbvLayout(**fields)


@dataclasses.dataclass
class CompoundState:
  """What a compound-scaling search has evaluated and measured so far.

  Attributes:
    results: layout -> evaluator result, in evaluation order.
    profiles: layout -> params / traced MACs / measured latency.
  """

  results: dict[MbvLayout, dict[str, Any]] = dataclasses.field(
      default_factory=dict)
  profiles: dict[MbvLayout, dict[str, Any]] = dataclasses.field(
      default_factory=dict)

  def to_json(self) -> dict[str, Any]:
    """The state as a JSON document (floats round-trip exactly)."""
    return {key: [{"layout": layout_to_json(lay), "value": value}
                  for lay, value in getattr(self, key).items()]
            for key in ("results", "profiles")}

  @classmethod
  def from_json(cls, doc: dict[str, Any]) -> CompoundState:
    """Restores :meth:`to_json`."""
    return cls(**{key: {layout_from_json(e["layout"]): dict(e["value"])
                        for e in doc[key]}
                  for key in ("results", "profiles")})


def save_state(path: str, state: CompoundState) -> None:
  """Writes ``state`` atomically (a kill never leaves half a file)."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(state.to_json(), f)
  os.replace(tmp, path)


def load_state(path: str) -> CompoundState:
  """Reads a state saved by :func:`save_state` (one-line error if broken)."""
  try:
    with open(path) as f:
      return CompoundState.from_json(json.load(f))
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UserError(f"cannot resume from {path}: {e}") from None


class _Scorer:
  """Evaluates layouts once each (a family reuses the grid's phi=1 run).

  Every new result goes into ``state`` and, with a ``path``, to disk.
  """

  def __init__(self, evaluator: Any, state: CompoundState,
               path: str | None = None):
    if not hasattr(evaluator, "evaluate_layouts"):
      raise UserError("compound scaling needs an evaluator of standalone "
                      "networks (evaluator.name = 'proxy'): scaled networks "
                      "leave the elastic space")
    self.evaluator = evaluator
    self.state = state
    self.path = path

  def __call__(self, layouts: Sequence[MbvLayout]) -> list[dict[str, Any]]:
    cache = self.state.results
    todo = list(dict.fromkeys(lay for lay in layouts if lay not in cache))
    for i, layout in enumerate(todo):
      # One at a time, so a long proxy run shows progress and a kill loses
      # at most the evaluation in flight.
      cache[layout] = dict(self.evaluator.evaluate_layouts([layout])[0])
      if self.path:
        save_state(self.path, self.state)
      print(f"  evaluated {i + 1}/{len(todo)}: resolution "
            f"{layout.resolution}, {len(layout.blocks)} blocks, accuracy "
            f"{cache[layout]['accuracy']:.2f}", flush=True)
    return [cache[lay] for lay in layouts]


def run_compound_scaling(config: ml_collections.ConfigDict, workdir: str, *,
                         evaluator: Any = None, in_channels: int = 0,
                         num_classes: int = 0) -> ScaledArch:
  """Grid-searches the coefficients, scales the family, writes the run.

  Config fields: ``space`` (an ``elastic_mbv`` space); ``evaluator``
  (``proxy``); ``search.strategy`` (``compound_scaling``), ``search.base_arch``
  (``smallest``, ``largest`` or an arch dict), ``search.compound``:
  ``alphas``, ``betas``, ``gammas``, ``target`` (2), ``tolerance`` (0.1),
  ``max_phi`` (k), ``divisor`` (8), ``profile`` (trace params/MACs with
  ``supernet.costs``), ``latency`` (measure it), ``latency_runs``.

  Writes ``RUN/config.json``, ``RUN/grid.csv``, ``RUN/family.csv``,
  ``RUN/arch.json`` (the most accurate scaled model), ``RUN/report.md``,
  ``RUN/accuracy_vs_macs.png`` and ``RUN/compound_state.json`` (what was
  evaluated; a re-run resumes from it).

  Args:
    config: the experiment config.
    workdir: the run directory. One holding this config's (interrupted)
      run resumes it; one holding another config's run is refused.
    evaluator: an object with ``evaluate_layouts`` (default: built from
      ``config.evaluator``); tests pass a synthetic one.
    in_channels: image channels (default: the evaluator's dataset's).
    num_classes: classes (default: the evaluator's dataset's).

  Returns:
    The most accurate scaled model.
  """
  from supernet.evaluators import make_evaluator
  from supernet.rundir import RunDir
  from supernet.spaces import make_space

  space = make_space(config.space.name, config.space)
  if not isinstance(space, ElasticMobileNetSpace):
    raise UserError("compound scaling needs an elastic_mbv space")
  search = config.search
  cc = search.compound
  base = _base_arch(space, search.get("base_arch", "smallest"))
  candidates = grid_candidates(cc.alphas, cc.betas, cc.gammas,
                               float(cc.get("target", 2.0)),
                               float(cc.get("tolerance", 0.1)))
  max_phi = int(cc.get("max_phi", 2))
  if max_phi < 1:
    raise UserError(f"search.compound.max_phi must be >= 1, got {max_phi}")
  divisor = int(cc.get("divisor", 8))
  if evaluator is None:
    evaluator = make_evaluator(config.evaluator, space)
  if not in_channels or not num_classes:
    info = evaluator.data.info
    in_channels, num_classes = info.image_shape[-1], info.num_classes
  # Writes config.json, or checks the workdir holds this config's run.
  run = RunDir(workdir, config, "search")
  run.close()
  state_path = run.path(STATE_FILE)
  state = CompoundState()
  if os.path.isfile(state_path):
    state = load_state(state_path)
    print(f"resuming {workdir}: {len(state.results)} evaluation(s) and "
          f"{len(state.profiles)} profile(s) done", flush=True)
  scorer = _Scorer(evaluator, state, state_path)
  macs = lambda lay: mbv_costs(lay, in_channels, num_classes)["macs"]  # noqa: E731

  # Step 1: the grid at phi = 1.
  grid_layouts = [compound_layout(space, base, c, 1.0, divisor)
                  for c in candidates]
  grid_results = scorer(grid_layouts)
  best = best_coefficients(candidates,
                           [r["accuracy"] for r in grid_results])
  grid_rows = [{"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma,
                "flops_factor": c.flops_factor(), "macs": macs(lay),
                "accuracy": r["accuracy"]}
               for c, lay, r in zip(candidates, grid_layouts, grid_results)]

  # Step 2: the family and single-dimension scaling at matched MACs.
  base_layout = scale_layout(space, base, 1.0, 1.0, 1.0, divisor)
  members: list[ScaledArch] = [ScaledArch(base, "base", 0.0, (1., 1., 1.),
                                          base_layout)]
  for phi in range(1, max_phi + 1):
    mult = (best.alpha ** phi, best.beta ** phi, best.gamma ** phi)
    layout = compound_layout(space, base, best, phi, divisor)
    members.append(ScaledArch(base, "compound", float(phi), mult, layout))
    for i, dim in enumerate(DIMENSIONS):
      m, single = single_dimension_layout(
          space, base, dim, macs(layout), macs,
          max_multiplier=float(cc.get("max_multiplier", 8.0)), divisor=divisor)
      mults = [1.0, 1.0, 1.0]
      mults[i] = m
      members.append(ScaledArch(base, dim, float(phi), tuple(mults), single))
  results = scorer([m.layout for m in members])
  rows = []
  for m, r in zip(members, results):
    row = {"kind": m.kind, "phi": m.phi,
           "depth_mult": round(m.multipliers[0], 4),
           "width_mult": round(m.multipliers[1], 4),
           "resolution_mult": round(m.multipliers[2], 4),
           "resolution": m.layout.resolution,
           "depths": "-".join(str(d) for d in _stage_depths(m.layout)),
           "channels": "-".join(str(c) for c in _stage_channels(m.layout)),
           **mbv_costs(m.layout, in_channels, num_classes),
           "accuracy": r["accuracy"]}
    if cc.get("profile", True):
      if m.layout not in state.profiles:
        # Measured once: a resumed run reports the latency it measured.
        state.profiles[m.layout] = _profile(
            m.layout, in_channels, num_classes, bool(cc.get("latency", True)),
            int(cc.get("latency_runs", 10)))
        save_state(state_path, state)
      row.update(state.profiles[m.layout])
    rows.append(row)
  compound = [(m, r) for m, r in zip(members, rows) if m.kind == "compound"]
  chosen = max(compound, key=lambda mr: (mr[1]["accuracy"], -mr[0].phi))[0]

  _write_csv(run.path("grid.csv"), grid_rows)
  _write_csv(run.path("family.csv"), rows)
  with open(run.path("arch.json"), "w") as f:
    json.dump(chosen.to_json(), f, indent=1)
    f.write("\n")
  _plot(run.path("accuracy_vs_macs.png"), rows)
  _write_report(run.path("report.md"), base, best, grid_rows, rows, chosen,
                float(cc.get("target", 2.0)))
  for line in summary_lines(best, rows):
    print(line)
  return chosen


def _stage_depths(layout: MbvLayout) -> list[int]:
  stages = sorted({b.stage for b in layout.blocks})
  return [sum(b.stage == s for b in layout.blocks) for s in stages]


def _stage_channels(layout: MbvLayout) -> list[int]:
  out = [layout.stem_channels]
  for b in layout.blocks:
    if b.index == 0:
      out.append(b.out_channels)
  return out + [layout.head_channels]


def _write_csv(path: str, rows: Sequence[dict[str, Any]]) -> None:
  fields: list[str] = []
  for r in rows:
    fields += [k for k in r if k not in fields]
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _plot(path: str, rows: Sequence[dict[str, Any]]) -> None:
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(6.5, 4.5))
  ax = fig.add_subplot()
  base = [r for r in rows if r["kind"] == "base"]
  for kind, style in (("compound", "o-"), ("depth", "s--"),
                      ("width", "^--"), ("resolution", "v--")):
    pts = base + [r for r in rows if r["kind"] == kind]
    ax.plot([r["macs"] / 1e6 for r in pts], [r["accuracy"] for r in pts],
            style, label=kind if kind == "compound" else f"{kind} only")
  ax.set_xscale("log")
  ax.set_xlabel("MMACs (log)")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title("Compound vs single-dimension scaling")
  ax.grid(alpha=0.3)
  ax.legend()
  FigureCanvasAgg(fig)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def _md_table(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> list[str]:
  def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
  lines = ["| " + " | ".join(fields) + " |",
           "|" + "---|" * len(fields)]
  lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in fields) + " |"
            for r in rows]
  return lines


def _write_report(path: str, base: ElasticMbvArch, best: Coefficients,
                  grid_rows, rows, chosen: ScaledArch, target: float) -> None:
  fields = [k for k in ("kind", "phi", "depth_mult", "width_mult",
                        "resolution_mult", "resolution", "depths", "channels",
                        "params", "macs", "macs_traced", "latency_ms",
                        "accuracy") if k in rows[0]]
  lines = [
      "# Compound scaling", "",
      f"Base network (elastic_mbv): `{base.dumps()}`", "",
      f"## Step 1: grid at phi = 1 (alpha * beta^2 * gamma^2 ~ {target:g})",
      "", *_md_table(grid_rows, ["alpha", "beta", "gamma", "flops_factor",
                                 "macs", "accuracy"]), "",
      f"Best: alpha = {best.alpha:g}, beta = {best.beta:g}, gamma = "
      f"{best.gamma:g} (factor {best.flops_factor():.3f}).", "",
      "## Step 2: family, and single-dimension scaling at matched MACs", "",
      "Depths are rounded up, channels to multiples of 8, resolutions to "
      "multiples of the total stride; single-dimension rows scale one "
      "multiplier to the MACs closest to the compound member of the same "
      "phi. `macs` is analytic (`mbv_costs`), `macs_traced` and `params` "
      "come from `supernet.costs`, latency is measured on this machine.", "",
      *_md_table(rows, fields), "",
      f"Chosen (most accurate compound member, `arch.json`): phi = "
      f"{chosen.phi:g}.", "", "![accuracy vs MACs](accuracy_vs_macs.png)", ""]
  with open(path, "w") as f:
    f.write("\n".join(lines))


def summary_lines(best: Coefficients, rows: Sequence[dict[str, Any]]
                  ) -> list[str]:
  """The family as printed by ``supernet search``."""
  lines = [f"compound coefficients: alpha={best.alpha:g} beta={best.beta:g} "
           f"gamma={best.gamma:g}",
           f"{'kind':<11}{'phi':>4}{'res':>5}  {'depths':<10}{'params':>9}"
           f"{'MMACs':>9}{'lat ms':>8}{'acc %':>8}"]
  for r in rows:
    lat = r.get("latency_ms")
    lines.append(f"{r['kind']:<11}{r['phi']:>4g}{r['resolution']:>5}  "
                 f"{r['depths']:<10}{r['params']:>9}{r['macs'] / 1e6:>9.3f}"
                 f"{(f'{lat:.3f}' if lat is not None else '-'):>8}"
                 f"{r['accuracy']:>8.2f}")
  return lines
