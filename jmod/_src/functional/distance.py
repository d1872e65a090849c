"""Distances between vectors (torch's ``aten/src/ATen/native/Distance.cpp``).

``pairwise_distance`` and ``pdist`` use torch's p-norm backward conventions through
:func:`vector_norm` (0 gradient at a zero difference). ``cosine_similarity`` follows
torch's current formula, which normalises each input first so the result stays in
``[-1, 1]``: ``sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps))``, where the clamp does
not take part in the gradient (torch applies it in-place under ``no_grad``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.amp import autocast_op
from jmod._src.functional._torch_ops import torch_dtype_name, vector_norm, wrap_dim

__all__ = ["pairwise_distance", "cosine_similarity", "pdist"]


def _as_float(x: jax.Array) -> jax.Array:
    # torch promotes integer (and bool) inputs: ``x1 - x2 + eps`` with a double eps
    # gives the default float dtype.
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def pairwise_distance(x1: Any, x2: Any, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> jax.Array:
    r"""The :math:`p`-norm of ``x1 - x2 + eps`` over the last dimension.

    .. math:: \lVert x_1 - x_2 + \epsilon \rVert_p

    Args:
        x1: :math:`(N, D)` or :math:`(D)`.
        x2: broadcastable with ``x1``.
        p: the norm degree (may be negative, ``inf`` or ``0``, as in torch).
        eps: added to the difference to avoid division by zero in the gradient.
        keepdim: keep the reduced dimension (of size 1).

    Returns:
        :math:`(N)` (or :math:`(N, 1)` with ``keepdim``); a scalar for 1-D inputs.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.pairwise_distance(jnp.array([[0.0, 0.0]]), jnp.array([[3.0, 4.0]]), eps=0.0)
        Array([5.], dtype=float32)
    """
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    # torch reduces the innermost dimension of the broadcast result (Distance.cpp).
    out_dim = max(a.ndim, b.ndim)
    diff = _as_float(jnp.asarray(a - b)) + eps
    if out_dim == 0:  # torch accepts 0-d inputs: the "vector" is the single value
        return vector_norm(diff.reshape(1), p, axis=0)
    return vector_norm(diff, p, axis=out_dim - 1, keepdims=keepdim)


@autocast_op("cosine_similarity")
def cosine_similarity(x1: Any, x2: Any, dim: int = 1, eps: float = 1e-8) -> jax.Array:
    r"""Cosine similarity along ``dim``, computed like torch as
    :math:`\sum \frac{x_1}{\max(\lVert x_1 \rVert_2, \epsilon)} \cdot \frac{x_2}{\max(\lVert x_2 \rVert_2, \epsilon)}`.

    Args:
        x1: any shape.
        x2: broadcastable with ``x1``.
        dim: the dimension of the vectors.
        eps: lower bound of each norm.

    Returns:
        The broadcast shape without ``dim``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.cosine_similarity(jnp.array([[1.0, 0.0], [2.0, 0.0]]), jnp.array([[0.0, 2.0], [5.0, 0.0]]))
        Array([0., 1.], dtype=float32)
    """
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    common = jnp.result_type(a, b)
    if not jnp.issubdtype(common, jnp.floating):
        raise RuntimeError(
            f"expected common dtype to be floating point, yet common dtype is {torch_dtype_name(common)}"
        )
    a, b = jnp.broadcast_arrays(a.astype(common), b.astype(common))
    d = wrap_dim(dim, a.ndim)

    def normalised(x: jax.Array) -> jax.Array:
        norm = vector_norm(x, 2.0, axis=d, keepdims=True)
        # The clamp changes the value only: torch clamps a clone in-place under no_grad,
        # so the gradient flows as if the norm were not clamped.
        clamped = norm + jax.lax.stop_gradient(jnp.maximum(norm, eps) - norm)
        return x / clamped

    return jnp.sum(normalised(a) * normalised(b), axis=d)


@autocast_op("pdist")
def pdist(input: Any, p: float = 2.0) -> jax.Array:
    r"""The :math:`p`-norm distance between every pair of rows of a 2-D input.

    Rows :math:`i < j` in row-major order, like the upper triangle of
    ``torch.cdist(input, input)`` without the diagonal.

    Args:
        input: :math:`(N, M)`, floating point.
        p: the norm degree, :math:`p \ge 0`.

    Returns:
        :math:`(N (N - 1) / 2)`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.pdist(jnp.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]))
        Array([ 5., 10.,  5.], dtype=float32)
    """
    x = jnp.asarray(input)
    if x.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {x.ndim}D")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise RuntimeError("pdist only supports floating-point dtypes")
    if not p >= 0:
        raise RuntimeError("pdist only supports non-negative p values")
    n = x.shape[0]
    if n <= 1:
        return jnp.zeros((0,), x.dtype)
    rows, cols = np.triu_indices(n, 1)
    diff = x[rows] - x[cols]
    if x.shape[1] == 0:
        return jnp.zeros((len(rows),), x.dtype)
    if p == math.inf:
        # torch's pdist kernel gives every tied maximum the full gradient (not shared).
        return _max_abs_full_ties(diff)
    return vector_norm(diff, p, axis=1)


@jax.custom_jvp
def _max_abs_full_ties(diff: jax.Array) -> jax.Array:
    return jnp.max(jnp.abs(diff), axis=1)


@_max_abs_full_ties.defjvp
def _max_abs_full_ties_jvp(primals: tuple, tangents: tuple) -> tuple:
    (diff,), (t,) = primals, tangents
    out = jnp.max(jnp.abs(diff), axis=1)
    weight = jnp.sign(diff) * (jnp.abs(diff) == out[:, None])
    return out, jnp.sum(weight * t, axis=1)
