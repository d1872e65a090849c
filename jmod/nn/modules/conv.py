"""Convolution layers: Conv1d/2d/3d, ConvTranspose1d/2d/3d (``torch/nn/modules/conv.py``)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.arrays import host_empty
from jmod._src.devices import as_dtype
from jmod._src.functional import conv as F
from jmod._src.functional.padding import pad as _pad
from jmod.nn import init
from jmod.nn.modules.lazy import LazyModuleMixin
from jmod.nn.modules.module import Module
from jmod.nn.modules.utils import _pair, _reverse_repeat_tuple, _single, _triple
from jmod.nn.parameter import Parameter, UninitializedParameter

__all__ = [
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
]


class _ConvNd(Module):
    """Shared state of the convolution layers (torch's ``_ConvNd``)."""

    __constants__ = [
        "stride",
        "padding",
        "dilation",
        "groups",
        "padding_mode",
        "output_padding",
        "in_channels",
        "out_channels",
        "kernel_size",
    ]

    in_channels: int
    _reversed_padding_repeated_twice: list[int]
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: str | tuple[int, ...]
    dilation: tuple[int, ...]
    transposed: bool
    output_padding: tuple[int, ...]
    groups: int
    padding_mode: str

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, ...],
        stride: tuple[int, ...],
        padding: str | tuple[int, ...],
        dilation: tuple[int, ...],
        transposed: bool,
        output_padding: tuple[int, ...],
        groups: int,
        bias: bool,
        padding_mode: str,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        valid_padding_strings = {"same", "valid"}
        if isinstance(padding, str):
            if padding not in valid_padding_strings:
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {valid_padding_strings}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        valid_padding_modes = {"zeros", "reflect", "replicate", "circular"}
        if padding_mode not in valid_padding_modes:
            raise ValueError(
                f"padding_mode must be one of {valid_padding_modes}, but got padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's argument for the non-'zeros' padding modes (last dim first).
        if isinstance(self.padding, str):
            reversed_padding = [0, 0] * len(kernel_size)
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(len(kernel_size) - 1, -1, -1)):
                    total_padding = d * (k - 1)
                    left_pad = total_padding // 2
                    reversed_padding[2 * i] = left_pad
                    reversed_padding[2 * i + 1] = total_padding - left_pad
            self._reversed_padding_repeated_twice = reversed_padding
        else:
            self._reversed_padding_repeated_twice = _reverse_repeat_tuple(self.padding, 2)
        dtype = jnp.float32 if dtype is None else as_dtype(dtype)
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = Parameter(host_empty(shape, dtype))
        if bias:
            self.bias = Parameter(host_empty((out_channels,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from torch's defaults.

        weight: kaiming-uniform with ``a=sqrt(5)``, i.e. :math:`\\mathcal{U}(-\\sqrt{k}, \\sqrt{k})`,
        :math:`k = 1/\\text{fan\\_in}`; bias: the same bound. ``fan_in`` is computed from the
        weight's shape, so for transposed convolutions it is
        ``out_channels / groups * prod(kernel_size)``, as in torch.
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if not hasattr(self, "padding_mode"):
            self.padding_mode = "zeros"


class _ConvForward:
    """``_conv_forward`` of Conv1d/2d/3d: explicit ``F.pad`` for the non-'zeros' modes."""

    _conv_fn: Any
    _zero: tuple[int, ...]

    def _conv_forward(self: Any, input: Any, weight: Any, bias: Any) -> jax.Array:
        if self.padding_mode != "zeros":
            return self._conv_fn(
                _pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode),
                weight,
                bias,
                self.stride,
                self._zero,
                self.dilation,
                self.groups,
            )
        return self._conv_fn(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self: Any, input: Any) -> jax.Array:
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvForward, _ConvNd):
    r"""Apply a 1-D convolution (cross-correlation) over an input signal of several planes.

    :math:`\text{out}(N_i, C_{\text{out}_j}) = \text{bias}(C_{\text{out}_j}) +
    \sum_{k=0}^{C_{in}-1} \text{weight}(C_{\text{out}_j}, k) \star \text{input}(N_i, k)`.

    Args:
        in_channels: number of channels in the input.
        out_channels: number of channels produced by the convolution.
        kernel_size: size of the convolving kernel (int or 1-tuple).
        stride: stride of the convolution. Default: 1.
        padding: int, 1-tuple, ``'valid'`` (no padding) or ``'same'`` (output as
            long as the input; needs ``stride=1``). Default: 0.
        dilation: spacing between kernel elements. Default: 1.
        groups: number of blocked connections from input to output channels; both
            channel counts must be divisible by it. Default: 1.
        bias: if ``True``, adds a learnable bias. Default: ``True``.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
            Default: ``'zeros'``.
        device: where to place the parameters (``'cpu'``, ``'cuda'``, a jax Device...).
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, C_{in}, L_{in})` or :math:`(C_{in}, L_{in})`.
        - Output: :math:`(N, C_{out}, L_{out})` or :math:`(C_{out}, L_{out})`, where
          :math:`L_{out} = \left\lfloor\frac{L_{in} + 2 \times \text{padding} - \text{dilation}
          \times (\text{kernel\_size} - 1) - 1}{\text{stride}} + 1\right\rfloor`.

    Attributes:
        weight: shape :math:`(\text{out\_channels}, \frac{\text{in\_channels}}{\text{groups}},
            \text{kernel\_size})`, initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
            :math:`k = \frac{groups}{C_\text{in} * \text{kernel\_size}}`.
        bias: shape ``(out_channels,)``, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, same :math:`k`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.Conv1d(16, 33, 3, stride=2)
        >>> m(jnp.ones((20, 16, 50))).shape
        (20, 33, 24)
        >>> m
        Conv1d(16, 33, kernel_size=(3,), stride=(2,))
    """

    _conv_fn = staticmethod(F.conv1d)
    _zero = (0,)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        kernel_size_ = _single(kernel_size)
        stride_ = _single(stride)
        padding_ = padding if isinstance(padding, str) else _single(padding)
        dilation_ = _single(dilation)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size_,
            stride_,
            padding_,
            dilation_,
            False,
            _single(0),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )


