"""Gradient clipping (``torch.nn.utils.clip_grad``) on the gradients ``jmod.grad`` returns.

torch clips ``p.grad`` of the parameters it is given, in place. jmod keeps no
gradients on parameters: ``jmod.grad`` / ``jmod.value_and_grad`` return a dict keyed
like ``named_parameters()``. These functions take that dict (or a list of arrays)
and replace its values with the clipped arrays, so the torch loop ports as::

    loss, grads = jmod.value_and_grad(loss_fn)(model, x, y)
    total_norm = jmod.nn.utils.clip_grad_norm_(grads, max_norm=1.0)
    optimizer.step(grads)

The numbers are torch's: per-array norms, then the norm of those norms, and the scale
``min(max_norm / (total_norm + 1e-6), 1)`` applied to every gradient. They work inside
``jmod.jit`` (the dict holds traced arrays there; the total norm is a traced scalar).
"""

from __future__ import annotations

import types
import warnings
from collections.abc import MutableMapping
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.arrays import is_tracer
from jmod.nn.parameter import Parameter, owner_of

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _not_gradients(what: str, fn: str) -> TypeError:
    return TypeError(
        f"{fn}() got {what}. jmod does not store gradients on parameters (there is no p.grad): pass the "
        f"gradient dict that jmod.grad returns, which {fn} changes in place: "
        f"`loss, grads = jmod.value_and_grad(loss_fn)(model); {fn}(grads, ...); optimizer.step(grads)`"
    )


def _check_container(grads: Any, fn: str) -> Any:
    """The mutable container (dict or list) of gradients, or a TypeError saying what to pass."""
    from jmod.nn.modules.module import Module

    if isinstance(grads, Module):
        return _not_gradients("a Module", fn)
    if isinstance(grads, (jax.Array, Parameter)):
        if isinstance(grads, Parameter) or owner_of(grads) is not None:
            return _not_gradients("a parameter", fn)
        return TypeError(
            f"{fn}() changes the gradients in place and a single jax.Array cannot be changed: pass it in a "
            f"list or dict ({fn}([g], ...)) and read the clipped value back from there"
        )
    if isinstance(grads, (MutableMapping, list)):
        return grads
    return None


def _slots(grads: Any, fn: str) -> tuple[list[tuple[Any, Any]], bool]:
    """``[(container, key)]`` for every array leaf of nested dicts/lists, and whether
    ``grads`` was an empty generator (torch warns about that one)."""
    container = _check_container(grads, fn)
    if isinstance(container, TypeError):
        raise container
    if container is None:
        is_generator = isinstance(grads, types.GeneratorType)
        try:
            items = list(grads)
        except TypeError:
            raise TypeError(
                f"{fn}() expects the gradient dict from jmod.grad (or a list of arrays), got {type(grads).__name__}"
            ) from None
        if not items:
            return [], is_generator
        if any(isinstance(i, Parameter) or owner_of(i) is not None for i in items):
            raise _not_gradients("parameters (model.parameters())", fn)
        raise TypeError(
            f"{fn}() changes the gradients in place, so it needs a dict or a list, not a "
            f"{type(grads).__name__}: pass the dict from jmod.grad (or list(...) of the arrays)"
        )
    out: list[tuple[Any, Any]] = []

    def walk(c: Any) -> None:
        keys = c.keys() if isinstance(c, MutableMapping) else range(len(c))
        for k in list(keys):
            v = c[k]
            if v is None:
                continue  # torch skips parameters whose .grad is None
            if isinstance(v, (MutableMapping, list)):
                walk(v)
            elif isinstance(v, tuple):
                raise TypeError(f"{fn}() cannot change a tuple in place: use lists or dicts for nested gradients")
            else:
                out.append((c, k))

    walk(container)
    return out, False


def _norm(x: jax.Array, norm_type: float) -> jax.Array:
    return jnp.linalg.vector_norm(x, ord=norm_type)


def _raise_nonfinite(bad: Any, norm_type: float) -> None:
    if bool(bad):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from "
            "`parameters` is non-finite, so it cannot be clipped. To disable "
            "this error and scale the gradients by the non-finite norm anyway, "
            "set `error_if_nonfinite=False`"
        )


