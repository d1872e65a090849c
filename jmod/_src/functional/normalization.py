"""Normalization functions: batch, instance, layer, group, RMS and local response norm.

torch.nn.functional semantics, names and error text. The one difference JAX forces:
torch's ``batch_norm``/``instance_norm`` update ``running_mean``/``running_var`` in
place; JAX arrays are immutable, so these return the output only, and the jmod extras
:func:`batch_norm_with_stats` / :func:`instance_norm_with_stats` also return the
updated statistics (which is what the modules use).

Half-precision inputs are normalised in float32 and the output cast back, as torch's
CPU kernels accumulate in a wider type.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.amp import autocast_op

__all__ = [
    "batch_norm",
    "batch_norm_with_stats",
    "instance_norm",
    "instance_norm_with_stats",
    "layer_norm",
    "group_norm",
    "rms_norm",
    "local_response_norm",
]


def _size_str(shape: Sequence[int]) -> str:
    """A shape as torch prints a ``torch.Size`` in error messages."""
    return f"torch.Size([{', '.join(str(int(d)) for d in shape)}])"


def _list_str(shape: Sequence[int]) -> str:
    """A shape as torch's C++ errors print ``IntArrayRef``: ``[2, 3]``."""
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _opmath(dtype: Any) -> Any:
    """The dtype torch computes in for ``dtype`` (float32 for half and bfloat16)."""
    dtype = jnp.dtype(dtype)
    if dtype in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)):
        return jnp.dtype(jnp.float32)
    if not jnp.issubdtype(dtype, jnp.inexact):
        return jnp.dtype(jnp.float32)
    return dtype


def _verify_batch_size(size: Sequence[int], fmt: Any = _size_str) -> None:
    size_prods = size[0]
    for i in range(len(size) - 2):
        size_prods *= size[i + 2]
    if size_prods == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {fmt(size)}")


def _verify_spatial_size(size: Sequence[int]) -> None:
    size_prods = 1
    for i in range(2, len(size)):
        size_prods *= size[i]
    if size_prods == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {_size_str(size)}")


def _check_numel(name: str, num_features: int, value: Any, rep: int = 1) -> None:
    n = math.prod(jnp.shape(value)) * rep
    if n != num_features:
        raise RuntimeError(f"{name} should contain {num_features} elements not {n}")


def _channel_view(v: Any, ndim: int) -> jax.Array:
    """A per-channel vector shaped to broadcast against ``(N, C, *)``."""
    return jnp.reshape(v, (-1,) + (1,) * (ndim - 2))


def _is_static_number(x: Any) -> bool:
    return isinstance(x, numbers.Number)


