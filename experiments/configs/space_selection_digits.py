"""Search-space selection (TinyNAS) for a tiny MobileNet on 8x8 digits.

    supernet search --config experiments/configs/space_selection_digits.py \\
        --workdir RUN
    supernet search --config experiments/configs/space_selection_digits.py:smoke ...

Each width multiplier x resolution variant of the elastic MobileNet space
(the ``ofa_digits`` stages, deeper and wider) gets 1,000 random sub-networks;
those within a microcontroller-like budget (peak int8 activation memory and
parameters) survive, and the variant whose survivors have the highest mean
MFLOPs is selected (``RUN/best_space.json``). No network runs: costs are
analytic, so the whole selection takes seconds.

Variant ``latency`` keeps the sub-networks that meet a latency budget on
this machine instead (TinyNAS: a memory *or* a latency constraint):
latencies are predicted by the lookup table of ``supernet.costs.latency_lut``
(batch 1), whose ~950 distinct blocks of this space are measured on the
first run (about 8 minutes on 2 shared CPU cores with 20 timed runs each)
and cached in ``RUN/latency_lut.json`` (or ``constraint.latency_lut``,
e.g. a file shared by several runs on the same machine). The ``process``
clock (CPU time) keeps the table stable on a shared CPU; use ``wall`` on an
accelerator.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The space-selection config; ``arg`` is ``None``, ``smoke`` or
  ``latency``."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.space = ml_collections.ConfigDict({
      "name": "elastic_mbv",
      "stem_width": 16,
      "stem_stride": 1,
      "stage_widths": (16, 24, 32),
      "stage_strides": (1, 2, 2),
      "depths": (1, 2, 3),
      "kernels": (3, 5, 7),
      "expands": (2, 3, 4, 6),
      "widths": (1.0,),           # replaced per variant
      "resolutions": (8,),        # replaced per variant
      "head_width": 64,
      "channel_divisor": 4,
  })
  c.search = ml_collections.ConfigDict()
  c.search.strategy = "space_selection"
  c.search.variants = ml_collections.ConfigDict({
      "widths": (0.5, 0.75, 1.0, 1.25),
      "resolutions": (8, 12, 16, 20),  # multiples of the total stride (4)
  })
  c.search.num_samples = 1000
  c.search.in_channels = 1         # digits: grayscale
  c.search.num_classes = 10
  c.search.constraint = ml_collections.ConfigDict({
      "max_peak_kb": 16.0,         # SRAM for activations (int8)
      "max_params_k": 100.0,       # flash for weights (parameters)
      "bytes_per_value": 1,
      "max_latency_ms": 0.0,       # 0 = no latency limit (see `latency`)
      "latency_runs": 20,          # timed runs per block, median kept
      "latency_warmup": 3,
      "latency_clock": "process",  # CPU only; "wall" on an accelerator
      "latency_lut": "",           # "" = RUN/latency_lut.json
  })
  if arg == "smoke":
    c.search.num_samples = 50
    c.search.variants.widths = (0.5, 1.0)
    c.search.variants.resolutions = (8, 16)
  elif arg == "latency":
    c.search.constraint.max_peak_kb = 0.0
    c.search.constraint.max_params_k = 0.0
    c.search.constraint.max_latency_ms = 1.0
  elif arg:
    raise ValueError(f"unknown variant {arg!r}; valid: smoke, latency")
  return c
