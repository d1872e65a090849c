"""torch's loss-reduction conventions (``torch/nn/_reduction.py``)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

__all__ = ["get_enum", "legacy_get_string", "legacy_get_enum", "apply_loss_reduction"]

NONE, MEAN, SUM = 0, 1, 2


def get_enum(reduction: str, stacklevel: int = 3) -> int:
    """``'none'``/``'mean'``/``'sum'`` -> 0/1/2; ``'elementwise_mean'`` warns and means ``'mean'``.

    Raises:
        ValueError: ``"{reduction} is not a valid value for reduction"``.
    """
    if reduction == "none":
        return NONE
    if reduction == "mean":
        return MEAN
    if reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.", stacklevel=stacklevel
        )
        return MEAN
    if reduction == "sum":
        return SUM
    raise ValueError(f"{reduction} is not a valid value for reduction")


def legacy_get_string(
    size_average: bool | None, reduce: bool | None, emit_warning: bool = True, stacklevel: int = 3
) -> str:
    """Map the deprecated ``size_average``/``reduce`` pair to a reduction string (with torch's warning)."""
    warning = "size_average and reduce args will be deprecated, please use reduction='{}' instead."
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    if size_average and reduce:
        ret = "mean"
    elif reduce:
        ret = "sum"
    else:
        ret = "none"
    if emit_warning:
        warnings.warn(warning.format(ret), stacklevel=stacklevel)
    return ret


def legacy_get_enum(
    size_average: bool | None, reduce: bool | None, emit_warning: bool = True, stacklevel: int = 4
) -> int:
    return get_enum(legacy_get_string(size_average, reduce, emit_warning, stacklevel=stacklevel))


def apply_loss_reduction(loss: jax.Array, reduction: int) -> jax.Array:
    """ATen's ``apply_loss_reduction``: mean of an empty loss is NaN, as torch."""
    if reduction == MEAN:
        return jnp.mean(loss)
    if reduction == SUM:
        return jnp.sum(loss)
    return loss
