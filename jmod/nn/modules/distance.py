"""PairwiseDistance and CosineSimilarity (``torch/nn/modules/distance.py``)."""

from __future__ import annotations

from typing import Any

import jax

from jmod._src.functional import distance as F
from jmod.nn.modules.module import Module

__all__ = ["PairwiseDistance", "CosineSimilarity"]


class PairwiseDistance(Module):
    r"""The :math:`p`-norm distance between rows: :math:`\lVert x_1 - x_2 + \epsilon \rVert_p`
    over the last dimension (see :func:`jmod.nn.functional.pairwise_distance`).

    Args:
        p: the norm degree (may be negative). Default: 2.
        eps: added to the difference to avoid division by zero. Default: 1e-6.
        keepdim: keep the reduced dimension. Default: False.

    Shape:
        - Input1: :math:`(N, D)` or :math:`(D)`.
        - Input2: same as Input1, or broadcastable with it.
        - Output: :math:`(N)` or :math:`()`; :math:`(N, 1)` or :math:`(1)` with ``keepdim``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.PairwiseDistance(eps=0.0)(jnp.zeros((2, 2)), jnp.array([[3.0, 4.0], [0.0, 1.0]]))
        Array([5., 1.], dtype=float32)
    """

    __constants__ = ["norm", "eps", "keepdim"]

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Any, x2: Any) -> jax.Array:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(Module):
    r"""Cosine similarity along ``dim``:
    :math:`\frac{x_1 \cdot x_2}{\max(\lVert x_1 \rVert_2, \epsilon) \max(\lVert x_2 \rVert_2, \epsilon)}`
    (see :func:`jmod.nn.functional.cosine_similarity`).

    Args:
        dim: the dimension of the vectors. Default: 1.
        eps: lower bound of each norm. Default: 1e-8.

    Shape:
        - Input1: :math:`(\ast_1, D, \ast_2)` with :math:`D` at position ``dim``.
        - Input2: broadcastable with Input1.
        - Output: :math:`(\ast_1, \ast_2)`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.CosineSimilarity(dim=1)(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))
        Array([0.70710677], dtype=float32)
    """

    __constants__ = ["dim", "eps"]

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Any, x2: Any) -> jax.Array:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
