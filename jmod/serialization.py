"""``jmod.save`` / ``jmod.load``: checkpoints as safetensors files, written atomically.

A flat state dict (``model.state_dict()``) is stored key for key, so the file is a
plain safetensors file that torch (``safetensors.torch.load_file``) and other tools
read. Nested checkpoints (``{"model": ..., "optimizer": ..., "epoch": 3}``) are stored
with their structure and any non-array values (numbers, strings, lists) in the
file's metadata. ``_metadata`` (module versions) survives the round trip.

A save goes to a temporary file in the same directory, is flushed to disk, then
renamed over the target: a crash never leaves a half-written checkpoint. A load
reads and checks the whole file before returning, so a truncated or foreign file
raises an error instead of giving a partly loaded model.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, BinaryIO

import jax

from jmod._src.arrays import is_array_like, to_jax

__all__ = ["save", "load", "CheckpointError"]

_FORMAT_KEY = "__jmod_format__"
_TREE_KEY = "__jmod_tree__"
_META_KEY = "__jmod_state_dict_metadata__"
_ORDER_KEY = "__jmod_keys__"


class CheckpointError(RuntimeError):
    """A file that is not a readable jmod/safetensors checkpoint."""


def _is_flat_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(k, str) and is_array_like(v) for k, v in obj.items())


def _encode_tree(obj: Any, arrays: dict[str, Any], path: str) -> Any:
    """JSON-able description of ``obj`` with arrays moved into ``arrays``."""
    if is_array_like(obj):
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, Mapping):
        meta = getattr(obj, "_metadata", None)
        out = {"__dict__": [[k, _encode_tree(v, arrays, f"{path}/{k}")] for k, v in obj.items()]}
        if meta is not None:
            out["__metadata__"] = [[k, dict(v)] for k, v in meta.items()]
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"jmod.save: dict keys must be str or int, got {type(k).__name__} at {path!r}")
        return out
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__": [
            _encode_tree(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)
        ]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"__value__": obj}
    raise TypeError(
        f"jmod.save can store arrays, dicts, lists, tuples, numbers, strings and None; got "
        f"{type(obj).__name__} at {path or '<root>'!r}. Convert it (e.g. to a dict of arrays) first."
    )


def _decode_tree(desc: Any, arrays: Mapping[str, Any]) -> Any:
    if "__array__" in desc:
        return arrays[desc["__array__"]]
    if "__dict__" in desc:
        out = OrderedDict((k, _decode_tree(v, arrays)) for k, v in desc["__dict__"])
        if "__metadata__" in desc:
            out._metadata = OrderedDict((k, v) for k, v in desc["__metadata__"])
        return out
    if "__list__" in desc:
        return [_decode_tree(v, arrays) for v in desc["__list__"]]
    if "__tuple__" in desc:
        return tuple(_decode_tree(v, arrays) for v in desc["__tuple__"])
    return desc["__value__"]


def _to_host(x: Any) -> Any:
    """The whole value of ``x`` in this process's memory (safetensors writes host arrays).

    A sharded array is assembled from its shards (``jax.device_get``). In a
    multi-process run an array with shards on other processes' devices needs them
    sent over: a replicated one is read from a local copy, any other is gathered
    with ``process_allgather``, a collective every process must enter.
    """
    x = to_jax(x)
    if x.is_fully_addressable:
        return jax.device_get(x)
    if x.is_fully_replicated:
        return jax.device_get(x.addressable_data(0))
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(x, tiled=True)


def save(obj: Any, f: str | os.PathLike | BinaryIO) -> None:
    """Save a state dict (or a nested checkpoint) to a safetensors file, atomically.

    Sharded arrays (``jmod.parallel``) are gathered, so the file holds each whole
    array, the same as for the unsharded model. In a multi-process run
    (``jax.distributed``) an array sharded over several processes' devices is
    gathered with a collective: call ``save`` on every process then (each one writes
    ``f``; give process 0 the real path if the others should not write). Replicated
    arrays need no collective. Each array is gathered whole into host memory, so the
    model must fit in one host's RAM; see docs/devices.md for per-process shards.

    Args:
        obj: ``model.state_dict()``, or a dict/list nesting of state dicts, arrays,
            numbers, strings and ``None`` (e.g. ``{"model": ..., "optimizer": ...,
            "epoch": 3}``).
        f: a path, or a binary file object.

    Examples:
        >>> import os, tempfile, jmod
        >>> from jmod import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> jmod.save(nn.Linear(2, 3).state_dict(), path)
        >>> sorted(jmod.load(path))
        ['bias', 'weight']
    """
    from safetensors.flax import save as st_save

    metadata = {_FORMAT_KEY: "1"}
    if _is_flat_state_dict(obj):
        arrays = dict(obj)
        metadata[_ORDER_KEY] = json.dumps(list(arrays))
        meta = getattr(obj, "_metadata", None)
        if meta is not None:
            metadata[_META_KEY] = json.dumps([[k, dict(v)] for k, v in meta.items()])
    else:
        arrays = {}
        metadata[_TREE_KEY] = json.dumps(_encode_tree(obj, arrays, ""))
    payload = st_save({k: _to_host(v) for k, v in arrays.items()}, metadata=metadata)

    if hasattr(f, "write"):
        f.write(payload)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".jmod-", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates the file private (0600); give it the mode open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(f: str | os.PathLike | BinaryIO, *, device: Any = None) -> Any:
    """Load what :func:`save` wrote (or any safetensors file).

    Args:
        f: a path or a binary file object.
        device: put the arrays on this device (``"cpu"``, a ``jax.Device``...).

    Returns:
        An ``OrderedDict`` of arrays in the saved order for a state dict (with
        ``_metadata`` when it was saved), or the nested structure that was saved.

    Raises:
        FileNotFoundError: if the path does not exist.
        CheckpointError: if the file is truncated, corrupt or not safetensors.
    """
    if hasattr(f, "read"):
        name = getattr(f, "name", "<stream>")
        with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
            tmp.write(f.read())
            tmp.flush()
            arrays, metadata = _read(tmp.name, name)
    else:
        name = os.fspath(f)
        if not os.path.exists(name):
            raise FileNotFoundError(f"jmod.load: no such file: {name!r}")
        arrays, metadata = _read(name, name)
    if device is not None:
        from jmod._src.devices import resolve_device

        dev = resolve_device(device)
        arrays = {k: jax.device_put(v, dev) for k, v in arrays.items()}
    if _TREE_KEY in metadata:
        return _decode_tree(json.loads(metadata[_TREE_KEY]), arrays)
    order = json.loads(metadata[_ORDER_KEY]) if _ORDER_KEY in metadata else list(arrays)
    out = OrderedDict((k, arrays[k]) for k in order)
    if _META_KEY in metadata:
        out._metadata = OrderedDict((k, v) for k, v in json.loads(metadata[_META_KEY]))
    return out


def _read(path: str, name: str) -> tuple[dict[str, jax.Array], dict[str, str]]:
    """Read every array and the metadata, or raise CheckpointError."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="flax") as st:
            metadata = st.metadata() or {}
            arrays = {k: st.get_tensor(k) for k in st.keys()}
    except Exception as e:
        raise CheckpointError(
            f"jmod.load: {name!s} is not a readable safetensors checkpoint ({type(e).__name__}: {e}). "
            "The file may be truncated, corrupt, or written by another tool (a torch.save pickle must be "
            "read with torch.load; its state dict can then be passed to load_state_dict)."
        ) from e
    return arrays, metadata
