"""Host-side image transforms in NumPy: resize once, augment per batch.

Everything here is a pure function of its inputs and an explicit
``np.random.Generator``, so a batch is reproducible from its seed alone.
Augmentation draws its random numbers for the *whole* batch at once, in a
fixed order, so the result does not depend on how a batch is later split
across hosts.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=32)
def _resize_weights(in_size: int, out_size: int) -> np.ndarray:
  """``(out_size, in_size)`` linear-interpolation matrix (antialiased).

  Half-pixel centres, as in ``jax.image.resize(method="linear")``; when
  shrinking, the triangle kernel is widened by the scale factor so every
  input pixel contributes (antialiasing). Rows sum to one.
  """
  scale = out_size / in_size
  width = max(1.0, 1.0 / scale)
  centres = (np.arange(out_size) + 0.5) / scale - 0.5
  distance = np.abs(np.arange(in_size)[None, :] - centres[:, None]) / width
  weights = np.maximum(0.0, 1.0 - distance)
  return weights / weights.sum(axis=1, keepdims=True)


def resize(images: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
  """Bilinear (antialiased) resize of uint8 images to ``size x size``.

  Deterministic NumPy, applied once when a dataset is loaded.

  Args:
    images: ``(N, H, W, C)`` uint8 images.
    size: output height and width.
    chunk: images per step (bounds the float32 temporaries).

  Returns:
    ``(N, size, size, C)`` uint8 images.
  """
  n, height, width, channels = images.shape
  if (height, width) == (size, size):
    return images
  rows = _resize_weights(height, size).astype(np.float32)
  cols = _resize_weights(width, size).astype(np.float32)
  out = np.empty((n, size, size, channels), np.uint8)
  for start in range(0, n, chunk):
    x = images[start:start + chunk].astype(np.float32)
    y = np.einsum("oh,nhwc,pw->nopc", rows, x, cols, optimize=True)
    out[start:start + chunk] = np.clip(np.rint(y), 0, 255).astype(np.uint8)
  return out


def pad_and_crop(images: np.ndarray, pad: int, rng: np.random.Generator
                 ) -> np.ndarray:
  """Zero-pads by ``pad`` pixels per side and crops back at random offsets.

  Args:
    images: ``(B, H, W, C)`` images (any dtype).
    pad: padding per side; 0 returns ``images`` unchanged (no draws).
    rng: source of the ``(B, 2)`` crop offsets.

  Returns:
    Array shaped and typed like ``images``.
  """
  if pad <= 0:
    return images
  b, h, w, _ = images.shape
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = rng.integers(0, 2 * pad + 1, size=(b, 2))
  rows = offsets[:, 0, None] + np.arange(h)  # (B, H)
  cols = offsets[:, 1, None] + np.arange(w)  # (B, W)
  return padded[np.arange(b)[:, None, None], rows[:, :, None],
                cols[:, None, :]]


def random_flip(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Mirrors each image left-right with probability 1/2.

  Args:
    images: ``(B, H, W, C)`` images.
    rng: source of the ``B`` coin flips.

  Returns:
    Array shaped and typed like ``images``.
  """
  flip = rng.random(len(images)) < 0.5
  return np.where(flip[:, None, None, None], images[:, :, ::-1], images)


def cutout(images: np.ndarray, length: int, rng: np.random.Generator
           ) -> np.ndarray:
  """Zeroes one ``length x length`` square per image (DeVries & Taylor 2017).

  As in DARTS, the square's centre is uniform over the image and the square
  is clipped at the border; it is applied after normalisation, so zero is
  the dataset mean.

  Args:
    images: ``(B, H, W, C)`` float images.
    length: side of the square; 0 returns ``images`` unchanged (no draws).
    rng: source of the ``(B, 2)`` centres.

  Returns:
    Array shaped and typed like ``images``.
  """
  if length <= 0:
    return images
  b, h, w, _ = images.shape
  centres = rng.integers(0, [h, w], size=(b, 2))
  half = length // 2
  y = np.arange(h)[None, :]
  x = np.arange(w)[None, :]
  in_rows = (y >= centres[:, :1] - half) & (y < centres[:, :1] - half + length)
  in_cols = (x >= centres[:, 1:] - half) & (x < centres[:, 1:] - half + length)
  hole = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W)
  return np.where(hole[..., None], np.zeros((), images.dtype), images)
