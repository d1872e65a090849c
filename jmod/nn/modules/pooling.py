"""Pooling layers (``torch/nn/modules/pooling.py``): max, average, power-average, adaptive, max-unpool.

The layers store their arguments exactly as torch does (``MaxPool2d(3).kernel_size``
is ``3``, ``AvgPool1d(3).kernel_size`` is ``(3,)``) and call the functionals of
:mod:`jmod.nn.functional`. ``FractionalMaxPool2d/3d`` draw their window positions from
jmod's generator unless given ``_random_samples``.
"""

from __future__ import annotations

from typing import Any

from jmod._src.functional import fractional_pooling as FF, pooling as F
from jmod.nn.modules.module import Module
from jmod.nn.modules.utils import _pair, _single, _triple

__all__ = [
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
]


class _MaxPoolNd(Module):
    __constants__ = ["kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"]
    return_indices: bool
    ceil_mode: bool

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (
            "kernel_size={kernel_size}, stride={stride}, padding={padding}"
            ", dilation={dilation}, ceil_mode={ceil_mode}".format(**self.__dict__)
        )


class _MaxUnpoolNd(Module):
    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPoolNd(Module):
    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _LPPoolNd(Module):
    __constants__ = ["norm_type", "kernel_size", "stride", "ceil_mode"]
    norm_type: float
    ceil_mode: bool

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return "norm_type={norm_type}, kernel_size={kernel_size}, stride={stride}, ceil_mode={ceil_mode}".format(
            **self.__dict__
        )


class _AdaptiveMaxPoolNd(Module):
    __constants__ = ["output_size", "return_indices"]
    return_indices: bool

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _AdaptiveAvgPoolNd(Module):
    __constants__ = ["output_size"]

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class MaxPool1d(_MaxPoolNd):
    r"""Apply a 1-D max pooling over an input of several planes.

    Padding is implicit ``-inf``. With ``ceil_mode=True`` windows may run past the end
    if they start inside the input or the left padding; windows that would start in
    the right padding are dropped.

    Args:
        kernel_size: the size of the window to take a max over (int or 1-tuple).
        stride: the stride of the window. Default: ``kernel_size``.
        padding: implicit negative infinity padding added on both sides (at most half
            the effective kernel size).
        dilation: the spacing between elements in the window.
        return_indices: if ``True``, also return the argmax indices (into the
            flattened spatial input), useful for :class:`MaxUnpool1d`.
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`(N, C, L_{out})` or :math:`(C, L_{out})`, where
          :math:`L_{out} = \left\lfloor\frac{L_{in} + 2 \times \text{padding} - \text{dilation} \times (\text{kernel\_size} - 1) - 1}{\text{stride}} + 1\right\rfloor`

    Attributes:
        kernel_size, stride, padding, dilation: as given (not expanded to tuples, as in torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.MaxPool1d(3, stride=2)
        >>> m(jnp.ones((20, 16, 50))).shape
        (20, 16, 24)
        >>> m
        MaxPool1d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)
    """

    def forward(self, input: Any) -> Any:
        return F.max_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )


