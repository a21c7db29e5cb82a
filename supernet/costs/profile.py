"""One call for every cost of a flax network: params, MACs, memory, latency."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from supernet.costs.latency import check_clock, measure_latency
from supernet.costs.macs import count_macs
from supernet.costs.memory import activation_bytes
from supernet.costs.params import count_params
from supernet.errors import UserError


def inference_fn(module: nn.Module):
  """``(variables, x) -> logits`` of ``module`` in inference mode.

  A network that returns ``(logits, aux_logits)`` gives its logits only: the
  auxiliary head is a training device, and dropping its output lets the MAC
  count (dead-code elimination) and XLA skip it.

  Args:
    module: a flax module called as ``module.apply(v, x, train=False)``.

  Returns:
    The function.
  """

  def infer(variables: Any, x: jax.Array) -> jax.Array:
    out = module.apply(variables, x, train=False)
    return out[0] if isinstance(out, tuple) else out

  return infer


def _mac_module(module: nn.Module) -> nn.Module:
  # MACs are defined on the native grouped depthwise convolution; the CPU
  # forms (dense, shift) would count C times too many or none at all.
  if hasattr(module, "depthwise_impl"):
    return module.clone(depthwise_impl="native")
  return module


def abstract_variables(module: nn.Module, input_shape: Sequence[int],
                       batch: int = 1, dtype: Any = jnp.float32) -> Any:
  """Variable shapes of ``module`` from ``jax.eval_shape`` (nothing runs).

  Args:
    module: the network.
    input_shape: ``(H, W, C)`` (or any per-example shape).
    batch: batch size used to trace.
    dtype: input dtype.

  Returns:
    A pytree of ``jax.ShapeDtypeStruct`` (all collections).
  """
  x = jax.ShapeDtypeStruct((batch, *input_shape), dtype)
  return jax.eval_shape(partial(module.init, train=False), jax.random.key(0),
                        x)


def profile_module(module: nn.Module, variables: Any,
                   input_shape: Sequence[int], batch: int = 1,
                   latency: bool = False, exclude: Iterable[str] = (),
                   memory: str = "xla", warmup: int = 3, runs: int = 20,
                   key: jax.Array | None = None, clock: str = "wall"
                   ) -> dict[str, Any]:
  """Parameters, MACs, activation memory and (optionally) latency.

  Args:
    module: the network, called as ``module.apply(variables, x,
      train=False)``; a tuple output counts only its first element.
    variables: its variables (arrays or ``ShapeDtypeStruct``s); ``None``
      derives their shapes with :func:`abstract_variables`.
    input_shape: per-example input shape, ``(H, W, C)``.
    batch: batch size for activation memory and latency (parameters and
      the per-example MAC count do not depend on it).
    latency: also measure latency on the current backend (abstract
      variables are filled with random values first).
    exclude: subtree names left out of the parameter count (e.g.
      ``("auxiliary",)``).
    memory: activation-memory method, ``"xla"`` or ``"jaxpr_liveness"``.
    warmup: untimed runs before timing.
    runs: timed runs.
    key: PRNG key for random variable values when timing.
    clock: latency clock, ``"wall"`` or ``"process"`` (see
      :mod:`supernet.costs.latency`).

  Returns:
    ``{"params", "macs", "activation_bytes", "activation_bytes_method",
    "activation_detail", "batch", "input_shape", "latency_ms"?}``; MACs
    are per example, activation bytes and latency for the whole batch.
  """
  if batch < 1:
    raise UserError(f"batch must be >= 1, got {batch}")
  if latency:
    check_clock(clock)  # fail before the compilation, not after
  input_shape = tuple(int(d) for d in input_shape)
  if variables is None:
    variables = abstract_variables(module, input_shape, batch)
  if "params" not in variables:
    raise UserError("variables have no 'params' collection")
  var_structs = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
  x = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)
  infer = inference_fn(module)
  result: dict[str, Any] = {
      "input_shape": list(input_shape), "batch": batch,
      "params": count_params(variables["params"], exclude),
      # per example: traced at batch 1 (shapes only, nothing compiled)
      "macs": count_macs(inference_fn(_mac_module(module)), var_structs,
                         jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)),
  }
  compiled, compile_ms = None, 0.0
  if memory == "xla" or latency:  # one compilation serves both
    start = time.perf_counter()
    compiled = jax.jit(infer).lower(var_structs, x).compile()
    compile_ms = (time.perf_counter() - start) * 1e3
  if _mac_module(module) is not module:
    # Memory of the network itself: the CPU depthwise forms (block-diagonal
    # kernels, Toeplitz matrices) allocate temporaries that are not the
    # network's activations, so measure the native form.
    mem = activation_bytes(inference_fn(_mac_module(module)), var_structs, x,
                           method=memory)
  else:
    mem = activation_bytes(infer, var_structs, x, method=memory,
                           compiled=compiled)
  result["activation_bytes"] = mem.pop("bytes")
  result["activation_bytes_method"] = mem.pop("method")
  result["activation_detail"] = mem
  if latency:
    lat = measure_latency(infer, variables, x, warmup=warmup, runs=runs,
                          key=key, compiled=compiled, clock=clock)
    lat["compile_ms"] = compile_ms
    result["latency_ms"] = lat
  return result
