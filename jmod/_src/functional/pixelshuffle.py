"""``pixel_shuffle`` / ``pixel_unshuffle`` (torch.nn.functional semantics)."""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def _int_arg(value: Any, fn: str, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}(): argument '{name}' (position 2) must be int, not {type(value).__name__}") from None


def pixel_shuffle(input: Any, upscale_factor: int) -> jax.Array:
    r"""Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)``, :math:`r` = ``upscale_factor``.

    Args:
        input: ``(*, C r^2, H, W)``.
        upscale_factor: the factor :math:`r` (a positive int).

    Raises:
        RuntimeError: for inputs with fewer than 3 dimensions, a non-positive factor or a
            channel count not divisible by :math:`r^2` (torch's messages).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.pixel_shuffle(jnp.ones((1, 9, 4, 4)), 3).shape
        (1, 1, 12, 12)
    """
    r = _int_arg(upscale_factor, "pixel_shuffle", "upscale_factor")
    x = jnp.asarray(input)
    if x.ndim < 3:
        raise RuntimeError(
            f"pixel_shuffle expects input to have at least 3 dimensions, but got input with {x.ndim} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *batch, c, h, w = x.shape
    if c % (r * r):
        raise RuntimeError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
            f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    oc = c // (r * r)
    nb = len(batch)
    y = x.reshape(*batch, oc, r, r, h, w)
    # (*, oc, r1, r2, h, w) -> (*, oc, h, r1, w, r2)
    perm = [*range(nb), nb, nb + 3, nb + 1, nb + 4, nb + 2]
    return jnp.transpose(y, perm).reshape(*batch, oc, h * r, w * r)


def pixel_unshuffle(input: Any, downscale_factor: int) -> jax.Array:
    r"""Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)``, the inverse of :func:`pixel_shuffle`.

    Args:
        input: ``(*, C, H r, W r)``.
        downscale_factor: the factor :math:`r` (a positive int).

    Raises:
        RuntimeError: for inputs with fewer than 3 dimensions, a non-positive factor or a
            height/width not divisible by it (torch's messages).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.pixel_unshuffle(jnp.ones((1, 1, 12, 12)), 3).shape
        (1, 9, 4, 4)
    """
    r = _int_arg(downscale_factor, "pixel_unshuffle", "downscale_factor")
    x = jnp.asarray(input)
    if x.ndim < 3:
        raise RuntimeError(
            f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with {x.ndim} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *batch, c, h, w = x.shape
    if h % r:
        raise RuntimeError(
            f"pixel_unshuffle expects height to be divisible by downscale_factor, but input.size(-2)={h} "
            f"is not divisible by {r}"
        )
    if w % r:
        raise RuntimeError(
            f"pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)={w} "
            f"is not divisible by {r}"
        )
    nb = len(batch)
    oh, ow = h // r, w // r
    y = x.reshape(*batch, c, oh, r, ow, r)
    # (*, c, oh, r1, ow, r2) -> (*, c, r1, r2, oh, ow)
    perm = [*range(nb), nb, nb + 2, nb + 4, nb + 1, nb + 3]
    return jnp.transpose(y, perm).reshape(*batch, c * r * r, oh, ow)
