"""``supernet profile``: parameters, MACs, activation memory and latency.

Three modes:
  * ``--model NAME [--width W] [--resolution R]``: a reference network of
    :mod:`supernet.zoo`.
  * ``--config CFG --arch ARCH.json [--config.x=y]``: a searched architecture,
    built by ``supernet.models.build_network(config, arch)``; parameters
    under a top-level ``auxiliary`` key are left out (inference does not run
    the auxiliary head) and only the first output of a tuple is kept.
  * ``--lut-error``: the latency lookup table's error against whole-network
    measurements on random architectures of the MobileNetV2-style space.

MACs are per example; activation memory and latency are for ``--batch``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from supernet.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the ``profile`` options to ``parser``."""
  what = parser.add_argument_group("what to profile (one of)")
  what.add_argument("--model", help="reference network name (see supernet.zoo)")
  what.add_argument("--config", help="experiment config file[:arg] (with --arch)")
  what.add_argument("--lut-error", action="store_true",
                    help="measure the latency lookup table's prediction error")
  parser.add_argument("--arch", help="arch.json of a searched architecture")
  parser.add_argument("--width", type=float, help="width multiplier")
  parser.add_argument("--resolution", type=int, help="input resolution")
  parser.add_argument("--num-classes", type=int,
                      help="classifier outputs (default: 1000 for --model, "
                           "the config's for --config)")
  parser.add_argument("--batch", type=int, default=1,
                      help="batch size for memory and latency (default 1)")
  parser.add_argument("--latency", action="store_true",
                      help="measure latency on the current JAX backend")
  parser.add_argument("--runs", type=int, default=20,
                      help="timed runs, median reported (default 20)")
  parser.add_argument("--warmup", type=int, default=3,
                      help="untimed runs after compiling (default 3)")
  parser.add_argument("--clock", default="wall", choices=("wall", "process"),
                      help="wall = latency; process = this process's CPU "
                           "time, stable on a shared CPU (default wall)")
  parser.add_argument("--memory", default="xla",
                      choices=("xla", "jaxpr_liveness"),
                      help="activation-memory method (default xla)")
  parser.add_argument("--depthwise-impl", default="auto",
                      help="depthwise implementation for memory and latency "
                           "(MACs always count the native form)")
  parser.add_argument("--lut-archs", type=int, default=30,
                      help="--lut-error: random architectures (default 30)")
  parser.add_argument("--lut-cache", help="--lut-error: table cache file "
                      "(default ~/.cache/supernet/latency_lut/...)")
  parser.add_argument("--seed", type=int, default=0,
                      help="--lut-error: sampling seed (default 0)")
  parser.add_argument("--json", action="store_true", help="print JSON")


def _check_args(args: argparse.Namespace) -> None:
  modes = [m for m in ("model", "config", "lut_error") if getattr(args, m)]
  if len(modes) != 1:
    raise UserError("give exactly one of --model, --config (with --arch) or "
                    "--lut-error")
  if args.config and not args.arch:
    raise UserError("--config needs --arch ARCH.json")
  if args.arch and not args.config:
    raise UserError("--arch needs --config CFG (the space is in the config)")
  if getattr(args, "config_overrides", None) and not args.config:
    raise UserError("--config.* overrides need --config")
  if args.batch < 1 or args.runs < 1 or args.warmup < 0:
    raise UserError("--batch and --runs must be >= 1, --warmup >= 0")


def _build_searched(args: argparse.Namespace):
  from supernet.config import load_config
  from supernet.spaces import load_arch, make_space
  config = load_config(args.config, getattr(args, "config_overrides", ()))
  if "space" not in config or "name" not in config.space:
    raise UserError(f"config {args.config} has no space.name")
  space = make_space(config.space.name, config.space)
  arch = load_arch(args.arch, space)
  try:
    from supernet.models import build_network
  except ImportError as e:
    raise UserError(f"profiling a searched architecture needs "
                    f"supernet.models.build_network, which is not available "
                    f"({e})") from None
  try:
    module, input_shape = build_network(config, arch,
                                        num_classes=args.num_classes)
  except (AttributeError, KeyError) as e:  # a key the config lacks
    raise UserError(f"config {args.config} cannot build the network: "
                    f"{type(e).__name__}: {e}") from None
  return module, tuple(input_shape), {"config": args.config,
                                      "arch": args.arch,
                                      "space": config.space.name}