class MaxUnpool1d(_MaxUnpoolNd):
    r"""Compute a partial inverse of :class:`MaxPool1d`: the maxima go back to their indices, zeros elsewhere.

    Several input sizes pool to the same output size; ``forward(input, indices,
    output_size=...)`` picks the size to restore.

    Args:
        kernel_size: size of the max pooling window.
        stride: stride of the max pooling window. Default: ``kernel_size``.
        padding: padding that was added to the input.

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`(N, C, L_{out})` or :math:`(C, L_{out})`, where
          :math:`L_{out} = (L_{in} - 1) \times \text{stride} - 2 \times \text{padding} + \text{kernel\_size}`
          or as given by ``output_size`` in the call.

    Attributes:
        kernel_size, stride, padding: ``1``-tuples.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> pool, unpool = nn.MaxPool1d(2, return_indices=True), nn.MaxUnpool1d(2)
        >>> out, idx = pool(jnp.arange(1.0, 9.0).reshape(1, 1, 8))
        >>> unpool(out, idx)
        Array([[[0., 2., 0., 4., 0., 6., 0., 8.]]], dtype=float32)
        >>> unpool
        MaxUnpool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if (stride is not None) else kernel_size)
        self.padding = _single(padding)

    def forward(self, input: Any, indices: Any, output_size: Any = None) -> Any:
        return F.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class AvgPool1d(_AvgPoolNd):
    r"""Apply a 1-D average pooling over an input of several planes.

    The window sum is divided by the window size clipped to ``input + padding``
    (``count_include_pad=True``) or to the input (``False``); windows that ``ceil_mode``
    lets run past the padded input are therefore averaged over their in-range part.

    Args:
        kernel_size: the size of the window (int or 1-tuple).
        stride: the stride of the window. Default: ``kernel_size``.
        padding: implicit zero padding added on both sides (at most half the kernel size).
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.
        count_include_pad: include the zero-padding in the averaging divisor.

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`(N, C, L_{out})` or :math:`(C, L_{out})`, where
          :math:`L_{out} = \left\lfloor\frac{L_{in} + 2 \times \text{padding} - \text{kernel\_size}}{\text{stride}} + 1\right\rfloor`

          With ``ceil_mode``, a last window that would start in the right padding is dropped.

    Attributes:
        kernel_size, stride, padding: 1-tuples (as torch's AvgPool1d).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AvgPool1d(3, stride=2)
        >>> m(jnp.ones((20, 16, 50))).shape
        (20, 16, 24)
        >>> m
        AvgPool1d(kernel_size=(3,), stride=(2,), padding=(0,))
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Any) -> Any:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class LPPool1d(_LPPoolNd):
    r"""Apply a 1-D power-average pooling: :math:`f(X) = \sqrt[p]{\sum_{x \in X} x^{p}}` over each window.

    ``p = inf`` gives max pooling of ``|x|``, ``p = 1`` sum pooling. Computed as torch
    does, from the average pool of :math:`x^p` (so a window of all zeros has zero
    gradient).

    Args:
        norm_type: the exponent ``p``.
        kernel_size: the size of the window (int or 1-tuple).
        stride: the stride of the window. Default: ``kernel_size``.
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`(N, C, L_{out})` or :math:`(C, L_{out})`, where
          :math:`L_{out} = \left\lfloor\frac{L_{in} - \text{kernel\_size}}{\text{stride}} + 1\right\rfloor`

    Attributes:
        norm_type, kernel_size, stride, ceil_mode: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LPPool1d(2, 3, stride=2)
        >>> m(jnp.ones((20, 16, 50))).shape
        (20, 16, 24)
        >>> m
        LPPool1d(norm_type=2, kernel_size=3, stride=2, ceil_mode=False)
    """

    def forward(self, input: Any) -> Any:
        return F.lp_pool1d(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    r"""Apply a 1-D adaptive max pooling: any input size to a fixed output size.

    Output element ``i`` pools input window
    :math:`[\lfloor i \cdot L_{in} / L_{out} \rfloor, \lceil (i+1) \cdot L_{in} / L_{out} \rceil)` along each
    dimension (torch's windows, which overlap when the sizes do not divide).

    Args:
        output_size: the target output size :math:`L_{out}` (int).
        return_indices: if ``True``, also return the argmax indices. Default: ``False``.

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`(N, C, L_{out})` or :math:`(C, L_{out})`, where :math:`(L_{out}) = \text{output\_size}`.

    Attributes:
        output_size: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AdaptiveMaxPool1d(5)
        >>> m(jnp.ones((20, 16, 50))).shape
        (20, 16, 5)
        >>> m
        AdaptiveMaxPool1d(output_size=5)
    """

    def forward(self, input: Any) -> Any:
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    r"""Apply a 1-D adaptive average pooling: any input size to a fixed output size.

    Output element ``i`` pools input window
    :math:`[\lfloor i \cdot L_{in} / L_{out} \rfloor, \lceil (i+1) \cdot L_{in} / L_{out} \rceil)` along each
    dimension (torch's windows, which overlap when the sizes do not divide).

    Args:
        output_size: the target output size :math:`L_{out}` (int).

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`(N, C, L_{out})` or :math:`(C, L_{out})`, where :math:`(L_{out}) = \text{output\_size}`.

    Attributes:
        output_size: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AdaptiveAvgPool1d(5)
        >>> m(jnp.ones((20, 16, 50))).shape
        (20, 16, 5)
        >>> m
        AdaptiveAvgPool1d(output_size=5)
    """

    def forward(self, input: Any) -> Any:
        return F.adaptive_avg_pool1d(input, self.output_size)


class MaxPool2d(_MaxPoolNd):
    r"""Apply a 2-D max pooling over an input of several planes.

    Padding is implicit ``-inf``. With ``ceil_mode=True`` windows may run past the end
    if they start inside the input or the left padding; windows that would start in
    the right padding are dropped.

    Args:
        kernel_size: the size of the window to take a max over (int or ``(kH, kW)``).
        stride: the stride of the window. Default: ``kernel_size``.
        padding: implicit negative infinity padding added on both sides (at most half
            the effective kernel size).
        dilation: the spacing between elements in the window.
        return_indices: if ``True``, also return the argmax indices (into the
            flattened spatial input), useful for :class:`MaxUnpool2d`.
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where
          :math:`H_{out} = \left\lfloor\frac{H_{in} + 2 \times \text{padding}[0] - \text{dilation}[0] \times (\text{kernel\_size}[0] - 1) - 1}{\text{stride}[0]} + 1\right\rfloor`
          :math:`W_{out} = \left\lfloor\frac{W_{in} + 2 \times \text{padding}[1] - \text{dilation}[1] \times (\text{kernel\_size}[1] - 1) - 1}{\text{stride}[1]} + 1\right\rfloor`

    Attributes:
        kernel_size, stride, padding, dilation: as given (not expanded to tuples, as in torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.MaxPool2d((3, 2), stride=(2, 1))
        >>> m(jnp.ones((20, 16, 50, 32))).shape
        (20, 16, 24, 31)
        >>> m
        MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=0, dilation=1, ceil_mode=False)
    """

    def forward(self, input: Any) -> Any:
        return F.max_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )


