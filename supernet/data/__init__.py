"""Datasets through tensorflow-datasets, deterministic host batches.

``digits`` (UCI handwritten digits, bundled with scikit-learn) prepares
offline; any tfds image classification dataset (``cifar10``, ``cifar100``,
...) is read by name. Everything is read through tfds data sources from
``array_record`` files, so TensorFlow is never needed to read.

Typical use::

  data = load_dataset(config.data)
  for train, val in data.bilevel_batches(epoch, seed=config.seed):
    state, metrics = search_step(state, shard_batch(train, mesh),
                                 shard_batch(val, mesh), key)
"""

from supernet.data.config import (
    data_config_defaults,
    validate_data_config,
    with_defaults,
)
from supernet.data.info import KNOWN_STATS, DatasetInfo, compute_stats, normalize
from supernet.data.pipeline import (
    PARTS,
    Dataset,
    bilevel_split,
    load_dataset,
    load_split_arrays,
)

__all__ = [
    "KNOWN_STATS", "PARTS", "Dataset", "DatasetInfo", "bilevel_split",
    "compute_stats", "data_config_defaults", "load_dataset",
    "load_split_arrays", "normalize", "validate_data_config", "with_defaults",
]
