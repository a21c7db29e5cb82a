"""The DARTS paper's CIFAR-10 evaluation: train a derived cell from scratch.

    supernet train --config experiments/configs/darts_cifar10_train.py \
        --arch RUN/arch.json --workdir RUN2

20 cells, 36 initial channels (3.3M parameters with DARTS_V2), auxiliary
head weighted 0.4, drop-path 0.2 (reached linearly over the epochs), cutout
16, 600 epochs of batch 96, SGD lr 0.025 momentum 0.9 weight decay 3e-4 on a
cosine schedule to 0, gradient clipping at norm 5. Sized for an accelerator.
"""

import ml_collections

from supernet import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "darts"})
  c.data = presets.data("cifar10", pad=4, flip=True, cutout=16,
                       batch_size=96, eval_batch_size=250)
  c.model = ml_collections.ConfigDict({
      "stem": "cifar", "channels": 36, "layers": 20, "auxiliary": True,
      "auxiliary_weight": 0.4, "drop_path_prob": 0.2, "dropout": 0.0,
      "depthwise_impl": "auto", "num_classes": 10,
      "input_shape": (32, 32, 3)})
  c.train = ml_collections.ConfigDict({
      "epochs": 600, "optimizer": "sgd", "lr": 0.025, "lr_min": 0.0,
      "momentum": 0.9, "nesterov": False, "weight_decay": 3e-4,
      "schedule": "cosine", "decay_rate": 0.97, "decay_epochs": 1,
      "warmup_epochs": 0, "grad_clip": 5.0, "label_smoothing": 0.0,
      "eval_every": 1, "log_every": 20})
  if arg == "smoke":
    # The whole recipe (auxiliary head, drop-path, cutout) on a dataset that
    # needs no download: the embedded digits, upsampled to 32x32.
    c.data = presets.data("digits", image_size=32, pad=4, cutout=16,
                         batch_size=32)
    c.model.channels = 4
    c.model.layers = 3
    c.model.input_shape = (32, 32, 1)
    c.train.epochs = 1
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
