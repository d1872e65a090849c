"""``parameters_to_vector`` / ``vector_to_parameters`` (``torch.nn.utils.convert_parameters``).

torch's ``vector_to_parameters(vec, model.parameters())`` writes into each parameter's
``.data``. In jmod the arrays ``model.parameters()`` yields are immutable, but each one
is known to belong to its ``Parameter`` slot (``jmod.nn.parameter.owner_of``), so the
same call writes the slices into the model's parameters. It also takes the model itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import structure
from jmod._src.arrays import is_array_like, is_tracer, to_jax, typename
from jmod.nn.parameter import Parameter, owner_of

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _devices(x: Any) -> frozenset | None:
    if is_tracer(x) or not isinstance(x, jax.Array) or not x.committed:
        return None
    return frozenset(x.devices())


def _check_param_device(param: Any, old: frozenset | None) -> frozenset | None:
    """torch's ``_check_param_device``: every (committed) parameter on the same devices."""
    devices = _devices(param)
    if old is None or devices is None:
        return devices if old is None else old
    if devices != old:
        raise TypeError("Found two parameters on different devices, this is currently not supported.")
    return old


def parameters_to_vector(parameters: Iterable[Any]) -> jax.Array:
    r"""Flatten an iterable of arrays (``model.parameters()``, ``grads.values()``) into one vector.

    Args:
        parameters: the arrays, e.g. ``model.parameters()``.

    Returns:
        The arrays raveled and concatenated in order.

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> lin = nn.Linear(3, 2)
        >>> jmod.nn.utils.parameters_to_vector(lin.parameters()).shape
        (8,)
    """
    devices = None
    vec = []
    for param in parameters:
        if isinstance(param, Parameter):
            param = param.data
        devices = _check_param_device(param, devices)
        vec.append(jnp.reshape(param, (-1,)))
    if not vec:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    return jnp.concatenate(vec)


def _slot_for(param: Any) -> Parameter:
    if isinstance(param, Parameter):
        return param
    slot = owner_of(param)
    if slot is None:
        raise TypeError(
            "vector_to_parameters writes into a module's parameters, but got an array that is not the current "
            "value of any parameter (an array read before the parameters were last updated is a stale copy). "
            "Pass model.parameters() read just now, or the model itself: vector_to_parameters(vec, model)"
        )
    return slot


def vector_to_parameters(vec: Any, parameters: Any) -> None:
    r"""Copy consecutive slices of ``vec`` into the parameters, in order.

    The inverse of :func:`parameters_to_vector`: each parameter takes the next
    ``numel`` entries, reshaped to its shape (trailing entries are ignored, as in
    torch).

    Args:
        vec: a 1-D array.
        parameters: ``model.parameters()`` (arrays read from a module: the module's
            parameters are updated), the ``Parameter`` slots, or the model itself.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> lin = nn.Linear(2, 1)
        >>> jmod.nn.utils.vector_to_parameters(jnp.arange(3.0), lin.parameters())
        >>> lin.weight, lin.bias
        (Array([[0., 1.]], dtype=float32), Array([2.], dtype=float32))
    """
    from jmod.nn.modules.module import Module

    if not is_array_like(vec) or isinstance(vec, (int, float, bool, complex)):
        raise TypeError(f"expected torch.Tensor, but got: {typename(vec)}")
    vec = vec if isinstance(vec, jax.Array) else to_jax(vec)
    if isinstance(parameters, Module):
        slots = [s for _, s in parameters.named_parameter_slots()]
    else:
        # Resolve every slot before writing any: a bad entry changes nothing.
        slots = [_slot_for(p) for p in parameters]
    devices = None
    pointer = 0
    new_values = []
    for slot in slots:
        old = slot.data
        devices = _check_param_device(old, devices)
        num_param = old.size
        chunk = vec[pointer : pointer + num_param]
        if chunk.shape[0] != num_param:
            raise RuntimeError(f"shape '{list(old.shape)}' is invalid for input of size {chunk.shape[0]}")
        new = chunk.reshape(old.shape)
        sharding = getattr(old, "sharding", None)
        if not is_tracer(new) and not is_tracer(old) and old.committed and new.sharding != sharding:
            new = jax.device_put(new, sharding)  # keep the parameter's placement
        new_values.append(new)
        pointer += num_param
    changed = False
    for slot, new in zip(slots, new_values):
        # torch's `param.data = chunk`: the parameter takes the vector's dtype.
        changed = changed or new.dtype != slot.data.dtype
        slot.data = new
    if changed:
        structure.bump()
