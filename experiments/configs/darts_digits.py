"""DARTS search on the embedded default (UCI digits, 8x8 grayscale).

    supernet search --config experiments/configs/darts_digits.py --workdir RUN
    supernet search --config experiments/configs/darts_digits.py:smoke ...

The paper's cell space and bilevel optimiser on a supernet sized for 2 CPU
cores: 3 cells of 8 initial channels (a normal cell at 8x8, reduction cells
to 4x4 and 2x2). The 10-epoch search takes about 100 s on 2 CPU cores,
compilation of the step included.
"""

import ml_collections

from supernet import presets


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({"name": "darts"})
  c.data = presets.data("digits", image_size=0, pad=1, flip=False,
                       batch_size=64, train_portion=0.5)
  c.model = ml_collections.ConfigDict({
      "channels": 8, "layers": 3, "stem_multiplier": 3,
      "depthwise_impl": "auto", "remat": True})
  c.search = presets.gradient_search(epochs=10)
  c.optim = presets.darts_optim()
  c.optim.weights.lr = 0.05
  c.optim.arch.lr = 3e-3   # few steps per epoch on 1.4k images: a larger lr
  if arg == "smoke":
    c.model.channels = 4
    c.search.epochs = 1
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
