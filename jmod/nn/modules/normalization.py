"""LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, CrossMapLRN2d
(``torch/nn/modules/normalization.py``)."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.arrays import host_empty
from jmod._src.functional import normalization as F
from jmod.nn import init
from jmod.nn.modules.batchnorm import _factory_dtype
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter

__all__ = ["LocalResponseNorm", "CrossMapLRN2d", "LayerNorm", "GroupNorm", "RMSNorm"]


class LocalResponseNorm(Module):
    r"""Apply local response normalization over an input of several channels (dim 1).

    .. math::

        b_{c} = a_{c}\left(k + \frac{\alpha}{n}
        \sum_{c'=\max(0, c-n/2)}^{\min(N-1,c+n/2)}a_{c'}^2\right)^{-\beta}

    Args:
        size: amount of neighbouring channels used for normalization.
        alpha: multiplicative factor. Default: 0.0001
        beta: exponent. Default: 0.75
        k: additive factor. Default: 1

    Shape:
        - Input: :math:`(N, C, *)`, at least 3-D.
        - Output: same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> lrn = nn.LocalResponseNorm(2)
        >>> lrn
        LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)
        >>> lrn(jnp.ones((32, 5, 24, 24))).shape
        (32, 5, 24, 24)
    """

    __constants__ = ["size", "alpha", "beta", "k"]
    size: int
    alpha: float
    beta: float
    k: float

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Any) -> jax.Array:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return "{size}, alpha={alpha}, beta={beta}, k={k}".format(**self.__dict__)


def _cross_map_windows(size: int, channels: int) -> tuple[Any, Any]:
    """The channel windows of torch's legacy ``CrossMapLRN2d`` as 0/1 matrices.

    ``fwd[c, j]`` is 1 when ``input[:, j]**2`` enters ``scale[:, c]`` in torch's forward
    loop (which, as written, keeps channel 0 in every window past ``pre_pad``);
    ``bwd[c, j]`` is 1 when ``ratio[:, j]`` enters ``grad_input[:, c]`` in torch's
    hand-written backward. Both are simulated index by index so that the layer gives
    torch's numbers, including its gradient.
    """
    import numpy as np

    pre_pad = int((size - 1) / 2 + 1)
    pre_pad_crop = min(pre_pad, channels)
    fwd = np.zeros((channels, channels), np.float32)
    if channels:
        fwd[0, :pre_pad_crop] = 1
    for c in range(1, channels):
        fwd[c] = fwd[c - 1]
        if c < channels - pre_pad + 1:
            fwd[c, c + pre_pad - 1] += 1
        if c > pre_pad:
            fwd[c, c - pre_pad] -= 1
    # backward: padded_ratio[inversePrePad + j] = ratio[j]; channel c accumulates
    # padded[c .. c + size - 1].
    inverse_pre_pad = int(size - (size - 1) / 2)
    bwd = np.zeros((channels, channels), np.float32)
    for c in range(channels):
        for p in range(c, c + size):
            j = p - inverse_pre_pad
            if 0 <= j < channels:
                bwd[c, j] += 1
    return fwd, bwd


def _cross_map_lrn2d(input: jax.Array, size: int, alpha: float, beta: float, k: float) -> jax.Array:
    fwd, bwd = _cross_map_windows(size, input.shape[1])

    @jax.custom_vjp
    def lrn(x: jax.Array) -> jax.Array:
        return lrn_fwd(x)[0]

    def lrn_fwd(x: jax.Array) -> tuple[jax.Array, tuple]:
        scale = jnp.einsum("cj,njhw->nchw", fwd.astype(x.dtype), x * x) * (alpha / size) + k
        out = scale ** (-beta) * x
        return out, (x, out, scale)

    def lrn_bwd(res: tuple, g: jax.Array) -> tuple[jax.Array]:
        x, out, scale = res
        ratio = g * out / scale
        accum = jnp.einsum("cj,njhw->nchw", bwd.astype(x.dtype), ratio)
        return (scale ** (-beta) * g - (2 * alpha * beta / size) * x * accum,)

    lrn.defvjp(lrn_fwd, lrn_bwd)
    return lrn(input)


class CrossMapLRN2d(Module):
    r"""torch's legacy cross-channel LRN on 4D input (``torch.nn.CrossMapLRN2d``).

    :math:`b_c = a_c \left(k + \frac{\alpha}{n} \sum_{c' \in W(c)} a_{c'}^2\right)^{-\beta}`
    with torch's window :math:`W(c)` and torch's hand-written gradient, reproduced
    exactly (prefer :class:`LocalResponseNorm` in new code).

    Args:
        size: window size.
        alpha: multiplicative factor. Default: 0.0001
        beta: exponent. Default: 0.75
        k: additive factor. Default: 1

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.CrossMapLRN2d(3)
        CrossMapLRN2d(3, alpha=0.0001, beta=0.75, k=1)
        >>> nn.CrossMapLRN2d(3)(jnp.ones((1, 4, 2, 2))).shape
        (1, 4, 2, 2)
    """

    size: int
    alpha: float
    beta: float
    k: float

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Any) -> jax.Array:
        input = jnp.asarray(input)
        if input.ndim != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.ndim}D instead.")
        return _cross_map_lrn2d(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return "{size}, alpha={alpha}, beta={beta}, k={k}".format(**self.__dict__)


class LayerNorm(Module):
    r"""Apply Layer Normalization over the last dimensions of the input.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{ \sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    Mean and biased variance are over the last ``len(normalized_shape)`` dimensions;
    the same statistics are used in training and evaluation.

    Args:
        normalized_shape: the trailing shape to normalise over (an int is a 1-tuple).
        eps: value added to the denominator for numerical stability. Default: 1e-5
        elementwise_affine: learn per-element ``weight`` and ``bias``. Default: ``True``
        bias: if ``False`` (and ``elementwise_affine``), no additive bias. Default: ``True``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, *)`.
        - Output: same shape as the input.

    Attributes:
        weight: shape ``normalized_shape``, initialised to 1 (``None`` without
            ``elementwise_affine``).
        bias: shape ``normalized_shape``, initialised to 0.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LayerNorm([5, 10])
        >>> m
        LayerNorm((5, 10), eps=1e-05, elementwise_affine=True, bias=True)
        >>> m(jnp.ones((20, 5, 10))).shape
        (20, 5, 10)
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
        dtype = _factory_dtype(dtype)
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if self.elementwise_affine:
            self.weight = Parameter(host_empty(self.normalized_shape, dtype))
            if bias:
                self.bias = Parameter(host_empty(self.normalized_shape, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1 and ``bias`` to 0."""
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Any) -> jax.Array:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return "{normalized_shape}, eps={eps}, elementwise_affine={elementwise_affine}, bias={use_bias}".format(
            **self.__dict__, use_bias=self.bias is not None
        )


class GroupNorm(Module):
    r"""Apply Group Normalization over a mini-batch of inputs.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{ \sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    The channels are split into ``num_groups`` groups; mean and biased variance are
    computed per sample and group, over the group's channels and all spatial
    positions. ``weight`` and ``bias`` are per channel.

    Args:
        num_groups: number of groups (must divide ``num_channels``).
        num_channels: number of channels expected in the input.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        affine: learn per-channel ``weight`` and ``bias``. Default: ``True``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).
        bias: (keyword only) if ``False``, no additive bias. Default: ``True``

    Shape:
        - Input: :math:`(N, C, *)` with :math:`C = \text{num\_channels}`.
        - Output: same shape as the input.

    Attributes:
        weight: shape ``(num_channels,)``, initialised to 1 (``None`` unless ``affine``).
        bias: shape ``(num_channels,)``, initialised to 0.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.GroupNorm(3, 6)
        >>> m
        GroupNorm(3, 6, eps=1e-05, affine=True, bias=True)
        >>> m(jnp.ones((20, 6, 10, 10))).shape
        (20, 6, 10, 10)
    """

    __constants__ = ["num_groups", "num_channels", "eps", "affine"]
    num_groups: int
    num_channels: int
    eps: float
    affine: bool

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        dtype = _factory_dtype(dtype)
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if self.affine:
            self.weight = Parameter(host_empty((num_channels,), dtype))
            if bias:
                self.bias = Parameter(host_empty((num_channels,), dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1 and ``bias`` to 0."""
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Any) -> jax.Array:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return "{num_groups}, {num_channels}, eps={eps}, affine={affine}, bias={use_bias}".format(
            **self.__dict__, use_bias=self.bias is not None
        )


class RMSNorm(Module):
    r"""Apply Root Mean Square Layer Normalization over the last dimensions.

    .. math::

        y_i = \frac{x_i}{\mathrm{RMS}(x)} * \gamma_i, \quad
        \mathrm{RMS}(x) = \sqrt{\epsilon + \frac{1}{n} \sum_{i=1}^{n} x_i^2}

    Args:
        normalized_shape: the trailing shape to normalise over (an int is a 1-tuple).
        eps: value added to the mean square; ``None`` (default) uses the machine
            epsilon of the compute dtype, ``jnp.finfo(dtype).eps`` (float32's for
            half and bfloat16 inputs, as torch).
        elementwise_affine: learn a per-element ``weight``. Default: ``True``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, *)`.
        - Output: same shape as the input.

    Attributes:
        weight: shape ``normalized_shape``, initialised to 1 (``None`` without
            ``elementwise_affine``).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.RMSNorm([2, 3])
        >>> m
        RMSNorm((2, 3), eps=None, elementwise_affine=True)
        >>> m(jnp.ones((4, 2, 3))).shape
        (4, 2, 3)
    """

    __constants__ = ["normalized_shape", "eps", "elementwise_affine"]
    normalized_shape: tuple[int, ...]
    eps: float | None
    elementwise_affine: bool

    def __init__(
        self,
        normalized_shape: Any,
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dtype = _factory_dtype(dtype)
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if self.elementwise_affine:
            self.weight = Parameter(host_empty(self.normalized_shape, dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Set ``weight`` to 1."""
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, x: Any) -> jax.Array:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return "{normalized_shape}, eps={eps}, elementwise_affine={elementwise_affine}".format(**self.__dict__)
