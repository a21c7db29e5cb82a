"""The ``supernet`` command line: one verb per module in this package.

Every verb module defines ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported only when their verb runs, so ``supernet --help`` is fast.
User mistakes (``UserError``) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from supernet.errors import UserError
from supernet.xla_flags import apply_cpu_flags

# verb -> (module, one-line help). An explicit registry: the help lists them.
VERBS: dict[str, tuple[str, str]] = {
    "search": ("supernet.cli.search", "run an architecture search"),
    "train": ("supernet.cli.train", "train a network or an elastic supernet"),
    "export": ("supernet.cli.export", "export a trained network"),
    "evaluate": ("supernet.cli.evaluate", "evaluate an exported network"),
    "profile": ("supernet.cli.profile", "params, MACs, memory, latency"),
    "bench": ("supernet.cli.bench", "benchmark one search/training step"),
    "extract": ("supernet.cli.extract", "extract a subnet of an elastic run"),
    "sample": ("supernet.cli.sample", "print architectures of a space"),
    "compare": ("supernet.cli.compare", "compare search strategies"),
}


class _Parser(argparse.ArgumentParser):
  """argparse that reports errors as one line with exit status 2."""

  def error(self, message: str):  # noqa: D102 - argparse hook
    raise UserError(message)


def split_config_overrides(argv: Sequence[str]
                           ) -> tuple[list[str], list[tuple[str, str]]]:
  """Separates ``--config.a.b=value`` overrides from the other arguments."""
  rest, overrides = [], []
  argv = list(argv)
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      key, eq, value = arg[len("--config."):].partition("=")
      if not eq:
        if i + 1 >= len(argv):
          raise UserError(f"{arg} needs a value")
        value = argv[i + 1]
        i += 1
      overrides.append((key, value))
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(prog="supernet", description=(
      "JAX supernets for neural architecture search."))
  sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
  sub.required = True
  for verb, (module_name, help_text) in VERBS.items():
    p = sub.add_parser(verb, help=help_text, description=help_text)
    p.set_defaults(module_name=module_name)
  return parser


def enable_compilation_cache() -> None:
  """Persists compiled XLA programs across runs (``~/.cache/supernet/jax``).

  Supernet steps take minutes to compile on a CPU; with the cache a resumed
  or repeated run starts in seconds. ``SUPERNET_JAX_CACHE`` overrides the
  directory; ``SUPERNET_JAX_CACHE=off`` disables it.
  """
  path = os.environ.get("SUPERNET_JAX_CACHE",
                        os.path.join(os.path.expanduser("~"), ".cache",
                                     "supernet", "jax"))
  if path == "off":
    return
  import jax
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.0)


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``supernet`` console script."""
  argv = list(sys.argv[1:] if argv is None else argv)
  apply_cpu_flags()  # before any verb starts JAX
  try:
    argv, overrides = split_config_overrides(argv)
    parser = build_parser()
    # First pass finds the verb; its module then adds its own arguments.
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb in VERBS:
      module = importlib.import_module(VERBS[verb][0])
      module.add_arguments(parser._subparsers._group_actions[0].choices[verb])
    args = parser.parse_args(argv)
    args.config_overrides = overrides
    enable_compilation_cache()
    if verb not in VERBS:
      parser.error("unknown verb")
    return int(module.run(args) or 0)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
