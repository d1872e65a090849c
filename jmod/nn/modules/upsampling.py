"""Upsampling layers: Upsample, UpsamplingNearest2d, UpsamplingBilinear2d (``torch/nn/modules/upsampling.py``)."""

from __future__ import annotations

from typing import Any

import jax

from jmod._src.functional.upsampling import interpolate
from jmod.nn.modules.module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    r"""Upsample multi-channel 1-D (temporal), 2-D (spatial) or 3-D (volumetric) data.

    Calls :func:`jmod.nn.functional.interpolate`, so sampling follows torch's
    conventions exactly (nearest uses ``floor(dst * in / out)``, linear modes honour
    ``align_corners``, bicubic uses ``A = -0.75`` with border clamping).

    Args:
        size: output spatial size (int or tuple of ints).
        scale_factor: multiplier for the spatial size (float or tuple of floats).
        mode: ``'nearest'``, ``'linear'``, ``'bilinear'``, ``'bicubic'``,
            ``'trilinear'``, ``'area'`` or ``'nearest-exact'``. Default: ``'nearest'``.
        align_corners: for the linear modes, align the centres of the corner pixels.
            Default: ``None`` (treated as ``False``).
        recompute_scale_factor: recompute the sampling scale from the output size.

    Shape:
        - Input: :math:`(N, C, W_{in})`, :math:`(N, C, H_{in}, W_{in})` or :math:`(N, C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, W_{out})`, :math:`(N, C, H_{out}, W_{out})` or
          :math:`(N, C, D_{out}, H_{out}, W_{out})`, where
          :math:`X_{out} = \left\lfloor X_{in} \times \text{scale\_factor} \right\rfloor` (or ``size``).

    Attributes:
        size, scale_factor, mode, align_corners, recompute_scale_factor: as given
            (``scale_factor`` converted to float, as torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> x = jnp.arange(1.0, 5.0).reshape(1, 1, 2, 2)
        >>> m = nn.Upsample(scale_factor=2, mode="nearest")
        >>> m(x)
        Array([[[[1., 1., 2., 2.],
                 [1., 1., 2., 2.],
                 [3., 3., 4., 4.],
                 [3., 3., 4., 4.]]]], dtype=float32)
        >>> m
        Upsample(scale_factor=2.0, mode='nearest')
        >>> nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(x)[0, 0, 1]
        Array([1.6666666, 2.       , 2.3333335, 2.6666665], dtype=float32)
    """

    __constants__ = ["size", "scale_factor", "mode", "align_corners", "name", "recompute_scale_factor"]
    name: str
    mode: str

    def __init__(
        self,
        size: Any = None,
        scale_factor: Any = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Any) -> jax.Array:
        return interpolate(
            input,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def __setstate__(self, state: dict) -> None:
        if "recompute_scale_factor" not in state:
            state["recompute_scale_factor"] = True
        super().__setstate__(state)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        info += ", mode=" + repr(self.mode)
        return info


class UpsamplingNearest2d(Upsample):
    r"""2-D nearest-neighbour upsampling (``Upsample(..., mode='nearest')``; prefer :class:`Upsample`).

    Args:
        size: output spatial size ``(H_out, W_out)`` or an int.
        scale_factor: multiplier for the spatial size.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})`, :math:`H_{out} = \lfloor H_{in} \times \text{scale\_factor} \rfloor`,
          :math:`W_{out} = \lfloor W_{in} \times \text{scale\_factor} \rfloor`.

    Attributes:
        size, scale_factor: as given; ``mode`` is ``'nearest'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.UpsamplingNearest2d(scale_factor=2)
        >>> m(jnp.ones((1, 3, 4, 5))).shape
        (1, 3, 8, 10)
        >>> m
        UpsamplingNearest2d(scale_factor=2.0, mode='nearest')
    """

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    r"""2-D bilinear upsampling with ``align_corners=True`` (prefer :class:`Upsample`).

    Args:
        size: output spatial size ``(H_out, W_out)`` or an int.
        scale_factor: multiplier for the spatial size.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})`, :math:`H_{out} = \lfloor H_{in} \times \text{scale\_factor} \rfloor`,
          :math:`W_{out} = \lfloor W_{in} \times \text{scale\_factor} \rfloor`.

    Attributes:
        size, scale_factor: as given; ``mode`` is ``'bilinear'``, ``align_corners`` is ``True``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.UpsamplingBilinear2d(size=(3, 3))
        >>> m(jnp.array([[[[0.0, 2.0], [4.0, 6.0]]]]))
        Array([[[[0., 1., 2.],
                 [2., 3., 4.],
                 [4., 5., 6.]]]], dtype=float32)
        >>> m
        UpsamplingBilinear2d(size=(3, 3), mode='bilinear')
    """

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
