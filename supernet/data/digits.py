"""The embedded default dataset: UCI handwritten digits as a tfds builder.

scikit-learn ships a copy of the UCI "Optical Recognition of Handwritten
Digits" test set (1,797 grayscale 8x8 images, pixel values 0..16, 10 classes)
inside its wheel, so this dataset prepares without any network access.

It is registered with tensorflow-datasets as ``uci_digits`` (``digits`` is
what users write in configs; the longer name keeps clear of any future tfds
catalogue entry). Preparing writes ``array_record`` files, which tfds reads
back through data sources without TensorFlow.

Stored format:
  * ``image``: uint8 ``(8, 8, 1)`` PNG, values rescaled from 0..16 to 0..255
    (``round(v * 255 / 16)``) so that every dataset shares the uint8 range.
  * ``label``: ``ClassLabel`` with names ``"0"`` .. ``"9"``.
  * ``index``: the example's row in ``sklearn.datasets.load_digits()``.

Split (deterministic, stratified, no randomness): within each class, in
scikit-learn's row order, every fifth example (positions 4, 9, 14, ... of that
class) goes to ``test`` and the others to ``train``. That gives 1,442 train and
355 test examples (``floor(n_class / 5)`` of each class held out).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

# Users write ``digits``; tfds knows the builder as ``uci_digits``.
CONFIG_NAME = "digits"
BUILDER_NAME = "uci_digits"
NUM_TRAIN = 1442
NUM_TEST = 355
# Every TEST_EVERY-th example of each class is held out for testing.
TEST_EVERY = 5
_SKLEARN_MAX_VALUE = 16


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
  """The fixed stratified train/test split of ``load_digits()`` rows.

  Args:
    labels: the ``target`` array of ``sklearn.datasets.load_digits()``.

  Returns:
    ``{"train": rows, "test": rows}``, each sorted ascending.
  """
  labels = np.asarray(labels)
  is_test = np.zeros(len(labels), dtype=bool)
  for label in np.unique(labels):
    rows = np.flatnonzero(labels == label)
    is_test[rows[TEST_EVERY - 1::TEST_EVERY]] = True
  return {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}


def to_uint8(images: np.ndarray) -> np.ndarray:
  """Rescales scikit-learn's 0..16 digit images to uint8 0..255, adds a channel.

  Args:
    images: ``(N, 8, 8)`` array with values in 0..16.

  Returns:
    ``(N, 8, 8, 1)`` uint8 array.
  """
  scaled = np.rint(np.asarray(images, np.float64) * (255 / _SKLEARN_MAX_VALUE))
  return np.clip(scaled, 0, 255).astype(np.uint8)[..., None]


def _png_bytes(image: np.ndarray) -> bytes:
  # Encoding ourselves with Pillow keeps preparation TensorFlow-free: tfds'
  # own numpy->PNG encoder runs a TensorFlow graph, but it accepts bytes.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.fromarray(image[..., 0]).save(buffer, format="png")
  return buffer.getvalue()


class UciDigits(tfds.core.GeneratorBasedBuilder):
  """UCI handwritten digits (scikit-learn's copy): 8x8 grayscale, 10 classes."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Stratified 80/20 split (every 5th per class)."}
  # Read by supernet.data: this builder needs neither TensorFlow nor network.
  PREPARES_WITHOUT_TENSORFLOW = True
  # tfds derives this from the package through `importlib_resources`, which
  # is not installed on Python >= 3.9 (etils only requires it below 3.9) and
  # so fails; this file's own path is what tfds would compute.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    # DatasetInfo is built directly: ``dataset_info_from_configs`` would look
    # for README/citation files next to this module.
    return tfds.core.DatasetInfo(
        builder=self,
        description=("UCI optical recognition of handwritten digits, the "
                     "1,797-image copy bundled with scikit-learn."),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1),
                                         encoding_format="png"),
            "label": tfds.features.ClassLabel(
                names=[str(i) for i in range(10)]),
            "index": tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=("image", "label"),
        homepage=("https://archive.ics.uci.edu/dataset/80/optical+"
                  "recognition+of+handwritten+digits"),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # everything is inside the scikit-learn wheel
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
    bunch = load_digits()
    images = to_uint8(bunch.images)
    labels = np.asarray(bunch.target, np.int64)
    rows = split_indices(labels)
    return {split: self._generate_examples(images, labels, rows[split])
            for split in ("train", "test")}

  def _generate_examples(self, images: np.ndarray, labels: np.ndarray,
                         rows: np.ndarray) -> Iterator[tuple[int, dict]]:
    for row in rows:
      yield int(row), {"image": _png_bytes(images[row]),
                       "label": int(labels[row]), "index": int(row)}
