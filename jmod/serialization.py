"""``jmod.save`` / ``jmod.load``: checkpoints as safetensors files, written atomically.

A flat state dict (``model.state_dict()``) is stored key for key, so the file is a
plain safetensors file that torch (``safetensors.torch.load_file``) and other tools
read. Nested checkpoints (``{"model": ..., "optimizer": ..., "epoch": 3}``) are stored
with their structure and any non-array values (numbers, strings, lists) in the
file's metadata. ``_metadata`` (module versions) survives the round trip.

A save goes to a temporary file in the same directory, is flushed to disk, then
renamed over the target: a crash never leaves a half-written checkpoint. A load
reads and checks the whole file before returning, so a truncated or foreign file
raises an error instead of giving a partly loaded model. :func:`to_torch` and
:func:`from_torch` hand a state dict to torch (``torch.save``) and back.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import struct
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, BinaryIO

import jax
import ml_dtypes
import numpy as np

from jmod._src.arrays import is_array_like, to_jax

__all__ = ["save", "load", "to_torch", "from_torch", "CheckpointError"]

_FORMAT_KEY = "__jmod_format__"
_TREE_KEY = "__jmod_tree__"
_META_KEY = "__jmod_state_dict_metadata__"
_ORDER_KEY = "__jmod_keys__"

# Nesting deeper than this is refused (on save) or reported as corrupt (on load)
# instead of overflowing Python's stack.
_MAX_DEPTH = 256
# A safetensors header larger than this is not a checkpoint header (safetensors itself caps it at 100 MB).
_MAX_HEADER = 100_000_000

# safetensors dtype names <-> NumPy dtypes (ml_dtypes for the ones NumPy lacks).
_DTYPES = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
    "C64": np.dtype(np.complex64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E4M3FNUZ": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E5M2FNUZ": np.dtype(ml_dtypes.float8_e5m2fnuz),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
}
_NAMES = {v: k for k, v in _DTYPES.items()}
# 64-bit dtypes and what JAX makes of them when jax_enable_x64 is off.
_NARROW = {
    np.dtype(np.int64): np.dtype(np.int32),
    np.dtype(np.uint64): np.dtype(np.uint32),
    np.dtype(np.float64): np.dtype(np.float32),
    np.dtype(np.complex128): np.dtype(np.complex64),
}


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read as it is, raised before anything is loaded.

    ``jmod.load`` raises it for a file that is truncated, corrupt (a malformed
    header, or jmod metadata that does not describe the file's arrays), not
    safetensors (e.g. a ``torch.save`` pickle: read it with ``torch.load``), or not a
    regular file (a pipe or device); and for a 64-bit value that JAX's 32-bit mode
    would change (enable ``jax_enable_x64``). ``jmod.serialization.from_torch`` raises
    it for the same 64-bit case; ``jmod.checkpoint.load`` for a directory that is
    not a committed jmod checkpoint, or whose arrays do not match the target's
    names or shapes.
    """


def _is_flat_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(k, str) and is_array_like(v) for k, v in obj.items())


