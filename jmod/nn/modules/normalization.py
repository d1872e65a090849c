"""Normalization layers (``torch/nn/modules/normalization.py``).

This branch (attention/transformer) carries only ``LayerNorm``, which the transformer
layers need; the normalization family's branch provides the same class with the same
semantics alongside the other normalization layers.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import devices
from jmod._src.functional.attention import _layer_norm
from jmod.nn import init
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter

__all__ = ["LayerNorm"]


class LayerNorm(Module):
    r"""Layer normalization over the trailing ``normalized_shape`` dimensions.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    with the mean and the biased variance taken over the last ``len(normalized_shape)``
    dimensions of each sample (in float32 for float16/bfloat16 inputs, as torch).

    Args:
        normalized_shape: the trailing shape to normalize over; an int means the last
            dimension.
        eps: added to the variance for numerical stability. Default: ``1e-5``.
        elementwise_affine: learn a per-element scale ``weight`` (and ``bias``).
            Default: ``True``.
        bias: learn an additive ``bias`` (only with ``elementwise_affine``).
            Default: ``True``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, *)`, ending in ``normalized_shape``.
        - Output: :math:`(N, *)`, same shape as the input.

    Attributes:
        weight: shape ``normalized_shape``, initialised to ones (``None`` without
            ``elementwise_affine``).
        bias: shape ``normalized_shape``, initialised to zeros (``None`` without
            ``elementwise_affine`` or with ``bias=False``).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LayerNorm(10)
        >>> m(jnp.arange(40.0).reshape(2, 2, 10)).shape
        (2, 2, 10)
        >>> m
        LayerNorm((10,), eps=1e-05, elementwise_affine=True, bias=True)
    """

    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]
    normalized_shape: tuple[int, ...]
    eps: float
    elementwise_affine: bool

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = jnp.float32 if dtype is None else devices.as_dtype(dtype)
        if self.elementwise_affine:
            self.weight = Parameter(jnp.empty(self.normalized_shape, dtype))
            if bias:
                self.bias = Parameter(jnp.empty(self.normalized_shape, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Set ``weight`` to ones and ``bias`` to zeros."""
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Any) -> jax.Array:
        return _layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
