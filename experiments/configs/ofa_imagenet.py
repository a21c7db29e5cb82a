"""Once-for-All MobileNetV3-like elastic supernet on ImageNet (accelerators).

    supernet train --config experiments/configs/ofa_imagenet.py --workdir RUN

OFA-MobileNetV3 settings: stem 16 channels stride 2, five stages of widths
24, 40, 80, 112, 160 with strides 2, 2, 2, 1, 2 (total stride 32), per-stage
depth {2, 3, 4}, per-block kernel {3, 5, 7} and expand ratio {3, 4, 6},
resolution {128, 160, 192, 224}, and a width multiplier {0.75, 1.0} on top
(blocks are MBConv with ReLU6, without squeeze-excitation or h-swish).
Progressive shrinking (kernel, depth, expand/width) with kernel
transformation matrices, channel re-ordering, sandwich rule and in-place
distillation, label smoothing 0.1, Nesterov SGD, cosine decay.
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
      "stem_width": 16,
      "stem_stride": 2,
      "stage_widths": (24, 40, 80, 112, 160),
      "stage_strides": (2, 2, 2, 1, 2),
      "depths": (2, 3, 4),
      "kernels": (3, 5, 7),
      "expands": (3, 4, 6),
      "widths": (0.75, 1.0),
      "resolutions": (128, 160, 192, 224),
      "head_width": 1280,
      "channel_divisor": 8,
  })
  c.data = _data("imagenet2012", image_size=224, flip=True, batch_size=2048,
                 eval_batch_size=1000, download=False)
  c.model = ml_collections.ConfigDict({
      "kernel_transform": True,
      "depthwise_impl": "auto",
      "bn_momentum": 0.9,
      "bn_epsilon": 1e-5,
  })
  c.train = ml_collections.ConfigDict({
      "epochs": 360,
      "num_random_subnets": 2,
      "sandwich": True,
      "distill_alpha": 1.0,
      "distill_temperature": 1.0,
      "label_smoothing": 0.1,
      "phases": ("0:resolution,kernel", "120:resolution,kernel,depth",
                 "240:all"),
      "reorder_channels": True,
  })
  c.optim = ml_collections.ConfigDict({
      "name": "nesterov",
      "learning_rate": 0.64,      # 0.08 per 256 images (OFA)
      "momentum": 0.9,
      "weight_decay": 3e-5,
      "warmup_epochs": 5,
      "schedule": "cosine",
      "grad_clip": 0.0,
  })
  c.evaluate = ml_collections.ConfigDict({
      "num_random": 20,
      "bn_batches": 8,            # 2,000 images as OFA
      "population_chunk": 4,
      "bench_eval_batches": 1,
  })
  c.baseline = ml_collections.ConfigDict({"linear": False})
  if arg == "smoke":
    c.space.stage_widths = (16, 24)
    c.space.stage_strides = (2, 2)
    c.space.depths = (1, 2)
    c.space.kernels = (3, 5)
    c.space.expands = (3, 4)
    c.space.resolutions = (64, 96)
    c.space.head_width = 64
    c.data.image_size = 96
    c.data.batch_size = 32
    c.data.eval_batch_size = 100
    c.train.epochs = 1
    c.train.phases = ()
    c.evaluate.num_random = 2
    c.evaluate.bn_batches = 2
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
