"""Device and dtype arguments as torch spells them, resolved to JAX objects."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.arrays import is_array_like

# torch's device type names -> JAX platform names.
_PLATFORM_ALIASES = {"cuda": "gpu", "gpu": "gpu", "rocm": "gpu", "cpu": "cpu", "tpu": "tpu"}


def as_dtype(dtype: Any) -> np.dtype:
    """A JAX/NumPy dtype from a dtype, a name (``"float16"``) or a torch dtype."""
    if isinstance(dtype, str):
        dtype = dtype.removeprefix("torch.")
        dtype = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32"}.get(
            dtype, dtype
        )
    elif type(dtype).__module__.startswith("torch"):
        return as_dtype(str(dtype))
    return jnp.dtype(dtype)


def check_module_dtype(dtype: Any) -> np.dtype:
    """Validate a dtype for ``Module.to``/``half``/``double``: floating or complex only."""
    dt = as_dtype(dtype)
    if not (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.complexfloating)):
        raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype={dt}")
    if dt.itemsize == 8 and jnp.issubdtype(dt, jnp.floating) and not jax.config.jax_enable_x64:
        raise TypeError(
            "float64 needs 64-bit mode in JAX, which is off: JAX would silently keep float32. "
            "Enable it first with jax.config.update('jax_enable_x64', True)."
        )
    return dt


def factory_dtype(dtype: Any) -> np.dtype:
    """The parameter dtype for a layer's ``dtype=`` constructor argument: float32 when
    ``None``, else any spelling ``as_dtype`` takes (``torch.float16``, ``"bfloat16"``,
    ``jnp.float16``), floating or complex only."""
    return jnp.dtype(jnp.float32) if dtype is None else check_module_dtype(dtype)


def _is_device_like(x: Any) -> bool:
    return isinstance(x, (str, jax.Device, jax.sharding.Sharding))


def resolve_device(device: Any, index: Any = None) -> Any:
    """A ``jax.Device`` (or ``Sharding``) from torch-style device arguments.

    Accepts a ``jax.Device``, a ``jax.sharding.Sharding`` (returned as is), an int
    (the index of a default-backend device) or a string: ``"cpu"``, ``"cuda"``,
    ``"gpu"``, ``"tpu"``, optionally ``":N"``.

    Raises:
        RuntimeError: when the platform is not present, naming the ones that are.
    """
    if isinstance(device, (jax.Device, jax.sharding.Sharding)):
        return device
    if isinstance(device, int):
        return jax.devices()[device]
    if type(device).__module__.startswith("torch"):  # torch.device
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"expected a device (str, int, jax.Device or Sharding), got {type(device).__name__}")
    name, _, idx = device.partition(":")
    platform = _PLATFORM_ALIASES.get(name.lower())
    if platform is None:
        raise RuntimeError(
            f"Expected one of cpu, cuda, gpu, tpu device type at start of device string: {device}"
        )
    if index is not None:
        idx = str(index.index if hasattr(index, "index") else index)
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        devices = []
    if not devices:
        present = sorted({d.platform for d in jax.devices()})
        raise RuntimeError(
            f"no {name!r} device is available to JAX on this machine (platforms present: {', '.join(present)}). "
            "Install the matching jaxlib plugin (e.g. `pip install 'jax[cuda12]'`), or use .to('cpu')."
        )
    i = int(idx) if idx else 0
    if i >= len(devices):
        raise RuntimeError(f"device {device!r} does not exist: JAX sees {len(devices)} {platform} device(s)")
    return devices[i]


def parse_to_args(*args: Any, **kwargs: Any) -> tuple[Any, Any, bool]:
    """Parse ``Module.to``'s torch signature into ``(device, dtype, non_blocking)``."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    non_blocking = kwargs.pop("non_blocking", False)
    kwargs.pop("memory_format", None)
    copy = kwargs.pop("copy", False)
    del copy
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
    rest = list(args)
    invalid = TypeError(f"to() received an invalid combination of arguments: {args!r}")
    if rest and isinstance(rest[0], jax.Array):
        like = rest.pop(0)
        dtype = like.dtype
        device = like.sharding
    elif rest and (
        rest[0] is None
        or _is_device_like(rest[0])
        or (isinstance(rest[0], int) and not isinstance(rest[0], bool))
        or type(rest[0]).__name__ == "device"
    ):
        device = rest.pop(0)
        # torch's to(device, dtype, non_blocking): after a device comes a dtype, not a bool
        if rest and isinstance(rest[0], bool):
            raise invalid
    if rest and not isinstance(rest[0], bool):
        if is_array_like(rest[0]):  # an array is not a dtype (torch: TypeError)
            raise invalid
        dtype = rest.pop(0)
    if rest and isinstance(rest[0], bool):
        non_blocking = rest.pop(0)
    if rest:
        raise invalid
    if device is not None:
        device = resolve_device(device)
    return device, dtype, non_blocking