def batch_norm_with_stats(
    input: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: Any = 0.1,
    eps: float = 1e-5,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    r"""Batch normalization that also returns the updated running statistics (jmod extra).

    Same arguments and output as :func:`batch_norm`. Where torch updates
    ``running_mean``/``running_var`` in place when ``training=True``, this returns the
    new values:

    .. math::

        \hat{x}_\text{new} = (1 - \text{momentum}) \hat{x} + \text{momentum}\, x_t

    with the batch mean, and the *unbiased* batch variance for ``running_var`` (the
    output is normalised with the biased one). ``momentum`` may be a traced scalar
    (``BatchNorm`` passes ``1 / num_batches_tracked`` when ``momentum=None``).

    Returns:
        ``(output, new_running_mean, new_running_var)``. The statistics are the ones
        given (possibly ``None``) when ``training=False`` or they are ``None``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.array([[1.0], [3.0]])
        >>> out, mean, var = F.batch_norm_with_stats(x, jnp.zeros(1), jnp.ones(1), training=True)
        >>> mean, var
        (Array([0.2], dtype=float32), Array([1.1], dtype=float32))
    """
    input = jnp.asarray(input)
    _check_batch_norm_args(input.shape, running_mean, running_var, weight, bias, training, eps)
    if input.size == 0:
        # torch returns the (empty) input and leaves the statistics alone.
        return input, running_mean, running_var
    if momentum is None:
        momentum = 0.0
    return _batch_norm_core(input, running_mean, running_var, weight, bias, momentum, eps, training=bool(training))


def _check_batch_norm_args(
    shape: Sequence[int],
    running_mean: Any,
    running_var: Any,
    weight: Any,
    bias: Any,
    training: bool,
    eps: Any,
    rep: int = 1,
) -> None:
    """torch's checks, in torch's order; ``rep``: the per-channel vectors will be tiled
    that many times (instance norm folds the batch into the channels)."""
    if len(shape) < 2:
        n = max(len(shape), 1)
        raise IndexError(f"Dimension out of range (expected to be in range of [-{n}, {n - 1}], but got 1)")
    if training:
        _verify_batch_size(shape)
    if _is_static_number(eps):
        if training and eps <= 0.0:
            raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
        elif eps < 0.0:
            raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    num_features = shape[1]
    if running_mean is not None:
        _check_numel("running_mean", num_features, running_mean, rep)
    elif not training:
        raise RuntimeError("running_mean must be defined in evaluation mode")
    if running_var is not None:
        _check_numel("running_var", num_features, running_var, rep)
    elif not training:
        raise RuntimeError("running_var must be defined in evaluation mode")
    if weight is not None:
        _check_numel("weight", num_features, weight, rep)
    if bias is not None:
        _check_numel("bias", num_features, bias, rep)


# The computations are jitted: eagerly, one compiled call per shape instead of a
# dozen op-by-op dispatches (each compiled on first use).
@functools.partial(jax.jit, static_argnames=("training",))
def _batch_norm_core(
    input: jax.Array,
    running_mean: Any,
    running_var: Any,
    weight: Any,
    bias: Any,
    momentum: Any,
    eps: Any,
    *,
    training: bool,
) -> tuple[jax.Array, Any, Any]:
    dtype = input.dtype
    acc = _opmath(dtype)
    x = input.astype(acc)
    ndim = input.ndim
    num_features = input.shape[1]
    new_mean, new_var = running_mean, running_var
    if training:
        axes = (0, *range(2, ndim))
        n = input.size // num_features
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - _channel_view(mean, ndim)), axis=axes)
        # The running statistics are not differentiated through (torch updates them
        # outside autograd: they are buffers, not part of the graph).
        m_stat = jax.lax.stop_gradient(mean)
        v_stat = jax.lax.stop_gradient(var) * (n / (n - 1) if n > 1 else jnp.inf)
        if running_mean is not None:
            new_mean = (momentum * m_stat + (1 - momentum) * running_mean.astype(acc)).astype(running_mean.dtype)
        if running_var is not None:
            new_var = (momentum * v_stat + (1 - momentum) * running_var.astype(acc)).astype(running_var.dtype)
    else:
        mean = running_mean.astype(acc)
        var = running_var.astype(acc)
    invstd = 1.0 / jnp.sqrt(var + eps)
    # torch's CPU kernel: out = x * alpha + beta with alpha = invstd * w, beta = b - mean * alpha.
    alpha = invstd if weight is None else invstd * weight.astype(acc)
    beta = -mean * alpha if bias is None else bias.astype(acc) - mean * alpha
    out = x * _channel_view(alpha, ndim) + _channel_view(beta, ndim)
    return out.astype(dtype), new_mean, new_var


