"""Activation layers (``torch/nn/modules/activation.py``), MultiheadAttention excepted.

Each layer calls its function in ``jmod.nn.functional``; constructor arguments,
attribute names and ``repr`` strings are torch's. ``inplace=True`` is accepted and
shown in the ``repr`` as torch shows it, but never changes semantics: JAX arrays are
immutable and the layer returns a new array either way.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import devices
from jmod._src.functional import activation as F
from jmod.nn import init
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter

__all__ = [
    "Threshold",
    "ReLU",
    "RReLU",
    "Hardtanh",
    "ReLU6",
    "Sigmoid",
    "Hardsigmoid",
    "Tanh",
    "SiLU",
    "Mish",
    "Hardswish",
    "ELU",
    "CELU",
    "SELU",
    "GLU",
    "GELU",
    "Hardshrink",
    "LeakyReLU",
    "LogSigmoid",
    "Softplus",
    "Softshrink",
    "PReLU",
    "Softsign",
    "Tanhshrink",
    "Softmin",
    "Softmax",
    "Softmax2d",
    "LogSoftmax",
]


class Threshold(Module):
    r"""Threshold each element: :math:`y = x` if :math:`x > \text{threshold}`, else ``value``.

    Args:
        threshold: the value to threshold at.
        value: the value to replace with.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.Threshold(0.1, 20)
        >>> m(jnp.array([0.0, 1.0]))
        Array([20.,  1.], dtype=float32)
        >>> m
        Threshold(threshold=0.1, value=20)
    """

    __constants__ = ["threshold", "value", "inplace"]

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"threshold={self.threshold}, value={self.value}{inplace_str}"


class ReLU(Module):
    r"""Rectified linear unit :math:`\max(0, x)` (derivative 0 at 0, as torch).

    Args:
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.ReLU()(jnp.array([-1.0, 2.0]))
        Array([0., 2.], dtype=float32)
        >>> nn.ReLU(inplace=True)
        ReLU(inplace=True)
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class RReLU(Module):
    r"""Randomized leaky ReLU: negative slopes drawn from :math:`\mathcal{U}(\text{lower},
    \text{upper})` in training (jmod's generator), :math:`(\text{lower}+\text{upper})/2` in eval.

    Args:
        lower: lower bound of the uniform distribution. Default: 1/8.
        upper: upper bound of the uniform distribution. Default: 1/3.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.RReLU(0.25, 0.75).eval()(jnp.array([-2.0, 1.0]))
        Array([-1.,  1.], dtype=float32)
    """

    __constants__ = ["lower", "upper", "inplace"]

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"lower={self.lower}, upper={self.upper}{inplace_str}"


class Hardtanh(Module):
    r"""Clip to ``[min_val, max_val]`` (derivative 0 at and beyond the clip points).

    Args:
        min_val: minimum of the linear region. Default: -1.
        max_val: maximum of the linear region. Default: 1.
        inplace: accepted for torch compatibility (no effect).
        min_value, max_value: deprecated aliases of ``min_val``/``max_val`` (``FutureWarning``).

    Raises:
        AssertionError: if ``max_val <= min_val`` (torch's message).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Hardtanh(-2, 2)(jnp.array([-3.0, 1.0, 3.0]))
        Array([-2.,  1.,  2.], dtype=float32)
        >>> nn.Hardtanh(-2, 2)
        Hardtanh(min_val=-2, max_val=2)
    """

    __constants__ = ["min_val", "max_val", "inplace"]

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> None:
        super().__init__()
        if min_value is not None:
            warnings.warn(
                "keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning, stacklevel=2
            )
            min_val = min_value
        if max_value is not None:
            warnings.warn(
                "keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning, stacklevel=2
            )
            max_val = max_value
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise AssertionError(f"max_val ({self.max_val}) must be greater than min_val ({self.min_val})")

    def forward(self, input: Any) -> jax.Array:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"min_val={self.min_val}, max_val={self.max_val}{inplace_str}"


class ReLU6(Hardtanh):
    r""":math:`\min(\max(0, x), 6)`; a :class:`Hardtanh` with bounds 0 and 6, as in torch.

    Args:
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.ReLU6()(jnp.array([-1.0, 7.0]))
        Array([0., 6.], dtype=float32)
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    r""":math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Sigmoid()(jnp.array([0.0]))
        Array([0.5], dtype=float32)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.sigmoid(input)


