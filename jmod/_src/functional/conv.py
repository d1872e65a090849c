"""Convolutions: ``conv1d/2d/3d`` and ``conv_transpose1d/2d/3d`` (torch layouts).

Inputs are ``(N, C, *spatial)`` (or unbatched ``(C, *spatial)``), weights
``(out_channels, in_channels / groups, *kernel)`` for convolutions and
``(in_channels, out_channels / groups, *kernel)`` for transposed convolutions, exactly
torch's. ``conv_tbc`` is the 1-d convolution in the (time, batch, channel) layout. Everything is one ``jax.lax.conv_general_dilated`` call: a transposed
convolution is the input-dilated convolution with the kernel flipped and its two
channel axes swapped within each group.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jmod._src.amp import autocast_op
from jmod._src.arrays import to_jax
from jmod._src.functional._args import as_int_list, dtype_name, expand, is_int

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc"]

_SPATIAL = {1: "H", 2: "HW", 3: "DHW"}


def _dimension_numbers(n: int) -> tuple[str, str, str]:
    s = _SPATIAL[n]
    return ("NC" + s, "OI" + s, "NC" + s)


def _int_arg(value: Any, n: int, name: str, fn: str, pos: int) -> tuple[int, ...]:
    values = as_int_list(value, fn, name, pos)
    return expand(
        values,
        n,
        f"expected {name} to be a single integer value or a list of {n} values to match the convolution "
        f"dimensions, but got {name}={values}",
    )


def _prepare(input: Any, weight: Any, bias: Any, n: int, fn: str) -> tuple[jax.Array, jax.Array, Any, bool]:
    x = to_jax(input)
    w = to_jax(weight)
    b = None if bias is None else to_jax(bias)
    if x.ndim not in (n + 1, n + 2):
        raise RuntimeError(
            f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {fn}, but got input of size: {list(x.shape)}"
        )
    if w.ndim != n + 2:
        raise RuntimeError(
            f"Expected {n + 2}-dimensional weight for {n + 2}-dimensional input {list(x.shape)}, but got "
            f"{w.ndim}-dimensional weight of size {list(w.shape)} instead"
        )
    if x.dtype != w.dtype:
        raise RuntimeError(f"expected scalar type {dtype_name(x.dtype)} but found {dtype_name(w.dtype)}")
    if b is not None and b.dtype != x.dtype:
        raise RuntimeError(f"expected scalar type {dtype_name(x.dtype)} but found {dtype_name(b.dtype)}")
    batched = x.ndim == n + 2
    if not batched:
        x = x[None]
    return x, w, b, batched


def _check_common(stride: tuple, padding: tuple, dilation: tuple, groups: int) -> None:
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("non-positive dilation is not supported")


def _check_bias(b: Any, w: jax.Array, out_channels: int) -> None:
    if b is not None and (b.ndim != 1 or b.shape[0] != out_channels):
        raise RuntimeError(
            f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional with {out_channels} elements, "
            f"but got bias of size {list(b.shape)} instead"
        )


def _convnd(
    input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: int, n: int
) -> jax.Array:
    fn = f"conv{n}d"
    x, w, b, batched = _prepare(input, weight, bias, n, fn)
    stride_ = _int_arg(stride, n, "stride", fn, 4)
    dilation_ = _int_arg(dilation, n, "dilation", fn, 6)
    if not is_int(groups):
        raise TypeError(f"{fn}(): argument 'groups' (position 7) must be int, not {type(groups).__name__}")
    groups = int(groups)
    kernel = w.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * n
        elif padding == "same":
            if any(s != 1 for s in stride_):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            pads = []
            for d, k in zip(dilation_, kernel):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
        else:
            raise RuntimeError(f"Invalid padding string: '{padding}'")
        _check_common(stride_, (0,), dilation_, groups)
    else:
        padding_ = _int_arg(padding, n, "padding", fn, 5)
        _check_common(stride_, padding_, dilation_, groups)
        pads = [(p, p) for p in padding_]
    if w.shape[0] % groups != 0:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got weight of "
            f"size [{list(w.shape)}] instead"
        )
    if x.shape[1] != w.shape[1] * groups:
        # torch reports the unsqueezed shape for unbatched input
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(w.shape)}, expected input{list(x.shape)} to have "
            f"{w.shape[1] * groups} channels, but got {x.shape[1]} channels instead"
        )
    padded = [x.shape[2 + i] + pads[i][0] + pads[i][1] for i in range(n)]
    eff = [dilation_[i] * (kernel[i] - 1) + 1 for i in range(n)]
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, eff))}). Kernel size can't be greater than actual input size"
        )
    _check_bias(b, w, w.shape[0])
    out = _conv_core(x, w, b, stride_, tuple(pads), dilation_, groups, n)
    return out if batched else out[0]


# The cores are jitted with the static options: eager calls (and their gradients) run
# as one XLA computation instead of several dispatched ops.
@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7))
def _conv_core(x: jax.Array, w: jax.Array, b: Any, stride: tuple, pads: tuple, dilation: tuple, groups: int, n: int):
    out = lax.conv_general_dilated(
        x,
        w,
        window_strides=stride,
        padding=pads,
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(n),
        feature_group_count=groups,
    )
    return out if b is None else out + b.reshape((w.shape[0],) + (1,) * n)


def _conv_transposend(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
    n: int,
) -> jax.Array:
    fn = f"conv_transpose{n}d"
    if isinstance(padding, str):
        raise TypeError(f"{fn}(): argument 'padding' must be tuple of ints, not str")
    x, w, b, batched = _prepare(input, weight, bias, n, fn)
    stride_ = _int_arg(stride, n, "stride", fn, 4)
    padding_ = _int_arg(padding, n, "padding", fn, 5)
    output_padding_ = _int_arg(output_padding, n, "output_padding", fn, 6)
    dilation_ = _int_arg(dilation, n, "dilation", fn, 8)
    if not is_int(groups):
        raise TypeError(f"{fn}(): argument 'groups' (position 7) must be int, not {type(groups).__name__}")
    groups = int(groups)
    _check_common(stride_, padding_, dilation_, groups)
    if any(op < 0 for op in output_padding_):
        raise RuntimeError("negative output_padding is not supported")
    if any(op >= s and op >= d for op, s, d in zip(output_padding_, stride_, dilation_)):
        names = ["depth", "height", "width"][3 - n :] if n > 1 else ["width"]
        ops = " ".join(f"output_padding_{nm}: {v}" for nm, v in zip(names, output_padding_))
        ss = " ".join(f"stride_{nm}: {v}" for nm, v in zip(names, stride_))
        ds = " ".join(f"dilation_{nm}: {v}" for nm, v in zip(names, dilation_))
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but got {ops} {ss} {ds}")
    if w.shape[0] % groups != 0:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got weight of "
            f"size [{list(w.shape)}] instead"
        )
    in_channels = w.shape[0]
    out_channels = w.shape[1] * groups
    if x.shape[1] != in_channels:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(w.shape)}, expected input{list(x.shape)} to have {in_channels} "
            f"channels, but got {x.shape[1]} channels instead"
        )
    kernel = w.shape[2:]
    out_sizes = [
        (x.shape[2 + i] - 1) * stride_[i] - 2 * padding_[i] + dilation_[i] * (kernel[i] - 1) + output_padding_[i] + 1
        for i in range(n)
    ]
    if any(o < 0 for o in out_sizes):
        raise RuntimeError(
            f"Given input size per channel: ({' x '.join(str(s) for s in x.shape[2:])}). Calculated output size per "
            f"channel: ({' x '.join(map(str, out_sizes))}). Output size is too small"
        )
    _check_bias(b, w, out_channels)
    out = _conv_transpose_core(x, w, b, stride_, padding_, output_padding_, dilation_, groups, n)
    return out if batched else out[0]


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7, 8))
def _conv_transpose_core(
    x: jax.Array,
    w: jax.Array,
    b: Any,
    stride: tuple,
    padding: tuple,
    output_padding: tuple,
    dilation: tuple,
    groups: int,
    n: int,
) -> jax.Array:
    in_channels = w.shape[0]
    out_channels = w.shape[1] * groups
    kernel = w.shape[2:]
    # (in, out/g, *k) -> (g, in/g, out/g, *k) -> (g, out/g, in/g, *k) -> (out, in/g, *k), flipped
    cin_g = in_channels // groups
    wt = w.reshape((groups, cin_g, w.shape[1]) + kernel)
    wt = jnp.swapaxes(wt, 1, 2).reshape((out_channels, cin_g) + kernel)
    wt = jnp.flip(wt, axis=tuple(range(2, 2 + n)))
    pads = []
    for i in range(n):
        edge = dilation[i] * (kernel[i] - 1) - padding[i]
        pads.append((edge, edge + output_padding[i]))
    out = lax.conv_general_dilated(
        x,
        wt,
        window_strides=(1,) * n,
        padding=pads,
        lhs_dilation=stride,
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(n),
        feature_group_count=groups,
    )
    return out if b is None else out + b.reshape((out_channels,) + (1,) * n)


@autocast_op("conv1d")
def conv1d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    r"""1-D convolution (cross-correlation) over ``(N, C_in, L)`` or ``(C_in, L)`` input.

    Args:
        input: ``(N, C_in, L_in)`` or unbatched ``(C_in, L_in)``.
        weight: ``(C_out, C_in / groups, kW)``.
        bias: ``(C_out,)`` or ``None``.
        stride: int or 1-tuple.
        padding: int, 1-tuple, ``'valid'`` or ``'same'`` (zero padding; ``'same'``
            needs ``stride=1`` and puts the odd extra element on the right, as torch).
        dilation: int or 1-tuple.
        groups: split the channels into this many independent groups.

    Returns:
        ``(N, C_out, L_out)`` with
        :math:`L_{out} = \lfloor (L_{in} + 2p - d(k-1) - 1)/s \rfloor + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.conv1d(jnp.ones((2, 4, 10)), jnp.ones((6, 4, 3)), stride=2).shape
        (2, 6, 4)
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1)


@autocast_op("conv2d")
def conv2d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    r"""2-D convolution (cross-correlation) over ``(N, C_in, H, W)`` or ``(C_in, H, W)`` input.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` or ``None``.
        stride: int or ``(sH, sW)``.
        padding: int, ``(pH, pW)``, ``'valid'`` or ``'same'``.
        dilation: int or ``(dH, dW)``.
        groups: split the channels into this many independent groups.

    Returns:
        ``(N, C_out, H_out, W_out)``, each spatial size
        :math:`\lfloor (X_{in} + 2p - d(k-1) - 1)/s \rfloor + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.conv2d(jnp.ones((1, 4, 5, 5)), jnp.ones((8, 2, 3, 3)), padding="same", groups=2).shape
        (1, 8, 5, 5)
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2)


@autocast_op("conv3d")
def conv3d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    r"""3-D convolution (cross-correlation) over ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` input.

    Args:
        input: ``(N, C_in, D, H, W)`` or unbatched ``(C_in, D, H, W)``.
        weight: ``(C_out, C_in / groups, kD, kH, kW)``.
        bias: ``(C_out,)`` or ``None``.
        stride: int or ``(sD, sH, sW)``.
        padding: int, 3-tuple, ``'valid'`` or ``'same'``.
        dilation: int or 3-tuple.
        groups: split the channels into this many independent groups.

    Returns:
        ``(N, C_out, D_out, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.conv3d(jnp.ones((1, 2, 4, 4, 4)), jnp.ones((3, 2, 2, 2, 2))).shape
        (1, 3, 3, 3, 3)
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3)


