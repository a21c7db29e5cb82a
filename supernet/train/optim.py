"""The weight optimiser of a training run, built from ``config.train``.

DARTS evaluation recipe (PyTorch semantics, as optax transformations):
clip the gradient's global norm, add L2 weight decay to it, then SGD with
momentum on a learning-rate schedule (per step, so a resumed run continues
the schedule exactly from its restored optimiser count).
"""

from __future__ import annotations

import ml_collections
import optax

from supernet.train.config import train_value


def make_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int
                  ) -> optax.Schedule:
  """The learning-rate schedule ``config.train`` describes.

  Args:
    config: the whole config (reads ``train.*``).
    steps_per_epoch: optimiser steps per epoch.

  Returns:
    A function from the step count to the learning rate.
  """
  lr = float(train_value(config, "lr"))
  epochs = int(train_value(config, "epochs"))
  warmup = int(train_value(config, "warmup_epochs")) * steps_per_epoch
  total = max(epochs * steps_per_epoch - warmup, 1)
  kind = train_value(config, "schedule")
  if kind == "cosine":
    lr_min = float(train_value(config, "lr_min"))
    main = optax.cosine_decay_schedule(lr, total,
                                       alpha=lr_min / lr if lr else 0.0)
  elif kind == "exponential":
    main = optax.exponential_decay(
        lr, transition_steps=int(train_value(config, "decay_epochs"))
        * steps_per_epoch, decay_rate=float(train_value(config, "decay_rate")),
        staircase=True)
  else:
    main = optax.constant_schedule(lr)
  if not warmup:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def make_optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Clip, L2 weight decay and SGD (momentum) on the configured schedule.

  Args:
    config: the whole config (reads ``train.*``).
    steps_per_epoch: optimiser steps per epoch (for the schedule).

  Returns:
    ``(optimizer, schedule)``; the schedule is logged as ``lr``.
  """
  schedule = make_schedule(config, steps_per_epoch)
  parts = []
  clip = float(train_value(config, "grad_clip"))
  if clip > 0:
    parts.append(optax.clip_by_global_norm(clip))
  wd = float(train_value(config, "weight_decay"))
  if wd:
    parts.append(optax.add_decayed_weights(wd))
  momentum = float(train_value(config, "momentum"))
  parts.append(optax.sgd(schedule, momentum=momentum or None,
                         nesterov=bool(train_value(config, "nesterov"))))
  return optax.chain(*parts), schedule
