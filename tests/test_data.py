"""Tests of supernet.data: the digits builder, tfds datasets, batches."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sys
from unittest import mock

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from supernet.data import (
  KNOWN_STATS,
  Dataset,
  DatasetInfo,
  augment,
  bilevel_split,
  compute_stats,
  data_config_defaults,
  digits,
  load_dataset,
  load_split_arrays,
  normalize,
  sources,
)
from supernet.errors import UserError


def _config(**overrides) -> ml_collections.ConfigDict:
  config = data_config_defaults()
  config.update(overrides)
  return config


@contextlib.contextmanager
def _mock_tfds(num_examples: int):
  """tfds.testing.mock_data, with builders reporting themselves prepared.

  mock_data fakes the data sources but leaves ``is_prepared()`` false; the
  loader checks it first so that it never starts a real download.
  """
  with tfds.testing.mock_data(num_examples=num_examples), mock.patch.object(
      tfds.core.DatasetBuilder, "is_prepared", return_value=True):
    yield


def _synthetic(num_train: int = 103, num_test: int = 37, size: int = 8,
               channels: int = 3, **overrides) -> Dataset:
  """A Dataset over random in-memory arrays (no tfds involved)."""
  rng = np.random.default_rng(0)
  train = (rng.integers(0, 256, (num_train, size, size, channels), np.uint8),
           rng.integers(0, 10, num_train))
  test = (rng.integers(0, 256, (num_test, size, size, channels), np.uint8),
          rng.integers(0, 10, num_test))
  info = DatasetInfo(name="synthetic", num_classes=10,
                     image_shape=(size, size, channels),
                     mean=(0.5,) * channels, std=(0.25,) * channels,
                     class_names=tuple(str(i) for i in range(10)),
                     num_train=num_train, num_test=num_test)
  kwargs = {k: overrides.pop(k) for k in ("num_devices", "process_index",
                                          "process_count") if k in overrides}
  config = _config(batch_size=8, eval_batch_size=16, **overrides)
  return Dataset(info, train, test, config, **{"num_devices": 1, **kwargs})


# ---- the embedded digits dataset -----------------------------------------------
def test_digits_prepares_offline_into_array_record(digits_data_dir):
  version_dir = os.path.join(digits_data_dir, digits.BUILDER_NAME, "1.0.0")
  for split in ("train", "test"):
    assert glob.glob(os.path.join(version_dir, f"*-{split}.array_record-*"))
  assert "tensorflow" not in sys.modules

  bunch = load_digits()
  builder = sources.get_builder("digits", digits_data_dir)
  assert builder.is_prepared()
  seen = []
  for split, expected in (("train", digits.NUM_TRAIN),
                          ("test", digits.NUM_TEST)):
    source = builder.as_data_source(split=split)
    assert len(source) == expected
    for i in range(len(source)):
      example = source[i]
      row = int(example["index"])
      seen.append(row)
      assert example["image"].shape == (8, 8, 1)
      assert example["image"].dtype == np.uint8
      assert int(example["label"]) == bunch.target[row]
      np.testing.assert_array_equal(example["image"],
                                    digits.to_uint8(bunch.images[row:row + 1])[0])
  assert sorted(seen) == list(range(1797))


def test_digits_split_is_stratified_and_fixed():
  labels = load_digits().target
  rows = digits.split_indices(labels)
  assert len(rows["train"]) == digits.NUM_TRAIN
  assert len(rows["test"]) == digits.NUM_TEST
  assert not set(rows["train"]) & set(rows["test"])
  test_counts = np.bincount(labels[rows["test"]], minlength=10)
  np.testing.assert_array_equal(test_counts, np.bincount(labels) // 5)


def test_load_digits_dataset(digits_data_dir):
  data = load_dataset(_config(data_dir=digits_data_dir, batch_size=32,
                              eval_batch_size=100))
  info = data.info
  assert info.name == "digits"
  assert (info.num_classes, info.image_shape) == (10, (8, 8, 1))
  assert info.class_names == tuple(str(i) for i in range(10))
  assert (info.num_train, info.num_test) == (digits.NUM_TRAIN, digits.NUM_TEST)
  assert (info.mean, info.std) == KNOWN_STATS["digits"]

  # The known normalisation constants are the train split's statistics.
  images, labels = load_split_arrays(_config(data_dir=digits_data_dir), "train")
  assert images.shape == (digits.NUM_TRAIN, 8, 8, 1)
  assert labels.dtype == np.int32
  mean, std = compute_stats(images)
  np.testing.assert_allclose(mean, info.mean, atol=1e-6)
  np.testing.assert_allclose(std, info.std, atol=1e-6)

  batches = list(data.eval_batches("test"))
  assert len(batches) == 4  # 355 = 3 * 100 + 55, padded
  for batch in batches:
    assert batch["image"].shape == (100, 8, 8, 1)
    assert batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32
  assert sum(b["mask"].sum() for b in batches) == digits.NUM_TEST
  np.testing.assert_array_equal(batches[-1]["mask"][55:], 0.0)

  train = next(data.train_batches(0, seed=0))
  assert train["image"].shape == (32, 8, 8, 1)
  np.testing.assert_array_equal(train["mask"], 1.0)


def test_resize_at_load_time(digits_data_dir):
  images, _ = load_split_arrays(_config(data_dir=digits_data_dir,
                                        image_size=16), "test")
  assert images.shape == (digits.NUM_TEST, 16, 16, 1)
  assert images.dtype == np.uint8
  # Same as jax.image.resize (linear, antialiased) up to uint8 rounding.
  x = np.random.default_rng(0).integers(0, 256, (2, 12, 12, 3), np.uint8)
  for size in (5, 12, 20):
    expected = jax.image.resize(x.astype(np.float32), (2, size, size, 3),
                                "linear", antialias=True)
    got = augment.resize(x, size).astype(np.float32)
    assert np.abs(got - np.asarray(expected)).max() <= 1.0


# ---- tfds catalogue datasets through mock_data ----------------------------------
def test_cifar10_through_mock_data(tmp_path):
  with _mock_tfds(num_examples=20):
    data = load_dataset(_config(name="cifar10", data_dir=str(tmp_path), pad=4,
                                flip=True, cutout=16, batch_size=8,
                                eval_batch_size=16))
  info = data.info
  assert (info.name, info.num_classes, info.image_shape) == ("cifar10", 10,
                                                             (32, 32, 3))
  assert (info.mean, info.std) == KNOWN_STATS["cifar10"]
  # (cifar10 reads its real names while preparing; unprepared: "0".."9".)
  assert len(info.class_names) == 10
  assert (info.num_train, info.num_test) == (20, 20)

  batches = list(data.train_batches(0, seed=1))
  assert len(batches) == data.steps_per_epoch() == 2  # 20 // 8, rest dropped
  for batch in batches:
    assert batch["image"].shape == (8, 32, 32, 3)
    assert batch["image"].dtype == np.float32
    # Cutout zeroes a square of every image (after normalisation).
    assert ((batch["image"] == 0).all(axis=-1).sum(axis=(1, 2)) > 0).all()
  evals = list(data.eval_batches("test"))
  assert [b["image"].shape for b in evals] == [(16, 32, 32, 3)] * 2
  assert sum(b["mask"].sum() for b in evals) == 20

  # Un-augmented evaluation images are exactly the normalised stored ones.
  raw, labels = data.raw_arrays("test")
  np.testing.assert_allclose(evals[0]["image"], normalize(raw[:16], info))
  np.testing.assert_array_equal(evals[0]["label"], labels[:16])


def test_generic_tfds_dataset_and_resize(tmp_path):
  with _mock_tfds(num_examples=12):
    data = load_dataset(_config(name="mnist", data_dir=str(tmp_path),
                                image_size=16, batch_size=4, eval_batch_size=8))
  info = data.info
  assert (info.num_classes, info.image_shape) == (10, (16, 16, 1))
  # No known constants: mean/std come from the (resized) train split.
  raw, _ = data.raw_arrays("train")
  np.testing.assert_allclose(info.mean, compute_stats(raw)[0])
  assert len(info.std) == 1 and info.std[0] > 0
  assert next(data.train_batches(0, 0))["image"].shape == (4, 16, 16, 1)


# ---- errors the user can fix --------------------------------------------------------
def test_unknown_dataset_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match="unknown dataset 'cifar01'.*cifar10"):
    load_dataset(_config(name="cifar01", data_dir=str(tmp_path)))


def test_unprepared_dataset_fails_fast_without_network(tmp_path):
  # TensorFlow is absent here, so cifar10 cannot be prepared: the loader must
  # say so before starting any download.
  data_dir = str(tmp_path / "empty")
  with mock.patch.object(tfds.core.DatasetBuilder, "download_and_prepare",
                         side_effect=AssertionError("must not download")):
    with pytest.raises(UserError) as error:
      load_dataset(_config(name="cifar10", data_dir=data_dir))
    assert "'cifar10'" in str(error.value) and data_dir in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="data.download is false"):
      load_dataset(_config(name="cifar10", data_dir=data_dir, download=False))


class _Unreachable(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A builder whose download fails, as it would without network."""

  VERSION = tfds.core.Version("1.0.0")
  PREPARES_WITHOUT_TENSORFLOW = True
  code_path = None  # see supernet/data/digits.py

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
        {"image": tfds.features.Image(shape=(8, 8, 1)),
         "label": tfds.features.ClassLabel(num_classes=2)}))

  def _split_generators(self, dl_manager):
    raise ConnectionError("Name or service not known (simulated)")

  def _generate_examples(self):
    yield from ()


