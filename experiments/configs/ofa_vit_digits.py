"""Elastic ViT (AutoFormer-style weight sharing) on the embedded digits.

    supernet train --config experiments/configs/ofa_vit_digits.py --workdir RUN
    supernet train --config experiments/configs/ofa_vit_digits.py:smoke ...
    supernet sample --config experiments/configs/ofa_vit_digits.py --n 5
    supernet extract --workdir RUN --arch ARCH.json --out EXPORT
    supernet evaluate --export EXPORT

8x8 grayscale digits cut into 2x2 patches (16 tokens). Elastic embedding
width {32, 48, 64}, depth {2, 3, 4}, per layer heads {2, 3, 4} (16 wide
each) and MLP ratio {1, 1.5, 2}. Sandwich rule with in-place distillation
(largest, smallest and two random sub-networks per step), AdamW with a
cosine schedule, and progressive shrinking (depth, then heads and MLP, then
embedding width). There is no BatchNorm, so no re-calibration; the report
evaluates the largest, the smallest and ``evaluate.num_random`` random
sub-networks in one vmapped call.

Measured: see README.md (elastic supernets).
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
      "name": "elastic_vit",
      "embed_dims": (32, 48, 64),
      "depths": (2, 3, 4),
      "heads": (2, 3, 4),
      "mlp_ratios": (1, 1.5, 2),
      "head_dim": 16,
      "patch_size": 2,
      "resolution": 8,
  })
  c.data = _data("digits", image_size=0, pad=1, flip=False, batch_size=64,
                 eval_batch_size=128)
  c.train = ml_collections.ConfigDict({
      "epochs": 30,
      "num_random_subnets": 2,
      "sandwich": True,
      "distill_alpha": 1.0,       # in-place distillation only for sub-nets
      "distill_temperature": 1.0,
      "label_smoothing": 0.1,
      # Progressive shrinking: "EPOCH:elastic dims" of depth, heads,
      # mlp_ratio, embed; () = all at once.
      "phases": ("0:depth", "6:depth,heads,mlp_ratio", "12:all"),
      "reorder_channels": False,  # MobileNet only
  })
  c.optim = ml_collections.ConfigDict({
      "name": "adamw",
      "learning_rate": 2e-3,
      "weight_decay": 0.05,
      "warmup_epochs": 2,
      "schedule": "cosine",
      "grad_clip": 1.0,
  })
  c.evaluate = ml_collections.ConfigDict({
      "num_random": 20,           # plus the largest and the smallest
      "bn_batches": 0,            # no BatchNorm in a ViT: nothing to do
      "population_chunk": 11,     # sub-networks vmapped together
  })
  c.baseline = ml_collections.ConfigDict({"linear": True})
  if arg == "smoke":
    c.space.embed_dims = (16, 32)
    c.space.depths = (1, 2)
    c.space.heads = (1, 2)
    c.space.mlp_ratios = (1, 2)
    c.space.patch_size = 4
    c.train.epochs = 2
    c.train.phases = ("0:depth", "1:all")
    c.optim.warmup_epochs = 0
    c.evaluate.num_random = 4
    c.evaluate.population_chunk = 6
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke")
  return c
