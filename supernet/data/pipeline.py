"""Loaded splits and their deterministic batch iterators.

A :class:`Dataset` holds both splits as uint8 arrays in host memory and hands
out batches ``{"image": float32 NHWC, "label": int32, "mask": float32}``:

* Every batch of one iterator has the same shape, so a jitted step compiles
  once. Training iterators drop the remainder; evaluation iterators pad the
  last batch and mark the padding with ``mask == 0``.
* An epoch is a pure function of ``(seed, epoch)``: its order and every
  augmentation draw come from NumPy generators seeded with those integers
  (never global state), so a run resumed at any step sees bitwise the batches
  an uninterrupted run would.
* Batch sizes are global. With several hosts (``jax.process_count() > 1``)
  each host yields its own contiguous slice of every global batch, ready for
  :func:`supernet.parallel.shard_batch`.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import ml_collections
import numpy as np

from supernet.data import augment, sources
from supernet.data.config import validate_data_config, with_defaults
from supernet.data.info import KNOWN_STATS, DatasetInfo, compute_stats, normalize
from supernet.errors import UserError

PARTS = ("all", "weights", "arch")
_SPLITS = ("train", "test")
# Leading word of every seed: keeps the random streams of different purposes
# apart (NumPy's SeedSequence pads short entropy with zeros, so without a
# distinct first word (s, e) and (s, e, 0) would collide).
_SPLIT_STREAM, _ORDER_STREAM, _AUGMENT_STREAM = 1, 2, 3
_UINT64 = 2**64 - 1


def _rng(*words: int) -> np.random.Generator:
  return np.random.default_rng(
      np.random.SeedSequence([int(w) & _UINT64 for w in words]))


def bilevel_split(num_train: int, train_portion: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Divides train indices into the "weights" and "arch" parts.

  Args:
    num_train: size of the train split.
    train_portion: fraction going to "weights" (floored, as in DARTS).
    seed: the split's seed.

  Returns:
    ``(weights, arch)``: disjoint sorted index arrays covering
    ``range(num_train)``.
  """
  order = _rng(_SPLIT_STREAM, seed).permutation(num_train)
  cut = int(np.floor(train_portion * num_train))
  return np.sort(order[:cut]), np.sort(order[cut:])