def get_total_norm(
    tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> jax.Array:
    r"""Norm of a collection of arrays, as if they were concatenated into one vector.

    torch's ``get_total_norm``: the norm of the per-array norms (``norm_type`` may be
    ``'inf'``). ``tensors`` is an array, a dict (the gradients from ``jmod.grad``,
    nested dicts and lists too) or an iterable of arrays; ``None`` entries are skipped.

    Args:
        tensors: the arrays.
        norm_type: the p of the p-norm, or ``'inf'``.
        error_if_nonfinite: raise ``RuntimeError`` (torch's text) if the norm is NaN or
            infinite. Inside ``jmod.jit`` the check runs when the compiled call runs and
            the error arrives as a ``JaxRuntimeError`` (a ``RuntimeError``) carrying it.
        foreach: accepted for torch compatibility (XLA fuses the loop anyway).

    Returns:
        The total norm, a 0-d array (``0.0`` for no arrays).
    """
    norm_type = float(norm_type)
    if isinstance(tensors, jax.Array):
        arrays = [tensors]
    elif isinstance(tensors, (MutableMapping, list)):
        arrays = [c[k] for c, k in _slots(tensors, "get_total_norm")[0]]
    else:
        arrays = [t for t in tensors if t is not None]
    if not arrays:
        return jnp.asarray(0.0)
    norms = [_norm(jnp.asarray(a), norm_type) for a in arrays]
    dtype = jnp.result_type(*norms)
    total_norm = _norm(jnp.stack([n.astype(dtype) for n in norms]), norm_type)
    if error_if_nonfinite:
        bad = ~jnp.isfinite(total_norm)
        if is_tracer(bad):
            jax.debug.callback(_raise_nonfinite, bad, norm_type)
        else:
            _raise_nonfinite(bad, norm_type)
    return total_norm


def clip_grads_with_norm_(grads: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> None:
    r"""Scale the gradients in ``grads`` (changed in place) given a precomputed total norm.

    Each gradient becomes ``g * min(max_norm / (total_norm + 1e-6), 1)``, torch's
    ``clip_grads_with_norm_``. ``grads`` is the dict from ``jmod.grad`` (or a list).
    """
    _scale(_slots(grads, "clip_grads_with_norm_")[0], max_norm, total_norm)


def _scale(slots: list[tuple[Any, Any]], max_norm: float, total_norm: Any) -> None:
    if not slots:
        return
    max_norm = float(max_norm)
    clip_coef = max_norm / (jnp.asarray(total_norm) + 1e-6)
    clip_coef_clamped = jnp.minimum(clip_coef, 1.0)
    for c, k in slots:
        g = c[k]
        # torch's g.mul_(coef): the gradient keeps its dtype
        c[k] = (g * clip_coef_clamped.astype(g.dtype)).astype(g.dtype)


def clip_grad_norm_(
    grads: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> jax.Array:
    r"""Clip the norm of the gradients in ``grads`` (changed in place); return the total norm.

    torch's ``clip_grad_norm_`` with the gradient dict ``jmod.grad`` returns in place of
    the parameters: the total norm is computed over all gradients as if concatenated
    (:func:`get_total_norm`), then every gradient is multiplied by
    ``min(max_norm / (total_norm + 1e-6), 1)``.

    Args:
        grads: ``{name: gradient}`` from ``jmod.grad`` (nested dicts/lists work, ``None``
            entries are skipped), or a list of arrays.
        max_norm: largest allowed total norm.
        norm_type: the p of the p-norm, or ``'inf'``.
        error_if_nonfinite: raise ``RuntimeError`` if the total norm is NaN or infinite
            (see :func:`get_total_norm` for compiled code).
        foreach: accepted for torch compatibility.

    Returns:
        The total norm of the gradients before clipping (a 0-d array).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> grads = {"w": jnp.array([3.0, 4.0])}
        >>> float(jmod.nn.utils.clip_grad_norm_(grads, max_norm=1.0))
        5.0
        >>> grads["w"].round(3)  # scaled by 1 / (5 + 1e-6), torch's formula
        Array([0.6, 0.8], dtype=float32)
    """
    slots, empty_generator = _slots(grads, "clip_grad_norm_")
    if empty_generator:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    total_norm = get_total_norm([c[k] for c, k in slots], norm_type, error_if_nonfinite, foreach)
    _scale(slots, max_norm, total_norm)
    return total_norm


def clip_grad_norm(
    grads: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> jax.Array:
    """Deprecated alias of :func:`clip_grad_norm_` (as in torch)."""
    warnings.warn(
        "`jmod.nn.utils.clip_grad_norm` is now deprecated in favor of `jmod.nn.utils.clip_grad_norm_`.",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(grads, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(grads: Any, clip_value: float, foreach: bool | None = None) -> None:
    r"""Clamp every gradient in ``grads`` (changed in place) to ``[-clip_value, clip_value]``.

    torch's ``clip_grad_value_`` with the gradient dict from ``jmod.grad`` (or a list).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> grads = {"w": jnp.array([-3.0, 0.5, 2.0])}
        >>> jmod.nn.utils.clip_grad_value_(grads, 1.0)
        >>> grads["w"]
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    clip_value = float(clip_value)
    slots, _ = _slots(grads, "clip_grad_value_")
    for c, k in slots:
        g = c[k]
        c[k] = jnp.clip(g, -clip_value, clip_value).astype(g.dtype)
