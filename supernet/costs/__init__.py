"""Hardware costs: parameters, MACs, activation memory, measured latency.

All functions take a flax network or any JAX function; nothing here trains.
The latency lookup table (per-block latencies of a block-structured search
space, cached per device and JAX version) is :mod:`supernet.costs.latency_lut`.
"""

from supernet.costs.block_specs import (
    BLOCK_KINDS,
    BlockSpec,
    SpecNetwork,
    check_chain,
    mobilenet_v2_space_specs,
    mobilenet_v2_specs,
    sample_mobilenet_v2_specs,
)
from supernet.costs.latency import (
    device_info,
    materialize,
    measure_latency,
)
from supernet.costs.latency_lut import (
    LatencyTable,
    build_table,
    compare_predictions,
    load_table,
    lut_error,
    predict_latency,
    table_signature,
)
from supernet.costs.macs import count_macs, macs_by_primitive
from supernet.costs.memory import activation_bytes
from supernet.costs.params import count_params
from supernet.costs.profile import (
    abstract_variables,
    inference_fn,
    profile_module,
)

__all__ = [
    "BLOCK_KINDS", "BlockSpec", "LatencyTable", "SpecNetwork",
    "abstract_variables", "activation_bytes", "build_table", "check_chain",
    "compare_predictions", "count_macs", "count_params", "device_info",
    "inference_fn", "load_table", "lut_error", "macs_by_primitive",
    "materialize", "measure_latency", "mobilenet_v2_space_specs",
    "mobilenet_v2_specs", "predict_latency", "profile_module",
    "sample_mobilenet_v2_specs", "table_signature",
]
