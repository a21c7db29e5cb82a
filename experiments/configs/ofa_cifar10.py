"""Once-for-All style elastic MobileNet on CIFAR-10 (for an accelerator).

    supernet train --config experiments/configs/ofa_cifar10.py --workdir RUN

Five stages of MBConv blocks (strides 1, 2, 2, 2, 1; total stride 8, so
resolutions are multiples of 8), elastic resolution {24, 32}, width
{0.75, 1.0}, depth {2, 3, 4}, kernel {3, 5, 7}, expand {3, 4, 6}. Progressive
shrinking over 180 epochs: kernel (with resolution) first, then depth, then
expand and width, with channel re-ordering; sandwich rule with in-place
distillation; Nesterov SGD with cosine decay.
"""

import ml_collections

from supernet.data import data_config_defaults


def _data(name: str, **fields) -> ml_collections.ConfigDict:
  cfg = data_config_defaults()
  cfg.name = name
  cfg.update(fields)
  return cfg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({
      "name": "elastic_mbv",
      "stem_width": 24,
      "stem_stride": 1,
      "stage_widths": (24, 40, 80, 112, 160),
      "stage_strides": (1, 2, 2, 2, 1),
      "depths": (2, 3, 4),
      "kernels": (3, 5, 7),
      "expands": (3, 4, 6),
      "widths": (0.75, 1.0),
      "resolutions": (24, 32),
      "head_width": 640,
      "channel_divisor": 8,
  })
  c.data = _data("cifar10", pad=4, flip=True, cutout=0, batch_size=256,
                 eval_batch_size=500)
  c.model = ml_collections.ConfigDict({
      "kernel_transform": True,
      "depthwise_impl": "auto",
      "bn_momentum": 0.9,
      "bn_epsilon": 1e-5,
  })
  c.train = ml_collections.ConfigDict({
      "epochs": 180,
      "num_random_subnets": 2,
      "sandwich": True,
      "distill_alpha": 1.0,
      "distill_temperature": 1.0,
      "label_smoothing": 0.1,
      "phases": ("0:resolution,kernel", "60:resolution,kernel,depth",
                 "120:all"),
      "reorder_channels": True,
  })
  c.optim = ml_collections.ConfigDict({
      "name": "nesterov",
      "learning_rate": 0.1,
      "momentum": 0.9,
      "weight_decay": 5e-5,
      "warmup_epochs": 3,
      "schedule": "cosine",
      "grad_clip": 0.0,
  })
  c.evaluate = ml_collections.ConfigDict({
      "num_random": 20,
      "bn_batches": 16,
      "population_chunk": 8,
      "bench_eval_batches": 2,
  })
  c.baseline = ml_collections.ConfigDict({"linear": True})
  if arg == "smoke":
    c.space.stem_width = 8
    c.space.stage_widths = (8, 16)
    c.space.stage_strides = (2, 2)
    c.space.depths = (1, 2)
    c.space.kernels = (3, 5)
    c.space.expands = (2, 3)
    c.space.resolutions = (24, 32)
    c.space.head_width = 32
    c.data.batch_size = 32
    c.data.eval_batch_size = 100
    c.train.epochs = 1
    c.train.phases = ()
    c.evaluate.num_random = 2
    c.evaluate.bn_batches = 2
    c.baseline.linear = False
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
