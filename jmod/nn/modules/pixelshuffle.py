"""PixelShuffle and PixelUnshuffle (``torch/nn/modules/pixelshuffle.py``)."""

from __future__ import annotations

from typing import Any

import jax

from jmod._src.functional import pixelshuffle as F
from jmod.nn.modules.module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle(Module):
    r"""Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)`` (sub-pixel convolution).

    Args:
        upscale_factor: the factor :math:`r` to increase spatial resolution by.

    Shape:
        - Input: :math:`(*, C_{in}, H_{in}, W_{in})`, :math:`C_{in} = C \times r^2`.
        - Output: :math:`(*, C, H_{in} \times r, W_{in} \times r)`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.PixelShuffle(3)
        >>> m(jnp.ones((1, 9, 4, 4))).shape
        (1, 1, 12, 12)
        >>> m
        PixelShuffle(upscale_factor=3)
    """

    __constants__ = ["upscale_factor"]

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Any) -> jax.Array:
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    r"""Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)``, the inverse of :class:`PixelShuffle`.

    Args:
        downscale_factor: the factor :math:`r` to decrease spatial resolution by.

    Shape:
        - Input: :math:`(*, C, H_{in}, W_{in})` with :math:`H_{in}, W_{in}` divisible by :math:`r`.
        - Output: :math:`(*, C \times r^2, H_{in} / r, W_{in} / r)`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.PixelUnshuffle(3)
        >>> m(jnp.ones((1, 1, 12, 12))).shape
        (1, 9, 4, 4)
        >>> m
        PixelUnshuffle(downscale_factor=3)
    """

    __constants__ = ["downscale_factor"]

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Any) -> jax.Array:
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
