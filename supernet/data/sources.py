"""Finding, preparing and reading datasets through tfds data sources.

Every dataset, the embedded ``digits`` included, goes through the same path:
a tfds builder, prepared once into ``data_dir`` in the ``array_record``
format, read back through ``builder.as_data_source`` (random access, no
TensorFlow) and decoded into NumPy arrays held in host memory.

Preparing happens automatically on first use. ``digits`` prepares offline
from the copy inside scikit-learn. Any other dataset is prepared by tfds'
own builder, which needs network access to download and, for image
datasets, TensorFlow to encode the images; without TensorFlow this module
refuses to start a download that could not finish, and says how to prepare
the dataset elsewhere (``tfds build NAME --file_format=array_record``).

Datasets that do not fit in host memory are refused with a clear error
(``MAX_IN_MEMORY_BYTES``). Streaming them would read each batch's records
with ``source.__getitems__(indices)`` in the batch iterator instead of from
preloaded arrays; the epoch order and masks would stay exactly as they are.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds

from supernet.data import augment, digits
from supernet.errors import UserError

# Refuse to decode more than this into host memory (decoded uint8 pixels).
# ImageNet at 64x64 is ~16 GB; anything beyond needs a streaming pipeline.
MAX_IN_MEMORY_BYTES = 24 * 2**30
_FILE_FORMAT = "array_record"
# The test split is called "validation" in some catalogues (imagenette,
# imagenet2012); the first name present is used.
_TEST_SPLIT_NAMES = ("test", "validation")


def canonical_name(name: str) -> str:
  """The config-level name of a dataset (``uci_digits`` reads as ``digits``)."""
  return digits.CONFIG_NAME if name == digits.BUILDER_NAME else name


def _where(builder: tfds.core.DatasetBuilder, data_dir: str) -> str:
  if data_dir:
    return data_dir
  return f"{builder.data_dir_root} (tfds' default; set data.data_dir to change)"


def _unknown_dataset(name: str) -> UserError:
  known = tfds.core.registered.list_imported_builders()
  close = difflib.get_close_matches(name, [digits.CONFIG_NAME, *known], n=3)
  hint = f"; did you mean {', '.join(close)}?" if close else ""
  return UserError(
      f"unknown dataset {name!r}: use 'digits' (built in) or the name of a "
      f"tensorflow-datasets image classification dataset such as cifar10, "
      f"cifar100 or mnist{hint}")


def get_builder(name: str, data_dir: str = "") -> tfds.core.DatasetBuilder:
  """The tfds builder for a config dataset name (not prepared yet).

  Args:
    name: ``digits`` or a tfds name (``cifar10``, ``name/config:version``).
    data_dir: tfds data directory; ``''`` means tfds' default
      (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

  Returns:
    The builder. The file format is chosen when preparing (passing it here
    would clash with a copy already prepared in another format).

  Raises:
    UserError: for a name tfds does not know.
  """
  if not name or not isinstance(name, str):
    raise UserError(f"data.name must be a dataset name, got {name!r}")
  kwargs = dict(data_dir=data_dir or None)
  if canonical_name(name) == digits.CONFIG_NAME:
    return digits.UciDigits(**kwargs)
  try:
    return tfds.builder(name, **kwargs)
  except tfds.core.registered.DatasetNotFoundError:
    raise _unknown_dataset(name) from None
  except ValueError as e:  # malformed names, unknown configs or versions
    raise UserError(f"dataset {name!r}: {_first_line(e)}") from None


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def ensure_prepared(builder: tfds.core.DatasetBuilder, name: str,
                    data_dir: str = "", download: bool = True) -> None:
  """Prepares ``builder`` into its data dir unless it already is.

  Args:
    builder: from :func:`get_builder`.
    name: the dataset's config name, for messages.
    data_dir: the configured data dir, for messages.
    download: whether preparing (and so downloading) may be attempted.

  Raises:
    UserError: when the dataset is not prepared and cannot be prepared here.
  """
  if builder.is_prepared():
    return
  where = _where(builder, data_dir)
  how = (f"prepare it with `tfds build {name} --file_format={_FILE_FORMAT} "
         f"--data_dir=DIR` on a machine with network access and TensorFlow, "
         f"then copy DIR/{builder.name} into {where}")
  tf_free = getattr(builder, "PREPARES_WITHOUT_TENSORFLOW", False)
  if not download:
    raise UserError(f"dataset {name!r} is not prepared in {where} and "
                    f"data.download is false; " + (
                        "set it to true (this dataset prepares offline)"
                        if tf_free else how))
  if not tf_free and importlib.util.find_spec("tensorflow") is None:
    # tfds encodes images with TensorFlow while preparing; failing now avoids
    # a download that could not finish (or hang without network).
    raise UserError(f"dataset {name!r} is not prepared in {where}, and "
                    f"preparing it needs TensorFlow (not installed) and "
                    f"network access; {how}")
  logging.info("preparing dataset %s into %s", name, where)
  try:
    builder.download_and_prepare(file_format=_FILE_FORMAT)
  except Exception as e:  # network, manual downloads, disk: all user-fixable
    raise UserError(f"could not download and prepare dataset {name!r} into "
                    f"{where}: {type(e).__name__}: {_first_line(e)}; {how}"
                    ) from e


def check_features(builder: tfds.core.DatasetBuilder, name: str) -> None:
  """Raises ``UserError`` unless the dataset has ``image`` and ``label``."""
  features = builder.info.features
  keys = set(features.keys()) if features is not None else set()
  image_ok = "image" in keys and isinstance(features["image"],
                                            tfds.features.Image)
  label_ok = "label" in keys and isinstance(features["label"],
                                            tfds.features.ClassLabel)
  if not (image_ok and label_ok):
    raise UserError(f"dataset {name!r} is not an image classification "
                    f"dataset: it needs an 'image' (Image) and a 'label' "
                    f"(ClassLabel) feature, it has {sorted(keys)}")


def tfds_test_split(builder: tfds.core.DatasetBuilder) -> str:
  """``test``, or ``validation`` for catalogues that have no test split."""
  splits = set(builder.info.splits.keys())
  for split in _TEST_SPLIT_NAMES:
    if split in splits:
      return split
  return _TEST_SPLIT_NAMES[0]


def open_source(builder: tfds.core.DatasetBuilder, name: str, split: str
                ) -> Sequence[dict]:
  """The random-access data source of one split.

  Args:
    builder: a prepared builder.
    name: the dataset's config name, for messages.
    split: ``train`` or ``test`` (``test`` maps to ``validation`` where the
      dataset has no test split).

  Returns:
    A sequence of decoded example dicts.

  Raises:
    UserError: when the split is missing or not stored as array_record.
  """
  tfds_split = tfds_test_split(builder) if split == "test" else split
  known = sorted(builder.info.splits.keys())
  if known and tfds_split not in known:
    raise UserError(f"dataset {name!r} has no {tfds_split!r} split "
                    f"(it has {known})")
  try:
    return builder.as_data_source(split=tfds_split)
  except NotImplementedError:  # prepared in a sequential format (tfrecord)
    stored = getattr(builder.info.file_format, "value", builder.info.file_format)
    raise UserError(
        f"dataset {name!r} in {builder.data_dir} is stored as {stored}, but "
        f"data sources need {_FILE_FORMAT}: prepare it into another data dir "
        f"with `tfds build {name} --file_format={_FILE_FORMAT}` or delete "
        f"{builder.data_dir}") from None
  except ValueError as e:
    raise UserError(f"dataset {name!r} in {builder.data_dir} cannot be read "
                    f"as a data source: {_first_line(e)}") from e


def _as_image(value, name: str) -> np.ndarray:
  image = np.asarray(value)
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.dtype != np.uint8:
    raise UserError(f"dataset {name!r}: expected uint8 HxWxC images, got "
                    f"{image.dtype} {image.shape}")
  return image


def read_split(source: Sequence[dict], name: str, image_size: int,
               image_shape: tuple[int | None, ...] = (None, None, None)
               ) -> tuple[np.ndarray, np.ndarray]:
  """Decodes a whole split into memory, resizing if asked.

  Args:
    source: a data source from :func:`open_source`.
    name: the dataset's config name, for messages.
    image_size: output height and width; 0 keeps the native size, which
      then must be the same for every image.
    image_shape: the image feature's declared ``(H, W, C)`` (``None`` where
      variable), used to check memory before reading.

  Returns:
    ``(images, labels)``: uint8 ``(N, H, W, C)`` and int32 ``(N,)``, in the
    data source's (deterministic) record order.

  Raises:
    UserError: for variable-size images without ``image_size``, or a split
      too large for host memory.
  """
  n = len(source)
  height, width, channels = image_shape
  if image_size:
    height = width = image_size
  if None not in (height, width, channels):
    needed = n * height * width * channels
    if needed > MAX_IN_MEMORY_BYTES:
      raise UserError(
          f"dataset {name!r}: {n} images of {height}x{width}x{channels} need "
          f"{needed / 2**30:.1f} GiB in host memory (limit "
          f"{MAX_IN_MEMORY_BYTES / 2**30:.0f} GiB); set a smaller "
          f"data.image_size")
  images, labels = [], np.empty(n, np.int32)
  for i in range(n):
    # Item access (not __getitems__) keeps this working with
    # tfds.testing.mock_data; array_record reads are cheap either way.
    example = source[i]
    images.append(_as_image(example["image"], name))
    labels[i] = int(example["label"])
  if not images:
    return np.zeros((0, height or 0, width or 0, channels or 0),
                    np.uint8), labels
  if len({image.shape for image in images}) == 1:
    stacked = np.stack(images)
    return (augment.resize(stacked, image_size) if image_size else stacked,
            labels)
  if not image_size:
    raise UserError(f"dataset {name!r} has images of different sizes; set "
                    f"data.image_size to resize them to one size")
  return np.concatenate([augment.resize(image[None], image_size)
                         for image in images]), labels
