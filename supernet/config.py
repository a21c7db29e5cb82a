"""Loading experiment configs: ``path/to/config.py[:arg]`` plus overrides.

A config file defines ``get_config(arg: str | None = None)`` returning an
``ml_collections.ConfigDict`` (big_vision style: ``--config file.py:smoke``).
Overrides ``--config.a.b=value`` must name an existing key; values are parsed
as Python literals and must match the existing type, so a typo fails early.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from collections.abc import Sequence
from typing import Any

import ml_collections

from supernet.errors import UserError


def _load_module(path: str):
  if not os.path.isfile(path):
    raise UserError(f"config file not found: {path}")
  name = "supernet_config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # a broken config file is the user's input
    raise UserError(f"config file {path} failed to load: "
                    f"{type(e).__name__}: {e}") from None
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path} defines no get_config()")
  return module


def _parse_value(text: str, current: Any, key: str) -> Any:
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text  # bare strings: --config.dataset=cifar10
  if isinstance(current, bool):
    if isinstance(value, str) and value.lower() in ("true", "false"):
      value = value.lower() == "true"
    if not isinstance(value, bool):
      raise UserError(f"--config.{key}: expected true/false, got {text!r}")
    return value
  if isinstance(current, float) and isinstance(value, int) and not isinstance(
      value, bool):
    return float(value)
  if isinstance(current, (list, tuple)) and isinstance(value, (list, tuple)):
    return type(current)(value)
  if current is not None and not isinstance(value, type(current)):
    raise UserError(f"--config.{key}: expected {type(current).__name__}, "
                    f"got {text!r}")
  return value


def apply_override(config: ml_collections.ConfigDict, key: str, text: str
                   ) -> None:
  """Sets ``config.<key>`` from the command-line text ``text``."""
  node = config
  parts = key.split(".")
  for i, part in enumerate(parts):
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
      where = ".".join(parts[:i]) or "config"
      valid = sorted(node.keys()) if isinstance(
          node, (ml_collections.ConfigDict, dict)) else []
      raise UserError(f"config key {key!r} does not exist (no {part!r} in "
                      f"{where}; valid keys there: {valid})")
    if i < len(parts) - 1:
      node = node[part]
  current = node[parts[-1]]
  value = _parse_value(text, current, key)
  try:
    node[parts[-1]] = value
  except (TypeError, ValueError) as e:
    raise UserError(f"--config.{key}: {e}") from None


def load_config(spec: str, overrides: Sequence[tuple[str, str]] = ()
                ) -> ml_collections.ConfigDict:
  """Loads ``path.py[:arg]`` and applies ``(key, value_text)`` overrides."""
  path, _, arg = spec.partition(":")
  module = _load_module(path)
  try:
    config = module.get_config(arg) if arg else module.get_config()
  except UserError:
    raise
  except Exception as e:
    raise UserError(f"get_config({arg!r}) of {path} failed: "
                    f"{type(e).__name__}: {e}") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"get_config() of {path} must return a ConfigDict")
  for key, text in overrides:
    apply_override(config, key, text)
  return config


def config_to_json(config: ml_collections.ConfigDict) -> str:
  """Stable JSON text of a config (what ``RUN/config.json`` holds)."""
  return json.dumps(config.to_dict(), indent=1, sort_keys=True, default=str)


def config_from_dict(d: dict[str, Any]) -> ml_collections.ConfigDict:
  """Rebuilds a config saved with :func:`config_to_json`."""
  return ml_collections.ConfigDict(d)
