"""Export directories: a trained network that runs without this package.

An export directory holds four files (and a README.md that repeats this):

``arch.json``
  The architecture (``Arch.to_json()``: the space name and its choices).
``weights.msgpack``
  The inference variables as ``flax.serialization.to_bytes(variables)``:
  a msgpack map ``{"params": {...}, "batch_stats": {...}}`` nested by flax
  module name (e.g. ``params/cell3/op0_sep_conv_3x3/...``), leaves float32
  arrays; convolution kernels are HWIO, inputs NHWC. Training-only parts (an
  auxiliary head) are left out. Read it with
  ``flax.serialization.msgpack_restore(data)`` (no target needed) and apply
  it with the module that ``metadata["config"]`` and ``arch.json`` build
  (``supernet.models.build_network``) as ``module.apply(v, x, train=False)``.
``metadata.json``
  What a user needs around the network: ``input_shape`` (H, W, C),
  ``mean``/``std`` (per channel, on the [0, 1] scale: the input is
  ``(uint8 / 255 - mean) / std``), ``class_names``, ``dataset``, ``data`` (the
  data config that reads the same images), ``config`` (the experiment config
  that built it), ``num_params``, ``variables`` (path -> shape/dtype of every
  leaf of weights.msgpack), ``files`` (sha256 of the other files),
  ``library_version`` and ``jax_version``.
``model.jax_export``
  ``jax.export.Exported.serialize()`` of ``x -> logits`` with the weights
  baked in: ``x`` is float32 NHWC *normalised* images with a symbolic
  (polymorphic) batch dimension, so any batch size runs. Only JAX is needed::

      import jax, numpy as np
      exp = jax.export.deserialize(open("model.jax_export", "rb").read())
      logits = exp.call(x)   # x: float32 (N, H, W, C), normalised

It is lowered for the CPU and CUDA (where JAX can lower for both), so it
runs on either.

:func:`write_export` writes such a directory for any flax module (DARTS and
NB201 networks, elastic sub-networks); :func:`load_export` reads and checks
one. A directory is written to a temporary sibling and renamed into place,
so an interrupted export never leaves a half-written directory, and an
existing non-empty one is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from supernet.errors import UserError

FORMAT = "supernet-export"
FORMAT_VERSION = 1
ARCH_FILE = "arch.json"
WEIGHTS_FILE = "weights.msgpack"
METADATA_FILE = "metadata.json"
MODEL_FILE = "model.jax_export"
README_FILE = "README.md"
# Keys a caller of write_export must supply in ``metadata``.
REQUIRED_METADATA = ("dataset", "mean", "std", "class_names")
DEFAULT_PLATFORMS = ("cpu", "cuda")

_Stats = collections.namedtuple("_Stats", "mean std")


# ---- building ----------------------------------------------------------------
def dataset_metadata(info, data_config=None) -> dict[str, Any]:
  """The ``metadata`` entries that describe the data a network was trained on.

  Args:
    info: a :class:`supernet.data.DatasetInfo` (or its ``to_json()`` dict).
    data_config: the ``data`` sub-config that read it (lets ``evaluate``
      read the same images); optional.

  Returns:
    ``dataset``, ``mean``, ``std``, ``class_names``, ``num_classes``,
    ``dataset_info`` and (if given) ``data``.
  """
  doc = info if isinstance(info, dict) else info.to_json()
  out = {"dataset": doc["name"], "mean": list(doc["mean"]),
         "std": list(doc["std"]), "class_names": list(doc["class_names"]),
         "num_classes": int(doc["num_classes"]), "dataset_info": dict(doc)}
  if data_config is not None:
    out["data"] = (data_config.to_dict() if hasattr(data_config, "to_dict")
                   else dict(data_config))
  return out


def _flat_shapes(tree: Any, prefix: str = "") -> dict[str, dict[str, Any]]:
  out = {}
  if isinstance(tree, dict):
    for k in sorted(tree):
      out.update(_flat_shapes(tree[k], f"{prefix}{k}/"))
    return out
  return {prefix[:-1]: {"shape": [int(d) for d in np.shape(tree)],
                        "dtype": str(np.dtype(tree.dtype))}}


def _check_matches(variables: Any, expected: dict[str, dict[str, Any]],
                   what: str) -> None:
  """UserError naming the first leaf whose path or shape differs."""
  got = _flat_shapes(variables)
  for path, spec in expected.items():
    if path not in got:
      raise UserError(f"{what} do not match the architecture: {path} is "
                      f"missing")
    if got[path]["shape"] != list(spec["shape"]):
      raise UserError(f"{what} do not match the architecture: {path} has "
                      f"shape {tuple(got[path]['shape'])}, the architecture "
                      f"needs {tuple(spec['shape'])}")
  extra = sorted(set(got) - set(expected))
  if extra:
    raise UserError(f"{what} do not match the architecture: unexpected "
                    f"{extra[0]}" + (f" (and {len(extra) - 1} more)"
                                     if len(extra) > 1 else ""))


def inference_fn(module, variables: Any) -> Callable:
  """``x -> logits`` of ``module.apply(variables, x, train=False)``.

  A tuple result (network with extra outputs) keeps its first element.
  """

  def infer(x):
    out = module.apply(variables, x, train=False)
    return out[0] if isinstance(out, (tuple, list)) else out

  return infer


def export_inference(module, variables: Any, input_shape: Sequence[int],
                     platforms: Sequence[str] | None = None):
  """Lowers ``x -> logits`` with ``jax.export`` (weights as constants).

  Args:
    module: a flax module applied as ``module.apply(v, x, train=False)``.
    variables: its inference variables.
    input_shape: ``(H, W, C)`` of one example; the batch is symbolic.
    platforms: platforms to lower for; default CPU and CUDA (falls back to
      the current backend alone if multi-platform lowering fails).

  Returns:
    The ``jax.export.Exported``.
  """
  import jax
  import jax.numpy as jnp
  from jax import export

  fn = jax.jit(inference_fn(module, jax.tree.map(jnp.asarray, variables)))
  (batch,) = export.symbolic_shape("batch")
  spec = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)
  if platforms is None:
    # jax.default_backend() says "gpu"; export platforms are "cuda"/"rocm".
    here = export.default_export_platform()
    wanted = tuple(dict.fromkeys((here, *DEFAULT_PLATFORMS)))
    try:
      return export.export(fn, platforms=wanted)(spec)
    except Exception:  # noqa: BLE001 - some backend cannot lower: use ours
      platforms = (here,)
  return export.export(fn, platforms=tuple(platforms))(spec)


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _check_out_dir(out_dir: str, overwrite: bool) -> None:
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise UserError(f"--out {out_dir} exists and is not a directory")
  if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
    raise UserError(f"{out_dir} is not empty; pass --overwrite to replace "
                    "it, or choose another --out")


def check_out_dir(out_dir: str, overwrite: bool = False) -> None:
  """Fails early (before any work) if ``out_dir`` may not be written.

  Args:
    out_dir: the export directory.
    overwrite: whether a non-empty directory may be replaced.
  """
  _check_out_dir(os.fspath(out_dir), overwrite)


def write_export(out_dir: str, *, arch: Any, module, variables: Any,
                 input_shape: Sequence[int], metadata: dict[str, Any],
                 overwrite: bool = False,
                 platforms: Sequence[str] | None = None) -> str:
  """Writes an export directory (see the module docstring for its files).

  Args:
    out_dir: the directory to create (or replace, with ``overwrite``).
    arch: the architecture: an ``Arch`` (its ``to_json()`` is written) or a
      JSON-serialisable dict.
    module: a flax module with static shapes, applied as
      ``module.apply(variables, x, train=False)`` -> logits.
    variables: its inference variables (``{"params", "batch_stats"...}``),
      exactly the collections ``module.init(..., train=False)`` creates.
    input_shape: ``(H, W, C)`` of one normalised input image.
    metadata: at least ``dataset``, ``mean``, ``std``, ``class_names`` (see
      :func:`dataset_metadata`); anything JSON-serialisable may be added
      (``config``, ``data``, ``eval_batch_size``...).
    overwrite: replace a non-empty ``out_dir``.
    platforms: see :func:`export_inference`.

  Returns:
    The export directory's path.

  Raises:
    UserError: non-empty ``out_dir`` without ``overwrite``, missing
      metadata, or variables that do not fit the module.
  """
  import flax
  import jax

  import supernet

  out_dir = os.path.abspath(os.fspath(out_dir))
  _check_out_dir(out_dir, overwrite)
  missing = [k for k in REQUIRED_METADATA if k not in metadata]
  if missing:
    raise UserError(f"export metadata lacks {missing}")
  input_shape = tuple(int(d) for d in input_shape)
  if len(metadata["mean"]) != input_shape[-1] or len(
      metadata["std"]) != input_shape[-1]:
    raise UserError(f"export metadata: mean/std have {len(metadata['mean'])}"
                    f" channels, the input has {input_shape[-1]}")
  variables = flax.core.unfreeze(jax.tree.map(np.asarray, variables))
  sample = jax.ShapeDtypeStruct((1, *input_shape), np.float32)
  expected = jax.eval_shape(
      lambda k, x: module.init({"params": k, "dropout": k}, x, train=False),
      jax.random.key(0), sample)
  expected_shapes = _flat_shapes(flax.core.unfreeze(expected))
  _check_matches(variables, expected_shapes, "the weights")

  exported = export_inference(module, variables, input_shape, platforms)
  model_bytes = bytes(exported.serialize())
  weights_bytes = flax.serialization.to_bytes(variables)
  arch_doc = arch.to_json() if hasattr(arch, "to_json") else dict(arch)
  arch_bytes = (json.dumps(arch_doc, indent=1) + "\n").encode()
  num_params = int(sum(int(np.prod(v["shape"])) for p, v in
                       expected_shapes.items() if p.startswith("params/")))
  meta = dict(metadata)
  meta.update({
      "format": FORMAT, "format_version": FORMAT_VERSION,
      "input_shape": list(input_shape), "num_params": num_params,
      "batch_polymorphic": True, "platforms": list(exported.platforms),
      "library_version": supernet.__version__, "jax_version": jax.__version__,
      "variables": expected_shapes,
      "files": {ARCH_FILE: _sha256(arch_bytes),
                WEIGHTS_FILE: _sha256(weights_bytes),
                MODEL_FILE: _sha256(model_bytes)},
  })
  try:
    meta_bytes = (json.dumps(meta, indent=1, default=_json_default)
                  + "\n").encode()
  except TypeError as e:
    raise UserError(f"export metadata is not JSON-serialisable: {e}") from None

  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", dir=parent)
  try:
    for name, data in ((ARCH_FILE, arch_bytes), (WEIGHTS_FILE, weights_bytes),
                       (MODEL_FILE, model_bytes), (METADATA_FILE, meta_bytes),
                       (README_FILE, _readme(meta).encode())):
      with open(os.path.join(tmp, name), "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o755)
    if os.path.isdir(out_dir):
      # Swap, then delete: the old export disappears only once the new one
      # is complete.
      old = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.old.",
                             dir=parent)
      os.rmdir(old)
      os.replace(out_dir, old)
      os.replace(tmp, out_dir)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, out_dir)
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return out_dir


def _json_default(obj: Any) -> Any:
  if isinstance(obj, (np.generic,)):
    return obj.item()
  if isinstance(obj, (tuple, set)):
    return list(obj)
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _readme(meta: dict[str, Any]) -> str:
  h, w, c = meta["input_shape"]
  return f"""# Exported network ({meta['dataset']}, {meta['num_params']:,} parameters)

