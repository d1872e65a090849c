"""``torch.nn.grad``: the gradients of a convolution with respect to its input or its
weight, given the gradient of its output.

torch calls ``convolution_backward``; here each is the ``jax.vjp`` of the matching
``jmod.nn.functional.conv*d``, so the numbers are those of jmod's (torch-matching)
convolution gradients.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.functional import conv as _conv

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input", "conv3d_weight"]


def _input_grad(conv: Any, input_size: Any, weight: Any, grad_output: Any, *args: Any) -> jax.Array:
    weight, grad_output = jnp.asarray(weight), jnp.asarray(grad_output)
    x = jnp.zeros(tuple(int(s) for s in input_size), jnp.result_type(weight, grad_output))
    _, vjp = jax.vjp(lambda x: conv(x, weight, None, *args), x)
    return vjp(grad_output.astype(x.dtype))[0]


def _weight_grad(conv: Any, input: Any, weight_size: Any, grad_output: Any, *args: Any) -> jax.Array:
    input, grad_output = jnp.asarray(input), jnp.asarray(grad_output)
    w = jnp.zeros(tuple(int(s) for s in weight_size), jnp.result_type(input, grad_output))
    _, vjp = jax.vjp(lambda w: conv(input, w, None, *args), w)
    return vjp(grad_output.astype(w.dtype))[0]


def conv1d_input(
    input_size: Any, weight: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    """The gradient of ``conv1d`` with respect to its input (of shape ``input_size``).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod.nn import grad
        >>> grad.conv1d_input((1, 1, 4), jnp.ones((1, 1, 2)), jnp.ones((1, 1, 3)))
        Array([[[1., 2., 2., 1.]]], dtype=float32)
    """
    return _input_grad(_conv.conv1d, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv1d_weight(
    input: Any, weight_size: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    """The gradient of ``conv1d`` with respect to its weight (of shape ``weight_size``)."""
    return _weight_grad(_conv.conv1d, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv2d_input(
    input_size: Any, weight: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    """The gradient of ``conv2d`` with respect to its input (of shape ``input_size``)."""
    return _input_grad(_conv.conv2d, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv2d_weight(
    input: Any, weight_size: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    """The gradient of ``conv2d`` with respect to its weight (of shape ``weight_size``)."""
    return _weight_grad(_conv.conv2d, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv3d_input(
    input_size: Any, weight: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    """The gradient of ``conv3d`` with respect to its input (of shape ``input_size``)."""
    return _input_grad(_conv.conv3d, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv3d_weight(
    input: Any, weight_size: Any, grad_output: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1
) -> jax.Array:
    """The gradient of ``conv3d`` with respect to its weight (of shape ``weight_size``)."""
    return _weight_grad(_conv.conv3d, input, weight_size, grad_output, stride, padding, dilation, groups)
