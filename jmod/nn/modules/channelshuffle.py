"""ChannelShuffle (``torch/nn/modules/channelshuffle.py``)."""

from __future__ import annotations

from typing import Any

import jax

from jmod._src.functional.fold import channel_shuffle
from jmod.nn.modules.module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    r"""Divide the channels of a ``(N, C, *)`` array into ``groups`` and interleave them (ShuffleNet).

    Args:
        groups: number of groups to divide the channels into.

    Shape:
        - Input: :math:`(*, C_{in}, H_{in}, W_{in})`.
        - Output: :math:`(*, C_{out}, H_{out}, W_{out})`, the same shape.

    Attributes:
        groups: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ChannelShuffle(2)
        >>> m(jnp.arange(4.0).reshape(1, 4, 1, 1))[0, :, 0, 0]
        Array([0., 2., 1., 3.], dtype=float32)
        >>> m
        ChannelShuffle(groups=2)
    """

    __constants__ = ["groups"]
    groups: int

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Any) -> jax.Array:
        return channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