Files: `arch.json` (architecture), `weights.msgpack` (flax variables,
`flax.serialization.msgpack_restore`), `metadata.json` (input shape,
normalisation, class names, config), `model.jax_export` (serialised
`jax.export` inference function, weights included).

Run it with JAX alone:

```python
import json, jax, numpy as np
meta = json.load(open("metadata.json"))
exp = jax.export.deserialize(open("model.jax_export", "rb").read())
images = np.zeros((4, {h}, {w}, {c}), np.uint8)          # your uint8 NHWC images
x = (images.astype(np.float32) / np.float32(255.0)
     - np.asarray(meta["mean"], np.float32)) / np.asarray(meta["std"], np.float32)
logits = exp.call(x.astype(np.float32))               # (4, {len(meta['class_names'])})
labels = [meta["class_names"][i] for i in np.argmax(logits, -1)]
```

The batch dimension is symbolic: any batch size works. Platforms:
{', '.join(meta['platforms'])}.
"""


# ---- loading -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Export:
  """A loaded, checked export directory.

  Attributes:
    path: the directory.
    arch_json: the ``arch.json`` document.
    metadata: the ``metadata.json`` document.
    variables: the weights (nested dicts of NumPy arrays).
    exported: the deserialised ``jax.export.Exported``.
  """

  path: str
  arch_json: dict[str, Any]
  metadata: dict[str, Any]
  variables: dict[str, Any]
  exported: Any

  @property
  def input_shape(self) -> tuple[int, int, int]:
    return tuple(self.metadata["input_shape"])

  def preprocess(self, images_uint8: np.ndarray) -> np.ndarray:
    """uint8 NHWC images -> the normalised float32 input of :meth:`call`.

    The same arithmetic as training (:func:`supernet.data.normalize`).
    """
    from supernet.data.info import normalize
    images_uint8 = np.asarray(images_uint8)
    if images_uint8.shape[1:] != self.input_shape:
      raise UserError(f"images of shape {images_uint8.shape[1:]} do not fit "
                      f"the export's input shape {self.input_shape}")
    return normalize(images_uint8, _Stats(tuple(self.metadata["mean"]),
                                          tuple(self.metadata["std"])))

  def call(self, images: np.ndarray):
    """Logits of normalised float32 NHWC images (any batch size)."""
    import jax.numpy as jnp
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != self.input_shape:
      raise UserError(f"input of shape {images.shape} does not fit the "
                      f"export's (batch, {', '.join(map(str, self.input_shape))})")
    return self.exported.call(jnp.asarray(images))


def _read_bytes(path: str, name: str) -> bytes:
  file = os.path.join(path, name)
  if not os.path.isfile(file):
    raise UserError(f"{path} is not a complete export: {name} is missing")
  with open(file, "rb") as f:
    return f.read()


def _check_sum(meta: dict[str, Any], name: str, data: bytes, path: str
               ) -> None:
  want = meta.get("files", {}).get(name)
  if want is not None and want != _sha256(data):
    raise UserError(f"{os.path.join(path, name)} is corrupt or was modified "
                    "(its checksum does not match metadata.json)")


def read_metadata(path: str) -> dict[str, Any]:
  """The checked ``metadata.json`` of an export directory.

  Args:
    path: the export directory.

  Returns:
    The metadata document.

  Raises:
    UserError: missing directory or file, invalid JSON, not an export.
  """
  if not os.path.isdir(path):
    raise UserError(f"export directory {path} does not exist")
  text = _read_bytes(path, METADATA_FILE)
  try:
    meta = json.loads(text)
  except (json.JSONDecodeError, UnicodeDecodeError):
    raise UserError(f"{os.path.join(path, METADATA_FILE)} is corrupt (not "
                    "valid JSON)") from None
  if not isinstance(meta, dict) or meta.get("format") != FORMAT:
    raise UserError(f"{os.path.join(path, METADATA_FILE)} is not the "
                    "metadata of a supernet export")
  if meta.get("format_version", 0) > FORMAT_VERSION:
    raise UserError(f"{path} was written by a newer supernet (export format "
                    f"{meta['format_version']}); upgrade to read it")
  needed = (*REQUIRED_METADATA, "input_shape", "variables", "files")
  missing = [k for k in needed if k not in meta]
  if missing:
    raise UserError(f"{os.path.join(path, METADATA_FILE)} lacks {missing}")
  return meta


def load_export(path: str) -> Export:
  """Reads and checks an export directory; no model code is built.

  Args:
    path: the directory :func:`write_export` wrote.

  Returns:
    The :class:`Export` (call it on normalised images).

  Raises:
    UserError: a missing, truncated, corrupt or inconsistent file, named in
      one line.
  """
  import flax
  from jax import export

  path = os.fspath(path)
  meta = read_metadata(path)

  arch_bytes = _read_bytes(path, ARCH_FILE)
  try:
    arch_json = json.loads(arch_bytes)
  except (json.JSONDecodeError, UnicodeDecodeError):
    raise UserError(f"{os.path.join(path, ARCH_FILE)} is corrupt (not valid "
                    "JSON)") from None
  if not isinstance(arch_json, dict) or "space" not in arch_json:
    raise UserError(f"{os.path.join(path, ARCH_FILE)} is not an architecture "
                    "(no 'space' field)")
  _check_sum(meta, ARCH_FILE, arch_bytes, path)

  weights_bytes = _read_bytes(path, WEIGHTS_FILE)
  try:
    variables = flax.serialization.msgpack_restore(weights_bytes)
  except Exception:  # noqa: BLE001 - msgpack raises several types
    raise UserError(f"{os.path.join(path, WEIGHTS_FILE)} is corrupt or "
                    "truncated (not a flax msgpack file)") from None
  if not isinstance(variables, dict):
    raise UserError(f"{os.path.join(path, WEIGHTS_FILE)} does not hold a "
                    "variables dict")
  _check_matches(variables, meta["variables"],
                 f"the weights in {os.path.join(path, WEIGHTS_FILE)}")
  _check_sum(meta, WEIGHTS_FILE, weights_bytes, path)

  model_bytes = _read_bytes(path, MODEL_FILE)
  _check_sum(meta, MODEL_FILE, model_bytes, path)
  try:
    exported = export.deserialize(bytearray(model_bytes))
  except Exception:  # noqa: BLE001 - flatbuffers/MLIR raise several types
    raise UserError(f"{os.path.join(path, MODEL_FILE)} is corrupt (not a "
                    "serialised jax.export function)") from None
  shape = tuple(exported.in_avals[0].shape[1:]) if exported.in_avals else ()
  if shape != tuple(meta["input_shape"]):
    raise UserError(f"{os.path.join(path, MODEL_FILE)} takes inputs of shape "
                    f"{shape}, metadata.json says {tuple(meta['input_shape'])}")
  return Export(path=path, arch_json=arch_json, metadata=meta,
                variables=variables, exported=exported)


# ---- evaluating --------------------------------------------------------------
def count_correct(call: Callable[[np.ndarray], Any], images: np.ndarray,
                  labels: np.ndarray, batch_size: int) -> tuple[int, int]:
  """Correct top-1 predictions over a whole split, in padded batches.

  Every batch has exactly ``batch_size`` rows (the last is padded with zero
  images, masked out), so one compilation serves the split and ``train``
  and ``evaluate`` count with identical computations.

  Args:
    call: normalised images -> logits.
    images: normalised float32 ``(N, H, W, C)``.
    labels: ``(N,)`` integer labels.
    batch_size: rows per call.

  Returns:
    ``(correct, examples)``.
  """
  if batch_size < 1:
    raise UserError(f"batch size must be >= 1, got {batch_size}")
  labels = np.asarray(labels)
  correct = 0
  for lo in range(0, len(labels), batch_size):
    real = min(batch_size, len(labels) - lo)
    x = np.zeros((batch_size, *images.shape[1:]), np.float32)
    x[:real] = images[lo:lo + real]
    pred = np.argmax(np.asarray(call(x)), -1)
    # Only the ``real`` rows count: the padding rows are masked out.
    correct += int(np.sum(pred[:real] == labels[lo:lo + real]))
  return correct, int(len(labels))
