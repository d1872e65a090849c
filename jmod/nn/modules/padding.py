"""Padding layers: Zero/Constant/Reflection/Replication/CircularPad{1,2,3}d (``torch/nn/modules/padding.py``).

Each layer stores ``padding`` as torch does (an int is repeated to 2, 4 or 6 entries,
a tuple is kept as given) and calls :func:`jmod.nn.functional.pad`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.functional.padding import pad as _pad
from jmod.nn.modules.module import Module
from jmod.nn.modules.utils import _ntuple, _pair, _quadruple

__all__ = [
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
]


class _CircularPadNd(Module):
    __constants__ = ["padding"]
    padding: Sequence[int]

    def _check_input_dim(self, input: Any) -> None:
        raise NotImplementedError

    def forward(self, input: Any) -> jax.Array:
        self._check_input_dim(input)
        return _pad(input, self.padding, "circular")

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(Module):
    __constants__ = ["padding", "value"]
    value: float
    padding: Sequence[int]

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, input: Any) -> jax.Array:
        return _pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class _ReflectionPadNd(Module):
    __constants__ = ["padding"]
    padding: Sequence[int]

    def forward(self, input: Any) -> jax.Array:
        return _pad(input, self.padding, "reflect")

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ReplicationPadNd(Module):
    __constants__ = ["padding"]
    padding: Sequence[int]

    def forward(self, input: Any) -> jax.Array:
        return _pad(input, self.padding, "replicate")

    def extra_repr(self) -> str:
        return f"{self.padding}"


class CircularPad1d(_CircularPadNd):
    r"""Pad the input by wrapping it around (circular / periodic boundary).

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 2-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`).
            Each padding must be at most the corresponding input dimension (wrapping once).

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`(N, C, W_{out})` or :math:`(C, W_{out})`, where :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.CircularPad1d((3, 1))
        >>> m(jnp.arange(8.0).reshape(1, 2, 4))
        Array([[[1., 2., 3., 0., 1., 2., 3., 0.],
                [5., 6., 7., 4., 5., 6., 7., 4.]]], dtype=float32)
        >>> m
        CircularPad1d((3, 1))
    """

    padding: tuple[int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _pair(padding)

    def _check_input_dim(self, input: Any) -> None:
        ndim = jnp.ndim(input)
        if ndim != 2 and ndim != 3:
            raise ValueError(f"expected 2D or 3D input (got {ndim}D input)")


class CircularPad2d(_CircularPadNd):
    r"""Pad the input by wrapping it around (circular / periodic boundary).

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 4-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`).
            Each padding must be at most the corresponding input dimension (wrapping once).

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.CircularPad2d((1, 1, 2, 0))
        >>> m(jnp.arange(9.0).reshape(1, 1, 3, 3))
        Array([[[[5., 3., 4., 5., 3.],
                 [8., 6., 7., 8., 6.],
                 [2., 0., 1., 2., 0.],
                 [5., 3., 4., 5., 3.],
                 [8., 6., 7., 8., 6.]]]], dtype=float32)
        >>> m
        CircularPad2d((1, 1, 2, 0))
    """

    padding: tuple[int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _quadruple(padding)

    def _check_input_dim(self, input: Any) -> None:
        ndim = jnp.ndim(input)
        if ndim != 3 and ndim != 4:
            raise ValueError(f"expected 3D or 4D input (got {ndim}D input)")


class CircularPad3d(_CircularPadNd):
    r"""Pad the input by wrapping it around (circular / periodic boundary).

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 6-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`, :math:`\\text{padding\\_front}`, :math:`\\text{padding\\_back}`).
            Each padding must be at most the corresponding input dimension (wrapping once).

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where :math:`D_{out} = D_{in} + \\text{padding\\_front} + \\text{padding\\_back}`, :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.CircularPad3d(1)
        >>> m(jnp.ones((1, 2, 3, 3, 3))).shape
        (1, 2, 5, 5, 5)
        >>> m
        CircularPad3d((1, 1, 1, 1, 1, 1))
    """

    padding: tuple[int, int, int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _ntuple(6)(padding)

    def _check_input_dim(self, input: Any) -> None:
        ndim = jnp.ndim(input)
        if ndim != 4 and ndim != 5:
            raise ValueError(f"expected 4D or 5D input (got {ndim}D input)")


class ConstantPad1d(_ConstantPadNd):
    r"""Pad the input with a constant value.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 2-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`).
            Negative padding crops.
        value: the fill value.

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`(N, C, W_{out})` or :math:`(C, W_{out})`, where :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ConstantPad1d((3, 1), 3.5)
        >>> m(jnp.arange(4.0).reshape(1, 1, 4))
        Array([[[3.5, 3.5, 3.5, 0. , 1. , 2. , 3. , 3.5]]], dtype=float32)
        >>> m
        ConstantPad1d(padding=(3, 1), value=3.5)
    """

    padding: tuple[int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(value)
        self.padding = _pair(padding)


class ConstantPad2d(_ConstantPadNd):
    r"""Pad the input with a constant value.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 4-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`).
            Negative padding crops.
        value: the fill value.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ConstantPad2d((1, 1, 2, 0), 3.5)
        >>> m(jnp.arange(4.0).reshape(1, 1, 2, 2))
        Array([[[[3.5, 3.5, 3.5, 3.5],
                 [3.5, 3.5, 3.5, 3.5],
                 [3.5, 0. , 1. , 3.5],
                 [3.5, 2. , 3. , 3.5]]]], dtype=float32)
        >>> m
        ConstantPad2d(padding=(1, 1, 2, 0), value=3.5)
    """

    padding: tuple[int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(value)
        self.padding = _quadruple(padding)


class ConstantPad3d(_ConstantPadNd):
    r"""Pad the input with a constant value.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 6-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`, :math:`\\text{padding\\_front}`, :math:`\\text{padding\\_back}`).
            Negative padding crops.
        value: the fill value.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where :math:`D_{out} = D_{in} + \\text{padding\\_front} + \\text{padding\\_back}`, :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ConstantPad3d(1, 3.5)
        >>> m(jnp.ones((1, 2, 3, 3, 3))).shape
        (1, 2, 5, 5, 5)
        >>> m
        ConstantPad3d(padding=(1, 1, 1, 1, 1, 1), value=3.5)
    """

    padding: tuple[int, int, int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(value)
        self.padding = _ntuple(6)(padding)


class ReflectionPad1d(_ReflectionPadNd):
    r"""Pad the input with the reflection of its boundary (the edge itself is not repeated).

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 2-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`).
            Each padding must be smaller than the corresponding input dimension.

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`(N, C, W_{out})` or :math:`(C, W_{out})`, where :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ReflectionPad1d(2)
        >>> m(jnp.arange(8.0).reshape(1, 2, 4))
        Array([[[2., 1., 0., 1., 2., 3., 2., 1.],
                [6., 5., 4., 5., 6., 7., 6., 5.]]], dtype=float32)
        >>> m
        ReflectionPad1d((2, 2))
    """

    padding: tuple[int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _pair(padding)


class ReflectionPad2d(_ReflectionPadNd):
    r"""Pad the input with the reflection of its boundary (the edge itself is not repeated).

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 4-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`).
            Each padding must be smaller than the corresponding input dimension.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ReflectionPad2d((1, 1, 2, 0))
        >>> m(jnp.arange(9.0).reshape(1, 1, 3, 3))
        Array([[[[7., 6., 7., 8., 7.],
                 [4., 3., 4., 5., 4.],
                 [1., 0., 1., 2., 1.],
                 [4., 3., 4., 5., 4.],
                 [7., 6., 7., 8., 7.]]]], dtype=float32)
        >>> m
        ReflectionPad2d((1, 1, 2, 0))
    """

    padding: tuple[int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _quadruple(padding)


class ReflectionPad3d(_ReflectionPadNd):
    r"""Pad the input with the reflection of its boundary (the edge itself is not repeated).

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 6-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`, :math:`\\text{padding\\_front}`, :math:`\\text{padding\\_back}`).
            Each padding must be smaller than the corresponding input dimension.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where :math:`D_{out} = D_{in} + \\text{padding\\_front} + \\text{padding\\_back}`, :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ReflectionPad3d(1)
        >>> m(jnp.ones((1, 2, 3, 3, 3))).shape
        (1, 2, 5, 5, 5)
        >>> m
        ReflectionPad3d((1, 1, 1, 1, 1, 1))
    """

    padding: tuple[int, int, int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _ntuple(6)(padding)


class ReplicationPad1d(_ReplicationPadNd):
    r"""Pad the input by repeating its boundary values.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 2-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`).

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`(N, C, W_{out})` or :math:`(C, W_{out})`, where :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ReplicationPad1d((3, 1))
        >>> m(jnp.arange(8.0).reshape(1, 2, 4))
        Array([[[0., 0., 0., 0., 1., 2., 3., 3.],
                [4., 4., 4., 4., 5., 6., 7., 7.]]], dtype=float32)
        >>> m
        ReplicationPad1d((3, 1))
    """

    padding: tuple[int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _pair(padding)


class ReplicationPad2d(_ReplicationPadNd):
    r"""Pad the input by repeating its boundary values.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 4-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`).

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ReplicationPad2d((1, 1, 2, 0))
        >>> m(jnp.arange(9.0).reshape(1, 1, 3, 3))
        Array([[[[0., 0., 1., 2., 2.],
                 [0., 0., 1., 2., 2.],
                 [0., 0., 1., 2., 2.],
                 [3., 3., 4., 5., 5.],
                 [6., 6., 7., 8., 8.]]]], dtype=float32)
        >>> m
        ReplicationPad2d((1, 1, 2, 0))
    """

    padding: tuple[int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _quadruple(padding)


class ReplicationPad3d(_ReplicationPadNd):
    r"""Pad the input by repeating its boundary values.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 6-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`, :math:`\\text{padding\\_front}`, :math:`\\text{padding\\_back}`).

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where :math:`D_{out} = D_{in} + \\text{padding\\_front} + \\text{padding\\_back}`, :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ReplicationPad3d(1)
        >>> m(jnp.ones((1, 2, 3, 3, 3))).shape
        (1, 2, 5, 5, 5)
        >>> m
        ReplicationPad3d((1, 1, 1, 1, 1, 1))
    """

    padding: tuple[int, int, int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _ntuple(6)(padding)


class ZeroPad1d(ConstantPad1d):
    r"""Pad the input with zeros.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 2-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`).
            Negative padding crops.

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`(N, C, W_{out})` or :math:`(C, W_{out})`, where :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ZeroPad1d((3, 1))
        >>> m(jnp.arange(4.0).reshape(1, 1, 4))
        Array([[[0., 0., 0., 0., 1., 2., 3., 0.]]], dtype=float32)
        >>> m
        ZeroPad1d((3, 1))
    """

    padding: tuple[int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    r"""Pad the input with zeros.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 4-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`).
            Negative padding crops.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ZeroPad2d((1, 1, 2, 0))
        >>> m(jnp.arange(4.0).reshape(1, 1, 2, 2))
        Array([[[[0., 0., 0., 0.],
                 [0., 0., 0., 0.],
                 [0., 0., 1., 0.],
                 [0., 2., 3., 0.]]]], dtype=float32)
        >>> m
        ZeroPad2d((1, 1, 2, 0))
    """

    padding: tuple[int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    r"""Pad the input with zeros.

    For `N`-dimensional padding use :func:`jmod.nn.functional.pad`.

    Args:
        padding: the size of the padding. An int pads every boundary by that much; a 6-tuple is
            (:math:`\\text{padding\\_left}`, :math:`\\text{padding\\_right}`, :math:`\\text{padding\\_top}`, :math:`\\text{padding\\_bottom}`, :math:`\\text{padding\\_front}`, :math:`\\text{padding\\_back}`).
            Negative padding crops.

    Shape:
        - Input: :math:`(N, C, D_{in}, H_{in}, W_{in})` or :math:`(C, D_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, D_{out}, H_{out}, W_{out})` or :math:`(C, D_{out}, H_{out}, W_{out})`, where :math:`D_{out} = D_{in} + \\text{padding\\_front} + \\text{padding\\_back}`, :math:`H_{out} = H_{in} + \\text{padding\\_top} + \\text{padding\\_bottom}`, :math:`W_{out} = W_{in} + \\text{padding\\_left} + \\text{padding\\_right}`.

    Attributes:
        padding: ``tuple[int, int, int, int, int, int]``, the padding as given (an int is repeated).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.ZeroPad3d((1, 1, 2, 0, 1, 0))
        >>> m(jnp.ones((1, 2, 3, 3, 3))).shape
        (1, 2, 4, 5, 5)
        >>> m
        ZeroPad3d((1, 1, 2, 0, 1, 0))
    """

    padding: tuple[int, int, int, int, int, int]  # type: ignore[assignment]

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"
