"""Recognising and converting the array types a torch user hands to jmod."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["is_jax_array", "is_array_like", "to_jax", "typename", "is_tracer"]

Tracer = jax.core.Tracer


def is_jax_array(x: Any) -> bool:
    """True for concrete ``jax.Array``s and for tracers (which subclass it virtually)."""
    return isinstance(x, jax.Array)


def is_tracer(x: Any) -> bool:
    return isinstance(x, Tracer)


def _is_torch_tensor(x: Any) -> bool:
    # Checked by name so that torch is never imported by jmod itself.
    t = type(x)
    return t.__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "numpy")


def is_array_like(x: Any) -> bool:
    """Arrays jmod accepts as parameter or buffer values: jax, NumPy and torch arrays."""
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) or _is_torch_tensor(x)


def to_jax(x: Any, dtype: Any = None) -> jax.Array:
    """Convert a jax/NumPy array, torch tensor or Python scalar to a ``jax.Array``.

    Torch tensors are read through NumPy (``detach().cpu()`` first), so weights from a
    torch ``state_dict()`` load without the caller converting them. bfloat16 tensors,
    which NumPy cannot hold, go through float32.
    """
    if isinstance(x, jax.Array):
        return x if dtype is None else x.astype(dtype)
    if _is_torch_tensor(x):
        t = x.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            x = t.float().numpy().astype(jnp.bfloat16)
        else:
            x = t.numpy()
    if isinstance(x, (np.ndarray, np.generic)):
        # device_put transfers without compiling anything (jnp.asarray compiles a
        # conversion per new shape, which made loading a checkpoint slow). It may share
        # the NumPy buffer on CPU, and the caller (or torch, whose .numpy() aliases the
        # tensor) may mutate it later: copy first, so a jax.Array is really immutable.
        x = np.array(x, dtype=None if dtype is None else np.dtype(dtype), copy=True)
        return jax.device_put(x)
    return jnp.asarray(x, dtype=dtype)


def typename(x: Any) -> str:
    """torch.typename-style name used in error messages."""
    if isinstance(x, jax.Array):
        return "jax.Array"
    t = type(x)
    module = t.__module__
    if module in ("builtins", "__builtin__", None):
        return t.__qualname__
    return f"{module}.{t.__qualname__}"


def long_dtype() -> Any:
    """torch's ``long`` (int64) when JAX's 64-bit mode is on, else int32.

    Requesting ``jnp.int64`` with x64 off warns and truncates; layers that torch gives
    int64 state or outputs (``num_batches_tracked``, argmax indices) use this instead.
    """
    return jnp.int64 if jax.config.jax_enable_x64 else jnp.int32


# Set while jmod.summary / jmod.export build a model abstractly (inside a JAX trace, from a
# function that builds it): constructors' arrays are then traced values that occupy no
# memory, so a model too large for this machine can be described and exported.
ABSTRACT_BUILD = [0]


def host_full(shape: Any, fill_value: Any = 0, dtype: Any = None) -> jax.Array:
    """``jnp.full`` built on the host and transferred.

    Eager ``jnp.zeros``/``jnp.empty``/``jnp.ones`` compile an XLA kernel for every new
    shape (tens to hundreds of milliseconds each); constructors that allocate many
    parameter and buffer shapes use this instead, so building a model does not compile.
    """
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    dtype = jnp.float32 if dtype is None else dtype
    if ABSTRACT_BUILD[0]:
        return jnp.full(shape, fill_value, dtype)  # traced: no memory (see ABSTRACT_BUILD)
    return jax.device_put(np.full(shape, fill_value, dtype=np.dtype(dtype)))


def host_zeros(shape: Any, dtype: Any = None) -> jax.Array:
    """``jnp.zeros`` without an XLA compile (see :func:`host_full`)."""
    return host_full(shape, 0, dtype)


def host_ones(shape: Any, dtype: Any = None) -> jax.Array:
    """``jnp.ones`` without an XLA compile (see :func:`host_full`)."""
    return host_full(shape, 1, dtype)


host_empty = host_zeros


def _buffer_pointers(x: jax.Array) -> set[int]:
    try:
        return {shard.data.unsafe_buffer_pointer() for shard in x.addressable_shards}
    except Exception:  # a backend without raw pointers: assume nothing is shared
        return set()


def unaliased(x: Any, source: Any) -> Any:
    """``x``, copied if it is ``source`` or shares a device buffer with it.

    State written into a module from an array the caller keeps (``load_state_dict``,
    ``set_state``) must own its buffers: a compiled step donates module state, which
    would delete the caller's array (torch's ``param.copy_(input)`` copies too).
    """
    if not isinstance(source, jax.Array) or not isinstance(x, jax.Array) or is_tracer(x) or is_tracer(source):
        return x
    if x is source or _buffer_pointers(x) & _buffer_pointers(source):
        return jnp.copy(x)
    return x