@autocast_op("conv_transpose1d")
def conv_transpose1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> jax.Array:
    r"""1-D transposed convolution ("deconvolution"), the gradient of :func:`conv1d` w.r.t. its input.

    Args:
        input: ``(N, C_in, L_in)`` or unbatched ``(C_in, L_in)``.
        weight: ``(C_in, C_out / groups, kW)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, dilation: int or 1-tuple; ``padding`` removes
            ``padding`` elements from both ends of the full output.
        output_padding: extra size added to one side of the output (must be smaller
            than ``stride`` or ``dilation``).
        groups: split the channels into this many independent groups.

    Returns:
        ``(N, C_out, L_out)`` with
        :math:`L_{out} = (L_{in} - 1)s - 2p + d(k - 1) + \text{output\_padding} + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.conv_transpose1d(jnp.ones((2, 4, 5)), jnp.ones((4, 3, 3)), stride=2).shape
        (2, 3, 11)
    """
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 1)


@autocast_op("conv_transpose2d")
def conv_transpose2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> jax.Array:
    r"""2-D transposed convolution ("deconvolution"), the gradient of :func:`conv2d` w.r.t. its input.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_in, C_out / groups, kH, kW)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, output_padding, dilation: int or 2-tuple.
        groups: split the channels into this many independent groups.

    Returns:
        ``(N, C_out, H_out, W_out)``, each spatial size
        :math:`(X_{in} - 1)s - 2p + d(k - 1) + \text{output\_padding} + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.conv_transpose2d(jnp.ones((1, 4, 5, 5)), jnp.ones((4, 2, 3, 3)), stride=2, padding=1,
        ...                    output_padding=1).shape
        (1, 2, 10, 10)
    """
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 2)