class Dataset:
  """The train and test splits of one dataset, with batch iterators.

  Attributes:
    info: the dataset's :class:`DatasetInfo`.
    config: the validated ``data`` sub-config it was built with.
  """

  def __init__(self, info: DatasetInfo,
               train: tuple[np.ndarray, np.ndarray],
               test: tuple[np.ndarray, np.ndarray],
               config: ml_collections.ConfigDict, *,
               num_devices: int | None = None,
               process_index: int | None = None,
               process_count: int | None = None):
    """Wraps in-memory splits (use :func:`load_dataset` to read a dataset).

    Args:
      info: the dataset's info (its mean/std normalise every batch).
      train: ``(images uint8 NHWC, labels)`` of the train split.
      test: the same for the test split.
      config: the ``data`` sub-config (augmentation, split, batch sizes).
      num_devices: devices a batch is split over; default
        ``jax.device_count()``.
      process_index: this host's index; default ``jax.process_index()``.
      process_count: number of hosts; default ``jax.process_count()``.
    """
    validate_data_config(config)
    self.config = with_defaults(config)
    self.info = info
    self._images = {"train": train[0], "test": test[0]}
    self._labels = {"train": np.asarray(train[1], np.int32),
                    "test": np.asarray(test[1], np.int32)}
    self._num_devices = (jax.device_count() if num_devices is None
                         else num_devices)
    self._process_index = (jax.process_index() if process_index is None
                           else process_index)
    self._process_count = (jax.process_count() if process_count is None
                           else process_count)
    weights, arch = bilevel_split(len(train[0]), self.config.train_portion,
                                  self.config.seed)
    self._parts = {"all": np.arange(len(train[0])), "weights": weights,
                   "arch": arch}
    # Fail at load time, not at the first step, for the configured sizes.
    self._batch_size(None, train=True)
    self._batch_size(None, train=False)

  # ---- sizes -----------------------------------------------------------------
  def _batch_size(self, batch_size: int | None, *, train: bool) -> int:
    if batch_size is None:
      batch_size = (self.config.batch_size if train
                    else self.config.eval_batch_size)
    what = "batch_size" if train else "eval_batch_size"
    if batch_size < 1:
      raise UserError(f"{what} must be positive, got {batch_size}")
    if batch_size % self._num_devices:
      raise UserError(f"{what} {batch_size} is not divisible by the number "
                      f"of devices ({self._num_devices})")
    if batch_size % self._process_count:
      raise UserError(f"{what} {batch_size} is not divisible by the number "
                      f"of hosts ({self._process_count})")
    return batch_size

  def _part(self, part: str | None) -> np.ndarray:
    part = "all" if part is None else part
    if part not in PARTS:
      raise UserError(f"unknown train part {part!r}; valid parts: {PARTS}")
    return self._parts[part]

  def num_examples(self, split: str = "train", part: str | None = None
                   ) -> int:
    """Examples in ``split`` (and, for ``train``, in one bilevel ``part``)."""
    return len(self._indices(split, part))

  def steps_per_epoch(self, part: str = "all",
                      batch_size: int | None = None) -> int:
    """Training steps in one epoch of ``part`` (the remainder is dropped).

    Args:
      part: ``all``, ``weights`` or ``arch``.
      batch_size: global batch size; default ``config.batch_size``.

    Returns:
      ``len(part) // batch_size``.
    """
    return len(self._part(part)) // self._batch_size(batch_size, train=True)

  def _indices(self, split: str, part: str | None) -> np.ndarray:
    if split not in _SPLITS:
      raise UserError(f"unknown split {split!r}; valid splits: {_SPLITS}")
    if split == "test":
      if part not in (None, "all"):
        raise UserError(f"part {part!r} only exists in the train split")
      return np.arange(len(self._labels["test"]))
    return self._part(part)

  def _local(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """This host's contiguous slice of a global batch."""
    if self._process_count == 1:
      return batch
    size = len(batch["label"]) // self._process_count
    lo = self._process_index * size
    return {k: v[lo:lo + size] for k, v in batch.items()}

  # ---- iterators ---------------------------------------------------------------
  def train_batches(self, epoch: int, seed: int, *, part: str = "all",
                    batch_size: int | None = None, start: int = 0
                    ) -> Iterator[dict[str, np.ndarray]]:
    """Shuffled, augmented training batches of one epoch.

    Args:
      epoch: epoch number; with ``seed`` it fixes the order and augmentation.
      seed: the run's seed.
      part: ``all`` (whole train split), ``weights`` or ``arch``.
      batch_size: global batch size; default ``config.batch_size``.
      start: first step to yield (resuming mid-epoch); earlier steps are
        skipped without being computed.

    Yields:
      ``steps_per_epoch(part)`` batches ``{"image", "label", "mask"}``; the
      mask is all ones.

    Raises:
      UserError: if ``part`` holds fewer examples than one batch.
    """
    indices = self._part(part)
    batch_size = self._batch_size(batch_size, train=True)
    if start < 0:
      raise UserError(f"start step must be >= 0, got {start}")
    steps = len(indices) // batch_size
    if steps == 0:
      raise UserError(f"train part {part!r} has {len(indices)} examples, "
                      f"fewer than one batch of {batch_size}")
    stream = PARTS.index(part)
    order = indices[_rng(_ORDER_STREAM, seed, epoch, stream).permutation(
        len(indices))]
    images, labels = self._images["train"], self._labels["train"]
    for step in range(start, steps):
      chosen = order[step * batch_size:(step + 1) * batch_size]
      rng = _rng(_AUGMENT_STREAM, seed, epoch, stream, step)
      yield self._local({
          "image": self._augment(images[chosen], rng),
          "label": labels[chosen],
          "mask": np.ones(batch_size, np.float32),
      })

  def _augment(self, images: np.ndarray, rng: np.random.Generator
               ) -> np.ndarray:
    # Draw order is fixed (crop, flip, cutout) so results depend on the seed
    # words only.
    images = augment.pad_and_crop(images, self.config.pad, rng)
    if self.config.flip:
      images = augment.random_flip(images, rng)
    return augment.cutout(normalize(images, self.info), self.config.cutout,
                          rng)

  def eval_batches(self, split: str = "test", *, part: str | None = None,
                   batch_size: int | None = None
                   ) -> Iterator[dict[str, np.ndarray]]:
    """Un-augmented batches covering a split once, in a fixed order.

    Args:
      split: ``test`` or ``train``.
      part: for ``train`` only: ``all``, ``weights`` or ``arch`` (a search
        evaluates on its ``arch`` half).
      batch_size: global batch size; default ``config.eval_batch_size``.

    Yields:
      Batches of exactly ``batch_size``; the last is padded with zero images
      whose ``mask`` is 0, so ``sum(mask)`` over all batches is the split
      size.
    """
    indices = self._indices(split, part)
    batch_size = self._batch_size(batch_size, train=False)
    images, labels = self._images[split], self._labels[split]
    for lo in range(0, len(indices), batch_size):
      chosen = indices[lo:lo + batch_size]
      real = len(chosen)
      image = np.zeros((batch_size, *images.shape[1:]), np.float32)
      image[:real] = normalize(images[chosen], self.info)
      label = np.zeros(batch_size, np.int32)
      label[:real] = labels[chosen]
      mask = np.zeros(batch_size, np.float32)
      mask[:real] = 1.0
      yield self._local({"image": image, "label": label, "mask": mask})

  def bilevel_batches(self, epoch: int, seed: int, *,
                      batch_size: int | None = None, start: int = 0
                      ) -> Iterator[tuple[dict[str, np.ndarray],
                                          dict[str, np.ndarray]]]:
    """Pairs of ("weights" batch, "arch" batch) for one search epoch.

    The two parts are shuffled independently; the epoch has
    :meth:`bilevel_steps_per_epoch` steps.

    Args:
      epoch: epoch number.
      seed: the run's seed.
      batch_size: global batch size of both; default ``config.batch_size``.
      start: first step to yield (resuming mid-epoch).

    Yields:
      ``(train_batch, val_batch)`` tuples.
    """
    yield from zip(
        self.train_batches(epoch, seed, part="weights", batch_size=batch_size,
                           start=start),
        self.train_batches(epoch, seed, part="arch", batch_size=batch_size,
                           start=start))

  def bilevel_steps_per_epoch(self, batch_size: int | None = None) -> int:
    """Length of :meth:`bilevel_batches`."""
    return min(self.steps_per_epoch("weights", batch_size),
               self.steps_per_epoch("arch", batch_size))

  def raw_arrays(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images (resized, not normalised) and int32 labels of a split."""
    self._indices(split, None)
    return self._images[split], self._labels[split]


# ---- loading -----------------------------------------------------------------
def _open(config: ml_collections.ConfigDict):
  validate_data_config(config)
  config = with_defaults(config)
  builder = sources.get_builder(config.name, config.data_dir)
  sources.ensure_prepared(builder, config.name, config.data_dir,
                          config.download)
  sources.check_features(builder, config.name)
  return config, builder


def _read(config: ml_collections.ConfigDict, builder, split: str
          ) -> tuple[np.ndarray, np.ndarray]:
  source = sources.open_source(builder, config.name, split)
  shape = builder.info.features["image"].shape
  return sources.read_split(source, config.name, config.image_size, shape)


def load_split_arrays(config: ml_collections.ConfigDict, split: str
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Raw arrays of one split, for paths that normalise themselves (export).

  Args:
    config: the ``data`` sub-config.
    split: ``train`` or ``test``.

  Returns:
    ``(images, labels)``: uint8 ``(N, H, W, C)`` resized to
    ``config.image_size`` (if set) but not normalised, and int32 ``(N,)``.
  """
  if split not in _SPLITS:
    raise UserError(f"unknown split {split!r}; valid splits: {_SPLITS}")
  config, builder = _open(config)
  return _read(config, builder, split)


def load_dataset(config: ml_collections.ConfigDict, *,
                 num_devices: int | None = None) -> Dataset:
  """Prepares (on first use) and loads a dataset into host memory.

  Args:
    config: the ``data`` sub-config (see ``data_config_defaults``).
    num_devices: devices batches are split over; default
      ``jax.device_count()``.

  Returns:
    The loaded :class:`Dataset`.

  Raises:
    UserError: unknown dataset, not prepared and not preparable, bad config.
  """
  config, builder = _open(config)
  train = _read(config, builder, "train")
  test = _read(config, builder, "test")
  name = sources.canonical_name(config.name)
  if name in KNOWN_STATS:
    mean, std = KNOWN_STATS[name]
  else:
    mean, std = compute_stats(train[0])
  label = builder.info.features["label"]
  shape = train[0].shape[1:] if len(train[0]) else test[0].shape[1:]
  if len(mean) != shape[-1]:
    raise UserError(f"dataset {name!r}: {shape[-1]} image channels but "
                    f"{len(mean)} normalisation channels")
  info = DatasetInfo(
      name=name, num_classes=int(label.num_classes),
      image_shape=tuple(int(d) for d in shape), mean=tuple(mean),
      std=tuple(std), class_names=tuple(label.names),
      num_train=len(train[1]), num_test=len(test[1]))
  return Dataset(info, train, test, config, num_devices=num_devices)
