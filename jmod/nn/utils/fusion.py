r"""Fold an eval-mode BatchNorm into the preceding convolution or linear layer
(torch's ``torch.nn.utils.fusion``)."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from jmod.nn.parameter import Parameter, owner_of

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
]

ConvT = TypeVar("ConvT")
LinearT = TypeVar("LinearT")


def _requires_grad(x: Any) -> bool:
    """``tensor.requires_grad``: an array read from a parameter has its flag; a plain
    array (a buffer, a new array) does not require grad, as in torch."""
    if isinstance(x, Parameter):
        return x.requires_grad
    slot = owner_of(x) if isinstance(x, jax.Array) else None
    return slot.requires_grad if slot is not None else False


def _new_parameter(x: jax.Array, requires_grad: bool) -> Parameter:
    p = Parameter(x, requires_grad)
    p._alias_of = None  # a new array: it never shares storage with the inputs
    return p


def fuse_conv_bn_eval(conv: ConvT, bn: Any, transpose: bool = False) -> ConvT:
    r"""Fuse a convolutional module and a BatchNorm module into a single, new
    convolutional module.

    Args:
        conv (nn.modules.conv._ConvNd): A convolutional module.
        bn (nn.modules.batchnorm._BatchNorm): A BatchNorm module.
        transpose (bool, optional): If True, transpose the convolutional weight. Defaults to False.

    Returns:
        A fused convolutional module (a deep copy of ``conv``).

    Note:
        Both ``conv`` and ``bn`` must be in eval mode, and ``bn`` must have its running
        buffers computed.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.nn.utils import fuse_conv_bn_eval
        >>> conv, bn = nn.Conv2d(2, 3, 3).eval(), nn.BatchNorm2d(3).eval()
        >>> x = jnp.ones((1, 2, 5, 5))
        >>> bool(jnp.allclose(fuse_conv_bn_eval(conv, bn)(x), bn(conv(x)), atol=1e-6))
        True
    """
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused_conv = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")
    fused_conv.weight, fused_conv.bias = fuse_conv_bn_weights(
        fused_conv.weight,
        fused_conv.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
        transpose,
    )
    return fused_conv


def fuse_conv_bn_weights(
    conv_w: Any,
    conv_b: Any | None,
    bn_rm: Any,
    bn_rv: Any,
    bn_eps: float,
    bn_w: Any | None,
    bn_b: Any | None,
    transpose: bool = False,
) -> tuple[Parameter, Parameter]:
    r"""Fuse convolutional module parameters and BatchNorm module parameters into new
    convolutional module parameters.

    Args:
        conv_w (array): Convolutional weight.
        conv_b (array, optional): Convolutional bias.
        bn_rm (array): BatchNorm running mean.
        bn_rv (array): BatchNorm running variance.
        bn_eps (float): BatchNorm epsilon.
        bn_w (array, optional): BatchNorm weight.
        bn_b (array, optional): BatchNorm bias.
        transpose (bool, optional): If True, transpose the conv weight. Defaults to False.

    Returns:
        Tuple[Parameter, Parameter]: Fused convolutional weight and bias (each
        ``requires_grad`` when the input array was read from a parameter that does).
    """
    conv_w_rg = _requires_grad(conv_w)
    conv_w = jnp.asarray(conv_w)
    conv_weight_dtype = conv_w.dtype
    conv_bias_dtype = jnp.asarray(conv_b).dtype if conv_b is not None else conv_weight_dtype
    bn_rm = jnp.asarray(bn_rm)
    if conv_b is None:
        conv_b_rg = False
        conv_b = jnp.zeros_like(bn_rm)
    else:
        conv_b_rg = _requires_grad(conv_b)
        conv_b = jnp.asarray(conv_b)
    if bn_w is None:
        bn_w = jnp.ones_like(bn_rm)
    if bn_b is None:
        bn_b = jnp.zeros_like(bn_rm)
    bn_var_rsqrt = jax.lax.rsqrt(jnp.asarray(bn_rv) + bn_eps)

    if transpose:
        shape = [1, -1] + [1] * (len(conv_w.shape) - 2)
    else:
        shape = [-1, 1] + [1] * (len(conv_w.shape) - 2)

    fused_conv_w = (conv_w * (bn_w * bn_var_rsqrt).reshape(shape)).astype(conv_weight_dtype)
    fused_conv_b = ((conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b).astype(conv_bias_dtype)
    return _new_parameter(fused_conv_w, conv_w_rg), _new_parameter(fused_conv_b, conv_b_rg)


def fuse_linear_bn_eval(linear: LinearT, bn: Any) -> LinearT:
    r"""Fuse a linear module and a BatchNorm module into a single, new linear module.

    Args:
        linear (nn.Linear): A Linear module.
        bn (nn.modules.batchnorm._BatchNorm): A BatchNorm module.

    Returns:
        A fused linear module (a deep copy of ``linear``).

    Note:
        Both ``linear`` and ``bn`` must be in eval mode, and ``bn`` must have its
        running buffers computed.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.nn.utils import fuse_linear_bn_eval
        >>> lin, bn = nn.Linear(2, 3).eval(), nn.BatchNorm1d(3).eval()
        >>> x = jnp.ones((4, 2))
        >>> bool(jnp.allclose(fuse_linear_bn_eval(lin, bn)(x), bn(lin(x)), atol=1e-6))
        True
    """
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused_linear = copy.deepcopy(linear)
    # Linear-BN needs to be fused while preserving the shapes of linear weight/bias:
    # the output features of the linear layer must match BN's number of features
    # (or BN's must be 1, which broadcasts).
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError(
            f"To fuse, linear.out_features == bn.num_features or bn.num_features == 1, "
            f"got linear.out_features={linear.out_features} and bn.num_features={bn.num_features}"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("bn.running_mean and bn.running_var must not be None")
    fused_linear.weight, fused_linear.bias = fuse_linear_bn_weights(
        fused_linear.weight,
        fused_linear.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
    )
    return fused_linear


def fuse_linear_bn_weights(
    linear_w: Any,
    linear_b: Any | None,
    bn_rm: Any,
    bn_rv: Any,
    bn_eps: float,
    bn_w: Any,
    bn_b: Any,
) -> tuple[Parameter, Parameter]:
    r"""Fuse linear module parameters and BatchNorm module parameters into new linear
    module parameters.

    Args:
        linear_w (array): Linear weight.
        linear_b (array, optional): Linear bias.
        bn_rm (array): BatchNorm running mean.
        bn_rv (array): BatchNorm running variance.
        bn_eps (float): BatchNorm epsilon.
        bn_w (array): BatchNorm weight.
        bn_b (array): BatchNorm bias.

    Returns:
        Tuple[Parameter, Parameter]: Fused linear weight and bias.
    """
    linear_w_rg = _requires_grad(linear_w)
    linear_w = jnp.asarray(linear_w)
    linear_weight_dtype = linear_w.dtype
    linear_bias_dtype = jnp.asarray(linear_b).dtype if linear_b is not None else linear_weight_dtype
    bn_rm = jnp.asarray(bn_rm)
    if linear_b is None:
        linear_b_rg = False
        linear_b = jnp.zeros_like(bn_rm)
    else:
        linear_b_rg = _requires_grad(linear_b)
        linear_b = jnp.asarray(linear_b)
    bn_scale = jnp.asarray(bn_w) * jax.lax.rsqrt(jnp.asarray(bn_rv) + bn_eps)

    fused_w = linear_w * bn_scale[..., None].astype(linear_weight_dtype)
    fused_b = ((linear_b - bn_rm) * bn_scale + jnp.asarray(bn_b)).astype(linear_bias_dtype)
    return _new_parameter(fused_w, linear_w_rg), _new_parameter(fused_b, linear_b_rg)