class Conv2d(_ConvForward, _ConvNd):
    r"""Apply a 2-D convolution (cross-correlation) over an input image of several planes.

    :math:`\text{out}(N_i, C_{\text{out}_j}) = \text{bias}(C_{\text{out}_j}) +
    \sum_{k=0}^{C_{in}-1} \text{weight}(C_{\text{out}_j}, k) \star \text{input}(N_i, k)`.

    Args:
        in_channels: number of channels in the input image.
        out_channels: number of channels produced by the convolution.
        kernel_size: size of the convolving kernel (int or ``(kH, kW)``).
        stride: stride of the convolution. Default: 1.
        padding: int, ``(pH, pW)``, ``'valid'`` or ``'same'`` (needs ``stride=1``).
            Default: 0.
        dilation: spacing between kernel elements. Default: 1.
        groups: number of blocked connections from input to output channels. Default: 1.
        bias: if ``True``, adds a learnable bias. Default: ``True``.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
            Default: ``'zeros'``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, C_{in}, H_{in}, W_{in})` or :math:`(C_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C_{out}, H_{out}, W_{out})` or :math:`(C_{out}, H_{out}, W_{out})`, where
          :math:`H_{out} = \left\lfloor\frac{H_{in} + 2 \times \text{padding}[0] - \text{dilation}[0]
          \times (\text{kernel\_size}[0] - 1) - 1}{\text{stride}[0]} + 1\right\rfloor` and
          :math:`W_{out}` likewise with index 1.

    Attributes:
        weight: shape :math:`(\text{out\_channels}, \frac{\text{in\_channels}}{\text{groups}},
            \text{kernel\_size[0]}, \text{kernel\_size[1]})`, from
            :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
            :math:`k = \frac{groups}{C_\text{in} * \prod_{i=0}^{1}\text{kernel\_size}[i]}`.
        bias: shape ``(out_channels,)``, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, same :math:`k`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1))
        >>> m(jnp.ones((2, 16, 50, 100))).shape
        (2, 33, 26, 100)
        >>> m
        Conv2d(16, 33, kernel_size=(3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1))
    """

    _conv_fn = staticmethod(F.conv2d)
    _zero = (0, 0)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        kernel_size_ = _pair(kernel_size)
        stride_ = _pair(stride)
        padding_ = padding if isinstance(padding, str) else _pair(padding)
        dilation_ = _pair(dilation)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size_,
            stride_,
            padding_,
            dilation_,
            False,
            _pair(0),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )


class Conv3d(_ConvForward, _ConvNd):
    r"""Apply a 3-D convolution (cross-correlation) over an input volume of several planes.

    Args:
        in_channels: number of channels in the input.
        out_channels: number of channels produced by the convolution.
        kernel_size: size of the convolving kernel (int or 3-tuple).
        stride: stride of the convolution. Default: 1.
        padding: int, 3-tuple, ``'valid'`` or ``'same'`` (needs ``stride=1``). Default: 0.
        dilation: spacing between kernel elements. Default: 1.
        groups: number of blocked connections from input to output channels. Default: 1.
        bias: if ``True``, adds a learnable bias. Default: ``True``.
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
            Default: ``'zeros'``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, C_{in}, D_{in}, H_{in}, W_{in})` or :math:`(C_{in}, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C_{out}, D_{out}, H_{out}, W_{out})` or unbatched, each spatial size
          :math:`\left\lfloor\frac{X_{in} + 2 \times \text{padding}[i] - \text{dilation}[i]
          \times (\text{kernel\_size}[i] - 1) - 1}{\text{stride}[i]} + 1\right\rfloor`.

    Attributes:
        weight: shape :math:`(\text{out\_channels}, \frac{\text{in\_channels}}{\text{groups}},
            \text{kernel\_size[0]}, \text{kernel\_size[1]}, \text{kernel\_size[2]})`, from
            :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
            :math:`k = \frac{groups}{C_\text{in} * \prod_{i=0}^{2}\text{kernel\_size}[i]}`.
        bias: shape ``(out_channels,)``, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, same :math:`k`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.Conv3d(4, 8, (3, 5, 2), stride=(2, 1, 1), padding=(4, 2, 0))
        >>> m(jnp.ones((2, 4, 10, 12, 6))).shape
        (2, 8, 8, 12, 5)
    """

    _conv_fn = staticmethod(F.conv3d)
    _zero = (0, 0, 0)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        kernel_size_ = _triple(kernel_size)
        stride_ = _triple(stride)
        padding_ = padding if isinstance(padding, str) else _triple(padding)
        dilation_ = _triple(dilation)
        super().__init__(
            in_channels,
            out_channels,
            kernel_size_,
            stride_,
            padding_,
            dilation_,
            False,
            _triple(0),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )


class _ConvTransposeNd(_ConvNd):
    """Shared code of the transposed convolutions (torch's ``_ConvTransposeNd``)."""

    _num_spatial_dims: int
    _conv_transpose_fn: Any

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        transposed: bool,
        output_padding: Any,
        groups: int,
        bias: bool,
        padding_mode: str,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {self.__class__.__name__}')
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            transposed,
            output_padding,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )

    def _output_padding(
        self,
        input: Any,
        output_size: Any,
        stride: Any,
        padding: Any,
        kernel_size: Any,
        num_spatial_dims: int,
        dilation: Any = None,
    ) -> list[int]:
        """The ``output_padding`` that makes the output exactly ``output_size`` (torch's rule)."""
        if output_size is None:
            return list(_single(self.output_padding))
        ndim = jnp.ndim(input)
        has_batch_dim = ndim == num_spatial_dims + 2
        num_non_spatial_dims = 2 if has_batch_dim else 1
        output_size = [int(s) for s in output_size]
        if len(output_size) == num_non_spatial_dims + num_spatial_dims:
            output_size = output_size[num_non_spatial_dims:]
        if len(output_size) != num_spatial_dims:
            raise ValueError(
                f"ConvTranspose{num_spatial_dims}D: for {ndim}D input, output_size must have {num_spatial_dims} "
                f"or {num_non_spatial_dims + num_spatial_dims} elements (got {len(output_size)})"
            )
        shape = jnp.shape(input)
        min_sizes = []
        max_sizes = []
        for d in range(num_spatial_dims):
            dim_size = (
                (shape[d + num_non_spatial_dims] - 1) * stride[d]
                - 2 * padding[d]
                + (dilation[d] if dilation is not None else 1) * (kernel_size[d] - 1)
                + 1
            )
            min_sizes.append(dim_size)
            max_sizes.append(min_sizes[d] + stride[d] - 1)
        for i in range(len(output_size)):
            size = output_size[i]
            if size < min_sizes[i] or size > max_sizes[i]:
                # torch prints input.size()[2:] (also for unbatched input)
                raise ValueError(
                    f"requested an output size of {output_size}, but valid sizes range "
                    f"from {min_sizes} to {max_sizes} (for an input of torch.Size({list(shape[2:])}))"
                )
        return [output_size[d] - min_sizes[d] for d in range(num_spatial_dims)]

    def forward(self, input: Any, output_size: Any = None) -> jax.Array:
        if self.padding_mode != "zeros":
            raise ValueError(f"Only `zeros` padding mode is supported for {type(self).__name__}")
        if not isinstance(self.padding, tuple):
            raise AssertionError("self.padding must be a tuple")
        output_padding = self._output_padding(
            input, output_size, self.stride, self.padding, self.kernel_size, self._num_spatial_dims, self.dilation
        )
        return self._conv_transpose_fn(
            input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )


class ConvTranspose1d(_ConvTransposeNd):
    r"""Apply a 1-D transposed convolution ("deconvolution"), the gradient of Conv1d w.r.t. its input.

    Args:
        in_channels: number of channels in the input.
        out_channels: number of channels produced by the convolution.
        kernel_size: size of the convolving kernel.
        stride: stride of the convolution. Default: 1.
        padding: ``dilation * (kernel_size - 1) - padding`` zero-padding is added to
            both sides of the input; i.e. ``padding`` elements are cut from each end
            of the full output. Default: 0.
        output_padding: additional size added to one side of the output (smaller
            than ``stride`` or ``dilation``). Default: 0.
        groups: number of blocked connections from input to output channels. Default: 1.
        bias: if ``True``, adds a learnable bias. Default: ``True``.
        dilation: spacing between kernel elements. Default: 1.
        padding_mode: only ``'zeros'`` is supported (as in torch).
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, C_{in}, L_{in})` or :math:`(C_{in}, L_{in})`.
        - Output: :math:`(N, C_{out}, L_{out})` or :math:`(C_{out}, L_{out})`, where
          :math:`L_{out} = (L_{in} - 1) \times \text{stride} - 2 \times \text{padding} + \text{dilation}
          \times (\text{kernel\_size} - 1) + \text{output\_padding} + 1`.
          ``forward(input, output_size=...)`` picks the ``output_padding`` giving that size.

    Attributes:
        weight: shape :math:`(\text{in\_channels}, \frac{\text{out\_channels}}{\text{groups}},
            \text{kernel\_size})`, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
            :math:`k = \frac{groups}{C_\text{out} * \text{kernel\_size}}`.
        bias: shape ``(out_channels,)``, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, same :math:`k`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ConvTranspose1d(16, 33, 3, stride=2)
        >>> m(jnp.ones((20, 16, 50))).shape
        (20, 33, 101)
        >>> m(jnp.ones((20, 16, 50)), output_size=[102]).shape
        (20, 33, 102)
    """

    _num_spatial_dims = 1
    _conv_transpose_fn = staticmethod(F.conv_transpose1d)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            _single(kernel_size),
            _single(stride),
            _single(padding),
            _single(dilation),
            True,
            _single(output_padding),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )


class ConvTranspose2d(_ConvTransposeNd):
    r"""Apply a 2-D transposed convolution ("deconvolution"), the gradient of Conv2d w.r.t. its input.

    Args:
        in_channels: number of channels in the input image.
        out_channels: number of channels produced by the convolution.
        kernel_size: size of the convolving kernel.
        stride: stride of the convolution. Default: 1.
        padding: ``padding`` elements are cut from each end of the full output. Default: 0.
        output_padding: additional size added to one side of each output dimension
            (smaller than ``stride`` or ``dilation``). Default: 0.
        groups: number of blocked connections from input to output channels. Default: 1.
        bias: if ``True``, adds a learnable bias. Default: ``True``.
        dilation: spacing between kernel elements. Default: 1.
        padding_mode: only ``'zeros'`` is supported (as in torch).
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, C_{in}, H_{in}, W_{in})` or :math:`(C_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C_{out}, H_{out}, W_{out})` or :math:`(C_{out}, H_{out}, W_{out})`, where
          :math:`H_{out} = (H_{in} - 1) \times \text{stride}[0] - 2 \times \text{padding}[0] + \text{dilation}[0]
          \times (\text{kernel\_size}[0] - 1) + \text{output\_padding}[0] + 1`, :math:`W_{out}` likewise.

    Attributes:
        weight: shape :math:`(\text{in\_channels}, \frac{\text{out\_channels}}{\text{groups}},
            \text{kernel\_size[0]}, \text{kernel\_size[1]})`, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
            :math:`k = \frac{groups}{C_\text{out} * \prod_{i=0}^{1}\text{kernel\_size}[i]}`.
        bias: shape ``(out_channels,)``, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, same :math:`k`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> down = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        >>> up = nn.ConvTranspose2d(16, 16, 3, stride=2, padding=1)
        >>> x = jnp.ones((1, 16, 12, 12))
        >>> h = down(x)
        >>> h.shape
        (1, 16, 6, 6)
        >>> up(h, output_size=x.shape).shape
        (1, 16, 12, 12)
    """

    _num_spatial_dims = 2
    _conv_transpose_fn = staticmethod(F.conv_transpose2d)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            _pair(kernel_size),
            _pair(stride),
            _pair(padding),
            _pair(dilation),
            True,
            _pair(output_padding),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )


class ConvTranspose3d(_ConvTransposeNd):
    r"""Apply a 3-D transposed convolution ("deconvolution"), the gradient of Conv3d w.r.t. its input.

    Args:
        in_channels: number of channels in the input.
        out_channels: number of channels produced by the convolution.
        kernel_size: size of the convolving kernel.
        stride: stride of the convolution. Default: 1.
        padding: ``padding`` elements are cut from each end of the full output. Default: 0.
        output_padding: additional size added to one side of each output dimension. Default: 0.
        groups: number of blocked connections from input to output channels. Default: 1.
        bias: if ``True``, adds a learnable bias. Default: ``True``.
        dilation: spacing between kernel elements. Default: 1.
        padding_mode: only ``'zeros'`` is supported (as in torch).
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(N, C_{in}, D_{in}, H_{in}, W_{in})` or :math:`(C_{in}, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C_{out}, D_{out}, H_{out}, W_{out})` or unbatched, each spatial size
          :math:`(X_{in} - 1) \times \text{stride}[i] - 2 \times \text{padding}[i] + \text{dilation}[i]
          \times (\text{kernel\_size}[i] - 1) + \text{output\_padding}[i] + 1`.

    Attributes:
        weight: shape :math:`(\text{in\_channels}, \frac{\text{out\_channels}}{\text{groups}},
            \text{kernel\_size[0]}, \text{kernel\_size[1]}, \text{kernel\_size[2]})`, from
            :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
            :math:`k = \frac{groups}{C_\text{out} * \prod_{i=0}^{2}\text{kernel\_size}[i]}`.
        bias: shape ``(out_channels,)``, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, same :math:`k`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ConvTranspose3d(4, 6, (3, 5, 2), stride=(2, 1, 1), padding=(0, 4, 2))
        >>> m(jnp.ones((2, 4, 5, 10, 8))).shape
        (2, 6, 11, 6, 5)
    """

    _num_spatial_dims = 3
    _conv_transpose_fn = staticmethod(F.conv_transpose3d)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            _triple(kernel_size),
            _triple(stride),
            _triple(padding),
            _triple(dilation),
            True,
            _triple(output_padding),
            groups,
            bias,
            padding_mode,
            device,
            dtype,
        )


