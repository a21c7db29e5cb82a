"""The ``model`` and ``train`` sections of a training config: checks.

A training config (``experiments/configs/*_train.py``) has ``seed``,
``space.name``, ``data`` (see :mod:`supernet.data`), ``model`` and ``train``.
Checking happens before anything is written, so a typo fails in one line
with the valid choices and the run directory is never touched.
"""

from __future__ import annotations

import ml_collections

from supernet.errors import UserError

# The learning-rate schedules ``train.schedule`` may name (explicit registry).
SCHEDULES = ("cosine", "exponential", "constant")
OPTIMIZERS = ("sgd",)
# Spaces whose networks ``supernet train`` builds from an arch.json; elastic
# spaces train a whole supernet instead (supernet.elastic.train).
ARCH_SPACES = ("darts", "nb201")
ELASTIC_SPACES = ("elastic_mbv", "elastic_vit")

_TRAIN_FIELDS = {
    "epochs": int, "optimizer": str, "lr": float, "lr_min": float,
    "momentum": float, "nesterov": bool, "weight_decay": float,
    "schedule": str, "decay_rate": float, "decay_epochs": int,
    "warmup_epochs": int, "grad_clip": float, "label_smoothing": float,
    "eval_every": int, "log_every": int,
}


def train_defaults() -> ml_collections.ConfigDict:
  """Default ``train`` section (the DARTS CIFAR-10 evaluation recipe).

  Fields:
    epochs: passes over the whole train split.
    optimizer: ``sgd`` (with momentum; the DARTS recipe).
    lr: peak learning rate.
    lr_min: final learning rate of the ``cosine`` schedule.
    momentum: SGD momentum (0 turns it off).
    nesterov: Nesterov momentum.
    weight_decay: L2 weight decay added to the gradients (PyTorch style).
    schedule: ``cosine`` (to ``lr_min`` over all steps), ``exponential``
      (multiply by ``decay_rate`` every ``decay_epochs`` epochs, staircase:
      the DARTS ImageNet recipe) or ``constant``.
    decay_rate: factor of the ``exponential`` schedule.
    decay_epochs: period of the ``exponential`` schedule.
    warmup_epochs: linear warm-up from 0 before the schedule starts.
    grad_clip: clip gradients to this global norm (0 turns it off).
    label_smoothing: label smoothing of the training loss (0 = none).
    eval_every: evaluate the test split every this many epochs (and always
      after the last one).
    log_every: refresh the progress bar's loss every this many steps.

  Returns:
    A fresh ConfigDict.
  """
  return ml_collections.ConfigDict(dict(
      epochs=600, optimizer="sgd", lr=0.025, lr_min=0.0, momentum=0.9,
      nesterov=False, weight_decay=3e-4, schedule="cosine", decay_rate=0.97,
      decay_epochs=1, warmup_epochs=0, grad_clip=5.0, label_smoothing=0.0,
      eval_every=1, log_every=10))


def model_defaults() -> ml_collections.ConfigDict:
  """Default ``model`` section (the DARTS CIFAR-10 evaluation network).

  Fields:
    stem: ``cifar`` (one 3x3 conv) or ``imagenet`` (three stride-2 convs).
    channels: initial channels C.
    layers: number of cells (DARTS) ...
    cells_per_stage: ... or cells per stage (NB201).
    auxiliary: build the auxiliary head (DARTS).
    auxiliary_weight: weight of the auxiliary loss.
    drop_path_prob: final drop-path probability, reached linearly over the
      epochs (DARTS only).
    dropout: dropout before the classifier (DARTS only).
    depthwise_impl: see :mod:`supernet.ops.depthwise`.
    num_classes: classifier outputs; must equal the dataset's.
    input_shape: ``(H, W, C)``; must equal the dataset's (after resize).

  Returns:
    A fresh ConfigDict.
  """
  return ml_collections.ConfigDict(dict(
      stem="cifar", channels=36, layers=20, cells_per_stage=5,
      auxiliary=True, auxiliary_weight=0.4, drop_path_prob=0.2, dropout=0.0,
      depthwise_impl="auto", num_classes=10, input_shape=(32, 32, 3)))


