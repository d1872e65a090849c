"""Dropout layers (``torch/nn/modules/dropout.py``).

This branch (attention/transformer) carries only ``Dropout``, which the transformer
layers need; the dropout family's branch provides the same class with the same
semantics alongside the other dropout layers.
"""

from __future__ import annotations

from typing import Any

import jax

from jmod._src.functional.attention import _dropout
from jmod.nn.modules.module import Module

__all__ = ["Dropout"]


class _DropoutNd(Module):
    __constants__ = ["p", "inplace"]
    p: float
    inplace: bool

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    r"""In training, zero each element with probability ``p`` and scale the rest by :math:`1/(1-p)`.

    In evaluation (``model.eval()``) it is the identity. The mask is drawn from jmod's
    global generator (``jmod.manual_seed``), a fresh one on every call, also inside
    ``jmod.jit``-compiled code.

    Args:
        p: probability of an element to be zeroed. Default: ``0.5``.
        inplace: accepted for torch compatibility; JAX arrays are immutable, so the
            result is always a new array.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.Dropout(p=0.2)
        >>> m(jnp.ones((20, 16))).shape
        (20, 16)
        >>> m.eval()(jnp.ones(3))
        Array([1., 1., 1.], dtype=float32)
        >>> m
        Dropout(p=0.2, inplace=False)
    """

    def forward(self, input: Any) -> jax.Array:
        return _dropout(input, self.p, self.training, self.inplace)