def _encode_tree(obj: Any, arrays: dict[str, Any], path: str, depth: int = 0) -> Any:
    """JSON-able description of ``obj`` with arrays moved into ``arrays``."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"jmod.save: the checkpoint is nested more than {_MAX_DEPTH} levels deep at {path[:200]!r}...")
    if is_array_like(obj):
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, Mapping):
        for k in obj:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"jmod.save: dict keys must be str or int, got {type(k).__name__} at {path!r}")
        meta = getattr(obj, "_metadata", None)
        out = {"__dict__": [[k, _encode_tree(v, arrays, f"{path}/{k}", depth + 1)] for k, v in obj.items()]}
        if meta is not None:
            out["__metadata__"] = [[k, dict(v)] for k, v in meta.items()]
        return out
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__": [
            _encode_tree(v, arrays, f"{path}/{i}", depth + 1) for i, v in enumerate(obj)
        ]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"__value__": obj}
    raise TypeError(
        f"jmod.save can store arrays, dicts, lists, tuples, numbers, strings and None; got "
        f"{type(obj).__name__} at {path or '<root>'!r}. Convert it (e.g. to a dict of arrays) first."
    )


class _Corrupt(Exception):
    """Malformed metadata (turned into CheckpointError with the file's name)."""


def _decode_tree(desc: Any, arrays: Mapping[str, Any], depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise _Corrupt(f"structure nested more than {_MAX_DEPTH} levels deep")
    if not isinstance(desc, dict) or len(desc) not in (1, 2):
        raise _Corrupt(f"unexpected tree node {str(desc)[:100]!r}")
    if "__array__" in desc:
        key = desc["__array__"]
        if not isinstance(key, str) or key not in arrays:
            raise _Corrupt(f"the tree refers to an array {str(key)[:100]!r} that the file does not hold")
        return arrays[key]
    if "__dict__" in desc:
        items = desc["__dict__"]
        if not isinstance(items, list) or not all(
            isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], (str, int)) for kv in items
        ):
            raise _Corrupt("a dict node is not a list of [key, value] pairs")
        out = OrderedDict((k, _decode_tree(v, arrays, depth + 1)) for k, v in items)
        if "__metadata__" in desc:
            out._metadata = _decode_metadata(desc["__metadata__"])
        return out
    if len(desc) != 1:
        raise _Corrupt(f"unexpected tree node keys {sorted(desc)[:5]}")
    if "__list__" in desc or "__tuple__" in desc:
        items = desc.get("__list__", desc.get("__tuple__"))
        if not isinstance(items, list):
            raise _Corrupt("a list node does not hold a list")
        values = [_decode_tree(v, arrays, depth + 1) for v in items]
        return values if "__list__" in desc else tuple(values)
    if "__value__" in desc:
        value = desc["__value__"]
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise _Corrupt(f"a value node holds a {type(value).__name__}")
        return value
    raise _Corrupt(f"unexpected tree node keys {sorted(desc)[:5]}")


def _decode_metadata(items: Any) -> OrderedDict:
    if not isinstance(items, list) or not all(
        isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], str) and isinstance(kv[1], dict) for kv in items
    ):
        raise _Corrupt("the state dict _metadata is not a list of [prefix, dict] pairs")
    return OrderedDict((k, v) for k, v in items)


def _to_host(x: Any) -> np.ndarray:
    """The whole value of ``x`` in this process's memory, unchanged (no 64-bit narrowing).

    NumPy arrays are kept as they are (an int64 array stays int64 even with JAX's
    64-bit mode off); torch tensors are read through NumPy. A sharded jax array is
    assembled from its shards (``jax.device_get``). In a multi-process run an array
    with shards on other processes' devices needs them sent over: a replicated one
    is read from a local copy, any other is gathered with ``process_allgather``, a
    collective every process must enter.
    """
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if type(x).__module__.startswith("torch"):
        return _torch_to_numpy(x)
    if not isinstance(x, jax.Array):
        return np.asarray(x) if not isinstance(x, (int, float, bool, complex)) else np.asarray(to_jax(x))
    if x.is_fully_addressable and len(x.sharding.device_set) > 1 and not x.is_fully_replicated:
        # Assembled here from the shards: jax.device_get would cache the whole host copy on
        # the array (alive as long as the model is), so saving a model would cost its size.
        out = np.empty(x.shape, np.dtype(x.dtype))
        for shard in x.addressable_shards:
            if shard.replica_id == 0:
                out[shard.index] = np.asarray(shard.data)
        return out
    if x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x.addressable_data(0)) if x.is_fully_replicated else np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _fit_x64(key: str, value: np.ndarray, verb: str) -> np.ndarray:
    """``value`` as JAX will hold it; an error if JAX's 32-bit mode would change it."""
    narrow = _NARROW.get(value.dtype)
    if narrow is None or jax.config.jax_enable_x64:
        return value
    with np.errstate(over="ignore", invalid="ignore"):
        cast = value.astype(narrow)
        back = cast.astype(value.dtype)
        same = back == value
        if value.dtype.kind in "fc":
            same |= np.isnan(value) & np.isnan(back)
    if bool(np.all(same)):
        return cast  # lossless: the same numbers in 32 bits
    bad = value[~same].ravel()[0]
    raise CheckpointError(
        f"jmod.{verb}: {key!r} is {value.dtype} and holds values that {narrow} cannot represent (e.g. {bad!r}); "
        "JAX's 64-bit mode is off, which would change them silently. Enable it first "
        "(jax.config.update('jax_enable_x64', True), or JAX_ENABLE_X64=1), or convert the values yourself."
    )