def _check_type(section: str, key: str, value, kind: type) -> None:
  ok = isinstance(value, kind) and not (kind is not bool
                                        and isinstance(value, bool))
  if kind is float and isinstance(value, int) and not isinstance(value, bool):
    ok = True
  if not ok:
    raise UserError(f"{section}.{key} must be {kind.__name__}, got {value!r}")


def check_train_config(config: ml_collections.ConfigDict) -> None:
  """Checks a training config's ``space``, ``model`` and ``train`` sections.

  Args:
    config: the whole config.

  Raises:
    UserError: naming the first missing or invalid field.
  """
  for section in ("space", "data", "model", "train"):
    if section not in config:
      raise UserError(f"the config has no {section!r} section (a training "
                      "config needs seed, space, data, model and train)")
  if "seed" not in config or not isinstance(config.seed, int):
    raise UserError("config.seed must be an integer")
  if config.space.name not in ARCH_SPACES:
    raise UserError(f"space.name {config.space.name!r} cannot be trained from"
                    f" an arch.json; valid: {list(ARCH_SPACES)} (elastic "
                    f"spaces {list(ELASTIC_SPACES)} train a supernet)")
  t = config.train
  unknown = sorted(set(t.keys()) - set(_TRAIN_FIELDS))
  if unknown:
    raise UserError(f"unknown train fields {unknown}; valid fields: "
                    f"{sorted(_TRAIN_FIELDS)}")
  defaults = train_defaults()
  for key, kind in _TRAIN_FIELDS.items():
    _check_type("train", key, t.get(key, defaults[key]), kind)
  if t.get("schedule", "cosine") not in SCHEDULES:
    raise UserError(f"unknown train.schedule {t.schedule!r}; valid: "
                    f"{list(SCHEDULES)}")
  if t.get("optimizer", "sgd") not in OPTIMIZERS:
    raise UserError(f"unknown train.optimizer {t.optimizer!r}; valid: "
                    f"{list(OPTIMIZERS)}")
  if train_value(config, "epochs") < 1:
    raise UserError(f"train.epochs must be >= 1, got {t.epochs}")
  if not 0.0 <= train_value(config, "label_smoothing") < 1.0:
    raise UserError("train.label_smoothing must be in [0, 1)")
  for key in ("eval_every", "log_every", "decay_epochs"):
    if train_value(config, key) < 1:
      raise UserError(f"train.{key} must be >= 1")
  m = config.model
  for key in ("num_classes", "input_shape", "channels"):
    if key not in m:
      raise UserError(f"config.model.{key} is not set")
  shape = m.input_shape
  if (not isinstance(shape, (list, tuple)) or len(shape) != 3
      or not all(isinstance(d, int) and d > 0 for d in shape)):
    raise UserError(f"model.input_shape must be (height, width, channels), "
                    f"got {shape!r}")
  p = m.get("drop_path_prob", 0.0)
  if not 0.0 <= p < 1.0:
    raise UserError(f"model.drop_path_prob must be in [0, 1), got {p!r}")
  if config.space.name != "darts":
    for key in ("auxiliary", "drop_path_prob", "dropout"):
      if m.get(key):
        raise UserError(f"model.{key} is only supported by DARTS networks; "
                        f"set it to 0/False for space {config.space.name!r}")


def check_model_matches_data(config: ml_collections.ConfigDict, info) -> None:
  """``model.num_classes`` / ``model.input_shape`` must describe the data.

  Args:
    config: the whole config.
    info: the loaded dataset's :class:`supernet.data.DatasetInfo`.

  Raises:
    UserError: on a mismatch, naming both values.
  """
  m = config.model
  if m.num_classes != info.num_classes:
    raise UserError(f"model.num_classes={m.num_classes} but dataset "
                    f"{info.name!r} has {info.num_classes} classes")
  if tuple(m.input_shape) != tuple(info.image_shape):
    raise UserError(f"model.input_shape={tuple(m.input_shape)} but dataset "
                    f"{info.name!r} gives images of shape "
                    f"{tuple(info.image_shape)} (set data.image_size or "
                    "model.input_shape)")


def train_value(config: ml_collections.ConfigDict, key: str):
  """``config.train.<key>``, or its default when the config omits it."""
  return config.train.get(key, train_defaults()[key])


def model_value(config: ml_collections.ConfigDict, key: str):
  """``config.model.<key>``, or its default when the config omits it."""
  return config.model.get(key, model_defaults()[key])
