"""Dropout functions (torch.nn.functional semantics; masks from jmod's generator).

Masks are drawn with ``jmod._src.random.next_key()``: the global generator, seeded by
``jmod.manual_seed`` and threaded through compiled code by ``jmod.jit``. Inside a plain
``jax.jit`` a training-mode call raises ``UnthreadedRandomStateError`` unless a key is
supplied (``jmod.random.fork_rng(key)`` or ``functional_call(..., key=key)``).

As in torch, nothing is drawn (and the generator does not advance) when
``training=False``, ``p == 0`` or ``p == 1``, or the input is empty; ``p == 1`` returns
``input * 0``. The arithmetic is torch's: ``input * (mask / (1 - p))`` for dropout and
``input * (a * mask) + b`` for alpha dropout. ``inplace`` is accepted and ignored
(arrays are immutable).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.random import next_key

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]

# torch: aten/src/ATen/native/Dropout.cpp (the SELU negative saturation value).
_ALPHA = 1.7580993408473766


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _float(input: Any) -> jax.Array:
    x = jnp.asarray(input)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def _dropout_impl(x: jax.Array, p: float, train: bool, feature: bool, alpha: bool) -> jax.Array:
    """torch's ``_dropout_impl<feature_dropout, alpha_dropout>``."""
    if p == 0 or not train or x.size == 0:
        return x
    if p == 1:
        return x * jnp.zeros((), x.dtype)
    if feature:
        if x.ndim < 2:
            raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
        shape = x.shape[:2] + (1,) * (x.ndim - 2)
    else:
        shape = x.shape
    keep = jax.random.bernoulli(next_key(), 1 - p, shape)
    noise = keep.astype(x.dtype)
    if alpha:
        a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
        b = (noise - 1) * (_ALPHA * a) + _ALPHA * a * p
        return x * (noise * a) + b
    return x * (noise / (1 - p))


def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> jax.Array:
    r"""Zero each element with probability ``p`` and scale the rest by :math:`1/(1-p)`.

    Args:
        input: any shape.
        p: probability of an element to be zeroed. Default: 0.5.
        training: apply dropout if ``True`` (else return ``input``). Default: ``True``.
        inplace: accepted for torch compatibility (no effect).

    Raises:
        ValueError: if ``p`` is not in ``[0, 1]``.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> import jmod.nn.functional as F
        >>> _ = jmod.manual_seed(0)
        >>> y = F.dropout(jnp.ones(1000), 0.25)
        >>> sorted(set(y.tolist()))
        [0.0, 1.3333333730697632]
        >>> F.dropout(jnp.ones(3), 0.25, training=False)
        Array([1., 1., 1.], dtype=float32)
    """
    _check_p(p)
    return _dropout_impl(_float(input), p, training, feature=False, alpha=False)


def alpha_dropout(input: Any, p: float = 0.5, training: bool = False, inplace: bool = False) -> jax.Array:
    r"""Alpha dropout (for SELU networks): dropped elements are set to the SELU negative
    saturation value, then an affine map keeps zero mean and unit variance.

    Note torch's default ``training=False`` for this function.

    Args:
        input: any shape.
        p: probability of an element to be dropped. Default: 0.5.
        training: apply dropout if ``True``. Default: ``False``.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.alpha_dropout(jnp.ones(2), 0.5)
        Array([1., 1.], dtype=float32)
    """
    _check_p(p)
    return _dropout_impl(_float(input), p, training, feature=False, alpha=True)


def feature_alpha_dropout(input: Any, p: float = 0.5, training: bool = False, inplace: bool = False) -> jax.Array:
    r"""Alpha dropout of whole channels (dim 1) of an ``(N, C, *)`` input.

    Note torch's default ``training=False`` for this function.

    Args:
        input: ``(N, C, *)``.
        p: probability of a channel to be dropped. Default: 0.5.
        training: apply dropout if ``True``. Default: ``False``.
        inplace: accepted for torch compatibility (the result is a new array).

    Raises:
        RuntimeError: in training for inputs with fewer than 2 dimensions.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.feature_alpha_dropout(jnp.ones((2, 3, 4)), 0.2, training=True).shape
        (2, 3, 4)
    """
    _check_p(p)
    return _dropout_impl(_float(input), p, training, feature=True, alpha=True)


def dropout1d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> jax.Array:
    r"""Zero whole channels of an ``(N, C, L)`` or ``(C, L)`` input with probability ``p``.

    Args:
        input: ``(N, C, L)`` or ``(C, L)``.
        p: probability of a channel to be zeroed. Default: 0.5.
        training: apply dropout if ``True``. Default: ``True``.
        inplace: accepted for torch compatibility (the result is a new array).

    Raises:
        RuntimeError: for inputs that are not 2-d or 3-d (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> y = F.dropout1d(jnp.ones((4, 8, 5)), 0.5)
        >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())
        True
    """
    _check_p(p)
    x = _float(input)
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs)."
        )
    if x.ndim == 2:
        return _dropout_impl(x[None], p, training, feature=True, alpha=False)[0]
    return _dropout_impl(x, p, training, feature=True, alpha=False)


def dropout2d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> jax.Array:
    r"""Zero whole channels (dim 1) of an ``(N, C, H, W)`` input with probability ``p``.

    As in torch, a 3-d input is treated as ``(N, C, L)`` (1-d channel dropout) with a
    warning, and inputs that are not 3-d or 4-d warn that this is deprecated.

    Args:
        input: ``(N, C, H, W)`` (or ``(N, C, L)``, see above).
        p: probability of a channel to be zeroed. Default: 0.5.
        training: apply dropout if ``True``. Default: ``True``.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.dropout2d(jnp.ones((2, 3, 4, 4)), 0.5).shape
        (2, 3, 4, 4)
    """
    _check_p(p)
    x = _float(input)
    if x.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _dropout_impl(x, p, training, feature=True, alpha=False)


def dropout3d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> jax.Array:
    r"""Zero whole channels of an ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input with probability ``p``.

    Inputs that are not 4-d or 5-d warn that this is deprecated (torch's behaviour).

    Args:
        input: ``(N, C, D, H, W)`` or ``(C, D, H, W)``.
        p: probability of a channel to be zeroed. Default: 0.5.
        training: apply dropout if ``True``. Default: ``True``.
        inplace: accepted for torch compatibility (the result is a new array).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.dropout3d(jnp.ones((3, 2, 2, 2)), 0.5).shape
        (3, 2, 2, 2)
    """
    _check_p(p)
    x = _float(input)
    if x.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout3d "
            "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2,
        )
    if x.ndim != 5:
        return _dropout_impl(x[None], p, training, feature=True, alpha=False)[0]
    return _dropout_impl(x, p, training, feature=True, alpha=False)
