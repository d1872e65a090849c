"""``pad`` (torch.nn.functional.pad): constant, reflect, replicate and circular padding.

The pad tuple is torch's: pairs ``(left, right)`` starting from the *last* dimension.
Negative entries crop. Constant padding works on any number of dimensions; the other
modes pad the last 1, 2 or 3 dimensions of a (batched or unbatched) input, as torch.

Non-constant modes are a gather along each padded axis with a static index map, so
the gradient is the scatter-add torch's backward computes (border elements collect
the gradient of every copy made of them).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jmod._src import amp
from jmod._src.amp import autocast_op
from jmod._src.arrays import to_jax
from jmod._src.functional._args import is_int

__all__ = ["pad"]

_MODES = ("constant", "reflect", "replicate", "circular")


def _check_pad_list(pad: Any) -> list[int]:
    if is_int(pad) or not hasattr(pad, "__len__") or isinstance(pad, (str, bytes)):
        raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, not {type(pad).__name__}")
    out = []
    for i, p in enumerate(pad):
        if not is_int(p):
            raise TypeError(
                f"pad(): argument 'pad' (position 2) must be tuple of ints, but found element of type "
                f"{type(p).__name__} at pos {i}"
            )
        out.append(int(p))
    return out


def _index_map(size: int, left: int, right: int, mode: str) -> np.ndarray:
    """For each output position along one axis, the input position it copies."""
    out = size + left + right
    if mode == "reflect":
        j = np.abs(np.arange(out) - left)
        return np.where(j > size - 1, 2 * (size - 1) - j, j)
    if mode == "replicate":
        return np.clip(np.arange(out) - left, 0, size - 1)
    # circular: torch first copies the (cropped) centre, then wraps the padded borders
    # around *that centre*, so a negative pad on one side changes what the other
    # side's wrap copies.
    c0 = max(-left, 0)
    m = size - c0 - max(-right, 0)
    if out == 0 or m <= 0:
        return np.zeros((out,), np.int64)
    return c0 + (np.arange(out) - max(left, 0)) % m


@autocast_op(amp.pad_op)
def pad(input: Any, pad: Any, mode: str = "constant", value: float | None = None) -> jax.Array:
    r"""Pad ``input`` (torch.nn.functional.pad).

    Args:
        input: N-dimensional array.
        pad: ``(left_last, right_last, left_second_last, right_second_last, ...)``:
            ``len(pad) / 2`` trailing dimensions are padded, the last one first.
            Negative values crop.
        mode: ``'constant'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
            Non-constant modes pad the last 1, 2 or 3 dimensions of a 2-D/3-D, 3-D/4-D
            or 4-D/5-D input respectively.
        value: fill value for ``'constant'`` padding (default ``0``), cast to the
            input's dtype as torch does (``2.7`` pads an integer array with ``2``).

    Returns:
        The padded array; dimension ``d`` grows by ``left_d + right_d``.

    Raises:
        RuntimeError: odd or too long ``pad``, ``value`` with a non-constant mode,
            reflect padding not smaller than the input size, circular padding that
            wraps more than once (torch's messages).
        NotImplementedError: an unknown mode, or a pad length the mode does not
            support for this input rank.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.arange(4.0).reshape(1, 1, 4)
        >>> F.pad(x, (2, 1), mode="reflect")
        Array([[[2., 1., 0., 1., 2., 3., 2.]]], dtype=float32)
        >>> F.pad(x, (1, -2), value=9.0)
        Array([[[9., 0., 1.]]], dtype=float32)
    """
    x = to_jax(input)
    pads = _check_pad_list(pad)
    if mode not in _MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if len(pads) % 2 != 0:
        raise RuntimeError("Padding length must be divisible by 2")
    npad = len(pads) // 2
    if npad > x.ndim:
        raise RuntimeError(
            "Padding length should be less than or equal to two times the input dimension but got padding length "
            f"{len(pads)} and input of dimension {x.ndim}"
        )
    # (axis, left, right) for each padded axis, last axis first as in ``pad``.
    pairs = [(x.ndim - 1 - i, pads[2 * i], pads[2 * i + 1]) for i in range(npad)]

    if mode == "constant":
        for axis, left, right in pairs:
            if x.shape[axis] + left + right < 0:
                raise RuntimeError("narrow(): length must be non-negative.")
        fill = jnp.asarray(0 if value is None else value).astype(x.dtype)
        config = [(0, 0, 0)] * x.ndim
        for axis, left, right in pairs:
            config[axis] = (left, right, 0)
        return lax.pad(x, fill, config)

    if value is not None and value != 0:
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if npad not in (1, 2, 3) or x.ndim not in (npad + 1, npad + 2):
        raise NotImplementedError(f"Padding size {len(pads)} is not supported for {x.ndim}D input tensor.")
    if mode in ("reflect", "replicate"):
        # torch allows an empty batch but no other empty dimension
        rest = x.shape[1:] if x.ndim == npad + 2 else x.shape
        if 0 in rest:
            raise RuntimeError(
                f"Expected {npad + 1}D or {npad + 2}D (batch mode) tensor with possibly 0 batch size and other "
                f"non-zero dimensions for input, but got: {list(x.shape)}"
            )
    for k, (axis, left, right) in enumerate(pairs):
        size = x.shape[axis]
        if mode == "reflect" and not (left < size and right < size):
            raise RuntimeError(
                f"Argument #{4 + 2 * k}: Padding size should be less than the corresponding input dimension, "
                f"but got: padding ({left}, {right}) at dimension {axis} of input {list(x.shape)}"
            )
        if mode == "circular":
            if left > size or right > size:
                raise RuntimeError("Padding value causes wrapping around more than once.")
            if size + left + right < 0:
                raise RuntimeError("Negative padding value is resulting in an empty dimension")
        if mode == "replicate" and size + left + right < (1 if npad == 1 else 0):
            raise RuntimeError(f"input (W: {size}) is too small. Calculated output W: {size + left + right}")
        if mode == "reflect" and size + left + right < 0:
            raise RuntimeError(f"input (W: {size}) is too small. Calculated output W: {size + left + right}")
    return _gather_pad(x, tuple(pairs), mode)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _gather_pad(x: jax.Array, pairs: tuple, mode: str) -> jax.Array:
    for axis, left, right in pairs:
        if left == 0 and right == 0:
            continue
        idx = _index_map(x.shape[axis], left, right, mode)
        x = jnp.take(x, jnp.asarray(idx, jnp.int32), axis=axis, mode="clip")
    return x
