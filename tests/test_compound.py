"""Compound scaling: the coefficient grid, family arithmetic, the run."""

import csv
import json
import math
import os

import ml_collections
import pytest

from supernet.blocks import make_divisible
from supernet.cli import main
from supernet.config import load_config
from supernet.elastic.layout import mbv_costs, mbv_layout
from supernet.errors import UserError
from supernet.rundir import RunDir
from supernet.spaces.elastic import ElasticMobileNetSpace
from supernet.strategies import compound as cs

SPACE = dict(name="elastic_mbv", stem_width=8, stage_widths=(8, 16, 24),
             stage_strides=(1, 2, 1), depths=(1, 2), kernels=(3, 5),
             expands=(2, 3), widths=(1.0,), resolutions=(8,), head_width=32,
             channel_divisor=8)


def _space():
  return ElasticMobileNetSpace.from_config(ml_collections.ConfigDict(SPACE))


def _base(space):
  return space.arch_from_json({
      "resolution": 8, "width": 1.0, "depths": [1, 2, 1],
      "kernels": [[3], [5, 3], [3]], "expands": [[3], [2, 3], [3]]})


def test_grid_respects_constraint():
  grid = cs.grid_candidates((1.0, 1.2, 1.4, 2.0), (1.0, 1.1, 1.2),
                            (1.0, 1.15, 1.3), target=2.0, tolerance=0.1)
  assert grid
  for c in grid:
    assert abs(c.alpha * c.beta ** 2 * c.gamma ** 2 - 2.0) <= 0.2 + 1e-9
  # Every triple of the full grid within tolerance is kept.
  assert cs.Coefficients(1.2, 1.1, 1.15) in grid
  assert cs.Coefficients(2.0, 1.0, 1.0) in grid
  assert cs.Coefficients(1.4, 1.2, 1.3) not in grid
  with pytest.raises(UserError, match="widen"):
    cs.grid_candidates((1.0,), (1.0,), (1.0,))
  with pytest.raises(UserError, match=">= 1"):
    cs.grid_candidates((0.5,), (1.0,), (1.0,))


def test_grid_finds_synthetic_optimum():
  # Synthetic accuracy peaked at (1.2, 1.1, 1.15), EfficientNet's triple.
  grid = cs.grid_candidates((1.0, 1.1, 1.2, 1.3, 2.0), (1.0, 1.05, 1.1, 1.2),
                            (1.0, 1.1, 1.15, 1.2, 1.4), tolerance=0.05)
  def acc(c):
    return -((c.alpha - 1.2) ** 2 + (c.beta - 1.1) ** 2
             + (c.gamma - 1.15) ** 2)
  best = cs.best_coefficients(grid, [acc(c) for c in grid])
  assert best == cs.Coefficients(1.2, 1.1, 1.15)


def test_family_scaling_arithmetic_is_exact():
  space = _space()
  base = _base(space)
  # phi = 0 is the base network itself (all channels multiples of 8).
  assert cs.compound_layout(space, base, cs.Coefficients(1.2, 1.1, 1.15), 0
                            ) == mbv_layout(space, base)
  coef = cs.Coefficients(1.2, 1.1, 1.15)
  for phi in (1, 2, 3):
    lay = cs.compound_layout(space, base, coef, phi)
    d, w, r = 1.2 ** phi, 1.1 ** phi, 1.15 ** phi
    depths = [sum(b.stage == s for b in lay.blocks) for s in range(3)]
    assert depths == [math.ceil(n * d) for n in (1, 2, 1)]
    for b in lay.blocks:
      want = [8, 16, 24][b.stage] * w
      assert b.out_channels % 8 == 0
      assert b.out_channels == make_divisible(want, 8)
      assert b.mid_channels % 8 == 0
      assert b.residual == (b.stride == 1 and b.in_channels == b.out_channels)
    assert lay.resolution == 2 * round(8 * r / 2)
    assert lay.resolution % space.total_stride == 0
  # Exact values at phi = 2: depth 1.44 -> 2, 2.88 -> 3; width 1.21.
  lay = cs.compound_layout(space, base, coef, 2)
  # make_divisible never rounds more than 10% down: 9.68 -> 16, 19.36 -> 24.
  assert [b.out_channels for b in lay.blocks if b.index == 0] == [16, 24, 32]
  assert lay.stem_channels == 16 and lay.head_channels == 40
  assert lay.resolution == 10                     # 8 * 1.3225 = 10.58 -> 10
  assert [b.kernel for b in lay.blocks if b.stage == 1] == [5, 3, 3]
  assert cs.scale_resolution(8, 1.15, 2) == 10 and cs.scale_resolution(
      8, 1.1, 4) == 8


def test_single_dimension_matches_macs():
  space = _space()
  base = _base(space)
  macs = lambda lay: mbv_costs(lay, 1, 10)["macs"]  # noqa: E731
  target = macs(cs.compound_layout(space, base, cs.Coefficients(1.2, 1.1,
                                                                1.15), 2))
  for i, dim in enumerate(cs.DIMENSIONS):
    m, lay = cs.single_dimension_layout(space, base, dim, target, macs)
    assert m >= 1.0
    assert abs(math.log(macs(lay) / target)) < 0.35
    others = [x for j, x in enumerate(cs.DIMENSIONS) if j != i]
    # The other dimensions stay at the base.
    if "resolution" in others:
      assert lay.resolution == 8
    if "depth" in others:
      assert len(lay.blocks) == 4