def _write(out: BinaryIO, arrays: Mapping[str, Any], metadata: dict[str, str]) -> None:
    """Write a safetensors file, fetching one jax array to the host at a time."""
    values = {k: v if isinstance(v, jax.Array) else _to_host(v) for k, v in arrays.items()}
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for k, v in values.items():
        dtype = np.dtype(v.dtype)
        name = _NAMES.get(dtype)
        if name is None:
            raise TypeError(f"jmod.save: {k!r} has dtype {dtype}, which safetensors cannot store")
        nbytes = int(np.prod(v.shape, dtype=object)) * dtype.itemsize
        header[k] = {"dtype": name, "shape": list(v.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    out.write(struct.pack("<Q", len(raw)) + raw)
    for k, v in values.items():
        a = np.ascontiguousarray(_to_host(v))
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        out.write(memoryview(a.reshape(-1).view(np.uint8)))
        del a


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.jmod-"


def _remove_stale_temps(directory: str, path: str) -> None:
    """Delete temporary files that an earlier, killed save of ``path`` left on this host.

    A temp file is named ``.<target>.jmod-<host>-<pid>-<random>.tmp``; one whose
    writer process (on this host) no longer exists is debris. Files of live writers
    and of other hosts (a shared file system) are left alone.
    """
    prefix = _temp_prefix(path)
    host = socket.gethostname().replace("-", "_")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix) : -len(".tmp")].split("-")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def save(obj: Any, f: str | os.PathLike | BinaryIO) -> None:
    """Save a state dict (or a nested checkpoint) to a safetensors file, atomically.

    Values are stored exactly: NumPy/torch int64, uint64 and float64 arrays keep
    their 64 bits whatever JAX's 64-bit mode (``jmod.load`` then refuses to narrow
    them lossily). Sharded arrays (``jmod.parallel``) are gathered, so the file holds
    each whole array, the same as for the unsharded model. In a multi-process run
    (``jax.distributed``) an array sharded over several processes' devices is
    gathered with a collective: call ``save`` on every process then (each one writes
    ``f``; give process 0 the real path if the others should not write). Replicated
    arrays need no collective. Arrays are fetched to host memory one at a time; the
    whole of each array must fit in one host's RAM. For per-process shards and
    asynchronous saves see ``jmod.checkpoint``.

    The file is written to a temporary file next to the target (the target of a
    symlink), flushed to disk, then renamed over it: a crash never leaves a
    half-written checkpoint, and the temporary files of a killed save are removed
    by the next save of the same target. An existing file keeps its permissions.

    Args:
        obj (Any): ``model.state_dict()``, or a dict/list nesting of state dicts, arrays,
            numbers, strings and ``None`` (e.g. ``{"model": ..., "optimizer": ...,
            "epoch": 3}``).
        f (str | os.PathLike | BinaryIO): a path, or a binary file object.

    Raises:
        FileNotFoundError: if the target's directory does not exist.
        IsADirectoryError: if the target is a directory.

    Examples:
        >>> import os, tempfile, jmod
        >>> from jmod import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> jmod.save(nn.Linear(2, 3).state_dict(), path)
        >>> sorted(jmod.load(path))
        ['bias', 'weight']
    """
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

    if hasattr(f, "write"):
        _write(f, arrays, metadata)
        return
    given = os.fspath(f)
    path = os.path.realpath(given)  # write a symlink's target, not over the link
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"jmod.save: cannot save to {given!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"jmod.save: cannot save to {given!r}: it is a directory")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    _remove_stale_temps(directory, path)
    host = socket.gethostname().replace("-", "_")
    tmp = os.path.join(directory, f"{_temp_prefix(path)}{host}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.chmod(tmp, mode)
            _write(out, arrays, metadata)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(f: str | os.PathLike | BinaryIO, *, device: Any = None) -> Any:
    """Load what :func:`save` wrote (or any safetensors file).

    64-bit values (int64, uint64, float64) load exactly when JAX's 64-bit mode is
    on. With it off (JAX's default) a 64-bit array whose values all fit in 32 bits
    loads as int32/uint32/float32; one that would change raises
    :class:`CheckpointError` naming the key, never a silent change.

    Args:
        f (str | os.PathLike | BinaryIO): a path or a binary file object.
        device (Any): put the arrays on this device (``"cpu"``, a ``jax.Device``...).

    Returns:
        An ``OrderedDict`` of arrays in the saved order for a state dict (with
        ``_metadata`` when it was saved), or the nested structure that was saved.

    Raises:
        FileNotFoundError: if the path does not exist.
        IsADirectoryError: if the path is a directory.
        CheckpointError: if the file is truncated, corrupt, not safetensors, not a
            regular file, or holds 64-bit values JAX's 32-bit mode would change.
    """
    if hasattr(f, "read"):
        name = getattr(f, "name", "<stream>")
        arrays, metadata = _read(f, str(name))
    else:
        name = os.fspath(f)
        try:
            st = os.stat(name)
        except FileNotFoundError:
            raise FileNotFoundError(f"jmod.load: no such file: {name!r}") from None
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(
                f"jmod.load: {name!r} is a directory, not a checkpoint file (a sharded checkpoint directory is "
                "read with jmod.checkpoint.load)"
            )
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"jmod.load: {name!r} is not a regular file (a pipe, socket or device)")
        with open(name, "rb") as fh:
            arrays, metadata = _read(fh, name)
    dev = None
    if device is not None:
        from jmod._src.devices import resolve_device

        dev = resolve_device(device)
    for k in list(arrays):  # one host buffer at a time becomes a jax array
        v = _fit_x64(k, arrays[k], "load")
        arrays[k] = jax.device_put(v, dev) if dev is not None else jax.numpy.asarray(v)
        del v
    try:
        return _build(metadata, arrays)
    except (_Corrupt, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"jmod.load: {name!s} has corrupt jmod metadata ({type(e).__name__}: {e})") from None


