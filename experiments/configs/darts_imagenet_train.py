"""The DARTS paper's mobile-setting ImageNet evaluation (for accelerators).

    supernet train --config experiments/configs/darts_imagenet_train.py \
        --arch RUN/arch.json --workdir RUN2

14 cells, 48 initial channels, the ImageNet stem (three stride-2 convs),
224x224 inputs (4.7M parameters with DARTS_V2), auxiliary head weighted 0.4,
no drop-path, 250 epochs of batch 128, SGD lr 0.1 momentum 0.9 weight decay
3e-5, the learning rate multiplied by 0.97 after every epoch, label
smoothing 0.1, gradient clipping at norm 5.

Differences from the paper: the data layer resizes every image once to
224x224 and augments with flips only (no random-resized crop, no colour
jitter); ImageNet must be prepared for tfds (``imagenet2012`` needs the
manual download) and fit in host memory at 224x224.
"""

import ml_collections

from supernet import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "darts"})
  c.data = presets.data("imagenet2012", image_size=224, pad=0, flip=True,
                       batch_size=128, eval_batch_size=250)
  c.model = ml_collections.ConfigDict({
      "stem": "imagenet", "channels": 48, "layers": 14, "auxiliary": True,
      "auxiliary_weight": 0.4, "drop_path_prob": 0.0, "dropout": 0.0,
      "depthwise_impl": "auto", "num_classes": 1000,
      "input_shape": (224, 224, 3)})
  c.train = ml_collections.ConfigDict({
      "epochs": 250, "optimizer": "sgd", "lr": 0.1, "lr_min": 0.0,
      "momentum": 0.9, "nesterov": False, "weight_decay": 3e-5,
      "schedule": "exponential", "decay_rate": 0.97, "decay_epochs": 1,
      "warmup_epochs": 0, "grad_clip": 5.0, "label_smoothing": 0.1,
      "eval_every": 1, "log_every": 50})
  if arg == "smoke":
    # The recipe (ImageNet stem, label smoothing, step decay) on a dataset
    # that needs no download: the embedded digits, upsampled to 32x32.
    c.data = presets.data("digits", image_size=32, pad=0, flip=False,
                         batch_size=32)
    c.model.channels = 8
    c.model.layers = 3
    c.model.auxiliary = False
    c.model.num_classes = 10
    c.model.input_shape = (32, 32, 1)
    c.train.epochs = 1
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