class _Synthetic:
  """Accuracy grows with blocks and resolution; counts layout evaluations."""

  def __init__(self):
    self.num_queries = 0

  def evaluate_layouts(self, layouts):
    self.num_queries += len(layouts)
    return [{"accuracy": 50.0 + len(lay.blocks) + 0.5 * lay.resolution}
            for lay in layouts]


def test_run_writes_family(tmp_path):
  config = ml_collections.ConfigDict({
      "seed": 0, "space": SPACE,
      "evaluator": {"name": "proxy"},
      "search": {"strategy": "compound_scaling", "base_arch": "smallest",
                 "compound": {"alphas": (1.0, 2.0), "betas": (1.0, 1.4),
                              "gammas": (1.0, 1.4), "tolerance": 0.05,
                              "max_phi": 2, "profile": False}}})
  ev = _Synthetic()
  arch = cs.run_compound_scaling(config, str(tmp_path), evaluator=ev,
                                 in_channels=1, num_classes=10)
  # Grid (alpha=2) / (beta=1.4) / (gamma=1.4): depth wins on this evaluator.
  assert arch.kind == "compound" and arch.phi == 2.0
  assert arch.multipliers == (4.0, 1.0, 1.0)
  doc = json.loads((tmp_path / "arch.json").read_text())
  assert doc["space"] == "compound_scaled" and doc["layout"]["blocks"]
  with open(tmp_path / "family.csv") as f:
    rows = list(csv.DictReader(f))
  kinds = [r["kind"] for r in rows]
  assert kinds == ["base"] + ["compound", "depth", "width", "resolution"] * 2
  for name in ("report.md", "accuracy_vs_macs.png", "grid.csv"):
    assert (tmp_path / name).stat().st_size > 0
  # Each distinct layout is evaluated once (phi=1 reuses the grid's run).
  assert ev.num_queries <= 3 + 9


COMPOUND = os.path.join(os.path.dirname(__file__), "..", "experiments",
                        "configs", "compound_scaling_digits.py")


class _StopAfter(_Synthetic):
  """The synthetic evaluator, interrupted (Ctrl-C) after ``k`` evaluations."""

  def __init__(self, k):
    super().__init__()
    self.k = k

  def evaluate_layouts(self, layouts):
    if self.num_queries >= self.k:
      raise KeyboardInterrupt
    return super().evaluate_layouts(layouts)


def _outputs(workdir):
  return {name: (workdir / name).read_text()
          for name in ("family.csv", "grid.csv", "arch.json", "report.md")}


def test_interrupted_run_resumes_to_the_same_results(tmp_path):
  # The smoke experiment's grid and family, scored by the synthetic evaluator.
  config = load_config(COMPOUND + ":smoke",
                       [("search.compound.profile", "False")])
  kwargs = dict(in_channels=1, num_classes=10)
  whole = tmp_path / "whole"
  full = _Synthetic()
  arch = cs.run_compound_scaling(config, str(whole), evaluator=full, **kwargs)
  assert full.num_queries > 4

  part = tmp_path / "part"
  with pytest.raises(KeyboardInterrupt):
    cs.run_compound_scaling(config, str(part), evaluator=_StopAfter(3),
                            **kwargs)
  assert len(cs.load_state(str(part / cs.STATE_FILE)).results) == 3
  assert not (part / "family.csv").exists()
  rest = _Synthetic()
  assert cs.run_compound_scaling(config, str(part), evaluator=rest,
                                 **kwargs) == arch
  assert rest.num_queries == full.num_queries - 3  # nothing evaluated twice
  assert _outputs(part) == _outputs(whole)
  # Re-running a finished run evaluates nothing and changes nothing.
  again = _Synthetic()
  cs.run_compound_scaling(config, str(whole), evaluator=again, **kwargs)
  assert again.num_queries == 0 and _outputs(whole) == _outputs(part)

  # Another config's run directory is refused, before any evaluation.
  other = load_config(COMPOUND + ":smoke",
                      [("search.compound.profile", "False"),
                       ("search.compound.max_phi", "2")])
  with pytest.raises(UserError, match="different config"):
    cs.run_compound_scaling(other, str(whole), evaluator=_StopAfter(0),
                            **kwargs)


def test_cli_refuses_another_configs_workdir_with_one_line(tmp_path, capsys,
                                                           digits_data_dir):
  workdir = str(tmp_path / "run")
  RunDir(workdir, load_config(COMPOUND + ":smoke"), "search").close()
  data_dir = f"--config.evaluator.data.data_dir={digits_data_dir}"
  assert main(["search", "--config", COMPOUND + ":smoke", "--workdir",
               workdir, "--config.search.compound.max_phi=2", data_dir]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: ") and "\n" not in err
  assert "different config" in err
  assert sorted(os.listdir(workdir)) == ["config.json", "run.json"]
