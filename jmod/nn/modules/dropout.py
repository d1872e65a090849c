"""Dropout layers (``torch/nn/modules/dropout.py``).

Masks come from jmod's global generator (``jmod.manual_seed``); ``jmod.jit`` threads
it through compiled code so each compiled call draws a fresh mask. In ``eval()`` mode
every layer is the identity and draws nothing.
"""

from __future__ import annotations

from typing import Any

import jax

from jmod._src.functional import dropout as F
from jmod.nn.modules.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    __constants__ = ["p", "inplace"]

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    r"""In training, zero each element with probability ``p`` and scale the others by
    :math:`1/(1-p)`; in evaluation, the identity.

    Args:
        p: probability of an element to be zeroed. Default: 0.5.
        inplace: accepted for torch compatibility (no effect).

    Raises:
        ValueError: if ``p`` is not in ``[0, 1]``.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> _ = jmod.manual_seed(0)
        >>> m = nn.Dropout(p=0.2)
        >>> m(jnp.ones((20, 16))).shape
        (20, 16)
        >>> m.eval()(jnp.ones(3))
        Array([1., 1., 1.], dtype=float32)
        >>> m
        Dropout(p=0.2, inplace=False)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    r"""Zero whole channels (1-d feature maps) with probability ``p`` in training.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(N, C, L)` or :math:`(C, L)`.
        - Output: same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Dropout1d(p=0.2)(jnp.ones((20, 16, 32))).shape
        (20, 16, 32)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    r"""Zero whole channels (2-d feature maps) with probability ``p`` in training.

    A 3-d input is treated as :math:`(N, C, L)` with a warning, as in torch.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(N, C, L)`.
        - Output: same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Dropout2d(p=0.2)(jnp.ones((20, 16, 4, 4))).shape
        (20, 16, 4, 4)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    r"""Zero whole channels (3-d feature maps) with probability ``p`` in training.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.Dropout3d(p=0.2)(jnp.ones((2, 4, 3, 3, 3))).shape
        (2, 4, 3, 3, 3)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    r"""Alpha dropout for SELU networks: keeps zero mean and unit variance of its input.

    Dropped elements are set to the SELU negative saturation value and the output is
    scaled and shifted (torch's constants).

    Args:
        p: probability of an element to be dropped. Default: 0.5.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.AlphaDropout(p=0.2)(jnp.ones((20, 16))).shape
        (20, 16)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    r"""Alpha dropout of whole channels (dim 1): masked channels are set to the SELU
    negative saturation value, then scaled and shifted.

    Args:
        p: probability of a channel to be dropped. Default: 0.5.
        inplace: accepted for torch compatibility (no effect).

    Shape:
        - Input: :math:`(N, C, *)`.
        - Output: same shape as the input.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.FeatureAlphaDropout(p=0.2)(jnp.ones((20, 16, 4, 4))).shape
        (20, 16, 4, 4)
    """

    def forward(self, input: Any) -> jax.Array:
        return F.feature_alpha_dropout(input, self.p, self.training)