def _profile(args: argparse.Namespace) -> dict[str, Any]:
  from supernet.costs import profile_module
  from supernet.zoo import MODELS, build_model
  if args.model:
    num_classes = 1000 if args.num_classes is None else args.num_classes
    module, input_shape = build_model(
        args.model, num_classes, args.width, args.resolution,
        args.depthwise_impl)
    width = MODELS[args.model].default_width if args.width is None else (
        args.width)
    head = {"model": args.model, "width": width, "num_classes": num_classes}
  else:
    if args.width is not None or args.resolution is not None:
      raise UserError("--width/--resolution apply to --model; set them in the "
                      "config for --config")
    module, input_shape, head = _build_searched(args)
  result = profile_module(module, None, input_shape, batch=args.batch,
                          latency=args.latency, exclude=("auxiliary",),
                          memory=args.memory, warmup=args.warmup,
                          runs=args.runs, clock=args.clock)
  return {**head, **result}


def _lut_error(args: argparse.Namespace) -> dict[str, Any]:
  import jax

  from supernet.costs.latency_lut import lut_error
  return lut_error(num_archs=args.lut_archs, key=jax.random.key(args.seed),
                   resolution=args.resolution or 224, width=args.width or 1.0,
                   batch=args.batch, warmup=args.warmup, runs=args.runs,
                   path=args.lut_cache, progress=not args.json,
                   clock=args.clock)


def format_profile(r: dict[str, Any]) -> str:
  """The readable table of one profile result."""
  h, w, c = r["input_shape"]
  name = r.get("model") or f"{r.get('space')} arch {r.get('arch')}"
  if r.get("width") is not None:
    name += f" (width {r['width']:g})"
  lines = [("network", name),
           ("input", f"{h}x{w}x{c}, batch {r['batch']}"),
           ("params", f"{r['params']:,}"),
           ("MACs", f"{r['macs'] / 1e6:,.1f} M per example"),
           ("activations", f"{r['activation_bytes'] / 2**20:,.2f} MiB "
                           f"({r['activation_bytes_method']})")]
  lat = r.get("latency_ms")
  if lat:
    lines.append(("latency", f"{lat['median_ms']:.2f} ms median (min "
                             f"{lat['min_ms']:.2f}, max {lat['max_ms']:.2f}; "
                             f"{lat['runs']} runs, {lat['clock']} clock, "
                             f"{lat['backend']}/{lat['device_kind']})"))
  return "\n".join(f"{k:<12} {v}" for k, v in lines)


def format_lut_error(r: dict[str, Any]) -> str:
  """The readable summary of a :func:`lut_error` result."""
  sig = r["signature"]
  rows = [f"{'arch':>4} {'blocks':>6} {'measured ms':>12} {'predicted ms':>13}"
          f" {'error %':>8}"]
  for i, row in enumerate(r["rows"]):
    rows.append(f"{i:>4} {row['blocks']:>6} {row['measured_ms']:>12.2f} "
                f"{row['predicted_ms']:>13.2f} {row['ape_percent']:>8.1f}")
  rows.append(f"latency table: {r['table_blocks']} blocks on "
              f"{sig['backend']}/{sig['device_kind']}, jax "
              f"{sig['jax_version']}, batch {sig['batch']}, {sig['clock']} "
              f"clock")
  rows.append(f"mean absolute percentage error over {r['num_archs']} "
              f"architectures: {r['mape_percent']:.1f}% (max "
              f"{r['max_ape_percent']:.1f}%)")
  return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
  """Runs ``supernet profile``; returns the exit status."""
  _check_args(args)
  if args.lut_error:
    result = _lut_error(args)
    print(json.dumps(result, indent=1) if args.json else format_lut_error(result))
    return 0
  result = _profile(args)
  print(json.dumps(result, indent=1) if args.json else format_profile(result))
  return 0
