"""Short-training proxy: train a standalone network briefly, report test accuracy.

Each architecture is built as a standalone :class:`~supernet.elastic.static.
MobileNet` from its layout (no shared weights), trained from scratch for a few
epochs with Adam and scored on the test split. It is slow next to weight
sharing (one compilation and a training run per architecture), so keep the
dataset and the epochs tiny; it is what compound scaling ranks its
coefficients with, since scaled networks leave the elastic space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from supernet.errors import UserError
from supernet.evaluators.base import Result
from supernet.spaces.base import Arch, SearchSpace


def default_data_config() -> ml_collections.ConfigDict:
  """The embedded digits, batch 64, as ``experiments/configs/ofa_digits.py``."""
  from supernet.data import data_config_defaults
  cfg = data_config_defaults()
  cfg.update({"name": "digits", "image_size": 0, "pad": 1, "flip": False,
              "batch_size": 64, "eval_batch_size": 128})
  return cfg


def train_proxy(layout: Any, data: Any, *, epochs: int, learning_rate: float,
                seed: int) -> float:
  """Trains the standalone network of ``layout`` and returns test accuracy.

  Args:
    layout: an :class:`~supernet.elastic.layout.MbvLayout`.
    data: a loaded :class:`~supernet.data.pipeline.Dataset`.
    epochs: training epochs.
    learning_rate: Adam learning rate (cosine-decayed to 0).
    seed: initialisation and data-order seed.

  Returns:
    Test accuracy in [0, 1].
  """
  import jax
  import jax.numpy as jnp
  import optax

  from supernet.elastic.static import MobileNet
  info = data.info
  model = MobileNet(layout, info.num_classes)
  steps = data.steps_per_epoch() * epochs
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(steps, 1)))
  variables = model.init(jax.random.key(seed),
                         jnp.zeros((1, *info.image_shape), jnp.float32))
  params, stats = variables["params"], variables.get("batch_stats", {})
  opt_state = tx.init(params)

  @jax.jit
  def step(params, stats, opt_state, x, y):
    def loss_fn(p):
      logits, upd = model.apply({"params": p, "batch_stats": stats}, x,
                                train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, upd["batch_stats"]
    grads, new_stats = jax.grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state

  @jax.jit
  def correct(params, stats, x, y, w):
    logits = model.apply({"params": params, "batch_stats": stats}, x)
    return jnp.sum((jnp.argmax(logits, -1) == y) * w)

  for epoch in range(epochs):
    for b in data.train_batches(epoch, seed):
      params, stats, opt_state = step(params, stats, opt_state, b["image"],
                                      b["label"])
  hits = total = 0.0
  for b in data.eval_batches("test"):
    hits += float(correct(params, stats, b["image"], b["label"], b["mask"]))
    total += float(np.sum(b["mask"]))
  return hits / max(total, 1.0)


class ProxyEvaluator:
  """Accuracy (percent) of each architecture trained from scratch briefly.

  Each result holds ``accuracy``, ``macs`` and ``params`` (analytic).
  """

  def __init__(self, space: SearchSpace, data: Any, epochs: int = 2,
               learning_rate: float = 0.01, seed: int = 0):
    """Builds the evaluator.

    Args:
      space: an ``elastic_mbv`` space (its archs become standalone networks).
      data: the loaded dataset.
      epochs: training epochs per architecture.
      learning_rate: Adam learning rate.
      seed: seed of every training run (same seed: comparable runs).
    """
    if getattr(space, "name", None) != "elastic_mbv":
      raise UserError(f"the proxy evaluator needs the elastic_mbv space, not "
                      f"{getattr(space, 'name', space)!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
      raise UserError(f"evaluator.epochs must be an integer >= 1, got "
                      f"{epochs!r}")
    self.space = space
    self.data = data
    self.epochs = epochs
    self.learning_rate = float(learning_rate)
    self.seed = int(seed)
    self.num_queries = 0

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, space: SearchSpace
                  ) -> ProxyEvaluator:
    """Builds the evaluator of an ``evaluator`` config section.

    Args:
      config: optional ``data`` (a data config; default the embedded digits),
        ``epochs`` (2), ``learning_rate`` (0.01), ``seed`` (0).
      space: the ``elastic_mbv`` search space.

    Returns:
      The evaluator.
    """
    from supernet.data import load_dataset
    data_cfg = config.get("data") or default_data_config()
    return cls(space, load_dataset(data_cfg), config.get("epochs", 2),
               config.get("learning_rate", 0.01), config.get("seed", 0))

  def evaluate_layouts(self, layouts: Sequence[Any]) -> list[Result]:
    """Results of standalone layouts (e.g. compound-scaled networks)."""
    from supernet.elastic.layout import mbv_costs
    info = self.data.info
    out = []
    for layout in layouts:
      acc = train_proxy(layout, self.data, epochs=self.epochs,
                        learning_rate=self.learning_rate, seed=self.seed)
      out.append({"accuracy": 100.0 * acc,
                  **mbv_costs(layout, info.image_shape[-1], info.num_classes)})
    self.num_queries += len(layouts)
    return out

  def evaluate(self, archs: Sequence[Arch]) -> list[Result]:
    """Results of architectures of the space; counts one query each."""
    from supernet.elastic.layout import mbv_layout
    return self.evaluate_layouts([mbv_layout(self.space, a) for a in archs])