def _build(metadata: dict[str, str], arrays: dict[str, Any]) -> Any:
    if _TREE_KEY in metadata:
        return _decode_tree(json.loads(metadata[_TREE_KEY]), arrays)
    order = json.loads(metadata[_ORDER_KEY]) if _ORDER_KEY in metadata else list(arrays)
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(arrays) or len(order) != len(arrays):
        raise _Corrupt("the key order does not list the file's arrays")
    out = OrderedDict((k, arrays[k]) for k in order)
    if _META_KEY in metadata:
        out._metadata = _decode_metadata(json.loads(metadata[_META_KEY]))
    return out


def _remaining(fh: BinaryIO) -> int | None:
    """Bytes left to read in ``fh``, if it can tell."""
    try:
        pos = fh.tell()
        end = os.fstat(fh.fileno()).st_size if hasattr(fh, "fileno") else None
    except (OSError, ValueError, AttributeError):
        end = None
        try:
            pos = fh.tell()
        except (OSError, ValueError, AttributeError):
            return None
    if end is None:
        try:
            end = fh.seek(0, os.SEEK_END)
            fh.seek(pos)
        except (OSError, ValueError, AttributeError):
            return None
    return end - pos


def _read(fh: BinaryIO, name: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read and check a whole safetensors file (bounded by its size), or raise CheckpointError."""

    def bad(why: str) -> CheckpointError:
        return CheckpointError(
            f"jmod.load: {name!s} is not a readable safetensors checkpoint ({why}). "
            "The file may be truncated, corrupt, or written by another tool (a torch.save pickle must be "
            "read with torch.load; its state dict can then be passed to load_state_dict)."
        )

    head = fh.read(8)
    if len(head) < 8:
        raise bad("shorter than a safetensors header")
    (n,) = struct.unpack("<Q", head)
    if n > _MAX_HEADER:
        raise bad(f"header length {n} is implausible")
    raw = fh.read(n)
    if len(raw) < n:
        raise bad("the header is cut short")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise bad(f"the header is not JSON: {type(e).__name__}") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ is not a map of strings")
    specs = []
    for k, spec in header.items():
        try:
            dtype = _DTYPES[spec["dtype"]]
            shape = tuple(spec["shape"])
            begin, end = spec["data_offsets"]
            if not all(isinstance(d, int) and d >= 0 for d in shape) or not (isinstance(begin, int) and isinstance(end, int)):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise bad(f"entry {k!r} has a malformed or unsupported description {str(spec)[:200]}") from None
        size = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if end - begin != size or begin < 0:
            raise bad(f"entry {k!r} has {end - begin} bytes for shape {shape} {dtype}")
        specs.append((begin, end, k, dtype, shape))
    specs.sort(key=lambda s: s[0])
    data_size = _remaining(fh)
    if data_size is not None and specs and specs[-1][1] > data_size:
        # checked before allocating: a header may claim terabytes that the file does not hold
        raise bad(f"the header describes {specs[-1][1]} bytes of data but the file holds {data_size} (truncated)")
    arrays = {}
    pos = 0
    for begin, end, k, dtype, shape in specs:
        if begin != pos:
            raise bad(f"entry {k!r} does not start where the previous one ends")
        buf = np.empty(end - begin, np.uint8)
        got = fh.readinto(memoryview(buf)) if hasattr(fh, "readinto") else None
        if got is None:
            data = fh.read(end - begin)
            got = len(data)
            buf[:got] = np.frombuffer(data, np.uint8)
        if got != end - begin:
            raise bad(f"the data of {k!r} is cut short (the file is truncated)")
        arrays[k] = buf.view(dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)
        pos = end
    if fh.read(1):
        raise bad("there are bytes after the last array")
    return arrays, metadata


def _torch_to_numpy(t: Any) -> np.ndarray:
    """A torch tensor's values as a NumPy array of the same dtype (bfloat16/float8 through ml_dtypes)."""
    import torch

    t = t.detach().cpu().contiguous()
    for torch_name, np_dtype in _TORCH_VIEWS.items():
        if t.dtype == getattr(torch, torch_name, None):
            bits = {1: torch.uint8, 2: torch.int16}[np_dtype.itemsize]
            return t.view(bits).numpy().view(np_dtype)
    return t.numpy()


_TORCH_VIEWS = {
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e4m3fnuz": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
    "float8_e5m2fnuz": np.dtype(ml_dtypes.float8_e5m2fnuz),
    "float8_e8m0fnu": np.dtype(ml_dtypes.float8_e8m0fnu),
}


def _map_tree(obj: Any, leaf: Any, is_leaf: Any, path: str = "", depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError(f"nested more than {_MAX_DEPTH} levels deep at {path[:200]!r}")
    if is_leaf(obj):
        return leaf(path, obj)
    if isinstance(obj, Mapping):
        out = type(obj)() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _map_tree(v, leaf, is_leaf, f"{path}/{k}" if path else str(k), depth + 1)
        meta = getattr(obj, "_metadata", None)
        if meta is not None:
            out = OrderedDict(out)
            out._metadata = OrderedDict((k, dict(v)) for k, v in meta.items())
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tree(v, leaf, is_leaf, f"{path}/{i}", depth + 1) for i, v in enumerate(obj))
    return obj


def to_torch(state_dict: Any) -> Any:
    """Turn a jmod state dict (or any nesting of them) into torch tensors, for ``torch.save``.

    Every array becomes a CPU ``torch.Tensor`` with the same dtype and values
    (bfloat16 and float8 included; a sharded array is gathered); dicts, lists,
    tuples, numbers, strings and a state dict's ``_metadata`` are kept, so the
    result is what a torch model's ``state_dict()`` looks like and
    ``torch.load(..., weights_only=True)`` reads it back.

    Args:
        state_dict (Any): ``model.state_dict()``, ``opt.state_dict()``, or a dict/list of them.

    Returns:
        The same structure with ``torch.Tensor`` leaves.

    Examples:
        >>> import io, torch, jmod
        >>> from jmod import nn
        >>> buf = io.BytesIO()
        >>> torch.save(jmod.serialization.to_torch(nn.Linear(2, 3).state_dict()), buf)
        >>> _ = buf.seek(0)
        >>> sd = torch.load(buf, weights_only=True)
        >>> sd["weight"].shape
        torch.Size([3, 2])
    """
    import torch

    def leaf(path: str, x: Any) -> Any:
        a = np.array(_to_host(x), order="C")  # a private copy (np.ascontiguousarray would make 0-d arrays 1-d)
        for torch_name, np_dtype in _TORCH_VIEWS.items():
            if a.dtype == np_dtype:
                bits = {1: np.uint8, 2: np.int16}[np_dtype.itemsize]
                return torch.from_numpy(a.view(bits)).view(getattr(torch, torch_name))
        return torch.from_numpy(a)

    return _map_tree(state_dict, leaf, lambda x: is_array_like(x) and not isinstance(x, (bool, int, float)))


def from_torch(state_dict: Any) -> Any:
    """Turn torch tensors in a state dict (or any nesting) into jax arrays, for ``load_state_dict``.

    The inverse of :func:`to_torch`. 64-bit tensors follow :func:`load`'s rule: with
    JAX's 64-bit mode off, values that fit in 32 bits convert, others raise
    :class:`CheckpointError` naming the key.

    Args:
        state_dict (Any): e.g. ``torch.load(path, weights_only=True)``.

    Returns:
        The same structure with ``jax.Array`` leaves (``_metadata`` kept).

    Raises:
        CheckpointError: if a 64-bit value would change in JAX's 32-bit mode.
    """
    import torch

    def leaf(path: str, t: Any) -> Any:
        return jax.numpy.asarray(_fit_x64(path, _torch_to_numpy(t), "serialization.from_torch"))

    return _map_tree(state_dict, leaf, lambda x: isinstance(x, torch.Tensor))