def test_failed_download_is_a_user_error(tmp_path):
  builder = _Unreachable(data_dir=str(tmp_path))
  with pytest.raises(UserError, match="could not download and prepare "
                     "dataset 'unreachable'.*ConnectionError"):
    sources.ensure_prepared(builder, "unreachable", str(tmp_path))


@pytest.mark.parametrize("field,value,message", [
    ("train_portion", 0.0, "train_portion"),
    ("train_portion", 1.5, "train_portion"),
    ("pad", -1, "data.pad"),
    ("flip", 1, "data.flip"),
    ("batch_size", 0, "data.batch_size"),
])
def test_bad_config_values(field, value, message):
  config = ml_collections.ConfigDict({**data_config_defaults().to_dict(),
                                      field: value})
  with pytest.raises(UserError, match=message):
    load_dataset(config)


def test_batch_size_must_divide_over_devices():
  with pytest.raises(UserError, match="divisible by the number of devices"):
    _synthetic(num_devices=3)
  data = _synthetic(num_devices=4)
  with pytest.raises(UserError, match="batch_size 6 is not divisible"):
    next(data.train_batches(0, 0, batch_size=6))


# ---- bilevel split and batching ------------------------------------------------------
def test_bilevel_split_properties():
  weights, arch = bilevel_split(1000, 0.3, seed=5)
  assert len(weights) == 300 and len(arch) == 700
  assert not set(weights) & set(arch)
  assert sorted([*weights, *arch]) == list(range(1000))
  again = bilevel_split(1000, 0.3, seed=5)
  np.testing.assert_array_equal(weights, again[0])
  other = bilevel_split(1000, 0.3, seed=6)
  assert not np.array_equal(weights, other[0])

  data = _synthetic(train_portion=0.5, seed=3)
  assert data.num_examples("train", "weights") == 51
  assert data.num_examples("train", "arch") == 52
  train_labels = data.raw_arrays("train")[1]
  covered = np.concatenate([b["label"][b["mask"] > 0] for part in ("weights", "arch")
                            for b in data.eval_batches("train", part=part)])
  np.testing.assert_array_equal(np.sort(covered), np.sort(train_labels))