@autocast_op("conv_transpose3d")
def conv_transpose3d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> jax.Array:
    r"""3-D transposed convolution ("deconvolution"), the gradient of :func:`conv3d` w.r.t. its input.

    Args:
        input: ``(N, C_in, D, H, W)`` or unbatched ``(C_in, D, H, W)``.
        weight: ``(C_in, C_out / groups, kD, kH, kW)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, output_padding, dilation: int or 3-tuple.
        groups: split the channels into this many independent groups.

    Returns:
        ``(N, C_out, D_out, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.conv_transpose3d(jnp.ones((1, 2, 3, 3, 3)), jnp.ones((2, 4, 2, 2, 2)), stride=2).shape
        (1, 4, 6, 6, 6)
    """
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 3)


@autocast_op("conv_tbc")
def conv_tbc(input: Any, weight: Any, bias: Any, pad: int = 0) -> jax.Array:
    r"""1-D convolution (cross-correlation) over a ``(time, batch, channels)`` sequence.

    ``out[t, b] = bias + sum_k x_pad[t + k, b] @ weight[k]``, where ``x_pad`` is the input
    zero-padded by ``pad`` steps at both ends of the time axis (a negative ``pad`` crops).

    Args:
        input: ``(T, B, C_in)``.
        weight: ``(kW, C_in, C_out)``.
        bias: ``(C_out,)`` (required, as in torch).
        pad: number of time steps to pad on each side. Default: 0.

    Shape:
        - input: :math:`(T_{in}, B, C_{in})`.
        - Output: :math:`(T_{out}, B, C_{out})` with :math:`T_{out} = T_{in} + 2 \cdot pad - kW + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.arange(4.0).reshape(4, 1, 1)  # T=4, B=1, C=1
        >>> F.conv_tbc(x, jnp.ones((2, 1, 1)), jnp.zeros(1), pad=1)[:, 0, 0]
        Array([0., 1., 3., 5., 3.], dtype=float32)
    """
    if bias is None or isinstance(bias, (int, float)):
        raise TypeError(f"conv_tbc(): argument 'bias' (position 3) must be Tensor, not {type(bias).__name__}")
    if not is_int(pad):
        raise TypeError(f"conv_tbc(): argument 'pad' (position 4) must be int, not {type(pad).__name__}")
    x, w, b = to_jax(input), to_jax(weight), to_jax(bias)
    pad = int(pad)
    if x.ndim != 3:
        raise RuntimeError("Input must have 3 dims: time, batch, in_channel")
    if w.ndim != 3:
        raise RuntimeError("Weight tensor must have 3 dims: kernel_width, in_channels, out_channels.")
    if b.ndim != 1:
        raise RuntimeError("Bias must be 1-D")
    if x.shape[2] != w.shape[1]:
        raise RuntimeError("Input dim 2 (input channels) is not == dim 1 in the weight tensor")
    if w.shape[2] != b.shape[0]:
        raise RuntimeError("Bias size must equal dim 2 in the weight tensor (output channels).")
    olen = x.shape[0] - w.shape[0] + 1 + 2 * pad
    out_shape = (olen, x.shape[1], w.shape[2])
    if olen < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {olen}: {list(out_shape)}")
    if x.dtype != w.dtype:
        raise RuntimeError(
            f"self and mat2 must have the same dtype, but got {dtype_name(x.dtype)} and {dtype_name(w.dtype)}"
        )
    if olen == 0 or w.shape[0] == 0:
        # nothing to convolve: the bias alone (torch copies it into the output first)
        return jnp.broadcast_to(b.astype(x.dtype), out_shape)
    return _conv_tbc_core(x, w, b, pad)


@functools.partial(jax.jit, static_argnums=(3,))
def _conv_tbc_core(x: jax.Array, w: jax.Array, b: jax.Array, pad: int) -> jax.Array:
    out = lax.conv_general_dilated(x, w, (1,), [(pad, pad)], dimension_numbers=("HNC", "HIO", "HNC"))
    return out + b.astype(out.dtype)
