"""Activation functions (torch.nn.functional semantics, including torch's gradients).

Every function takes and returns ``jax.Array``s. ``inplace`` arguments are accepted
for signature compatibility; JAX arrays are immutable, so the result is always a new
array (use the return value, as torch code that writes ``x = F.relu(x, inplace=True)``
already does).

Gradients follow torch's backward formulas at the kinks (``relu`` has derivative 0 at
0, ``hardtanh``/``relu6`` 0 at the clip points, ``leaky_relu`` the slope at 0,
``hardswish`` 0 at -3 and 1 at 3, ...), and are finite wherever torch's are (e.g.
``softplus``/``elu`` for large inputs).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.amp import autocast_op
from jmod._src.functional._torch_ops import (
    clamp_min,
    torch_abs,
    torch_dtype_name,
    vector_norm,
    wrap_dim,
)

__all__ = [
    "threshold",
    "relu",
    "relu6",
    "hardtanh",
    "elu",
    "selu",
    "celu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "glu",
    "gelu",
    "logsigmoid",
    "hardshrink",
    "tanhshrink",
    "softsign",
    "softplus",
    "softmin",
    "softmax",
    "gumbel_softmax",
    "log_softmax",
    "softshrink",
    "tanh",
    "sigmoid",
    "hardsigmoid",
    "silu",
    "mish",
    "hardswish",
    "normalize",
]

# SELU constants (torch: aten/src/ATen/native/Activation.cpp).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_input(input: Any) -> jax.Array:
    x = jnp.asarray(input)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def threshold(input: Any, threshold: float, value: float, inplace: bool = False) -> jax.Array:
    r"""Replace every element that is not greater than ``threshold`` by ``value``.

    .. math:: y = x \text{ if } x > \text{threshold} \text{ else } \text{value}

    Args:
        input: any shape; integer arrays keep their dtype.
        threshold: the value to threshold at.
        value: the value to replace with.
        inplace: accepted for torch compatibility; the result is a new array.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.threshold(jnp.array([-1.0, 0.5, 2.0]), 0.5, -3.0)
        Array([-3., -3.,  2.], dtype=float32)
    """
    x = jnp.asarray(input)
    return jnp.where(x > threshold, x, jnp.asarray(value).astype(x.dtype))


def relu(input: Any, inplace: bool = False) -> jax.Array:
    r"""Rectified linear unit :math:`\max(0, x)`; its derivative at 0 is 0 (as torch).

    Args:
        input: any shape; integer arrays keep their dtype.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.relu(jnp.array([-1.0, 0.0, 2.0]))
        Array([0., 0., 2.], dtype=float32)
    """
    x = jnp.asarray(input)
    return jnp.where(x > 0, x, jnp.zeros((), x.dtype))


def hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> jax.Array:
    r"""Clip to ``[min_val, max_val]``; the derivative is 0 at and beyond the clip points.

    Args:
        input: any shape; integer arrays keep their dtype.
        min_val: lower end of the linear region. Default: -1.
        max_val: upper end of the linear region. Default: 1.
        inplace: accepted for torch compatibility (the result is a new array).

    Raises:
        ValueError: if ``min_val > max_val`` (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.hardtanh(jnp.array([-2.0, 0.5, 2.0]))
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    x = jnp.asarray(input)
    lo = jnp.asarray(min_val).astype(x.dtype)
    hi = jnp.asarray(max_val).astype(x.dtype)
    return jnp.where(x <= min_val, lo, jnp.where(x >= max_val, hi, x))


def relu6(input: Any, inplace: bool = False) -> jax.Array:
    r""":math:`\min(\max(0, x), 6)` (``hardtanh(x, 0, 6)``, with its gradient).

    Args:
        input: any shape; integer arrays keep their dtype.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.relu6(jnp.array([-1.0, 3.0, 8.0]))
        Array([0., 3., 6.], dtype=float32)
    """
    return hardtanh(input, 0.0, 6.0)


def _elu(x: jax.Array, alpha: float, scale: float, input_scale: float) -> jax.Array:
    # torch: x > 0 ? x * scale : (exp(x * input_scale) - 1) * alpha * scale. The exponent
    # is masked so that the unused branch cannot overflow into a NaN gradient.
    neg = jnp.expm1(jnp.where(x > 0, jnp.zeros((), x.dtype), x) * input_scale) * (alpha * scale)
    return jnp.where(x > 0, x * scale, neg)


def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    r"""Exponential linear unit: :math:`x` if :math:`x > 0` else :math:`\alpha(e^x - 1)`.

    Args:
        input: any shape.
        alpha: the :math:`\alpha` of the negative part. Default: 1.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.elu(jnp.array([0.0, 1.0]))
        Array([0., 1.], dtype=float32)
    """
    return _elu(_float_input(input), alpha, 1.0, 1.0)


def selu(input: Any, inplace: bool = False) -> jax.Array:
    r"""Scaled ELU: :math:`\text{scale} (\max(0,x) + \min(0, \alpha (e^x - 1)))` with torch's
    :math:`\alpha \approx 1.6733`, :math:`\text{scale} \approx 1.0507`.

    Args:
        input: any shape.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.selu(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    return _elu(_float_input(input), _SELU_ALPHA, _SELU_SCALE, 1.0)


def celu(input: Any, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    r"""Continuously differentiable ELU: :math:`\max(0,x) + \min(0, \alpha (e^{x/\alpha} - 1))`.

    Args:
        input: any shape.
        alpha: the :math:`\alpha` (non-zero). Default: 1.
        inplace: accepted for torch compatibility (the result is a new array).

    Raises:
        RuntimeError: if ``alpha == 0`` (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.celu(jnp.array([0.0, 2.0]), alpha=2.0)
        Array([0., 2.], dtype=float32)
    """
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _elu(_float_input(input), alpha, 1.0, 1.0 / alpha)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> jax.Array:
    r""":math:`x` if :math:`x > 0` else ``negative_slope`` :math:`\cdot x` (slope used at 0).

    Args:
        input: any shape.
        negative_slope: slope for :math:`x \le 0`. Default: 0.01.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.leaky_relu(jnp.array([-2.0, 3.0]), 0.5)
        Array([-1.,  3.], dtype=float32)
    """
    x = _float_input(input)
    return jnp.where(x > 0, x, x * negative_slope)


@autocast_op("prelu")
def prelu(input: Any, weight: Any) -> jax.Array:
    r""":math:`\max(0,x) + a \min(0,x)` with a learnable ``weight`` :math:`a`.

    Args:
        input: ``(*)``; the channel dimension is dim 1 when ``input.ndim >= 2``.
        weight: a scalar or 1-D array with 1 entry or one per channel.

    Raises:
        RuntimeError: for the weight/channel mismatches torch rejects, with its messages.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.prelu(jnp.array([[-1.0, 2.0]]), jnp.array([0.25]))
        Array([[-0.25,  2.  ]], dtype=float32)
    """
    x = jnp.asarray(input)
    w = jnp.asarray(weight)
    if x.dtype != w.dtype:
        raise RuntimeError(
            f"prelu: Type promoting not supported. Got {torch_dtype_name(x.dtype)} and {torch_dtype_name(w.dtype)}"
        )
    if w.size != 1:
        if x.ndim == 0:
            raise RuntimeError("Not allow zero-dim input tensor.")
        channel_size = x.shape[1] if x.ndim > 1 else 1
        if channel_size != w.size:
            raise RuntimeError(
                "Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                f"{w.size} and channel size = {channel_size}."
            )
    if w.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {w.ndim}")
    if x.ndim != w.ndim:
        shape = [1] * x.ndim
        if x.ndim > 1:
            shape[1] = w.size
        w = w.reshape(shape)
    return jnp.where(x > 0, x, w * x)


def rrelu(
    input: Any, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False
) -> jax.Array:
    r"""Randomized leaky ReLU: in training the negative slope of each element is drawn from
    :math:`\mathcal{U}(\text{lower}, \text{upper})` (jmod's generator); in evaluation it is
    :math:`(\text{lower} + \text{upper}) / 2`.

    Args:
        input: any shape.
        lower: lower bound of the random slope. Default: 1/8.
        upper: upper bound of the random slope. Default: 1/3.
        training: draw random slopes (else use their mean). Default: ``False``.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.rrelu(jnp.array([-2.0, 1.0]), 0.25, 0.75)
        Array([-1.,  1.], dtype=float32)
    """
    x = _float_input(input)
    if not training or upper - lower <= 1e-6:
        # torch falls back to leaky_relu here (slope used at 0 for the gradient).
        return jnp.where(x > 0, x, x * ((lower + upper) / 2))
    from jmod._src.random import next_key

    slope = jax.random.uniform(next_key(), x.shape, x.dtype, lower, upper)
    return jnp.where(x > 0, x, x * slope)


def glu(input: Any, dim: int = -1) -> jax.Array:
    r"""Gated linear unit: split ``input`` in halves :math:`a, b` along ``dim``; return
    :math:`a \otimes \sigma(b)`.

    Args:
        input: any shape with an even size along ``dim``.
        dim: the dimension to split. Default: -1.

    Raises:
        RuntimeError: for a 0-d input or an odd size along ``dim`` (torch's messages).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.glu(jnp.array([[2.0, 0.0]]))
        Array([[1.]], dtype=float32)
    """
    x = _float_input(input)
    if x.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = wrap_dim(dim, x.ndim)
    n = x.shape[d]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    a, b = jnp.split(x, 2, axis=d)
    return a * jax.nn.sigmoid(b)


def gelu(input: Any, approximate: str = "none") -> jax.Array:
    r"""Gaussian error linear unit :math:`x \Phi(x)`; ``approximate='tanh'`` uses
    :math:`0.5 x (1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`.

    Args:
        input: any shape.
        approximate: ``'none'`` (exact, with erf) or ``'tanh'``.

    Raises:
        RuntimeError: if ``approximate`` is not ``'none'`` or ``'tanh'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.gelu(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    if approximate == "none":
        x = _float_input(input)
        return x * 0.5 * (1 + jax.lax.erf(x * (1 / math.sqrt(2))))
    if approximate == "tanh":
        x = _float_input(input)
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1 + jnp.tanh(inner))
    raise RuntimeError("approximate argument must be either none or tanh.")


def logsigmoid(input: Any) -> jax.Array:
    r""":math:`\log(1 / (1 + e^{-x}))`, computed stably for large :math:`|x|`.

    Args:
        input: any shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.logsigmoid(jnp.array([-200.0]))
        Array([-200.], dtype=float32)
    """
    return jax.nn.log_sigmoid(_float_input(input))


def hardshrink(input: Any, lambd: float = 0.5) -> jax.Array:
    r""":math:`x` if :math:`|x| > \lambda` else 0.

    Args:
        input: any shape.
        lambd: the :math:`\lambda` threshold. Default: 0.5.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.hardshrink(jnp.array([-1.0, 0.5, 0.7]))
        Array([-1. ,  0. ,  0.7], dtype=float32)
    """
    x = _float_input(input)
    return jnp.where((x >= -lambd) & (x <= lambd), jnp.zeros((), x.dtype), x)


def tanhshrink(input: Any) -> jax.Array:
    r""":math:`x - \tanh(x)`.

    Args:
        input: any shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.tanhshrink(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    x = _float_input(input)
    return x - jnp.tanh(x)


def softsign(input: Any) -> jax.Array:
    r""":math:`x / (1 + |x|)`.

    Args:
        input: any shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.softsign(jnp.array([-1.0, 3.0]))
        Array([-0.5 ,  0.75], dtype=float32)
    """
    x = _float_input(input)
    return x / (torch_abs(x) + 1)


@autocast_op("softplus")
def softplus(input: Any, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:
    r""":math:`\frac{1}{\beta}\log(1 + e^{\beta x})`, reverting to :math:`x` when
    :math:`\beta x > \text{threshold}` (torch's rule, gradient included).

    Args:
        input: any shape.
        beta: the :math:`\beta`. Default: 1.
        threshold: above :math:`\beta x >` threshold the result is :math:`x`. Default: 20.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> [round(v, 4) for v in F.softplus(jnp.array([0.0, 30.0])).tolist()]
        [0.6931, 30.0]
    """
    x = _float_input(input)
    bx = x * beta
    linear = bx > threshold
    safe = jnp.where(linear, jnp.zeros((), x.dtype), bx)
    return jnp.where(linear, x, jnp.log1p(jnp.exp(safe)) / beta)


def _get_softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_like(fn: Any, x: jax.Array, dim: int, dtype: Any, kernel: str) -> jax.Array:
    if dtype is not None:
        from jmod._src.devices import as_dtype

        x = x.astype(as_dtype(dtype))
    elif not jnp.issubdtype(x.dtype, jnp.inexact):
        raise NotImplementedError(f"\"{kernel}_lastdim_kernel_impl\" not implemented for '{torch_dtype_name(x.dtype)}'")
    d = wrap_dim(dim, x.ndim)
    if x.ndim == 0:
        return fn(x.reshape(1), axis=0).reshape(())
    return fn(x, axis=d)


@autocast_op("softmax")
def softmax(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r""":math:`\exp(x_i) / \sum_j \exp(x_j)` along ``dim``.

    Args:
        input: any shape.
        dim: the dimension to normalise over. ``None`` uses torch's deprecated implicit
            choice (0 for 0-, 1- and 3-d inputs, else 1) and warns.
        dtype: cast the input to this dtype first (jnp, NumPy or torch dtype).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.softmax(jnp.zeros((1, 4)), dim=1)
        Array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """
    x = jnp.asarray(input)
    if dim is None:
        dim = _get_softmax_dim("softmax", x.ndim, _stacklevel)
    return _softmax_like(jax.nn.softmax, x, dim, dtype, "softmax")


@autocast_op("softmax")
def softmin(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r"""``softmax(-input)`` along ``dim`` (same ``dim=None`` rule and warning as :func:`softmax`).

    Args:
        input: any shape.
        dim: the dimension to normalise over (``None``: torch's implicit choice, with a warning).
        _stacklevel: warning stack level (torch's argument).
        dtype: cast the input to this dtype first.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.softmin(jnp.zeros(2), dim=0)
        Array([0.5, 0.5], dtype=float32)
    """
    x = jnp.asarray(input)
    if dim is None:
        dim = _get_softmax_dim("softmin", x.ndim, _stacklevel)
    if dtype is not None:
        from jmod._src.devices import as_dtype

        x = x.astype(as_dtype(dtype))
    return _softmax_like(jax.nn.softmax, -x, dim, None, "softmax")


@autocast_op("log_softmax")
def log_softmax(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r""":math:`\log(\text{softmax}(x))` along ``dim``, computed stably.

    Args:
        input: any shape.
        dim: the dimension to normalise over (``None``: torch's implicit choice, with a warning).
        _stacklevel: warning stack level (torch's argument).
        dtype: cast the input to this dtype first.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> [round(v, 4) for v in F.log_softmax(jnp.zeros(2), dim=0).tolist()]
        [-0.6931, -0.6931]
    """
    x = jnp.asarray(input)
    if dim is None:
        dim = _get_softmax_dim("log_softmax", x.ndim, _stacklevel)
    return _softmax_like(jax.nn.log_softmax, x, dim, dtype, "log_softmax")


def gumbel_softmax(logits: Any, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> jax.Array:
    r"""Sample from the Gumbel-softmax distribution (noise from jmod's generator).

    With ``hard=True`` the result is one-hot but differentiated as the soft sample
    (``y_hard - stop_gradient(y_soft) + y_soft``), as torch's straight-through trick.

    Args:
        logits: ``[..., num_features]`` unnormalised log-probabilities.
        tau: non-negative temperature. Default: 1.
        hard: return one-hot samples with the soft sample's gradient. Default: ``False``.
        eps: deprecated, no effect (warns when changed).
        dim: the dimension of the softmax. Default: -1.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.gumbel_softmax(jnp.zeros((2, 3)), hard=True).sum(-1)
        Array([1., 1.], dtype=float32)
    """
    from jmod._src.random import next_key

    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    x = _float_input(logits)
    gumbels = jax.random.gumbel(next_key(), x.shape, x.dtype)
    y_soft = jax.nn.softmax((x + gumbels) / tau, axis=wrap_dim(dim, x.ndim))
    if not hard:
        return y_soft
    d = wrap_dim(dim, x.ndim)
    index = jnp.argmax(y_soft, axis=d, keepdims=True)
    y_hard = (jnp.arange(x.shape[d]).reshape([-1 if i == d else 1 for i in range(x.ndim)]) == index).astype(x.dtype)
    return y_hard - jax.lax.stop_gradient(y_soft) + y_soft


def softshrink(input: Any, lambd: float = 0.5) -> jax.Array:
    r""":math:`x - \lambda` if :math:`x > \lambda`, :math:`x + \lambda` if :math:`x < -\lambda`, else 0.

    Args:
        input: any shape.
        lambd: the :math:`\lambda` (non-negative). Default: 0.5.

    Raises:
        RuntimeError: if ``lambd < 0`` (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.softshrink(jnp.array([-1.0, 0.2, 1.0]))
        Array([-0.5,  0. ,  0.5], dtype=float32)
    """
    x = _float_input(input)
    if lambd < 0:
        raise RuntimeError(
            f"lambda must be in range [0, {float(jnp.finfo(x.dtype).max):g}] for input dtype "
            f"{torch_dtype_name(x.dtype)}, but found {lambd:g}"
        )
    zero = jnp.zeros((), x.dtype)
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, zero))


def tanh(input: Any) -> jax.Array:
    r""":math:`\tanh(x)`.

    Args:
        input: any shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.tanh(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    return jnp.tanh(_float_input(input))


def sigmoid(input: Any) -> jax.Array:
    r""":math:`1 / (1 + e^{-x})`.

    Args:
        input: any shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.sigmoid(jnp.array([0.0]))
        Array([0.5], dtype=float32)
    """
    return jax.nn.sigmoid(_float_input(input))


def hardsigmoid(input: Any, inplace: bool = False) -> jax.Array:
    r"""0 for :math:`x \le -3`, 1 for :math:`x \ge 3`, else :math:`x/6 + 1/2` (derivative 0 at ±3).

    Args:
        input: any shape.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.hardsigmoid(jnp.array([-4.0, 0.0, 4.0]))
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    x = _float_input(input)
    return jnp.where(x <= -3, jnp.zeros((), x.dtype), jnp.where(x >= 3, jnp.ones((), x.dtype), (x + 3) / 6))


def silu(input: Any, inplace: bool = False) -> jax.Array:
    r""":math:`x \sigma(x)` (a.k.a. swish).

    Args:
        input: any shape.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.silu(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    x = _float_input(input)
    return x * jax.nn.sigmoid(x)


def mish(input: Any, inplace: bool = False) -> jax.Array:
    r""":math:`x \tanh(\text{softplus}(x))`.

    Args:
        input: any shape.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.mish(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """
    x = _float_input(input)
    return x * jnp.tanh(jax.nn.softplus(x))


def hardswish(input: Any, inplace: bool = False) -> jax.Array:
    r"""0 for :math:`x \le -3`, :math:`x` for :math:`x \ge 3`, else :math:`x (x + 3) / 6`.

    torch's backward: 0 for :math:`x \le -3`, :math:`x/3 + 1/2` on :math:`(-3, 3)`, 1 for
    :math:`x \ge 3`; reproduced here.

    Args:
        input: any shape.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.hardswish(jnp.array([-4.0, 0.0, 4.0]))
        Array([0., 0., 4.], dtype=float32)
    """
    x = _float_input(input)
    return jnp.where(x <= -3, jnp.zeros((), x.dtype), jnp.where(x < 3, x * (x + 3) / 6, x))


def normalize(input: Any, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None) -> jax.Array:
    r"""Divide by the :math:`L_p` norm along ``dim``: :math:`v / \max(\lVert v \rVert_p, \epsilon)`.

    Args:
        input: array of any shape.
        p: the exponent of the norm (``inf``, ``-inf`` and ``0`` as in torch).
        dim: the dimension to normalise.
        eps: lower bound of the denominator.
        out: not supported (arrays are immutable); must be ``None``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]]))
        Array([[0.6, 0.8],
               [0. , 0. ]], dtype=float32)
    """
    if out is not None:
        raise TypeError("normalize(): `out=` is not supported by jmod (arrays are immutable); use the return value")
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise RuntimeError(
            f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got {torch_dtype_name(x.dtype)}"
        )
    d = wrap_dim(dim, x.ndim)
    if x.ndim == 0:
        denom = clamp_min(vector_norm(x.reshape(1), p, axis=0), eps)
    else:
        denom = clamp_min(vector_norm(x, p, axis=d, keepdims=True), eps)
    return x / denom
