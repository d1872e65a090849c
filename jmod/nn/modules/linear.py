"""Linear layers: Identity, Linear, Bilinear (``torch/nn/modules/linear.py``)."""

from __future__ import annotations

import math
from typing import Any

import jax

from jmod._src import devices
from jmod._src.arrays import host_empty
from jmod._src.functional import linear as F
from jmod.nn import init
from jmod.nn.modules.lazy import LazyModuleMixin
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter, UninitializedParameter

__all__ = ["Identity", "Linear", "NonDynamicallyQuantizableLinear", "Bilinear", "LazyLinear"]


class Identity(Module):
    r"""A placeholder that returns its input; constructor arguments are ignored.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, the input itself.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Identity(54, unused="x")(jnp.ones(3)).shape
        (3,)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Linear(Module):
    r"""Apply an affine map :math:`y = xA^T + b`.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: if ``False``, the layer has no additive bias.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(*, H_{in})` with :math:`H_{in} = \text{in\_features}`.
        - Output: :math:`(*, H_{out})` with :math:`H_{out} = \text{out\_features}`.

    Attributes:
        weight: shape ``(out_features, in_features)``, initialised from
            :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{in\_features}`
            (kaiming-uniform with ``a=sqrt(5)``, as torch).
        bias: shape ``(out_features,)``, from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.Linear(20, 30)
        >>> m(jnp.ones((128, 20))).shape
        (128, 30)
        >>> m
        Linear(in_features=20, out_features=30, bias=True)
    """

    __constants__ = ["in_features", "out_features"]
    in_features: int
    out_features: int

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        dtype = devices.factory_dtype(dtype)
        self.weight = Parameter(host_empty((out_features, in_features), dtype))
        if bias:
            self.bias = Parameter(host_empty((out_features,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from torch's default distributions."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Any) -> jax.Array:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class NonDynamicallyQuantizableLinear(Linear):
    r"""A :class:`Linear` under another name: ``MultiheadAttention.out_proj``'s class in torch.

    torch uses the subclass to keep dynamic quantization away from the attention output
    projection; jmod keeps the name so that reprs and ``type(m.out_proj).__name__``
    match torch's. It computes exactly what :class:`Linear` computes.

    Examples:
        >>> from jmod.nn.modules.linear import NonDynamicallyQuantizableLinear
        >>> NonDynamicallyQuantizableLinear(4, 4)
        NonDynamicallyQuantizableLinear(in_features=4, out_features=4, bias=True)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)


class Bilinear(Module):
    r"""Apply a bilinear map :math:`y = x_1^T A x_2 + b`.

    Args:
        in1_features: size of each first input sample.
        in2_features: size of each second input sample.
        out_features: size of each output sample.
        bias: if ``False``, the layer has no additive bias.

    Shape:
        - Input1: :math:`(*, H_{in1})`; Input2: :math:`(*, H_{in2})`.
        - Output: :math:`(*, H_{out})`.

    Attributes:
        weight: shape ``(out_features, in1_features, in2_features)``, from
            :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{in1\_features}`.
        bias: shape ``(out_features,)``, same distribution.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Bilinear(20, 30, 40)(jnp.ones((128, 20)), jnp.ones((128, 30))).shape
        (128, 40)
    """

    def __init__(
        self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        dtype = devices.factory_dtype(dtype)
        self.weight = Parameter(host_empty((out_features, in1_features, in2_features), dtype))
        if bias:
            self.bias = Parameter(host_empty((out_features,), dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Any, input2: Any) -> jax.Array:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class LazyLinear(LazyModuleMixin, Linear):
    r"""A :class:`Linear` module where ``in_features`` is inferred from the first input.

    ``weight`` and ``bias`` are :class:`~jmod.nn.UninitializedParameter` s until the
    first call, which sets ``in_features = input.shape[-1]``, draws them as
    :class:`Linear` does and turns the module into a :class:`Linear`. See
    :class:`~jmod.nn.modules.lazy.LazyModuleMixin` for the details.

    Args:
        out_features: size of each output sample.
        bias: if ``False``, the layer has no additive bias.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyLinear(30)
        >>> m.weight
        <UninitializedParameter>
        >>> m(jnp.ones((128, 20))).shape
        (128, 30)
        >>> m
        Linear(in_features=20, out_features=30, bias=True)
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        # bias is hardcoded to False to avoid creating an array that will soon be replaced.
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """Re-draw the parameters once they are materialized (as :meth:`Linear.reset_parameters`)."""
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Any) -> None:  # type: ignore[override]
        """Infer ``in_features`` from ``input`` and initialize the parameters."""
        if self.has_uninitialized_params():
            self.in_features = int(input.shape[-1])
            self.weight.materialize((self.out_features, self.in_features))
            if self.bias is not None:
                self.bias.materialize((self.out_features,))
            self.reset_parameters()
        if self.in_features == 0:
            if input.shape[-1] != self.weight.shape[-1]:
                raise AssertionError(
                    f"The in_features inferred from input: {input.shape[-1]} "
                    f"is not equal to in_features from self.weight: "
                    f"{self.weight.shape[-1]}"
                )
            self.in_features = int(input.shape[-1])
