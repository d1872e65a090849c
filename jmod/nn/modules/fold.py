"""Fold and Unfold (``torch/nn/modules/fold.py``): col2im and im2col as layers."""

from __future__ import annotations

from typing import Any

import jax

from jmod._src.functional.fold import fold, unfold
from jmod.nn.modules.module import Module

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    r"""Combine an array of sliding local blocks into a large image, summing overlaps (col2im).

    The transpose of :class:`Unfold`: ``Fold(Unfold(x))`` is ``x`` times the number of
    blocks covering each pixel.

    Args:
        output_size: the spatial size ``(H, W)`` of the output (int or tuple).
        kernel_size: the size of the sliding blocks.
        dilation: stride between elements within a block. Default: 1.
        padding: implicit zero padding that is cropped from the result. Default: 0.
        stride: stride of the sliding blocks. Default: 1.

    Shape:
        - Input: :math:`(N, C \times \prod(\text{kernel\_size}), L)` or :math:`(C \times \prod(\text{kernel\_size}), L)`.
        - Output: :math:`(N, C, H, W)` or :math:`(C, H, W)`, with
          :math:`L = \prod_d \left\lfloor\frac{\text{output\_size}[d] + 2 \times \text{padding}[d] -
          \text{dilation}[d] \times (\text{kernel\_size}[d] - 1) - 1}{\text{stride}[d]} + 1\right\rfloor`.

    Attributes:
        output_size, kernel_size, dilation, padding, stride: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> fold = nn.Fold(output_size=(4, 5), kernel_size=(2, 2))
        >>> fold(jnp.ones((1, 3 * 2 * 2, 12))).shape
        (1, 3, 4, 5)
        >>> fold
        Fold(output_size=(4, 5), kernel_size=(2, 2), dilation=1, padding=0, stride=1)
    """

    __constants__ = ["output_size", "kernel_size", "dilation", "padding", "stride"]

    def __init__(
        self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Any) -> jax.Array:
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            "output_size={output_size}, kernel_size={kernel_size}, "
            "dilation={dilation}, padding={padding}, stride={stride}".format(**self.__dict__)
        )


class Unfold(Module):
    r"""Extract sliding local blocks from a batched image (im2col).

    Args:
        kernel_size: the size of the sliding blocks.
        dilation: stride between elements within a block. Default: 1.
        padding: implicit zero padding on both sides. Default: 0.
        stride: stride of the sliding blocks. Default: 1.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: :math:`(N, C \times \prod(\text{kernel\_size}), L)` or unbatched, with
          :math:`L = \prod_d \left\lfloor\frac{X_d + 2 \times \text{padding}[d] -
          \text{dilation}[d] \times (\text{kernel\_size}[d] - 1) - 1}{\text{stride}[d]} + 1\right\rfloor`.

    Attributes:
        kernel_size, dilation, padding, stride: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> unfold = nn.Unfold(kernel_size=(2, 3))
        >>> unfold(jnp.ones((2, 5, 3, 4))).shape
        (2, 30, 4)
        >>> unfold
        Unfold(kernel_size=(2, 3), dilation=1, padding=0, stride=1)
    """

    __constants__ = ["kernel_size", "dilation", "padding", "stride"]

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Any) -> jax.Array:
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return "kernel_size={kernel_size}, dilation={dilation}, padding={padding}, stride={stride}".format(
            **self.__dict__
        )