def test_train_order_is_a_function_of_seed_and_epoch():
  data = _synthetic(pad=2, flip=True, cutout=3)

  def epoch(e, seed, **kw):
    return [b["image"] for b in data.train_batches(e, seed, **kw)]

  first = epoch(0, 7)
  assert len(first) == 103 // 8
  assert all(x.shape == (8, 8, 8, 3) for x in first)
  np.testing.assert_array_equal(np.stack(first), np.stack(epoch(0, 7)))
  assert not np.array_equal(np.stack(first), np.stack(epoch(1, 7)))
  assert not np.array_equal(np.stack(first), np.stack(epoch(0, 8)))
  # Resuming mid-epoch reproduces the remaining batches bitwise.
  np.testing.assert_array_equal(np.stack(first[5:]),
                                np.stack(epoch(0, 7, start=5)))
  # A fresh Dataset object (a restarted process) gives the same batches.
  np.testing.assert_array_equal(
      np.stack(first),
      np.stack([b["image"] for b in _synthetic(pad=2, flip=True, cutout=3)
                .train_batches(0, 7)]))


def test_without_augmentation_train_images_are_normalised_originals():
  data = _synthetic()  # pad=0, flip=False, cutout=0
  images, labels = data.raw_arrays("train")
  seen = []
  for batch in data.train_batches(0, 0):
    for image, label in zip(batch["image"], batch["label"]):
      matches = np.flatnonzero(
          (normalize(images, data.info) == image).all(axis=(1, 2, 3)))
      assert len(matches) == 1 and labels[matches[0]] == label
      seen.append(matches[0])
  assert len(set(seen)) == len(seen) == 96


