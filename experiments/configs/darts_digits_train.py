"""Train a derived DARTS cell from scratch on the embedded default (digits).

    supernet train --config experiments/configs/darts_digits_train.py \
        --arch RUN/arch.json --workdir RUN2
    supernet train --config experiments/configs/darts_digits_train.py:smoke ...

The last step of the newcomer pipeline (search -> train -> export ->
evaluate), sized to reach >= 95% test accuracy on the 355 test digits in a
few minutes on 2 CPU cores: 6 cells of 16 initial channels (reductions at
cells 2 and 4: 8x8 -> 4x4 -> 2x2), no auxiliary head (it needs 8x8 features
after the second reduction, as on CIFAR).
"""

import ml_collections

from supernet import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "darts"})
  c.data = presets.data("digits", image_size=0, pad=1, flip=False,
                       batch_size=64)
  c.model = ml_collections.ConfigDict({
      "stem": "cifar", "channels": 16, "layers": 6, "auxiliary": False,
      "auxiliary_weight": 0.4, "drop_path_prob": 0.1, "dropout": 0.0,
      "depthwise_impl": "auto", "num_classes": 10, "input_shape": (8, 8, 1)})
  c.train = ml_collections.ConfigDict({
      "epochs": 10, "optimizer": "sgd", "lr": 0.05, "lr_min": 0.0,
      "momentum": 0.9, "nesterov": False, "weight_decay": 3e-4,
      "schedule": "cosine", "decay_rate": 0.97, "decay_epochs": 1,
      "warmup_epochs": 0, "grad_clip": 5.0, "label_smoothing": 0.0,
      "eval_every": 1, "log_every": 5})
  if arg == "smoke":
    c.model.channels = 4
    c.model.layers = 3
    c.model.drop_path_prob = 0.2
    c.train.epochs = 3
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