# ----------------------------------------------------------------- placement
def place(x: Any, where: Any) -> jax.Array:
    """``jax.device_put(x, where)``, also onto a multi-process sharding from a local array.

    ``jax.device_put`` puts an uncommitted or host array onto a sharding that spans
    several processes (each process supplies its own shards; the value must be the
    same on every process, which JAX checks), but refuses an array committed to a
    local device. Such an array goes through the host first.

    The result never shares a buffer with ``x``: ``jax.device_put`` reuses ``x``'s
    buffer for the shard on a device they share (a replicated placement, or a
    commit to the device ``x`` is on; ``may_alias=False`` does not prevent it in
    jax 0.10), and donating the placed array to a compiled step would then delete
    ``x``, which the user may still hold (torch's ``.to()`` leaves the source
    tensor valid). Such an ``x`` is copied first. An ``x`` already committed to
    ``where`` is returned as is (jmod.jit sees a second reference to it).
    """
    if isinstance(where, jax.Device):
        where = jax.sharding.SingleDeviceSharding(where)
    if isinstance(x, jax.Array) and x.committed and x.sharding == where:
        return x
    if (
        isinstance(where, jax.sharding.Sharding)
        and not where.is_fully_addressable
        and isinstance(x, jax.Array)
        and x.committed
        and x.is_fully_addressable
    ):
        x = np.asarray(x)
    elif isinstance(x, jax.Array) and x.is_fully_addressable and x.sharding.device_set & where.device_set:
        x = jnp.copy(x)
    return jax.device_put(x, where, may_alias=False)


def replicated(sharding: jax.sharding.Sharding) -> jax.sharding.Sharding:
    """A sharding that replicates an array (of any shape) over ``sharding``'s devices."""
    if isinstance(sharding, jax.sharding.NamedSharding):
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(), memory_kind=sharding.memory_kind)
    if len(sharding.device_set) == 1:
        return jax.sharding.SingleDeviceSharding(next(iter(sharding.device_set)), memory_kind=sharding.memory_kind)
    devices = np.array(sorted(sharding.device_set, key=lambda d: d.id))
    mesh = jax.sharding.Mesh(devices, ("replica",), axis_types=(jax.sharding.AxisType.Auto,))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(), memory_kind=sharding.memory_kind)


def committed_sharding(x: Any) -> jax.sharding.Sharding | None:
    """The sharding of an array placed on purpose (``jax.Array.committed``), else None."""
    return x.sharding if isinstance(x, jax.Array) and x.committed else None


def default_device() -> jax.Device:
    """Where JAX puts a new array (``jax_default_device`` or the first device)."""
    d = jax.config.jax_default_device
    if isinstance(d, jax.Device):
        return d
    if isinstance(d, str):
        return jax.devices(d)[0]
    return jax.devices()[0]


def _describe_sharding(s: jax.sharding.Sharding) -> str:
    if isinstance(s, jax.sharding.SingleDeviceSharding):
        return str(next(iter(s.device_set)))
    if isinstance(s, jax.sharding.NamedSharding):
        return f"{s.spec} over mesh {dict(s.mesh.shape)}"
    return str(s)


def module_device(module: Any) -> Any:
    """``Module.device``: the one device (or sharding) all of ``module``'s state is on."""
    arrays = [p for _, p in module.named_parameters()] + [b for _, b in module.named_buffers()]
    if not arrays:
        return default_device()
    shardings = {x.sharding for x in arrays}
    if len(shardings) == 1:
        (s,) = shardings
        if len(s.device_set) == 1:
            return next(iter(s.device_set))
        return s
    devices = {d for s in shardings for d in s.device_set}
    if len(devices) == 1 and all(len(s.device_set) == 1 for s in shardings):
        return next(iter(devices))  # same device, shardings differing only in memory kind
    where = sorted({_describe_sharding(s) for s in shardings})
    raise RuntimeError(
        f"{type(module).__name__}'s parameters and buffers do not live in one place ({'; '.join(where[:4])}"
        f"{'; ...' if len(where) > 4 else ''}), so it has no single .device. Use "
        "jmod.parallel.shardings(module) for each array's sharding, or move everything with module.to(device)."
    )