def batch_norm(
    input: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Apply Batch Normalization for each channel across a batch of data.

    See :class:`~jmod.nn.BatchNorm1d`, :class:`~jmod.nn.BatchNorm2d`,
    :class:`~jmod.nn.BatchNorm3d` for details.

    Args:
        input: ``(N, C, *)``.
        running_mean, running_var: ``(C,)`` or ``None``; used to normalise when
            ``training=False`` (then required).
        weight, bias: ``(C,)`` affine parameters or ``None``.
        training: normalise with the batch statistics.
        momentum: factor of the running statistics update.
        eps: added to the variance for numerical stability.

    Returns:
        The normalised array, same shape and dtype as ``input``.

    .. note::
        **Difference from torch:** torch updates ``running_mean`` and ``running_var``
        in place when ``training=True``. JAX arrays are immutable, so this function
        only returns the output; use :func:`batch_norm_with_stats` to get the
        updated statistics as well.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.array([[1.0, 2.0], [3.0, 6.0]])
        >>> F.batch_norm(x, None, None, training=True).round(4)
        Array([[-1., -1.],
               [ 1.,  1.]], dtype=float32)
    """
    return batch_norm_with_stats(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]


def instance_norm_with_stats(
    input: Any,
    running_mean: Any = None,
    running_var: Any = None,
    weight: Any = None,
    bias: Any = None,
    use_input_stats: bool = True,
    momentum: Any = 0.1,
    eps: float = 1e-5,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    r"""Instance normalization that also returns the updated running statistics (jmod extra).

    Same arguments and output as :func:`instance_norm`; returns ``(output,
    new_running_mean, new_running_var)``. As in torch, with ``use_input_stats`` each
    instance's statistics update the running ones and the batch average is kept.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.array([[[1.0, 3.0]], [[0.0, 2.0]]])
        >>> _, mean, var = F.instance_norm_with_stats(x, jnp.zeros(1), jnp.ones(1), momentum=1.0)
        >>> mean, var
        (Array([1.5], dtype=float32), Array([2.], dtype=float32))
    """
    input = jnp.asarray(input)
    if use_input_stats:
        _verify_spatial_size(input.shape)
    if not use_input_stats and (running_mean is None or running_var is None):
        raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
    if input.ndim < 2:
        n = max(input.ndim, 1)
        raise IndexError(f"Dimension out of range (expected to be in range of [-{n}, {n - 1}], but got 1)")
    b, c = input.shape[0], input.shape[1]
    folded = (1, b * c) + input.shape[2:]
    _check_batch_norm_args(folded, running_mean, running_var, weight, bias, use_input_stats, eps, rep=b)
    if input.size == 0:
        return input, running_mean, running_var
    if momentum is None:
        momentum = 0.0
    return _instance_norm_core(
        input, running_mean, running_var, weight, bias, momentum, eps, use_input_stats=bool(use_input_stats)
    )


@functools.partial(jax.jit, static_argnames=("use_input_stats",))
def _instance_norm_core(
    input: jax.Array,
    running_mean: Any,
    running_var: Any,
    weight: Any,
    bias: Any,
    momentum: Any,
    eps: Any,
    *,
    use_input_stats: bool,
) -> tuple[jax.Array, Any, Any]:
    b, c = input.shape[0], input.shape[1]
    # torch folds the batch into the channels: (1, N*C, *) through batch_norm, with the
    # per-channel vectors repeated N times, then averages the repeated statistics.
    reshaped = input.reshape((1, b * c) + input.shape[2:])

    def rep(v: Any) -> Any:
        return None if v is None else jnp.tile(v, b)

    out, rm, rv = _batch_norm_core(
        reshaped, rep(running_mean), rep(running_var), rep(weight), rep(bias), momentum, eps, training=use_input_stats
    )
    new_mean = None if running_mean is None else jnp.mean(rm.reshape(b, c), axis=0).astype(running_mean.dtype)
    new_var = None if running_var is None else jnp.mean(rv.reshape(b, c), axis=0).astype(running_var.dtype)
    return out.reshape(input.shape), new_mean, new_var


def instance_norm(
    input: Any,
    running_mean: Any = None,
    running_var: Any = None,
    weight: Any = None,
    bias: Any = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Apply Instance Normalization independently for each channel in every data sample.

    See :class:`~jmod.nn.InstanceNorm1d`, :class:`~jmod.nn.InstanceNorm2d`,
    :class:`~jmod.nn.InstanceNorm3d` for details.

    Args:
        input: ``(N, C, *)``.
        running_mean, running_var: ``(C,)`` or ``None``; required when
            ``use_input_stats=False``.
        weight, bias: ``(C,)`` or ``None``.
        use_input_stats: normalise with each instance's statistics (else with the
            running ones).
        momentum: factor of the running statistics update.
        eps: added to the variance for numerical stability.

    .. note::
        **Difference from torch:** the running statistics are not updated in place
        (JAX arrays are immutable); :func:`instance_norm_with_stats` returns them.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.instance_norm(jnp.array([[[1.0, 3.0]]])).round(4)  # (x - mean) / sqrt(var + eps)
        Array([[[-1.,  1.]]], dtype=float32)
    """
    return instance_norm_with_stats(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)[0]


def _normalized_shape(normalized_shape: Any, fn: str) -> tuple[int, ...]:
    if isinstance(normalized_shape, (bool, numbers.Number)) or not isinstance(normalized_shape, Sequence):
        raise TypeError(
            f"{fn}(): argument 'normalized_shape' (position 2) must be tuple of ints, not {type(normalized_shape).__name__}"
        )
    return tuple(int(d) for d in normalized_shape)


def _check_layer_norm_inputs(
    input: jax.Array, normalized_shape: tuple[int, ...], weight: Any, bias: Any, star: str
) -> None:
    if len(normalized_shape) < 1:
        raise RuntimeError(
            "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one element, "
            f"but got normalized_shape = {_list_str(normalized_shape)}"
        )
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None and tuple(jnp.shape(v)) != normalized_shape:
            raise RuntimeError(
                f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                f"{_list_str(jnp.shape(v))} and normalized_shape = {_list_str(normalized_shape)}"
            )
    k = len(normalized_shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k :]) != normalized_shape:
        raise RuntimeError(
            f"Given normalized_shape={_list_str(normalized_shape)}, expected input with shape "
            f"[{star}{', '.join(str(d) for d in normalized_shape)}], but got input of size{_list_str(input.shape)}"
        )


