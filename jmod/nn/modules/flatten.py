"""Flatten and Unflatten (``torch/nn/modules/flatten.py``)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.functional._torch_ops import list_str, wrap_dim
from jmod.nn.modules.module import Module

__all__ = ["Flatten", "Unflatten"]


def _flatten(x: jax.Array, start_dim: int, end_dim: int) -> jax.Array:
    """``torch.flatten``: merge dims ``start_dim..end_dim`` (a 0-d input becomes 1-d)."""
    start = wrap_dim(start_dim, x.ndim)
    end = wrap_dim(end_dim, x.ndim)
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if x.ndim == 0:
        return x.reshape(1)
    if start == end:
        return x
    merged = math.prod(x.shape[start : end + 1])
    return x.reshape(*x.shape[:start], merged, *x.shape[end + 1 :])


def _unflatten(x: jax.Array, dim: int, sizes: Any) -> jax.Array:
    """``Tensor.unflatten``: split dim ``dim`` into ``sizes`` (one entry may be -1)."""
    if x.ndim == 0:
        raise RuntimeError("unflatten got an unexpected error:\nDimension specified as 0 but tensor has no dimensions")
    d = wrap_dim(dim, x.ndim)
    sizes = [int(s) for s in sizes]
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    n = x.shape[d]
    given = list(sizes)
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten got an unexpected error:\nonly one dimension can be inferred")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0:
            raise RuntimeError(
                "unflatten got an unexpected error:\ncannot reshape tensor of 0 elements into shape "
                f"{list_str(sizes)} because the unspecified dimension size -1 can be any value and is ambiguous"
            )
        ok = n % known == 0
        sizes = [n // known if s == -1 else s for s in sizes]
    else:
        ok = known == n
    if not ok or any(s < 0 for s in sizes):
        raise RuntimeError(
            f"unflatten: Provided sizes {list_str(given)} don't multiply up to the size of dim {d} ({n}) "
            "in the input tensor"
        )
    return x.reshape(*x.shape[:d], *sizes, *x.shape[d + 1 :])


class Flatten(Module):
    r"""Flatten a contiguous range of dims into one (``torch.flatten(input, start_dim, end_dim)``).

    Args:
        start_dim: first dim to flatten. Default: 1.
        end_dim: last dim to flatten. Default: -1.

    Shape:
        - Input: :math:`(*, S_{\text{start}}, ..., S_{i}, ..., S_{\text{end}}, *)`.
        - Output: :math:`(*, \prod_{i=\text{start}}^{\text{end}} S_{i}, *)`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Flatten()(jnp.ones((32, 1, 5, 5))).shape
        (32, 25)
        >>> nn.Flatten(0, 2)(jnp.ones((32, 1, 5, 5))).shape
        (160, 5)
        >>> nn.Flatten()
        Flatten(start_dim=1, end_dim=-1)
    """

    __constants__ = ["start_dim", "end_dim"]

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Any) -> jax.Array:
        return _flatten(jnp.asarray(input), self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    r"""Unflatten dim ``dim`` into ``unflattened_size`` (``Tensor.unflatten``).

    Args:
        dim: the dimension to unflatten.
        unflattened_size: the new shape of that dimension (a tuple or list of ints; one
            entry may be -1 to be inferred).

    Raises:
        TypeError: if ``unflattened_size`` is not a tuple/list of ints (torch's messages).

    Shape:
        - Input: :math:`(*, S_{\text{dim}}, *)`.
        - Output: :math:`(*, U_1, ..., U_n, *)` with :math:`\prod U_i = S_{\text{dim}}`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Unflatten(1, (2, 5, 5))(jnp.ones((2, 50))).shape
        (2, 2, 5, 5)
        >>> nn.Unflatten(1, [2, -1])
        Unflatten(dim=1, unflattened_size=[2, -1])
    """

    __constants__ = ["dim", "unflattened_size"]

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        self._require_tuple_int(unflattened_size)
        self.dim = dim
        self.unflattened_size = unflattened_size

    def _require_tuple_int(self, input: Any) -> None:
        if isinstance(input, (tuple, list)):
            for idx, elem in enumerate(input):
                if not isinstance(elem, int):
                    raise TypeError(
                        "unflattened_size must be tuple of ints, "
                        + f"but found element of type {type(elem).__name__} at pos {idx}"
                    )
            return
        raise TypeError(f"unflattened_size must be a tuple of ints, but found type {type(input).__name__}")

    def forward(self, input: Any) -> jax.Array:
        return _unflatten(jnp.asarray(input), self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
