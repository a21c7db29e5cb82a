"""What a model needs to know about a dataset, and input normalisation."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

# Per-channel mean/std of the *train* split on the [0, 1] scale. Known values
# keep runs comparable with the literature (CIFAR: the values DARTS and most
# NAS code use) and save a pass over the data; other datasets get theirs
# computed from the loaded train split (see ``compute_stats``).
KNOWN_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.49139968, 0.48215827, 0.44653124),
                (0.24703233, 0.24348505, 0.26158768)),
    "cifar100": ((0.50707516, 0.48654887, 0.44091784),
                 (0.26733429, 0.25643846, 0.27615047)),
    # Computed by ``compute_stats`` on the uci_digits 1.0.0 train split;
    # tests/test_data.py checks that they still match.
    "digits": ((0.30518309,), (0.37599409,)),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static facts about a loaded dataset.

  Attributes:
    name: the config name (``digits``, ``cifar10``, any tfds name).
    num_classes: number of labels.
    image_shape: ``(height, width, channels)`` after any configured resize.
    mean: per-channel mean on the [0, 1] scale, used by :func:`normalize`.
    std: per-channel standard deviation on the [0, 1] scale.
    class_names: label names, index ``i`` naming label ``i``.
    num_train: examples in the whole train split.
    num_test: examples in the test split.
  """

  name: str
  num_classes: int
  image_shape: tuple[int, int, int]
  mean: tuple[float, ...]
  std: tuple[float, ...]
  class_names: tuple[str, ...]
  num_train: int
  num_test: int

  def to_json(self) -> dict[str, Any]:
    """A JSON-serialisable dict (what an export directory stores)."""
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, doc: dict[str, Any]) -> DatasetInfo:
    """Inverse of :meth:`to_json` (lists become tuples again)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in doc.items() if k in fields})


def normalize(images_uint8: np.ndarray, info: DatasetInfo) -> np.ndarray:
  """Maps uint8 images to float32 ``(x / 255 - mean) / std`` per channel.

  Args:
    images_uint8: ``(..., H, W, C)`` uint8 images, ``C == len(info.mean)``.
    info: the dataset's info (mean and std).

  Returns:
    float32 array of the same shape.
  """
  mean = np.asarray(info.mean, np.float32)
  std = np.asarray(info.std, np.float32)
  return ((np.asarray(images_uint8, np.float32) / np.float32(255.0) - mean)
          / std).astype(np.float32)


def compute_stats(images_uint8: np.ndarray, chunk: int = 4096
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Per-channel mean and (population) std of uint8 images on the [0, 1] scale.

  Args:
    images_uint8: ``(N, H, W, C)`` uint8 images.
    chunk: images per accumulation step (bounds the float64 temporaries).

  Returns:
    ``(mean, std)``, tuples of ``C`` floats.
  """
  channels = images_uint8.shape[-1]
  total = np.zeros(channels, np.float64)
  total_sq = np.zeros(channels, np.float64)
  for start in range(0, len(images_uint8), chunk):
    x = images_uint8[start:start + chunk].reshape(-1, channels)
    x = x.astype(np.float64) / 255.0
    total += x.sum(axis=0)
    total_sq += np.square(x).sum(axis=0)
  count = max(1, images_uint8.size // channels)
  mean = total / count
  # Guard the std against 0 (a constant channel) so normalise never divides
  # by zero.
  std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
  std = np.where(std > 0, std, 1.0)
  return tuple(float(v) for v in mean), tuple(float(v) for v in std)