class MaxUnpool2d(_MaxUnpoolNd):
    r"""Compute a partial inverse of :class:`MaxPool2d`: the maxima go back to their indices, zeros elsewhere.

    Several input sizes pool to the same output size; ``forward(input, indices,
    output_size=...)`` picks the size to restore.

    Args:
        kernel_size: size of the max pooling window.
        stride: stride of the max pooling window. Default: ``kernel_size``.
        padding: padding that was added to the input.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where
          :math:`H_{out} = (H_{in} - 1) \times \text{stride}[0] - 2 \times \text{padding}[0] + \text{kernel\_size}[0]`
          :math:`W_{out} = (W_{in} - 1) \times \text{stride}[1] - 2 \times \text{padding}[1] + \text{kernel\_size}[1]`
          or as given by ``output_size`` in the call.

    Attributes:
        kernel_size, stride, padding: ``2``-tuples.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
        >>> out, idx = pool(jnp.arange(1.0, 17.0).reshape(1, 1, 4, 4))
        >>> unpool(out, idx)
        Array([[[[ 0.,  0.,  0.,  0.],
                 [ 0.,  6.,  0.,  8.],
                 [ 0.,  0.,  0.,  0.],
                 [ 0., 14.,  0., 16.]]]], dtype=float32)
        >>> unpool
        MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if (stride is not None) else kernel_size)
        self.padding = _pair(padding)

    def forward(self, input: Any, indices: Any, output_size: Any = None) -> Any:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class AvgPool2d(_AvgPoolNd):
    r"""Apply a 2-D average pooling over an input of several planes.

    The window sum is divided by the window size clipped to ``input + padding``
    (``count_include_pad=True``) or to the input (``False``); windows that ``ceil_mode``
    lets run past the padded input are therefore averaged over their in-range part.

    Args:
        kernel_size: the size of the window (int or ``(kH, kW)``).
        stride: the stride of the window. Default: ``kernel_size``.
        padding: implicit zero padding added on both sides (at most half the kernel size).
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.
        count_include_pad: include the zero-padding in the averaging divisor.
        divisor_override: if given, the divisor of every window instead of its size.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where
          :math:`H_{out} = \left\lfloor\frac{H_{in} + 2 \times \text{padding}[0] - \text{kernel\_size}[0]}{\text{stride}[0]} + 1\right\rfloor`
          :math:`W_{out} = \left\lfloor\frac{W_{in} + 2 \times \text{padding}[1] - \text{kernel\_size}[1]}{\text{stride}[1]} + 1\right\rfloor`

          With ``ceil_mode``, a last window that would start in the right padding is dropped.

    Attributes:
        kernel_size, stride, padding: as given (not expanded to tuples, as in torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AvgPool2d((3, 2), stride=(2, 1), padding=1, count_include_pad=False)
        >>> m(jnp.ones((20, 16, 50, 32))).shape
        (20, 16, 25, 33)
        >>> m
        AvgPool2d(kernel_size=(3, 2), stride=(2, 1), padding=1)
    """

    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"]

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Any) -> Any:
        return F.avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class LPPool2d(_LPPoolNd):
    r"""Apply a 2-D power-average pooling: :math:`f(X) = \sqrt[p]{\sum_{x \in X} x^{p}}` over each window.

    ``p = inf`` gives max pooling of ``|x|``, ``p = 1`` sum pooling. Computed as torch
    does, from the average pool of :math:`x^p` (so a window of all zeros has zero
    gradient).

    Args:
        norm_type: the exponent ``p``.
        kernel_size: the size of the window (int or ``(kH, kW)``).
        stride: the stride of the window. Default: ``kernel_size``.
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where
          :math:`H_{out} = \left\lfloor\frac{H_{in} - \text{kernel\_size}[0]}{\text{stride}[0]} + 1\right\rfloor`
          :math:`W_{out} = \left\lfloor\frac{W_{in} - \text{kernel\_size}[1]}{\text{stride}[1]} + 1\right\rfloor`

    Attributes:
        norm_type, kernel_size, stride, ceil_mode: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LPPool2d(1.2, (3, 2), stride=(2, 1))
        >>> m(jnp.ones((20, 16, 50, 32))).shape
        (20, 16, 24, 31)
        >>> m
        LPPool2d(norm_type=1.2, kernel_size=(3, 2), stride=(2, 1), ceil_mode=False)
    """

    def forward(self, input: Any) -> Any:
        return F.lp_pool2d(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    r"""Apply a 2-D adaptive max pooling: any input size to a fixed output size.

    Output element ``i`` pools input window
    :math:`[\lfloor i \cdot L_{in} / L_{out} \rfloor, \lceil (i+1) \cdot L_{in} / L_{out} \rceil)` along each
    dimension (torch's windows, which overlap when the sizes do not divide).

    Args:
        output_size: the target output size: ``(H_out, W_out)`` or a single int for a square
            output; an entry ``None`` keeps that input size.
        return_indices: if ``True``, also return the argmax indices. Default: ``False``.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where :math:`(H_{out}, W_{out}) = \text{output\_size}`.

    Attributes:
        output_size: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AdaptiveMaxPool2d((5, 7))
        >>> m(jnp.ones((20, 16, 50, 32))).shape
        (20, 16, 5, 7)
        >>> m
        AdaptiveMaxPool2d(output_size=(5, 7))
    """

    def forward(self, input: Any) -> Any:
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    r"""Apply a 2-D adaptive average pooling: any input size to a fixed output size.

    Output element ``i`` pools input window
    :math:`[\lfloor i \cdot L_{in} / L_{out} \rfloor, \lceil (i+1) \cdot L_{in} / L_{out} \rceil)` along each
    dimension (torch's windows, which overlap when the sizes do not divide).

    Args:
        output_size: the target output size: ``(H_out, W_out)`` or a single int for a square
            output; an entry ``None`` keeps that input size.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where :math:`(H_{out}, W_{out}) = \text{output\_size}`.

    Attributes:
        output_size: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AdaptiveAvgPool2d((5, 7))
        >>> m(jnp.ones((20, 16, 50, 32))).shape
        (20, 16, 5, 7)
        >>> m
        AdaptiveAvgPool2d(output_size=(5, 7))
    """

    def forward(self, input: Any) -> Any:
        return F.adaptive_avg_pool2d(input, self.output_size)


class MaxPool3d(_MaxPoolNd):
    r"""Apply a 3-D max pooling over an input of several planes.

    Padding is implicit ``-inf``. With ``ceil_mode=True`` windows may run past the end
    if they start inside the input or the left padding; windows that would start in
    the right padding are dropped.

    Args:
        kernel_size: the size of the window to take a max over (int or ``(kD, kH, kW)``).
        stride: the stride of the window. Default: ``kernel_size``.
        padding: implicit negative infinity padding added on both sides (at most half
            the effective kernel size).
        dilation: the spacing between elements in the window.
        return_indices: if ``True``, also return the argmax indices (into the
            flattened spatial input), useful for :class:`MaxUnpool3d`.
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where
          :math:`D_{out} = \left\lfloor\frac{D_{in} + 2 \times \text{padding}[0] - \text{dilation}[0] \times (\text{kernel\_size}[0] - 1) - 1}{\text{stride}[0]} + 1\right\rfloor`
          :math:`H_{out} = \left\lfloor\frac{H_{in} + 2 \times \text{padding}[1] - \text{dilation}[1] \times (\text{kernel\_size}[1] - 1) - 1}{\text{stride}[1]} + 1\right\rfloor`
          :math:`W_{out} = \left\lfloor\frac{W_{in} + 2 \times \text{padding}[2] - \text{dilation}[2] \times (\text{kernel\_size}[2] - 1) - 1}{\text{stride}[2]} + 1\right\rfloor`

    Attributes:
        kernel_size, stride, padding, dilation: as given (not expanded to tuples, as in torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.MaxPool3d(3, stride=2, padding=1, ceil_mode=True)
        >>> m(jnp.ones((2, 16, 10, 12, 9))).shape
        (2, 16, 6, 7, 5)
        >>> m
        MaxPool3d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)
    """

    def forward(self, input: Any) -> Any:
        return F.max_pool3d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )


class MaxUnpool3d(_MaxUnpoolNd):
    r"""Compute a partial inverse of :class:`MaxPool3d`: the maxima go back to their indices, zeros elsewhere.

    Several input sizes pool to the same output size; ``forward(input, indices,
    output_size=...)`` picks the size to restore.

    Args:
        kernel_size: size of the max pooling window.
        stride: stride of the max pooling window. Default: ``kernel_size``.
        padding: padding that was added to the input.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where
          :math:`D_{out} = (D_{in} - 1) \times \text{stride}[0] - 2 \times \text{padding}[0] + \text{kernel\_size}[0]`
          :math:`H_{out} = (H_{in} - 1) \times \text{stride}[1] - 2 \times \text{padding}[1] + \text{kernel\_size}[1]`
          :math:`W_{out} = (W_{in} - 1) \times \text{stride}[2] - 2 \times \text{padding}[2] + \text{kernel\_size}[2]`
          or as given by ``output_size`` in the call.

    Attributes:
        kernel_size, stride, padding: ``3``-tuples.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> pool, unpool = nn.MaxPool3d(2, return_indices=True), nn.MaxUnpool3d(2)
        >>> out, idx = pool(jnp.ones((1, 1, 4, 4, 4)))
        >>> unpool(out, idx).shape
        (1, 1, 4, 4, 4)
        >>> unpool
        MaxUnpool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0))
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = _triple(kernel_size)
        self.stride = _triple(stride if (stride is not None) else kernel_size)
        self.padding = _triple(padding)

    def forward(self, input: Any, indices: Any, output_size: Any = None) -> Any:
        return F.max_unpool3d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class AvgPool3d(_AvgPoolNd):
    r"""Apply a 3-D average pooling over an input of several planes.

    The window sum is divided by the window size clipped to ``input + padding``
    (``count_include_pad=True``) or to the input (``False``); windows that ``ceil_mode``
    lets run past the padded input are therefore averaged over their in-range part.

    Args:
        kernel_size: the size of the window (int or ``(kD, kH, kW)``).
        stride: the stride of the window. Default: ``kernel_size``.
        padding: implicit zero padding added on both sides (at most half the kernel size).
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.
        count_include_pad: include the zero-padding in the averaging divisor.
        divisor_override: if given, the divisor of every window instead of its size.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where
          :math:`D_{out} = \left\lfloor\frac{D_{in} + 2 \times \text{padding}[0] - \text{kernel\_size}[0]}{\text{stride}[0]} + 1\right\rfloor`
          :math:`H_{out} = \left\lfloor\frac{H_{in} + 2 \times \text{padding}[1] - \text{kernel\_size}[1]}{\text{stride}[1]} + 1\right\rfloor`
          :math:`W_{out} = \left\lfloor\frac{W_{in} + 2 \times \text{padding}[2] - \text{kernel\_size}[2]}{\text{stride}[2]} + 1\right\rfloor`

          With ``ceil_mode``, a last window that would start in the right padding is dropped.

    Attributes:
        kernel_size, stride, padding: as given (not expanded to tuples, as in torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AvgPool3d(3, stride=2, ceil_mode=True, divisor_override=9)
        >>> m(jnp.ones((2, 16, 10, 12, 9))).shape
        (2, 16, 5, 6, 4)
        >>> m
        AvgPool3d(kernel_size=3, stride=2, padding=0)
    """

    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"]

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Any) -> Any:
        return F.avg_pool3d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class LPPool3d(_LPPoolNd):
    r"""Apply a 3-D power-average pooling: :math:`f(X) = \sqrt[p]{\sum_{x \in X} x^{p}}` over each window.

    ``p = inf`` gives max pooling of ``|x|``, ``p = 1`` sum pooling. Computed as torch
    does, from the average pool of :math:`x^p` (so a window of all zeros has zero
    gradient).

    Args:
        norm_type: the exponent ``p``.
        kernel_size: the size of the window (int or ``(kD, kH, kW)``).
        stride: the stride of the window. Default: ``kernel_size``.
        ceil_mode: use ``ceil`` instead of ``floor`` to compute the output shape.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where
          :math:`D_{out} = \left\lfloor\frac{D_{in} - \text{kernel\_size}[0]}{\text{stride}[0]} + 1\right\rfloor`
          :math:`H_{out} = \left\lfloor\frac{H_{in} - \text{kernel\_size}[1]}{\text{stride}[1]} + 1\right\rfloor`
          :math:`W_{out} = \left\lfloor\frac{W_{in} - \text{kernel\_size}[2]}{\text{stride}[2]} + 1\right\rfloor`

    Attributes:
        norm_type, kernel_size, stride, ceil_mode: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LPPool3d(2, 3, stride=2, ceil_mode=True)
        >>> m(jnp.ones((2, 16, 10, 12, 9))).shape
        (2, 16, 5, 6, 4)
        >>> m
        LPPool3d(norm_type=2, kernel_size=3, stride=2, ceil_mode=True)
    """

    def forward(self, input: Any) -> Any:
        return F.lp_pool3d(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    r"""Apply a 3-D adaptive max pooling: any input size to a fixed output size.

    Output element ``i`` pools input window
    :math:`[\lfloor i \cdot L_{in} / L_{out} \rfloor, \lceil (i+1) \cdot L_{in} / L_{out} \rceil)` along each
    dimension (torch's windows, which overlap when the sizes do not divide).

    Args:
        output_size: the target output size: ``(D_out, H_out, W_out)`` or a single int; an
            entry ``None`` keeps that input size.
        return_indices: if ``True``, also return the argmax indices. Default: ``False``.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where :math:`(D_{out}, H_{out}, W_{out}) = \text{output\_size}`.

    Attributes:
        output_size: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AdaptiveMaxPool3d((5, None, 3))
        >>> m(jnp.ones((2, 16, 10, 12, 9))).shape
        (2, 16, 5, 12, 3)
        >>> m
        AdaptiveMaxPool3d(output_size=(5, None, 3))
    """

    def forward(self, input: Any) -> Any:
        return F.adaptive_max_pool3d(input, self.output_size, self.return_indices)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    r"""Apply a 3-D adaptive average pooling: any input size to a fixed output size.

    Output element ``i`` pools input window
    :math:`[\lfloor i \cdot L_{in} / L_{out} \rfloor, \lceil (i+1) \cdot L_{in} / L_{out} \rceil)` along each
    dimension (torch's windows, which overlap when the sizes do not divide).

    Args:
        output_size: the target output size: ``(D_out, H_out, W_out)`` or a single int; an
            entry ``None`` keeps that input size.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where :math:`(D_{out}, H_{out}, W_{out}) = \text{output\_size}`.

    Attributes:
        output_size: as given.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.AdaptiveAvgPool3d((5, None, 3))
        >>> m(jnp.ones((2, 16, 10, 12, 9))).shape
        (2, 16, 5, 12, 3)
        >>> m
        AdaptiveAvgPool3d(output_size=(5, None, 3))
    """

    def forward(self, input: Any) -> Any:
        return F.adaptive_avg_pool3d(input, self.output_size)


class FractionalMaxPool2d(Module):
    r"""Apply a 2-D fractional max pooling (Graham, 2014) over an input of several planes.

    Max pooling over ``kH x kW`` windows placed with a pseudo-random stride chosen so
    that the output has the target size; each ``(batch, channel)`` plane draws its own
    window positions on every call (from jmod's generator, so ``jmod.manual_seed``
    makes them reproducible and compiled models draw fresh ones each step), unless
    ``_random_samples`` fixes them. Exactly one of ``output_size`` and ``output_ratio``
    must be given.

    Args:
        kernel_size: the size of the window to take a max over, ``k`` or ``(kH, kW)``.
        output_size: the target output size ``oH`` or ``(oH, oW)``; needs
            :math:`kH + oH - 1 \le H_{in}` and :math:`kW + oW - 1 \le W_{in}`.
        output_ratio: the output size as a ratio of the input size, a number or a
            pair in ``(0, 1)``.
        return_indices: if ``True``, also return the indices of the maxima (into the
            flattened ``H*W`` plane), useful for :class:`MaxUnpool2d`.
        _random_samples: optional ``(N, C, 2)`` samples in ``[0, 1)`` (the input's
            dtype) that fix the window positions; registered as a buffer, as in torch.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where
          :math:`(H_{out}, W_{out})=\text{output\_size}` or
          :math:`(H_{out}, W_{out})=\lfloor\text{output\_ratio} \times (H_{in}, W_{in})\rfloor`.

    Attributes:
        kernel_size, output_size, output_ratio: as pairs (``None`` when not given).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod
        >>> from jmod import nn
        >>> _ = jmod.manual_seed(0)
        >>> m = nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5))
        >>> m(jnp.ones((20, 16, 50, 32))).shape
        (20, 16, 25, 16)
        >>> m.output_ratio
        (0.5, 0.5)
    """

    __constants__ = ["kernel_size", "return_indices", "output_size", "output_ratio"]
    return_indices: bool

    def __init__(
        self,
        kernel_size: Any,
        output_size: Any = None,
        output_ratio: Any = None,
        return_indices: bool = False,
        _random_samples: Any = None,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _pair(output_size) if output_size is not None else None
        self.output_ratio = _pair(output_ratio) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError("FractionalMaxPool2d requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None:
            if not (0 < self.output_ratio[0] < 1 and 0 < self.output_ratio[1] < 1):
                raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input: Any) -> Any:
        return FF.fractional_max_pool2d(
            input,
            self.kernel_size,
            self.output_size,
            self.output_ratio,
            self.return_indices,
            _random_samples=self._random_samples,
        )


class FractionalMaxPool3d(Module):
    r"""Apply a 3-D fractional max pooling (Graham, 2014) over an input of several planes.

    As :class:`FractionalMaxPool2d`, over ``kT x kH x kW`` windows.

    Args:
        kernel_size: the size of the window to take a max over, ``k`` or
            ``(kT, kH, kW)``; must be greater than 0.
        output_size: the target output size ``o`` or ``(oT, oH, oW)``; needs
            :math:`k + o - 1 <` the input size along each dimension.
        output_ratio: the output size as a ratio of the input size, a number or a
            triple in ``(0, 1)``.
        return_indices: if ``True``, also return the indices of the maxima (into the
            flattened ``T*H*W`` volume), useful for :class:`MaxUnpool3d`.
        _random_samples: optional ``(N, C, 3)`` samples in ``[0, 1)`` that fix the
            window positions; registered as a buffer, as in torch.

    Shape:
        - Input: :math:`(N, C, T_{in}, H_{in}, W_{in})` or :math:`(C, T_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, T_{out}, H_{out}, W_{out})` or :math:`(C, T_{out}, H_{out}, W_{out})`, where
          :math:`(T_{out}, H_{out}, W_{out})=\text{output\_size}` or
          :math:`\lfloor\text{output\_ratio} \times (T_{in}, H_{in}, W_{in})\rfloor`.

    Attributes:
        kernel_size, output_size, output_ratio: as triples (``None`` when not given).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.FractionalMaxPool3d(3, output_size=(13, 12, 11), return_indices=True)
        >>> out, idx = m(jnp.ones((2, 4, 20, 16, 14)))
        >>> out.shape, idx.shape
        ((2, 4, 13, 12, 11), (2, 4, 13, 12, 11))
    """

    __constants__ = ["kernel_size", "return_indices", "output_size", "output_ratio"]
    return_indices: bool

    def __init__(
        self,
        kernel_size: Any,
        output_size: Any = None,
        output_ratio: Any = None,
        return_indices: bool = False,
        _random_samples: Any = None,
    ) -> None:
        super().__init__()
        if (isinstance(kernel_size, int) and kernel_size <= 0) or (
            isinstance(kernel_size, (tuple, list)) and not all(k > 0 for k in kernel_size)
        ):
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = _triple(kernel_size)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _triple(output_size) if output_size is not None else None
        self.output_ratio = _triple(output_ratio) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError("FractionalMaxPool3d requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None:
            if not (0 < self.output_ratio[0] < 1 and 0 < self.output_ratio[1] < 1 and 0 < self.output_ratio[2] < 1):
                raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input: Any) -> Any:
        return FF.fractional_max_pool3d(
            input,
            self.kernel_size,
            self.output_size,
            self.output_ratio,
            self.return_indices,
            _random_samples=self._random_samples,
        )
