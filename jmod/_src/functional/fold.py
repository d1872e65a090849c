"""``unfold`` (im2col), ``fold`` (col2im) and ``channel_shuffle`` (torch.nn.functional semantics).

``unfold`` extracts sliding blocks with one strided slice per kernel tap; ``fold`` is
its exact linear transpose (overlapping blocks are summed), obtained with
``jax.linear_transpose`` so the two always agree.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jmod._src.arrays import to_jax
from jmod._src.functional._args import as_int_list

__all__ = ["unfold", "fold", "channel_shuffle", "native_channel_shuffle"]


def _pair_arg(value: Any, name: str, fn: str, pos: int) -> tuple[int, int]:
    values = as_int_list(value, fn, name, pos)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise RuntimeError(f"It is expected {name} equals to 2, but got size {len(values)}")
    return values[0], values[1]


def _check_block_args(k: tuple, d: tuple, p: tuple, s: tuple) -> None:
    if k[0] <= 0 or k[1] <= 0:
        raise RuntimeError(
            f"kernel size should be greater than zero, but got kernel_height: {k[0]} kernel_width: {k[1]}"
        )
    if s[0] <= 0 or s[1] <= 0:
        raise RuntimeError(f"stride should be greater than zero, but got stride_height: {s[0]} stride_width: {s[1]}")
    if d[0] <= 0 or d[1] <= 0:
        raise RuntimeError(
            f"dilation should be greater than zero, but got dilation_height: {d[0]} dilation_width: {d[1]}"
        )
    if p[0] < 0 or p[1] < 0:
        raise RuntimeError(f"padding should be non-negative, but got pad_height: {p[0]} pad_width: {p[1]}")


def _blocks(size: tuple, k: tuple, d: tuple, p: tuple, s: tuple) -> tuple[int, int]:
    return tuple((size[i] + 2 * p[i] - (d[i] * (k[i] - 1) + 1)) // s[i] + 1 for i in range(2))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _unfold_core(x: jax.Array, k: tuple, d: tuple, p: tuple, s: tuple, blocks: tuple) -> jax.Array:
    n, c = x.shape[:2]
    xp = jnp.pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    taps = []
    for i, j in itertools.product(range(k[0]), range(k[1])):
        start = (0, 0, i * d[0], j * d[1])
        limit = (n, c, i * d[0] + (blocks[0] - 1) * s[0] + 1, j * d[1] + (blocks[1] - 1) * s[1] + 1)
        taps.append(lax.slice(xp, start, limit, (1, 1) + tuple(s)))
    # (N, C, kh*kw, oh, ow) -> (N, C*kh*kw, oh*ow): channel-major, torch's column layout
    cols = jnp.stack(taps, axis=2)
    return cols.reshape(n, c * k[0] * k[1], blocks[0] * blocks[1])


def unfold(input: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> jax.Array:
    r"""Extract sliding local blocks (im2col): ``(N, C, H, W) -> (N, C * kH * kW, L)``.

    Args:
        input: ``(N, C, H, W)`` or unbatched ``(C, H, W)``.
        kernel_size: size of the sliding blocks.
        dilation: stride between elements within a block.
        padding: implicit zero padding on both sides.
        stride: stride of the sliding blocks.

    Returns:
        ``(N, C * prod(kernel_size), L)`` with
        :math:`L = \prod_d \left\lfloor\frac{X_d + 2p_d - d_d(k_d - 1) - 1}{s_d}\right\rfloor + 1`; column
        ``c * kH * kW + i * kW + j`` holds tap ``(i, j)`` of channel ``c``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.unfold(jnp.arange(9.0).reshape(1, 1, 3, 3), 2)
        Array([[[0., 1., 3., 4.],
                [1., 2., 4., 5.],
                [3., 4., 6., 7.],
                [4., 5., 7., 8.]]], dtype=float32)
    """
    x = to_jax(input)
    k = _pair_arg(kernel_size, "kernel_size", "im2col", 2)
    d = _pair_arg(dilation, "dilation", "im2col", 3)
    p = _pair_arg(padding, "padding", "im2col", 4)
    s = _pair_arg(stride, "stride", "im2col", 5)
    _check_block_args(k, d, p, s)
    if x.ndim == 2:
        raise IndexError("Dimension out of range (expected to be in range of [-2, 1], but got 2)")
    if x.ndim not in (3, 4) or 0 in x.shape[1:] or (x.ndim == 3 and x.shape[0] == 0):
        raise RuntimeError(
            "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for "
            f"input, but got: {list(x.shape)}"
        )
    batched = x.ndim == 4
    if not batched:
        x = x[None]
    blocks = _blocks(x.shape[2:], k, d, p, s)
    if blocks[0] < 1 or blocks[1] < 1:
        raise RuntimeError(
            f"Given input with spatial size ({x.shape[2]}, {x.shape[3]}), kernel_size=({k[0]}, {k[1]}), "
            f"dilation=({d[0]}, {d[1]}), padding=({p[0]}, {p[1]}), calculated shape of the array of sliding blocks "
            f"as ({blocks[0]}, {blocks[1]}), but its components must be at least one."
        )
    out = _unfold_core(x, k, d, p, s, blocks)
    return out if batched else out[0]


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _fold_core(cols: jax.Array, output_size: tuple, k: tuple, d: tuple, p: tuple, s: tuple) -> jax.Array:
    n = cols.shape[0]
    c = cols.shape[1] // (k[0] * k[1])
    blocks = _blocks(output_size, k, d, p, s)
    image = jax.ShapeDtypeStruct((n, c) + tuple(output_size), cols.dtype)
    transpose = jax.linear_transpose(lambda im: _unfold_core(im, k, d, p, s, blocks), image)
    return transpose(cols)[0]


def fold(
    input: Any, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
) -> jax.Array:
    r"""Combine sliding local blocks into an image (col2im), summing overlaps: the transpose of :func:`unfold`.

    Args:
        input: ``(N, C * kH * kW, L)`` or unbatched ``(C * kH * kW, L)``.
        output_size: spatial size ``(H, W)`` of the output.
        kernel_size: size of the sliding blocks.
        dilation: stride between elements within a block.
        padding: implicit zero padding on both sides (cropped from the result).
        stride: stride of the sliding blocks.

    Returns:
        ``(N, C, H, W)`` (or ``(C, H, W)``).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.fold(jnp.ones((1, 4, 4)), (3, 3), 2)
        Array([[[[1., 2., 1.],
                 [2., 4., 2.],
                 [1., 2., 1.]]]], dtype=float32)
    """
    x = to_jax(input)
    osize = _pair_arg(output_size, "output_size", "col2im", 2)
    k = _pair_arg(kernel_size, "kernel_size", "col2im", 3)
    d = _pair_arg(dilation, "dilation", "col2im", 4)
    p = _pair_arg(padding, "padding", "col2im", 5)
    s = _pair_arg(stride, "stride", "col2im", 6)
    _check_block_args(k, d, p, s)
    if x.ndim not in (2, 3) or 0 in x.shape[1:] or (x.ndim == 2 and x.shape[0] == 0):
        raise RuntimeError(
            "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero dimensions "
            f"for input, but got: {list(x.shape)}"
        )
    batched = x.ndim == 3
    if not batched:
        x = x[None]
    if x.shape[1] % (k[0] * k[1]) != 0:
        raise RuntimeError(
            "Expected size of input's dimension 1 to be divisible by the product of kernel_size, but got "
            f"input.size(1)={x.shape[1]} and kernel_size=({k[0]}, {k[1]})."
        )
    blocks = _blocks(osize, k, d, p, s)
    if x.shape[2] != blocks[0] * blocks[1] or blocks[0] < 1 or blocks[1] < 1:
        raise RuntimeError(
            f"Given output_size=({osize[0]}, {osize[1]}), kernel_size=({k[0]}, {k[1]}), dilation=({d[0]}, {d[1]}), "
            f"padding=({p[0]}, {p[1]}), stride=({s[0]}, {s[1]}), expected size of input's dimension 2 to match the "
            f"calculated number of sliding blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
            f"input.size(2)={x.shape[2]}."
        )
    out = _fold_core(x, osize, k, d, p, s)
    return out if batched else out[0]


def channel_shuffle(input: Any, groups: int) -> jax.Array:
    r"""Divide the channels of ``(N, C, *)`` into ``groups`` and interleave them: ``(g, C/g) -> (C/g, g)``.

    Args:
        input: ``(N, C, *)`` with at least 3 dimensions.
        groups: number of groups; must divide ``C``.

    Returns:
        An array of the same shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.channel_shuffle(jnp.arange(4.0).reshape(1, 4, 1), 2)[0, :, 0]
        Array([0., 2., 1., 3.], dtype=float32)
    """
    x = to_jax(input)
    if x.ndim <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(x.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    c = x.shape[1]
    if c % groups != 0:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    shape = x.shape
    y = x.reshape((shape[0], groups, c // groups) + shape[2:])
    return jnp.swapaxes(y, 1, 2).reshape(shape)


def native_channel_shuffle(input: Any, groups: int) -> jax.Array:
    r"""torch's kernel-level :func:`channel_shuffle` (same result and errors).

    Args:
        input: ``(N, C, *)`` with at least 3 dimensions.
        groups: number of groups; must divide ``C``.

    Returns:
        An array of the same shape.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.native_channel_shuffle(jnp.arange(6.0).reshape(1, 6, 1), 3)[0, :, 0]
        Array([0., 2., 4., 1., 3., 5.], dtype=float32)
    """
    return channel_shuffle(input, groups)
