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