class _LazyConvXdMixin(LazyModuleMixin):
    """What the lazy convolutions share (torch's ``_LazyConvXdMixin``)."""

    groups: int
    transposed: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]

    def _uninitialized_parameters(self, out_channels: int, bias: bool, device: Any, dtype: Any) -> None:
        # Called after the eager layer's __init__ ran with 0 channels and no bias.
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """Re-draw the parameters once they are materialized (as the eager layer does)."""
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()  # type: ignore[misc]

    def initialize_parameters(self, input: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Infer ``in_channels`` from ``input`` and initialize the parameters."""
        if self.has_uninitialized_params():
            self.in_channels = self._get_in_channels(input)
            if self.in_channels % self.groups != 0:
                raise ValueError("in_channels must be divisible by groups")
            if not isinstance(self._parameters["weight"], UninitializedParameter):  # type: ignore[attr-defined]
                raise AssertionError("self.weight must be an UninitializedParameter")
            if self.transposed:
                self.weight.materialize((self.in_channels, self.out_channels // self.groups, *self.kernel_size))  # type: ignore[attr-defined]
            else:
                self.weight.materialize((self.out_channels, self.in_channels // self.groups, *self.kernel_size))  # type: ignore[attr-defined]
            if self.bias is not None:  # type: ignore[attr-defined]
                if not isinstance(self._parameters["bias"], UninitializedParameter):  # type: ignore[attr-defined]
                    raise AssertionError("self.bias must be an UninitializedParameter")
                self.bias.materialize((self.out_channels,))  # type: ignore[attr-defined]
            self.reset_parameters()

    def _get_in_channels(self, input: Any) -> int:
        num_spatial_dims = self._get_num_spatial_dims()
        num_dims_no_batch = num_spatial_dims + 1  # +1 for channels dim
        num_dims_batch = num_dims_no_batch + 1
        shape = tuple(jnp.shape(input))
        if len(shape) not in (num_dims_no_batch, num_dims_batch):
            raise RuntimeError(
                f"Expected {num_dims_no_batch}D (unbatched) or {num_dims_batch}D (batched) input "
                f"to {self.__class__.__name__}, but "
                f"got input of size: torch.Size([{', '.join(str(d) for d in shape)}])"
            )
        return int(shape[1] if len(shape) == num_dims_batch else shape[0])

    def _get_num_spatial_dims(self) -> int:
        raise NotImplementedError


class LazyConv1d(_LazyConvXdMixin, Conv1d):  # type: ignore[misc]
    r"""A :class:`Conv1d` whose ``in_channels`` is inferred from the first input (``input.shape[1]``).

    ``weight`` and ``bias`` are :class:`~jmod.nn.UninitializedParameter` s until the
    first call, which draws them as :class:`Conv1d` does and turns the module into a
    :class:`Conv1d`. See :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_channels: number of channels produced by the convolution.
        kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype:
            as for :class:`Conv1d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyConv1d(8, 3)
        >>> m(jnp.ones((2, 4, 5))).shape
        (2, 8, 3)
        >>> type(m).__name__, m.in_channels
        ('Conv1d', 4)
    """

    cls_to_become = Conv1d

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # bias is hardcoded to False to avoid creating an array that will soon be replaced.
        super().__init__(
            0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode, device=device, dtype=dtype
        )
        self._uninitialized_parameters(out_channels, bias, device, dtype)

    def _get_num_spatial_dims(self) -> int:
        return 1


class LazyConv2d(_LazyConvXdMixin, Conv2d):  # type: ignore[misc]
    r"""A :class:`Conv2d` whose ``in_channels`` is inferred from the first input (``input.shape[1]``).

    ``weight`` and ``bias`` are :class:`~jmod.nn.UninitializedParameter` s until the
    first call, which draws them as :class:`Conv2d` does and turns the module into a
    :class:`Conv2d`. See :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_channels: number of channels produced by the convolution.
        kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype:
            as for :class:`Conv2d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyConv2d(8, 3)
        >>> m(jnp.ones((2, 4, 5, 5))).shape
        (2, 8, 3, 3)
        >>> type(m).__name__, m.in_channels
        ('Conv2d', 4)
    """

    cls_to_become = Conv2d

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # bias is hardcoded to False to avoid creating an array that will soon be replaced.
        super().__init__(
            0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode, device=device, dtype=dtype
        )
        self._uninitialized_parameters(out_channels, bias, device, dtype)

    def _get_num_spatial_dims(self) -> int:
        return 2


class LazyConv3d(_LazyConvXdMixin, Conv3d):  # type: ignore[misc]
    r"""A :class:`Conv3d` whose ``in_channels`` is inferred from the first input (``input.shape[1]``).

    ``weight`` and ``bias`` are :class:`~jmod.nn.UninitializedParameter` s until the
    first call, which draws them as :class:`Conv3d` does and turns the module into a
    :class:`Conv3d`. See :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_channels: number of channels produced by the convolution.
        kernel_size, stride, padding, dilation, groups, bias, padding_mode, device, dtype:
            as for :class:`Conv3d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyConv3d(8, 3)
        >>> m(jnp.ones((2, 4, 5, 5, 5))).shape
        (2, 8, 3, 3, 3)
        >>> type(m).__name__, m.in_channels
        ('Conv3d', 4)
    """

    cls_to_become = Conv3d

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # bias is hardcoded to False to avoid creating an array that will soon be replaced.
        super().__init__(
            0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode, device=device, dtype=dtype
        )
        self._uninitialized_parameters(out_channels, bias, device, dtype)

    def _get_num_spatial_dims(self) -> int:
        return 3


class LazyConvTranspose1d(_LazyConvXdMixin, ConvTranspose1d):  # type: ignore[misc]
    r"""A :class:`ConvTranspose1d` whose ``in_channels`` is inferred from the first input
    (``input.shape[1]``).

    ``weight`` and ``bias`` are :class:`~jmod.nn.UninitializedParameter` s until the
    first call, which draws them as :class:`ConvTranspose1d` does and turns the module
    into a :class:`ConvTranspose1d`. See :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_channels: number of channels produced by the convolution.

    The other arguments (``kernel_size``, ``stride``, ``padding``, ``output_padding``, ``groups``,
    ``bias``, ``dilation``, ``padding_mode``, ``device``, ``dtype``) are :class:`ConvTranspose1d`'s.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyConvTranspose1d(8, 3)
        >>> m(jnp.ones((2, 4, 5))).shape
        (2, 8, 7)
    """

    cls_to_become = ConvTranspose1d

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # bias is hardcoded to False to avoid creating an array that will soon be replaced.
        super().__init__(
            0,
            0,
            kernel_size,
            stride,
            padding,
            output_padding,
            groups,
            False,
            dilation,
            padding_mode,
            device=device,
            dtype=dtype,
        )
        self._uninitialized_parameters(out_channels, bias, device, dtype)

    def _get_num_spatial_dims(self) -> int:
        return 1


class LazyConvTranspose2d(_LazyConvXdMixin, ConvTranspose2d):  # type: ignore[misc]
    r"""A :class:`ConvTranspose2d` whose ``in_channels`` is inferred from the first input
    (``input.shape[1]``).

    ``weight`` and ``bias`` are :class:`~jmod.nn.UninitializedParameter` s until the
    first call, which draws them as :class:`ConvTranspose2d` does and turns the module
    into a :class:`ConvTranspose2d`. See :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_channels: number of channels produced by the convolution.

    The other arguments (``kernel_size``, ``stride``, ``padding``, ``output_padding``, ``groups``,
    ``bias``, ``dilation``, ``padding_mode``, ``device``, ``dtype``) are :class:`ConvTranspose2d`'s.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyConvTranspose2d(8, 3)
        >>> m(jnp.ones((2, 4, 5, 5))).shape
        (2, 8, 7, 7)
    """

    cls_to_become = ConvTranspose2d

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # bias is hardcoded to False to avoid creating an array that will soon be replaced.
        super().__init__(
            0,
            0,
            kernel_size,
            stride,
            padding,
            output_padding,
            groups,
            False,
            dilation,
            padding_mode,
            device=device,
            dtype=dtype,
        )
        self._uninitialized_parameters(out_channels, bias, device, dtype)

    def _get_num_spatial_dims(self) -> int:
        return 2


class LazyConvTranspose3d(_LazyConvXdMixin, ConvTranspose3d):  # type: ignore[misc]
    r"""A :class:`ConvTranspose3d` whose ``in_channels`` is inferred from the first input
    (``input.shape[1]``).

    ``weight`` and ``bias`` are :class:`~jmod.nn.UninitializedParameter` s until the
    first call, which draws them as :class:`ConvTranspose3d` does and turns the module
    into a :class:`ConvTranspose3d`. See :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_channels: number of channels produced by the convolution.

    The other arguments (``kernel_size``, ``stride``, ``padding``, ``output_padding``, ``groups``,
    ``bias``, ``dilation``, ``padding_mode``, ``device``, ``dtype``) are :class:`ConvTranspose3d`'s.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyConvTranspose3d(8, 3)
        >>> m(jnp.ones((2, 4, 5, 5, 5))).shape
        (2, 8, 7, 7, 7)
    """

    cls_to_become = ConvTranspose3d

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # bias is hardcoded to False to avoid creating an array that will soon be replaced.
        super().__init__(
            0,
            0,
            kernel_size,
            stride,
            padding,
            output_padding,
            groups,
            False,
            dilation,
            padding_mode,
            device=device,
            dtype=dtype,
        )
        self._uninitialized_parameters(out_channels, bias, device, dtype)

    def _get_num_spatial_dims(self) -> int:
        return 3