@autocast_op("layer_norm")
def layer_norm(
    input: Any,
    normalized_shape: Sequence[int],
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Apply Layer Normalization over the last ``len(normalized_shape)`` dimensions.

    See :class:`~jmod.nn.LayerNorm` for details.

    Args:
        input: ``(*, *normalized_shape)``.
        normalized_shape: a tuple or list of ints (an int raises ``TypeError``, as in torch).
        weight, bias: arrays of shape ``normalized_shape`` or ``None``.
        eps: added to the variance for numerical stability.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.layer_norm(jnp.array([[1.0, 3.0]]), (2,)).round(4)  # (x - mean) / sqrt(var + eps)
        Array([[-1.,  1.]], dtype=float32)
    """
    input = jnp.asarray(input)
    shape = _normalized_shape(normalized_shape, "layer_norm")
    _check_layer_norm_inputs(input, shape, weight, bias, "*, ")
    return _layer_norm_core(input, weight, bias, eps, k=len(shape))


@functools.partial(jax.jit, static_argnames=("k",))
def _layer_norm_core(input: jax.Array, weight: Any, bias: Any, eps: Any, *, k: int) -> jax.Array:
    dtype = input.dtype
    acc = _opmath(dtype)
    x = input.astype(acc)
    axes = tuple(range(input.ndim - k, input.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    out = (x - mean) * (1.0 / jnp.sqrt(var + eps))
    if weight is not None:
        out = out * weight.astype(acc)
    if bias is not None:
        out = out + bias.astype(acc)
    return out.astype(dtype)


def rms_norm(
    input: Any,
    normalized_shape: Sequence[int],
    weight: Any = None,
    eps: float | None = None,
) -> jax.Array:
    r"""Apply Root Mean Square Layer Normalization over the last dimensions.

    :math:`y = \frac{x}{\sqrt{\mathrm{mean}(x^2) + \epsilon}} \cdot \gamma`. See
    :class:`~jmod.nn.RMSNorm`.

    Args:
        input: ``(*, *normalized_shape)``.
        normalized_shape: a tuple or list of ints.
        weight: array of shape ``normalized_shape`` or ``None``.
        eps: added to the mean square; ``None`` means the machine epsilon of the
            compute dtype (float32's for half and bfloat16 inputs, as torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> [round(v, 4) for v in F.rms_norm(jnp.array([3.0, 4.0]), (2,), eps=0.0).tolist()]
        [0.8485, 1.1314]
    """
    input = jnp.asarray(input)
    shape = _normalized_shape(normalized_shape, "rms_norm")
    _check_layer_norm_inputs(input, shape, weight, None, "*")
    if eps is None:
        eps = float(jnp.finfo(_opmath(input.dtype)).eps)
    return _rms_norm_core(input, weight, eps, k=len(shape))


@functools.partial(jax.jit, static_argnames=("k",))
def _rms_norm_core(input: jax.Array, weight: Any, eps: Any, *, k: int) -> jax.Array:
    dtype = input.dtype
    x = input.astype(_opmath(dtype))
    axes = tuple(range(input.ndim - k, input.ndim))
    ms = jnp.mean(jnp.square(x), axis=axes, keepdims=True)
    out = (x * jax.lax.rsqrt(ms + eps)).astype(dtype)
    if weight is not None:
        out = (out * weight).astype(dtype)
    return out


@autocast_op("group_norm")
def group_norm(
    input: Any,
    num_groups: int,
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Apply Group Normalization: channels split into ``num_groups`` groups, each
    normalised over its channels and spatial positions.

    See :class:`~jmod.nn.GroupNorm` for details.

    Args:
        input: ``(N, C, *)`` with ``C`` divisible by ``num_groups``.
        num_groups: number of groups.
        weight, bias: ``(C,)`` or ``None``.
        eps: added to the variance for numerical stability.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.group_norm(jnp.array([[1.0, 3.0, 0.0, 0.0]]), 2).round(4)
        Array([[-1.,  1.,  0.,  0.]], dtype=float32)
    """
    input = jnp.asarray(input)
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[0], input.shape[1]
    _verify_batch_size([n * c // num_groups, num_groups, *input.shape[2:]], fmt=_list_str)
    if c % num_groups != 0:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input of shape "
            f"{_list_str(input.shape)} and num_groups={num_groups}"
        )
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None and (jnp.ndim(v) != 1 or jnp.size(v) != c):
            # torch prints the *weight's* shape in both messages ([0] when there is none).
            shown = (0,) if weight is None else jnp.shape(weight)
            raise RuntimeError(
                f"Expected {name} to be a vector of size equal to the number of channels in input, but got {name} "
                f"of shape {_list_str(shown)} and input of shape {_list_str(input.shape)}"
            )
    if input.size == 0:
        return input
    return _group_norm_core(input, weight, bias, eps, num_groups=num_groups)


@functools.partial(jax.jit, static_argnames=("num_groups",))
def _group_norm_core(input: jax.Array, weight: Any, bias: Any, eps: Any, *, num_groups: int) -> jax.Array:
    dtype = input.dtype
    acc = _opmath(dtype)
    x = input.astype(acc).reshape((input.shape[0], num_groups, -1))
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    out = ((x - mean) * (1.0 / jnp.sqrt(var + eps))).reshape(input.shape)
    if weight is not None:
        out = out * _channel_view(weight.astype(acc), input.ndim)
    if bias is not None:
        out = out + _channel_view(bias.astype(acc), input.ndim)
    return out.astype(dtype)


def local_response_norm(input: Any, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> jax.Array:
    r"""Apply local response normalization across channels (dimension 1).

    :math:`b_c = a_c\left(k + \frac{\alpha}{n}\sum_{c'=c-n/2}^{c+n/2} a_{c'}^2\right)^{-\beta}`,
    with the window zero-padded at the edges (``size // 2`` channels before,
    ``(size - 1) // 2`` after) and always divided by ``size``, as torch.

    Args:
        input: ``(N, C, *)``, at least 3-D.
        size: number of neighbouring channels in the window.
        alpha, beta, k: the constants of the formula.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.local_response_norm(jnp.ones((1, 3, 1)), 2, alpha=1.0, beta=1.0, k=0.0)
        Array([[[2.],
                [1.],
                [1.]]], dtype=float32)
    """
    input = jnp.asarray(input)
    dim = input.ndim
    if dim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality                          input (got {dim} dimensions)")
    if input.size == 0:
        return input
    return _local_response_norm_core(input, alpha, beta, k, size=size)


@functools.partial(jax.jit, static_argnames=("size",))
def _local_response_norm_core(input: jax.Array, alpha: Any, beta: Any, k: Any, *, size: int) -> jax.Array:
    dim = input.ndim
    sq = input * input
    pad = [(0, 0)] * dim
    pad[1] = (size // 2, (size - 1) // 2)
    padded = jnp.pad(sq, pad)
    channels = input.shape[1]
    # Sum of `size` shifted slices = avg_pool with count_include_pad, times size.
    window = sum(jax.lax.slice_in_dim(padded, i, i + channels, axis=1) for i in range(size))
    div = window / size
    div = (div * alpha + k) ** beta
    return input / div