class Hardsigmoid(Module):
    r"""0 for :math:`x \le -3`, 1 for :math:`x \ge 3`, else :math:`x/6 + 1/2`.

    Args:
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Hardsigmoid()(jnp.array([0.0]))
        Array([0.5], dtype=float32)
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.hardsigmoid(input, self.inplace)


class Tanh(Module):
    r""":math:`\tanh(x)`.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Tanh()(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.tanh(input)


class SiLU(Module):
    r""":math:`x \sigma(x)` (swish).

    Args:
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.SiLU()(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Mish(Module):
    r""":math:`x \tanh(\text{softplus}(x))`.

    Args:
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Mish()(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.mish(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Hardswish(Module):
    r"""0 for :math:`x \le -3`, :math:`x` for :math:`x \ge 3`, else :math:`x(x+3)/6`.

    Args:
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Hardswish()(jnp.array([3.0]))
        Array([3.], dtype=float32)
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.hardswish(input, self.inplace)


class ELU(Module):
    r""":math:`x` if :math:`x > 0` else :math:`\alpha (e^x - 1)`.

    Args:
        alpha: the :math:`\alpha` value. Default: 1.0.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.ELU()(jnp.array([1.0]))
        Array([1.], dtype=float32)
        >>> nn.ELU(alpha=0.5, inplace=True)
        ELU(alpha=0.5, inplace=True)
    """

    __constants__ = ["alpha", "inplace"]

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"alpha={self.alpha}{inplace_str}"


class CELU(Module):
    r""":math:`\max(0,x) + \min(0, \alpha (e^{x/\alpha} - 1))`.

    Args:
        alpha: the :math:`\alpha` value. Default: 1.0.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.CELU()(jnp.array([1.0]))
        Array([1.], dtype=float32)
    """

    __constants__ = ["alpha", "inplace"]

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"alpha={self.alpha}{inplace_str}"


class SELU(Module):
    r"""Scaled ELU with torch's constants :math:`\alpha \approx 1.6733`, scale :math:`\approx 1.0507`.

    Args:
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.SELU()(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.selu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class GLU(Module):
    r"""Gated linear unit :math:`a \otimes \sigma(b)`, ``input`` split in halves along ``dim``.

    Args:
        dim: the dimension to split. Default: -1.

    Shape:
        - Input: :math:`(*_1, N, *_2)` with :math:`N` even.
        - Output: :math:`(*_1, M, *_2)` with :math:`M = N / 2`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.GLU()(jnp.ones((4, 2))).shape
        (4, 1)
        >>> nn.GLU()
        GLU(dim=-1)
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> jax.Array:
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    r"""Gaussian error linear unit :math:`x \Phi(x)` (``approximate='tanh'`` for the tanh form).

    Args:
        approximate: ``'none'`` or ``'tanh'`` (checked when called, as torch).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.GELU()(jnp.array([0.0]))
        Array([0.], dtype=float32)
        >>> nn.GELU(approximate="tanh")
        GELU(approximate='tanh')
    """

    __constants__ = ["approximate"]

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Any) -> jax.Array:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={repr(self.approximate)}"


class Hardshrink(Module):
    r""":math:`x` if :math:`|x| > \lambda`, else 0.

    Args:
        lambd: the :math:`\lambda` value. Default: 0.5.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Hardshrink()(jnp.array([0.25, 1.0]))
        Array([0., 1.], dtype=float32)
        >>> nn.Hardshrink()
        Hardshrink(0.5)
    """

    __constants__ = ["lambd"]

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Any) -> jax.Array:
        return F.hardshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class LeakyReLU(Module):
    r""":math:`x` if :math:`x > 0` else ``negative_slope`` :math:`\cdot x`.

    Args:
        negative_slope: slope for negative inputs. Default: 1e-2.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.LeakyReLU(0.1)(jnp.array([-1.0]))
        Array([-0.1], dtype=float32)
        >>> nn.LeakyReLU(0.1)
        LeakyReLU(negative_slope=0.1)
    """

    __constants__ = ["inplace", "negative_slope"]

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Any) -> jax.Array:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        inplace_str = ", inplace=True" if self.inplace else ""
        return f"negative_slope={self.negative_slope}{inplace_str}"


class LogSigmoid(Module):
    r""":math:`\log(1 / (1 + e^{-x}))`.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> [round(v, 4) for v in nn.LogSigmoid()(jnp.array([0.0])).tolist()]
        [-0.6931]
    """

    def forward(self, input: Any) -> jax.Array:
        return F.logsigmoid(input)


class Softplus(Module):
    r""":math:`\frac{1}{\beta}\log(1 + e^{\beta x})`, linear where :math:`\beta x > \text{threshold}`.

    Args:
        beta: the :math:`\beta` value. Default: 1.
        threshold: values above this revert to a linear function. Default: 20.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> [round(v, 4) for v in nn.Softplus()(jnp.array([0.0])).tolist()]
        [0.6931]
        >>> nn.Softplus()
        Softplus(beta=1.0, threshold=20.0)
    """

    __constants__ = ["beta", "threshold"]

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Any) -> jax.Array:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softshrink(Module):
    r""":math:`x - \lambda` if :math:`x > \lambda`, :math:`x + \lambda` if :math:`x < -\lambda`, else 0.

    Args:
        lambd: the :math:`\lambda` (must be no less than zero). Default: 0.5.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Softshrink()(jnp.array([1.0]))
        Array([0.5], dtype=float32)
        >>> nn.Softshrink()
        Softshrink(0.5)
    """

    __constants__ = ["lambd"]

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Any) -> jax.Array:
        return F.softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class PReLU(Module):
    r""":math:`\max(0,x) + a \min(0,x)` with a learnable slope :math:`a`.

    ``PReLU()`` learns one :math:`a` shared by all channels; ``PReLU(C)`` one per channel
    (the channel dimension is dim 1 of the input; inputs with fewer than 2 dimensions
    have 1 channel).

    Args:
        num_parameters: number of :math:`a` to learn: 1 or the number of channels. Default: 1.
        init: the initial value of :math:`a`. Default: 0.25.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Attributes:
        weight: shape ``(num_parameters,)``, initialised to ``init``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.PReLU(3)
        >>> m(-jnp.ones((2, 3))).tolist()
        [[-0.25, -0.25, -0.25], [-0.25, -0.25, -0.25]]
        >>> m
        PReLU(num_parameters=3)
    """

    __constants__ = ["num_parameters"]

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(jnp.empty((num_parameters,), devices.factory_dtype(dtype)))
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Set every slope back to ``init``."""
        init.constant_(self.weight, self.init)

    def forward(self, input: Any) -> jax.Array:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softsign(Module):
    r""":math:`x / (1 + |x|)`.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Softsign()(jnp.array([1.0]))
        Array([0.5], dtype=float32)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.softsign(input)


class Tanhshrink(Module):
    r""":math:`x - \tanh(x)`.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Tanhshrink()(jnp.array([0.0]))
        Array([0.], dtype=float32)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.tanhshrink(input)


class Softmin(Module):
    r"""``softmax(-x)`` along ``dim``: every slice along ``dim`` is in ``[0, 1]`` and sums to 1.

    Args:
        dim: the dimension to normalise over. ``None`` uses torch's deprecated implicit
            choice and warns.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Softmin(dim=1)(jnp.zeros((1, 2)))
        Array([[0.5, 0.5]], dtype=float32)
        >>> nn.Softmin(dim=1)
        Softmin(dim=1)
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if not hasattr(self, "dim"):
            self.dim = None

    def forward(self, input: Any) -> jax.Array:
        return F.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    r""":math:`\exp(x_i) / \sum_j \exp(x_j)` along ``dim``.

    Args:
        dim: the dimension to normalise over. ``None`` uses torch's deprecated implicit
            choice (0 for 0-, 1- and 3-d inputs, else 1) and warns.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Softmax(dim=-1)(jnp.zeros((1, 2)))
        Array([[0.5, 0.5]], dtype=float32)
        >>> nn.Softmax(dim=-1)
        Softmax(dim=-1)
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if not hasattr(self, "dim"):
            self.dim = None

    def forward(self, input: Any) -> jax.Array:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    r"""Softmax over the channels at each spatial location (dim -3).

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: same shape as the input.

    Raises:
        ValueError: for inputs that are not 3-d or 4-d (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Softmax2d()(jnp.zeros((2, 4, 3, 3)))[0, :, 0, 0]
        Array([0.25, 0.25, 0.25, 0.25], dtype=float32)
    """

    def forward(self, input: Any) -> jax.Array:
        ndim = jnp.ndim(input)
        if ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {ndim}D instead")
        return F.softmax(input, -3, _stacklevel=5)


class LogSoftmax(Module):
    r""":math:`\log(\text{softmax}(x))` along ``dim``.

    Args:
        dim: the dimension to normalise over. ``None`` uses torch's deprecated implicit
            choice and warns.

    Shape:
        - Input: :math:`(*)`, any number of dimensions.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> [round(v, 4) for v in nn.LogSoftmax(dim=0)(jnp.zeros(2)).tolist()]
        [-0.6931, -0.6931]
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if not hasattr(self, "dim"):
            self.dim = None

    def forward(self, input: Any) -> jax.Array:
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
