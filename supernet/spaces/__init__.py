"""Search spaces: a registry of spaces and ``arch.json`` reading/writing.

Spaces are looked up by name in :data:`SPACES` (an explicit registry, checked
when a config is read, so a typo fails early with the list of valid names).
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from supernet.errors import UserError
from supernet.spaces.base import Arch, SearchSpace, numpy_rng
from supernet.spaces.darts import DARTS_V2, DartsSpace, Genotype
from supernet.spaces.nb201 import Nb201Arch, Nb201Space

# name -> "module:factory"; each factory takes the space's config (a
# ConfigDict or None) and returns a SearchSpace. Imported lazily so that a
# space's heavy dependencies load only when it is used.
SPACES: dict[str, str] = {
    "darts": "supernet.spaces.darts:DartsSpace",
    "nb201": "supernet.spaces.nb201:Nb201Space",
    "elastic_mbv": "supernet.spaces.elastic:ElasticMobileNetSpace.from_config",
    "elastic_vit": "supernet.spaces.elastic:ElasticTransformerSpace.from_config",
}


def make_space(name: str, config: Any = None) -> SearchSpace:
  """Builds the space registered as ``name`` (``config`` for elastic spaces)."""
  if name not in SPACES:
    raise UserError(f"unknown search space {name!r}; valid spaces: "
                    f"{sorted(SPACES)}")
  module_name, _, attr = SPACES[name].partition(":")
  obj: Any = importlib.import_module(module_name)
  for part in attr.split("."):
    obj = getattr(obj, part)
  if name in ("darts", "nb201"):
    return obj()
  return obj(config)


def arch_from_json(doc: Any, space: SearchSpace | None = None) -> Arch:
  """Parses an ``arch.json`` document, checking it belongs to ``space``."""
  if not isinstance(doc, dict) or "space" not in doc:
    raise UserError("arch.json must be a JSON object with a 'space' field")
  name = doc["space"]
  if space is not None and name != space.name:
    raise UserError(f"arch.json is of space {name!r} but the config's space is "
                    f"{space.name!r}")
  if space is None:
    if name not in ("darts", "nb201"):
      raise UserError(f"arch.json of space {name!r} needs its space config")
    space = make_space(name)
  return space.arch_from_json(doc)


def load_arch(path: str | os.PathLike, space: SearchSpace | None = None
              ) -> Arch:
  """Reads an ``arch.json`` file; any problem is a one-line ``UserError``."""
  path = os.fspath(path)
  try:
    with open(path) as f:
      text = f.read()
  except OSError as e:
    raise UserError(f"cannot read arch file {path}: {e.strerror}") from None
  try:
    doc = json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError(f"arch file {path} is not valid JSON ({e.msg} at line "
                    f"{e.lineno})") from None
  return arch_from_json(doc, space)


def save_arch(arch: Arch, path: str | os.PathLike) -> None:
  """Writes ``arch.json`` (atomically, so a crash never leaves half a file)."""
  path = os.fspath(path)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(arch.to_json(), f, indent=1)
    f.write("\n")
  os.replace(tmp, path)


__all__ = ["Arch", "SearchSpace", "Genotype", "DartsSpace", "Nb201Arch",
           "Nb201Space", "DARTS_V2", "SPACES", "make_space", "arch_from_json",
           "load_arch", "save_arch", "numpy_rng"]
