"""Linear maps: ``linear``, ``bilinear`` (torch.nn.functional semantics)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["linear", "bilinear"]


def linear(input: Any, weight: Any, bias: Any = None) -> jax.Array:
    r"""Apply :math:`y = xA^T + b`.

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)`` or ``(in_features,)``.
        bias: ``(out_features,)`` or ``None``.

    Returns:
        ``(*, out_features)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(4)).shape
        (2, 4)
    """
    out = jnp.matmul(input, jnp.swapaxes(weight, -1, -2)) if jnp.ndim(weight) == 2 else jnp.matmul(input, weight)
    if bias is not None:
        out = out + bias
    return out


def bilinear(input1: Any, input2: Any, weight: Any, bias: Any = None) -> jax.Array:
    r"""Apply :math:`y = x_1^T A x_2 + b`.

    Args:
        input1: ``(*, in1_features)``.
        input2: ``(*, in2_features)``.
        weight: ``(out_features, in1_features, in2_features)``.
        bias: ``(out_features,)`` or ``None``.
    """
    out = jnp.einsum("...i,oij,...j->...o", input1, weight, input2)
    if bias is not None:
        out = out + bias
    return out
