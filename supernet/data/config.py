"""The ``data`` sub-config: defaults and validation."""

from __future__ import annotations

import ml_collections

from supernet.errors import UserError


def data_config_defaults() -> ml_collections.ConfigDict:
  """Default ``data`` sub-config (the embedded digits, no augmentation).

  Fields:
    name: ``digits`` (embedded, offline) or a tfds image classification name
      (``cifar10``, ``cifar100``, ``mnist``, ...).
    data_dir: tfds data directory; ``''`` means ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``.
    download: whether a dataset missing from ``data_dir`` may be prepared
      (for tfds catalogue datasets that means downloading it).
    image_size: resize every image to ``image_size x image_size`` once at
      load time (antialiased bilinear); 0 keeps the native size.
    pad: zero padding per side before the random crop back to size (4 for
      CIFAR); 0 turns pad-and-crop off.
    flip: random horizontal flips (never for digits).
    cutout: side of the cutout square; 0 turns cutout off.
    train_portion: fraction of the train split in the "weights" part of the
      bilevel split; the rest is the "arch" part (DARTS uses 0.5).
    batch_size: global training batch size (all devices and hosts).
    eval_batch_size: global evaluation batch size.
    seed: seed of the bilevel split. Epoch order and augmentation take their
      own explicit seed argument (the run's seed).

  Returns:
    A fresh ConfigDict.
  """
  return ml_collections.ConfigDict(dict(
      name="digits",
      data_dir="",
      download=True,
      image_size=0,
      pad=0,
      flip=False,
      cutout=0,
      train_portion=0.5,
      batch_size=64,
      eval_batch_size=256,
      seed=0,
  ))


def _int_field(config: ml_collections.ConfigDict, key: str, minimum: int
               ) -> int:
  value = config.get(key)
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise UserError(f"data.{key} must be an integer >= {minimum}, got "
                    f"{value!r}")
  return value


def validate_data_config(config: ml_collections.ConfigDict) -> None:
  """Checks a ``data`` sub-config; raises ``UserError`` naming the bad field.

  Missing fields take their defaults, so older configs keep working.

  Args:
    config: the ``data`` sub-config.
  """
  defaults = data_config_defaults()
  unknown = sorted(set(config.keys()) - set(defaults.keys()))
  if unknown:
    raise UserError(f"unknown data config fields {unknown}; valid fields: "
                    f"{sorted(defaults.keys())}")
  merged = with_defaults(config)
  if not isinstance(merged.name, str) or not merged.name:
    raise UserError(f"data.name must be a dataset name, got {merged.name!r}")
  if not isinstance(merged.data_dir, str):
    raise UserError(f"data.data_dir must be a string, got {merged.data_dir!r}")
  for key in ("flip", "download"):
    if not isinstance(merged[key], bool):
      raise UserError(f"data.{key} must be true or false, got "
                      f"{merged[key]!r}")
  for key in ("image_size", "pad", "cutout", "seed"):
    _int_field(merged, key, 0)
  for key in ("batch_size", "eval_batch_size"):
    _int_field(merged, key, 1)
  portion = merged.train_portion
  if (isinstance(portion, bool) or not isinstance(portion, (int, float))
      or not 0.0 < portion <= 1.0):
    raise UserError(f"data.train_portion must be in (0, 1], got {portion!r}")


def with_defaults(config: ml_collections.ConfigDict
                  ) -> ml_collections.ConfigDict:
  """A copy of ``config`` with every missing field set to its default.

  Args:
    config: a (possibly partial) ``data`` sub-config or plain dict.

  Returns:
    A new ConfigDict; values are not type-checked here (see
    :func:`validate_data_config`).
  """
  return ml_collections.ConfigDict(
      {**data_config_defaults().to_dict(), **dict(config.items())})
