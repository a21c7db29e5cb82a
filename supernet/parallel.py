"""Data parallelism with ``jax.sharding``: batches sharded, parameters replicated.

One mesh axis, ``'data'``, spans every device of every host. A batch is split
along its leading (example) axis over that axis; parameters and optimiser
state are replicated. Jitted steps then need no ``pmap`` and no explicit
collectives: XLA inserts the gradient all-reduce from the shardings.

Multi-host: after ``jax.distributed.initialize()``, ``jax.devices()`` lists
the devices of all hosts, and each host's input pipeline yields only its own
slice of every global batch (``supernet.data`` does this). :func:`shard_batch`
assembles the global array from those per-host slices with
``jax.make_array_from_process_local_data``; on a single host that is simply
the whole batch, so the same code runs unchanged in both settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from supernet.errors import UserError

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A one-axis ``'data'`` mesh.

  Args:
    devices: devices to span; default ``jax.devices()`` (all devices of all
      hosts; on one host, all local devices).

  Returns:
    The mesh.
  """
  devices = jax.devices() if devices is None else list(devices)
  if not devices:
    raise UserError("make_mesh needs at least one device")
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of the leading (batch) axis over ``'data'``; the rest whole."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding that keeps a full copy on every device of the mesh."""
  return NamedSharding(mesh, PartitionSpec())


def _check_divisible(path, x, mesh: Mesh) -> None:
  devices = mesh.shape[DATA_AXIS]
  local = devices // jax.process_count()
  if np.ndim(x) == 0 or np.shape(x)[0] % max(1, local):
    raise UserError(
        f"batch entry {jax.tree_util.keystr(path)} of shape {np.shape(x)} "
        f"cannot be split over {devices} devices: the batch size must be "
        f"divisible by the number of devices")


def shard_batch(batch: Any, mesh: Mesh) -> Any:
  """Places a host batch on the mesh, split along the leading axis.

  Args:
    batch: a pytree (usually ``{"image", "label", "mask"}``) of host arrays
      holding this host's slice of the global batch (the whole batch on a
      single host).
    mesh: from :func:`make_mesh`.

  Returns:
    The same pytree of global ``jax.Array``s sharded with
    :func:`batch_sharding`.

  Raises:
    UserError: if a leading axis is not divisible by the local device count.
  """
  jax.tree_util.tree_map_with_path(
      lambda path, x: _check_divisible(path, x, mesh), batch)
  sharding = batch_sharding(mesh)
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
      batch)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Copies a pytree (parameters, optimiser state) to every device.

  Args:
    tree: a pytree of arrays; identical on every host.
    mesh: from :func:`make_mesh`.

  Returns:
    The pytree of ``jax.Array``s with :func:`replicated` sharding.
  """
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  # Across hosts each process contributes its (identical) full copy.
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
      tree)