def test_augmentations_keep_shape_and_vary():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (16, 32, 32, 3), np.uint8)
  cropped = augment.pad_and_crop(images, 4, np.random.default_rng(1))
  assert cropped.shape == images.shape and cropped.dtype == np.uint8
  assert not np.array_equal(cropped, images)
  flipped = augment.random_flip(images, np.random.default_rng(1))
  same = [np.array_equal(f, i) for f, i in zip(flipped, images)]
  mirrored = [np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, images)]
  assert all(s or m for s, m in zip(same, mirrored)) and any(mirrored)
  holes = augment.cutout(np.ones((16, 32, 32, 3), np.float32), 16,
                         np.random.default_rng(1))
  zeros = (holes == 0).all(axis=-1).sum(axis=(1, 2))
  assert (zeros > 0).all() and (zeros <= 256).all()
  assert augment.pad_and_crop(images, 0, rng) is images


def test_eval_batches_pad_and_mask():
  data = _synthetic()
  batches = list(data.eval_batches("test"))
  assert [b["image"].shape for b in batches] == [(16, 8, 8, 3)] * 3
  assert sum(b["mask"].sum() for b in batches) == 37
  assert batches[-1]["mask"].tolist() == [1.0] * 5 + [0.0] * 11
  np.testing.assert_array_equal(batches[-1]["image"][5:], 0.0)
  arch = list(data.eval_batches("train", part="arch", batch_size=8))
  assert sum(b["mask"].sum() for b in arch) == data.num_examples("train", "arch")
  with pytest.raises(UserError, match="only exists in the train split"):
    next(data.eval_batches("test", part="arch"))
  with pytest.raises(UserError, match="unknown split"):
    next(data.eval_batches("valid"))


def test_bilevel_batches_length_and_independence():
  data = _synthetic(train_portion=0.25)  # 25 weights / 78 arch examples
  pairs = list(data.bilevel_batches(0, seed=0))
  assert len(pairs) == data.bilevel_steps_per_epoch() == 25 // 8
  for train, val in pairs:
    assert train["image"].shape == val["image"].shape == (8, 8, 8, 3)
  with pytest.raises(UserError, match="fewer than one batch"):
    next(_synthetic(train_portion=1.0).train_batches(0, 0, part="arch"))


def test_hosts_yield_their_slices_of_the_global_batch():
  whole = _synthetic(pad=2, flip=True)
  hosts = [_synthetic(pad=2, flip=True, num_devices=2, process_index=i,
                      process_count=2) for i in range(2)]
  for full, *parts in zip(whole.train_batches(3, 1),
                          *(h.train_batches(3, 1) for h in hosts)):
    for key in full:
      np.testing.assert_array_equal(
          full[key], np.concatenate([p[key] for p in parts]))


def test_dataset_prepared_in_another_format_is_a_user_error(
    digits_data_dir, tmp_path):
  # A copy prepared as tfrecord (as `tfds build` does by default) has no
  # random access; simulate one by relabelling the prepared digits.
  shutil.copytree(os.path.join(digits_data_dir, digits.BUILDER_NAME),
                  tmp_path / digits.BUILDER_NAME)
  info_file = tmp_path / digits.BUILDER_NAME / "1.0.0" / "dataset_info.json"
  info_file.write_text(info_file.read_text().replace(
      '"fileFormat": "array_record"', '"fileFormat": "tfrecord"'))
  with pytest.raises(UserError, match="stored as tfrecord, but data sources "
                     "need array_record"):
    load_dataset(_config(data_dir=str(tmp_path)))
  with pytest.raises(UserError, match="set it to true"):
    load_dataset(_config(data_dir=str(tmp_path / "none"), download=False))
