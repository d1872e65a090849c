"""Loss functions (torch.nn.functional semantics, reductions, errors and gradients).

Reductions: ``'none'``, ``'mean'``, ``'sum'``; the deprecated ``size_average``/``reduce``
pair maps to them with torch's warning. Weighted ``'mean'`` in ``nll_loss``/
``cross_entropy`` divides by the sum of the weights of the non-ignored targets (NaN
when every target is ignored, like torch), and the gradient is 0 at ignored targets.

Checks that depend on values (target index out of range, BCE inputs outside
``[0, 1]``, negative Gaussian variances) run when the arrays are concrete; inside
``jax.jit``/``jax.grad`` traces they cannot, and out-of-range indices then give NaN.

Integer targets: any integer dtype is accepted (torch wants ``long``; JAX's default
integer is int32 unless x64 is enabled).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.amp import autocast_op
from jmod._src.functional import _reduction as _R
from jmod._src.functional._torch_ops import (
    clamp_min,
    is_concrete,
    list_str,
    size_str,
    torch_abs,
    torch_dtype_name,
)
from jmod._src.functional.distance import pairwise_distance

__all__ = [
    "nll_loss",
    "cross_entropy",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "kl_div",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "smooth_l1_loss",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "multilabel_margin_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "cosine_embedding_loss",
    "multi_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]


# Every loss validates its arguments in Python (shapes, dtypes, options, and values when
# the arrays are concrete, via NumPy so that checks compile nothing) and then calls a
# ``_*_impl`` kernel that only does array math, which runs eagerly or under any trace.


def _host(x: jax.Array) -> np.ndarray | None:
    """``x`` as a NumPy array when it is concrete (for value checks), else ``None``."""
    return np.asarray(x) if is_concrete(x) else None


# --------------------------------------------------------------------------- helpers
def _arr(x: Any) -> jax.Array:
    return jnp.asarray(x)


def _is_int(x: jax.Array) -> bool:
    return jnp.issubdtype(x.dtype, jnp.integer)


def _is_float(x: jax.Array) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


def _reduction_enum(size_average: Any, reduce: Any, reduction: str) -> int:
    """The reduction of a loss with the legacy arguments (warning stack points at the caller)."""
    if size_average is not None or reduce is not None:
        return _R.get_enum(_R.legacy_get_string(size_average, reduce, stacklevel=4), stacklevel=4)
    return _R.get_enum(reduction, stacklevel=4)


def _reduction_string(size_average: Any, reduce: Any, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return _R.legacy_get_string(size_average, reduce, stacklevel=4)
    return reduction


def _broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """``torch.broadcast_shapes`` with torch's error message."""
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    out = []
    for i, (sa, sb) in enumerate(zip(pa, pb)):
        if sa != sb and sa != 1 and sb != 1:
            raise RuntimeError(
                f"The size of tensor a ({sa}) must match the size of tensor b ({sb}) at non-singleton dimension {i}"
            )
        out.append(sb if sa == 1 else sa)
    return tuple(out)


def _warn_size_mismatch(input: jax.Array, target: jax.Array) -> None:
    if target.shape != input.shape:
        warnings.warn(
            f"Using a target size ({size_str(target.shape)}) that is different to the input size "
            f"({size_str(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=3,
        )


def _check_weighted_reduction(reduction: str) -> None:
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


_WEIGHTED_MODE = {"none": _R.NONE, "mean": _R.MEAN, "sum": _R.SUM}


def _check_weight_size(input: jax.Array, weight: jax.Array) -> None:
    if weight.shape != input.shape:
        raise ValueError("Weights and input must have the same size.")


# ------------------------------------------------------------- NLL / cross entropy
def _check_class_target_dtype(target: jax.Array) -> None:
    if not _is_int(target):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {torch_dtype_name(target.dtype)}")


def _check_class_weight(weight: jax.Array | None, n_classes: int, prefix: str = "") -> None:
    if weight is not None and not (weight.ndim == 1 and weight.size == n_classes):
        raise RuntimeError(
            f"{prefix}weight tensor should be defined either for all {n_classes} classes or no classes "
            f"but got weight tensor of shape: {list_str(weight.shape)}"
        )


def _check_target_bounds(target: jax.Array, n_classes: int, ignore_index: int) -> None:
    t = _host(target)
    if t is None or t.size == 0:
        return
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        first = int(t.reshape(-1)[np.argmax(bad.reshape(-1))])
        raise IndexError(f"Target {first} is out of bounds.")


def _nll_check(input: jax.Array, target: jax.Array, weight: jax.Array | None, ignore_index: int) -> jax.Array:
    """ATen's ``nll_loss_nd`` checks; returns the input (a 1-D input with a (1,) target
    becomes a batch of one, as torch)."""
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim != 1 and input.shape[0] != (target.shape[0] if target.ndim else 0):
        raise ValueError(
            f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
            f"({target.shape[0] if target.ndim else 0})."
        )
    _check_class_target_dtype(target)
    if input.ndim in (1, 2):
        if target.ndim > 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if input.ndim == 1 and target.ndim == 1:
            if target.shape[0] != 1:
                raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}")
            input = input[None]
    elif input.ndim == 4:
        if target.ndim != 3:
            raise RuntimeError(
                f"only batches of spatial targets supported (3D tensors) but got targets of dimension: {target.ndim}"
            )
        if target.shape != (input.shape[0],) + input.shape[2:]:
            raise RuntimeError(f"size mismatch (got input: {list_str(input.shape)} , target: {list_str(target.shape)}")
    else:
        expected = (input.shape[0],) + input.shape[2:]
        if target.shape[1:] != input.shape[2:]:
            raise RuntimeError(f"Expected target size {list_str(expected)}, got {list_str(target.shape)}")
    cax = 0 if input.ndim == 1 else 1
    n_classes = input.shape[cax]
    _check_class_weight(weight, n_classes)
    _check_target_bounds(target, n_classes, ignore_index)
    return input


def _nll_core(
    input: jax.Array, target: jax.Array, weight: jax.Array | None, reduction: int, ignore_index: Any
) -> jax.Array:
    cax = 0 if input.ndim == 1 else 1
    x = jnp.moveaxis(input, cax, -1)
    valid = target != ignore_index
    safe_t = jnp.where(valid, target, 0)
    picked = jnp.take_along_axis(x, safe_t[..., None], axis=-1, mode="fill", fill_value=jnp.nan)[..., 0]
    if weight is None:
        w = jnp.ones((), x.dtype)
        total = jnp.sum(valid).astype(x.dtype)
    else:
        w = jnp.take(weight.astype(x.dtype), safe_t, mode="fill", fill_value=jnp.nan)
        total = jnp.sum(jnp.where(valid, w, 0))
    # ``where`` (not a 0/1 product) so that ignored entries get an exact 0 gradient even
    # when the mean's denominator is 0.
    loss = jnp.where(valid, -picked * w, jnp.zeros((), x.dtype))
    if reduction == _R.NONE:
        return loss
    if reduction == _R.SUM:
        return jnp.sum(loss)
    return jnp.sum(loss) / total


_nll_impl = _nll_core


def _nll_loss_nd(
    input: jax.Array, target: jax.Array, weight: jax.Array | None, reduction: int, ignore_index: int
) -> jax.Array:
    input = _nll_check(input, target, weight, ignore_index)
    return _nll_impl(input, target, weight, reduction, ignore_index)


@autocast_op("nll_loss")
def nll_loss(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Negative log likelihood loss :math:`\ell_n = -w_{y_n} x_{n, y_n}` for log-probabilities.

    Args:
        input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_K)` log-probabilities.
        target: class indices: :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots, d_K)`.
        weight: optional ``(C,)`` rescaling weight per class.
        size_average, reduce: deprecated (see ``reduction``).
        ignore_index: target value that contributes neither to the loss nor to the
            gradient; ``'mean'`` averages over the other targets. Default: -100.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. ``'mean'`` divides by the sum of
            the weights of the non-ignored targets (NaN if there are none).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> logp = jnp.log(jnp.array([[0.5, 0.5], [0.25, 0.75]]))
        >>> [round(v, 4) for v in F.nll_loss(logp, jnp.array([0, 1]), reduction="none").tolist()]
        [0.6931, 0.2877]
    """
    red = _reduction_enum(size_average, reduce, reduction)
    w = None if weight is None else _arr(weight)
    return _nll_loss_nd(_arr(input), _arr(target), w, red, ignore_index)


def _class_weight_view(weight: jax.Array, ndim: int, cax: int, dtype: Any) -> jax.Array:
    shape = [1] * ndim
    shape[cax] = weight.shape[0]
    return weight.astype(dtype).reshape(shape) if ndim > 1 else weight.astype(dtype)


def _ce_prob_impl(
    input: jax.Array, target: jax.Array, weight: jax.Array | None, reduction: int, smooth: bool, label_smoothing: Any
) -> jax.Array:
    cax = 0 if input.ndim == 1 else 1
    n_classes = input.shape[cax]
    logp = jax.nn.log_softmax(input, axis=cax)
    if smooth:
        target = target * (1 - label_smoothing) + (label_smoothing / n_classes)
    prod = logp * target
    if weight is not None:
        prod = prod * _class_weight_view(weight, input.ndim, cax, input.dtype)
    if reduction == _R.MEAN:
        return -jnp.sum(prod) / (input.size // n_classes)
    if reduction == _R.SUM:
        return -jnp.sum(prod)
    return -jnp.sum(prod, axis=cax)


def _ce_index_impl(
    input: jax.Array, target: jax.Array, weight: jax.Array | None, reduction: int, ignore_index: Any
) -> jax.Array:
    return _nll_core(
        jax.nn.log_softmax(input, axis=0 if input.ndim == 1 else 1), target, weight, reduction, ignore_index
    )


def _ce_smooth_impl(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None,
    reduction: int,
    ignore_index: Any,
    label_smoothing: Any,
) -> jax.Array:
    cax = 0 if input.ndim == 1 else 1
    logp = jax.nn.log_softmax(input, axis=cax)
    nll = _nll_core(logp, target, weight, reduction, ignore_index)
    n_classes = logp.shape[cax]
    if weight is not None:
        smooth = -jnp.sum(logp * _class_weight_view(weight, logp.ndim, cax, logp.dtype), axis=cax)
    else:
        smooth = -jnp.sum(logp, axis=cax)
    ignore = target == ignore_index
    smooth = jnp.where(ignore, jnp.zeros((), smooth.dtype), smooth)
    if reduction == _R.MEAN:
        if weight is not None:
            safe_t = jnp.where(ignore, 0, target)
            denom = jnp.sum(
                jnp.where(ignore, 0, jnp.take(weight.astype(logp.dtype), safe_t, mode="fill", fill_value=jnp.nan))
            )
        else:
            denom = jnp.sum(~ignore).astype(logp.dtype)
        ret = jnp.sum(smooth) / denom
    elif reduction == _R.SUM:
        ret = jnp.sum(smooth)
    else:
        ret = smooth
    return (1 - label_smoothing) * nll + ret * (label_smoothing / n_classes)


@autocast_op("cross_entropy_loss")
def cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> jax.Array:
    r"""Cross entropy between logits and class indices or class probabilities.

    With class indices this is ``nll_loss(log_softmax(input, class_dim), target)``; with
    a floating ``target`` of the input's shape it is
    :math:`-\sum_c w_c\, y_{n,c} \log \text{softmax}(x_n)_c` (``'mean'`` then divides by
    the number of samples, not by the weights, as torch).

    Args:
        input: logits :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_K)`.
        target: class indices (shape of the input without the class dim) or class
            probabilities (same shape as the input, floating point).
        weight: optional ``(C,)`` rescaling weight per class.
        size_average, reduce: deprecated (see ``reduction``).
        ignore_index: ignored target value (class-index targets only). Default: -100.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        label_smoothing: in ``[0, 1]``; mixes the targets with the uniform distribution.

    Raises:
        RuntimeError: integer probability targets ("Expected floating point type for
            target with class probabilities"), ``ignore_index`` with probability
            targets, ``label_smoothing > 1``, shape mismatches (torch's messages).
        IndexError: a class index out of range (when the target is concrete).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> round(float(F.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3]))), 4)
        1.3863
        >>> round(float(F.cross_entropy(jnp.zeros((2, 4)), jnp.full((2, 4), 0.25))), 4)
        1.3863
    """
    red = _reduction_enum(size_average, reduce, reduction)
    x, t = _arr(input), _arr(target)
    w = None if weight is None else _arr(weight)
    if x.shape == t.shape:
        if not _is_float(t):
            raise RuntimeError(
                f"Expected floating point type for target with class probabilities, got {torch_dtype_name(t.dtype)}"
            )
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        if x.ndim == 0:
            raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
        _check_class_weight(w, x.shape[0 if x.ndim == 1 else 1], prefix="cross_entropy: ")
        smooth = label_smoothing > 0.0
        if smooth and label_smoothing > 1.0:
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
        if red == _R.MEAN and x.size == 0:
            return jnp.full((), jnp.nan, x.dtype)
        return _ce_prob_impl(x, t.astype(x.dtype), w, red, smooth, label_smoothing)
    if x.ndim == 0:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
        x = _nll_check(x, t, w, ignore_index)
        return _ce_smooth_impl(x, t, w, red, ignore_index, label_smoothing)
    x = _nll_check(x, t, w, ignore_index)
    return _ce_index_impl(x, t, w, red, ignore_index)


# ------------------------------------------------------------------------- BCE
@jax.custom_jvp
def _bce(x: jax.Array, t: jax.Array) -> jax.Array:
    # torch CPU: (t - 1) * max(log1p(-x), -100) - t * max(log(x), -100)
    return (t - 1) * clamp_min(jnp.log1p(-x), -100.0) - t * clamp_min(jnp.log(x), -100.0)


@_bce.defjvp
def _bce_jvp(primals: tuple, tangents: tuple) -> tuple:
    # torch's backward: d/dx = (x - t) / max((1 - x) x, 1e-12), d/dt = -logit(x)
    x, t = primals
    tx, tt = tangents
    out = _bce(x, t)
    dx = (x - t) / jnp.maximum((1 - x) * x, jnp.asarray(1e-12, x.dtype))
    dt = -jnp.log(x / (1 - x))
    return out, dx * tx + dt * tt


@autocast_op("binary_cross_entropy")
def binary_cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Binary cross entropy :math:`-w [y \log x + (1 - y) \log(1 - x)]` between probabilities.

    The logarithms are clamped at -100 and the input gradient uses torch's
    :math:`(x - y) / \max(x(1-x), 10^{-12})`, so ``x`` of exactly 0 or 1 gives finite
    values, as in torch.

    Args:
        input: probabilities in ``[0, 1]``, any shape.
        target: same shape as ``input``, values in ``[0, 1]``.
        weight: optional rescaling weight broadcastable to the target.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: if ``target`` and ``input`` shapes differ (torch's message).
        RuntimeError: if (concrete) inputs or targets are outside ``[0, 1]``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> [round(v, 4) for v in F.binary_cross_entropy(jnp.array([0.5, 1.0]), jnp.array([1.0, 0.0]), reduction="none").tolist()]
        [0.6931, 100.0]
    """
    red = _reduction_enum(size_average, reduce, reduction)
    x, t = _arr(input), _arr(target)
    if t.shape != x.shape:
        raise ValueError(
            f"Using a target size ({size_str(t.shape)}) that is different to the input size ({size_str(x.shape)}) "
            "is deprecated. Please ensure they have the same size."
        )
    w = None
    if weight is not None:
        w = _arr(weight)
        w = jnp.broadcast_to(w, _broadcast_shapes(t.shape, w.shape))
    hx, ht = _host(x), _host(t)
    if hx is not None and hx.size and not ((hx >= 0) & (hx <= 1)).all():
        raise RuntimeError("all elements of input should be between 0 and 1")
    if ht is not None and ht.size and not ((ht >= 0) & (ht <= 1)).all():
        raise RuntimeError("all elements of target should be between 0 and 1")
    return _bce_impl(x, t, w, red)


def _bce_impl(x: jax.Array, t: jax.Array, w: jax.Array | None, reduction: int) -> jax.Array:
    loss = _bce(x, t.astype(x.dtype))
    if w is not None:
        loss = loss * w
    return _R.apply_loss_reduction(loss, reduction)


@autocast_op("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> jax.Array:
    r"""Sigmoid + binary cross entropy in one numerically stable expression.

    :math:`\ell = w [(1 - y) x - (1 + (p - 1) y) \log \sigma(x)]` with ``pos_weight``
    :math:`p` (torch's formula), stable for large :math:`|x|`.

    Args:
        input: logits, any shape.
        target: same shape as ``input``.
        weight: optional rescaling weight broadcastable to the input.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        pos_weight: optional weight of positive examples, broadcast with the target
            (e.g. ``(C,)`` for a ``(N, C)`` target).

    Raises:
        ValueError: if ``target`` and ``input`` shapes differ (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> [round(v, 4) for v in F.binary_cross_entropy_with_logits(jnp.array([0.0, 100.0]), jnp.array([1.0, 0.0]), reduction="none").tolist()]
        [0.6931, 100.0]
    """
    red = _reduction_enum(size_average, reduce, reduction)
    x, t = _arr(input), _arr(target)
    if t.shape != x.shape:
        raise ValueError(f"Target size ({size_str(t.shape)}) must be the same as input size ({size_str(x.shape)})")
    w = None if weight is None else _arr(weight)
    pw = None if pos_weight is None else _arr(pos_weight)
    if w is not None:
        _broadcast_shapes(x.shape, w.shape)
    if pw is not None:
        _broadcast_shapes(t.shape, pw.shape)
    return _bce_logits_impl(x, t, w, pw, red)


def _bce_logits_impl(
    x: jax.Array, t: jax.Array, w: jax.Array | None, pw: jax.Array | None, reduction: int
) -> jax.Array:
    # torch: loss = (1 - t) x - (1 + (pw - 1) t) log_sigmoid(x), times weight
    t = t.astype(x.dtype)
    log_sig = jax.nn.log_sigmoid(x)
    if pw is not None:
        log_sig = log_sig * ((pw - 1) * t + 1)
    loss = (1 - t) * x - log_sig
    if w is not None:
        loss = loss * w
    return _R.apply_loss_reduction(loss, reduction)


# ------------------------------------------------------------------ KL divergence
@autocast_op("kl_div")
def kl_div(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> jax.Array:
    r"""Kullback-Leibler divergence :math:`y (\log y - x)` for log-probabilities ``input``.

    Args:
        input: log-probabilities, any shape.
        target: probabilities (or log-probabilities with ``log_target=True``), same shape.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'``. ``'batchmean'``
            divides the sum by ``input.shape[0]`` (the KL definition); ``'mean'`` divides
            by the number of elements and warns, as torch does.
        log_target: whether ``target`` is given in log space.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> p = jnp.array([[0.25, 0.75]])
        >>> F.kl_div(jnp.log(p), p, reduction="batchmean")
        Array(0., dtype=float32)
    """
    if size_average is not None or reduce is not None:
        red = _R.legacy_get_enum(size_average, reduce)
    else:
        if reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support size."
                "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                stacklevel=2,
            )
        red = _R.SUM if reduction == "batchmean" else _R.get_enum(reduction)
    x, t = _arr(input), _arr(target)
    return _kl_impl(x, t, red, log_target, reduction == "batchmean" and x.ndim != 0)


def _kl_impl(x: jax.Array, t: jax.Array, reduction: int, log_target: bool, batchmean: bool) -> jax.Array:
    if log_target:
        out = jnp.exp(t) * (t - x)
    else:
        out = jax.scipy.special.xlogy(t, t) - t * x
    reduced = _R.apply_loss_reduction(out, reduction)
    return reduced / x.shape[0] if batchmean else reduced


# ------------------------------------------------------------------ regression
def _regression_impl(
    x: jax.Array, t: jax.Array, w: jax.Array | None, param: Any, kind: str, reduction: int, weighted_mean: bool
) -> jax.Array:
    shape = jnp.broadcast_shapes(x.shape, t.shape)
    x, t = jnp.broadcast_to(x, shape), jnp.broadcast_to(t, shape)
    if kind == "l1":
        loss = torch_abs(x - t)
    elif kind == "mse":
        d = x - t
        loss = d * d
    elif kind == "smooth_l1":  # param = beta > 0
        z = torch_abs(x - t)
        loss = jnp.where(z < param, 0.5 * z * z / param, z - 0.5 * param)
    else:  # huber, param = delta > 0
        z = torch_abs(x - t)
        loss = jnp.where(z < param, 0.5 * z * z, param * (z - 0.5 * param))
    if w is not None:
        loss = loss * w
        if reduction == _R.MEAN and weighted_mean:
            return jnp.sum(loss) / jnp.sum(w)
    return _R.apply_loss_reduction(loss, reduction)


@autocast_op("l1_loss")
def l1_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Any = None,
) -> jax.Array:
    r"""Mean absolute error :math:`|x - y|` (gradient 0 where :math:`x = y`, as torch).

    Args:
        input, target: broadcastable arrays (a shape mismatch warns, as torch).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        weight: optional per-element weights of the input's shape; ``'mean'`` then
            divides by ``weight.sum()``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.l1_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
        Array(1.5, dtype=float32)
    """
    x, t = _arr(input), _arr(target)
    _warn_size_mismatch(x, t)
    reduction = _reduction_string(size_average, reduce, reduction)
    _broadcast_shapes(x.shape, t.shape)
    if weight is not None:
        w = _arr(weight)
        _check_weight_size(x, w)
        _check_weighted_reduction(reduction)
        return _regression_impl(x, t, w, 0.0, "l1", _WEIGHTED_MODE[reduction], True)
    return _regression_impl(x, t, None, 0.0, "l1", _R.get_enum(reduction), False)


@autocast_op("mse_loss")
def mse_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Any = None,
) -> jax.Array:
    r"""Mean squared error :math:`(x - y)^2`.

    Args:
        input, target: broadcastable arrays (a shape mismatch warns, as torch).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        weight: optional per-element weights of the input's shape; ``'mean'`` then
            divides by ``weight.sum()``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
        Array(2.5, dtype=float32)
    """
    x, t = _arr(input), _arr(target)
    _warn_size_mismatch(x, t)
    reduction = _reduction_string(size_average, reduce, reduction)
    _broadcast_shapes(x.shape, t.shape)
    if weight is not None:
        w = _arr(weight)
        _check_weight_size(x, w)
        _check_weighted_reduction(reduction)
        return _regression_impl(x, t, w, 0.0, "mse", _WEIGHTED_MODE[reduction], True)
    return _regression_impl(x, t, None, 0.0, "mse", _R.get_enum(reduction), False)


@autocast_op("smooth_l1_loss")
def smooth_l1_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> jax.Array:
    r"""Smooth L1: :math:`0.5 z^2 / \beta` if :math:`z = |x - y| < \beta`, else :math:`z - 0.5\beta`.

    ``beta=0`` is the L1 loss.

    Args:
        input, target: broadcastable arrays (a shape mismatch warns, as torch).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        beta: the threshold (non-negative). Default: 1.

    Raises:
        RuntimeError: if ``beta < 0`` (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")
        Array([0.125, 2.5  ], dtype=float32)
    """
    x, t = _arr(input), _arr(target)
    _warn_size_mismatch(x, t)
    reduction = _reduction_string(size_average, reduce, reduction)
    _broadcast_shapes(x.shape, t.shape)
    red = _R.get_enum(reduction)
    if beta == 0.0:
        return _regression_impl(x, t, None, 0.0, "l1", red, False)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    return _regression_impl(x, t, None, beta, "smooth_l1", red, False)


@autocast_op("huber_loss")
def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0, weight: Any = None) -> jax.Array:
    r"""Huber loss: :math:`0.5 z^2` if :math:`z = |x - y| < \delta`, else :math:`\delta (z - 0.5 \delta)`.

    Args:
        input, target: broadcastable arrays (a shape mismatch warns, as torch).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        delta: the threshold between the quadratic and linear parts (positive).
        weight: optional per-element weights of the input's shape (``'mean'`` is then
            the mean of the weighted losses, as torch).

    Raises:
        RuntimeError: if ``delta <= 0`` (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none", delta=2.0)
        Array([0.125, 4.   ], dtype=float32)
    """
    x, t = _arr(input), _arr(target)
    _warn_size_mismatch(x, t)
    _broadcast_shapes(x.shape, t.shape)
    red = _R.NONE if weight is not None else _R.get_enum(reduction)
    if weight is not None:
        _check_weight_size(x, _arr(weight))
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    if weight is not None:
        _check_weighted_reduction(reduction)
        return _regression_impl(x, t, _arr(weight), delta, "huber", _WEIGHTED_MODE[reduction], False)
    return _regression_impl(x, t, None, delta, "huber", red, False)


def gaussian_nll_loss(
    input: Any, target: Any, var: Any, full: bool = False, eps: float = 1e-6, reduction: str = "mean"
) -> jax.Array:
    r"""Gaussian negative log likelihood :math:`\frac12 (\log \max(v, \epsilon) + (x - y)^2 / \max(v, \epsilon))`.

    The clamp of ``var`` at ``eps`` does not stop its gradient (torch clamps in place
    under ``no_grad``).

    Args:
        input: expectations, ``(N, *)`` or ``(*)``.
        target: samples, same shape as ``input``.
        var: positive variances: same shape as ``input``, one dimension short of it, with
            a single mismatching dimension of size 1, or a Python number.
        full: include the constant :math:`\frac12 \log 2\pi`.
        eps: clamp for ``var``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: negative variances, a ``var`` of the wrong size, a bad reduction
            (torch's messages).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.gaussian_nll_loss(jnp.zeros(2), jnp.zeros(2), jnp.ones(2))
        Array(0., dtype=float32)
    """
    x, t = _arr(input), _arr(target)
    if isinstance(var, (float, int)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * jnp.ones_like(x)
    else:
        var = _arr(var)
        hv = _host(var)
        if hv is not None and (hv < 0).any():
            raise ValueError("var has negative entry/entries")
    if var.shape != x.shape:
        if x.shape[:-1] == var.shape:
            var = var[..., None]
        elif x.ndim == var.ndim and sum(y for a, y in zip(x.shape, var.shape) if a != y) == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not valid")
    return _gaussian_nll_impl(x, t, var, eps, full, _WEIGHTED_MODE[reduction])


def _gaussian_nll_impl(x: jax.Array, t: jax.Array, var: jax.Array, eps: Any, full: bool, reduction: int) -> jax.Array:
    # Clamp the value only; the gradient flows to ``var`` as torch's in-place no_grad clamp.
    var = jax.lax.stop_gradient(jnp.maximum(var, eps)) + (var - jax.lax.stop_gradient(var))
    loss = 0.5 * (jnp.log(var) + (x - t) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _R.apply_loss_reduction(loss, reduction)


@autocast_op("poisson_nll_loss")
def poisson_nll_loss(
    input: Any,
    target: Any,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Poisson negative log likelihood: :math:`e^x - y x` (``log_input``) or :math:`x - y \log(x + \epsilon)`.

    Args:
        input: the expectation (or its log with ``log_input=True``).
        target: samples :math:`y \sim \text{Poisson}`.
        log_input: whether ``input`` is the log of the rate.
        full: add the Stirling term :math:`y \log y - y + \frac12 \log(2\pi y)` for :math:`y > 1`.
        size_average, reduce: deprecated (see ``reduction``).
        eps: avoids :math:`\log 0` when ``log_input=False``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.poisson_nll_loss(jnp.zeros(2), jnp.ones(2))
        Array(1., dtype=float32)
    """
    reduction = _reduction_string(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    return _poisson_nll_impl(_arr(input), _arr(target), eps, log_input, full, _R.get_enum(reduction))


def _poisson_nll_impl(x: jax.Array, t: jax.Array, eps: Any, log_input: bool, full: bool, reduction: int) -> jax.Array:
    if log_input:
        loss = jnp.exp(x) - t * x
    else:
        loss = x - t * jnp.log(x + eps)
    if full:
        stirling = t * jnp.log(t) - t + 0.5 * jnp.log(2 * math.pi * t)
        loss = loss + jnp.where(t <= 1, jnp.zeros((), stirling.dtype), stirling)
    return _R.apply_loss_reduction(loss, reduction)


# ------------------------------------------------------------ margin-type losses
@autocast_op("margin_ranking_loss")
def margin_ranking_loss(
    input1: Any,
    input2: Any,
    target: Any,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r""":math:`\max(0, -y (x_1 - x_2) + \text{margin})` with :math:`y \in \{1, -1\}`.

    Args:
        input1, input2: ``(N)`` or ``()`` scores.
        target: :math:`\pm 1`, same number of dimensions.
        margin: Default: 0.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Raises:
        RuntimeError: if the three arrays have different numbers of dimensions.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.margin_ranking_loss(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]), reduction="none")
        Array([0., 1.], dtype=float32)
    """
    red = _reduction_enum(size_average, reduce, reduction)
    x1, x2, t = _arr(input1), _arr(input2), _arr(target)
    if x1.ndim != x2.ndim or x1.ndim != t.ndim:
        raise RuntimeError(
            "margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {size_str(x1.shape)}, input2: {size_str(x2.shape)}, target: {size_str(t.shape)} "
        )
    return _margin_ranking_impl(x1, x2, t, margin, red)


def _margin_ranking_impl(x1: jax.Array, x2: jax.Array, t: jax.Array, margin: Any, reduction: int) -> jax.Array:
    return _R.apply_loss_reduction(clamp_min(-t * (x1 - x2) + margin, 0), reduction)


@autocast_op("hinge_embedding_loss")
def hinge_embedding_loss(
    input: Any,
    target: Any,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r""":math:`x` where :math:`y = 1`, :math:`\max(0, \text{margin} - x)` where :math:`y = -1`.

    Args:
        input: any shape.
        target: :math:`\pm 1`, same shape.
        margin: Default: 1.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.hinge_embedding_loss(jnp.array([0.3, 0.3]), jnp.array([1.0, -1.0]), reduction="none")
        Array([0.3, 0.7], dtype=float32)
    """
    red = _reduction_enum(size_average, reduce, reduction)
    return _hinge_embedding_impl(_arr(input), _arr(target), margin, red)


def _hinge_embedding_impl(x: jax.Array, t: jax.Array, margin: Any, reduction: int) -> jax.Array:
    zero = jnp.zeros((), x.dtype)
    margin_clamp = clamp_min(margin - x, 0)
    out = jnp.where(t != 1, margin_clamp, zero) + jnp.where(t != -1, x, zero)
    return _R.apply_loss_reduction(out, reduction)


@autocast_op("soft_margin_loss")
def soft_margin_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Two-class logistic loss :math:`\log(1 + e^{-y x})`.

    Args:
        input: any shape.
        target: :math:`\pm 1`, same shape.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> round(float(F.soft_margin_loss(jnp.zeros(2), jnp.array([1.0, -1.0]))), 4)
        0.6931
    """
    red = _reduction_enum(size_average, reduce, reduction)
    return _soft_margin_impl(_arr(input), _arr(target), red)


def _soft_margin_impl(x: jax.Array, t: jax.Array, reduction: int) -> jax.Array:
    return _R.apply_loss_reduction(jnp.log1p(jnp.exp(-x * t)), reduction)


def multilabel_soft_margin_loss(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Multi-label one-versus-all logistic loss, averaged over the classes (last dim).

    :math:`-\frac{1}{C}\sum_c w_c [y_c \log\sigma(x_c) + (1 - y_c)\log\sigma(-x_c)]`.

    Args:
        input: ``(N, C)`` logits.
        target: ``(N, C)`` with values 0 or 1.
        weight: optional ``(C,)`` class weights.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> round(float(F.multilabel_soft_margin_loss(jnp.zeros((1, 3)), jnp.array([[1.0, 0.0, 1.0]]))), 4)
        0.6931
    """
    reduction = _reduction_string(size_average, reduce, reduction)
    x, t = _arr(input), _arr(target)
    w = None if weight is None else _arr(weight)
    _broadcast_shapes(x.shape, t.shape)
    if w is not None:
        _broadcast_shapes(x.shape, w.shape)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    return _multilabel_soft_margin_impl(x, t, w, _WEIGHTED_MODE[reduction])


def _multilabel_soft_margin_impl(x: jax.Array, t: jax.Array, w: jax.Array | None, reduction: int) -> jax.Array:
    loss = -(t * jax.nn.log_sigmoid(x) + (1 - t) * jax.nn.log_sigmoid(-x))
    if w is not None:
        loss = loss * w
    class_dim = x.ndim - 1
    loss = jnp.sum(loss, axis=class_dim) / x.shape[class_dim]
    return _R.apply_loss_reduction(loss, reduction)


@autocast_op("cosine_embedding_loss")
def cosine_embedding_loss(
    input1: Any,
    input2: Any,
    target: Any,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r""":math:`1 - \cos(x_1, x_2)` where :math:`y = 1`, :math:`\max(0, \cos(x_1, x_2) - \text{margin})` where :math:`y = -1`.

    Args:
        input1, input2: ``(N, D)`` (with a ``(N,)`` target) or ``(D,)`` (with a 0-d target).
        target: :math:`\pm 1`.
        margin: in ``[-1, 1]``; 0 to 0.5 is suggested. Default: 0.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Raises:
        RuntimeError: for the dimension combinations torch rejects (its messages).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.cosine_embedding_loss(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.0]]), jnp.array([1.0]))
        Array(0., dtype=float32)
    """
    red = _reduction_enum(size_average, reduce, reduction)
    x1, x2, t = _arr(input1), _arr(input2), _arr(target)
    td = t.ndim
    if td not in (0, 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if td == 1:
        if not (x1.ndim == 2 and x2.ndim == 2):
            raise RuntimeError(
                f"1D target tensor expects 2D input tensors, but found inputs with sizes {list_str(x1.shape)} "
                f"and {list_str(x2.shape)}."
            )
    elif not (x1.ndim == 1 and x2.ndim == 1):
        raise RuntimeError(
            f"0D target tensor expects 1D input tensors, but found inputs with sizes {list_str(x1.shape)} "
            f"and {list_str(x2.shape)}."
        )
    cos_shape = _broadcast_shapes(x1.shape, x2.shape)[:td]
    _broadcast_shapes(t.shape, cos_shape)
    return _cosine_embedding_impl(x1, x2, t, margin, red)


def _cosine_embedding_impl(x1: jax.Array, x2: jax.Array, t: jax.Array, margin: Any, reduction: int) -> jax.Array:
    td = t.ndim
    eps = 1e-12
    prod_sum = jnp.sum(x1 * x2, axis=td)
    mag_square1 = jnp.sum(x1 * x1, axis=td) + eps
    mag_square2 = jnp.sum(x2 * x2, axis=td) + eps
    cos = prod_sum / jnp.sqrt(mag_square1 * mag_square2)
    zero = jnp.zeros((), cos.dtype)
    out = jnp.where(t == 1, 1 - cos, zero) + jnp.where(t == -1, clamp_min(cos - margin, 0), zero)
    return _R.apply_loss_reduction(out, reduction)


def _margin_shape_check(x: jax.Array, name: str) -> tuple[int, int]:
    ok = (x.ndim == 2 and x.shape[1] != 0) or (x.ndim == 1 and x.shape[0] != 0) or x.ndim == 0
    if not ok:
        raise RuntimeError(
            f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: {list_str(x.shape)}"
        )
    if x.ndim <= 1:
        return 1, 1 if x.ndim == 0 else x.shape[0]
    return x.shape[0], x.shape[1]


@autocast_op("multi_margin_loss")
def multi_margin_loss(
    input: Any,
    target: Any,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Multi-class hinge loss :math:`\frac1C \sum_{j \ne y} w_y \max(0, \text{margin} - x_y + x_j)^p`.

    Args:
        input: ``(N, C)`` or ``(C,)`` scores.
        target: ``(N,)`` class indices (or 0-d/``(1,)`` for a ``(C,)`` input).
        p: 1 or 2.
        margin: Default: 1.
        weight: optional ``(C,)`` weight per class (applied by target class).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> round(float(F.multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))), 4)
        0.325
    """
    red = _reduction_enum(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError("only p == 1 and p == 2 supported")
    w = None
    if weight is not None:
        w = _arr(weight)
        if w.ndim != 1:
            raise ValueError("weight must be one-dimensional")
    x, t = _arr(input), _arr(target)
    nframe, dim = _margin_shape_check(x, "multi_margin_loss")
    if not (t.ndim <= 1 and t.size == nframe):
        raise RuntimeError(
            "multi_margin_loss: target tensor should be 1-D with size equal to the number of input samples "
            f"(batch size). Expected target size [{nframe}], but got {list_str(t.shape)}. "
            f"Input has shape {list_str(x.shape)}."
        )
    if w is not None and not (w.ndim <= 1 and w.size == dim):
        raise RuntimeError(f"inconsistent weight size, expected {dim} but got {list_str(w.shape)}")
    ht = _host(t)
    if ht is not None and ht.size and ((ht < 0) | (ht >= dim)).any():
        raise RuntimeError("target out of range")
    return _multi_margin_impl(x, t, w, p, margin, red)


def _multi_margin_impl(
    x: jax.Array, t: jax.Array, w: jax.Array | None, p: int, margin: Any, reduction: int
) -> jax.Array:
    nframe, dim = (1, 1 if x.ndim == 0 else x.shape[0]) if x.ndim <= 1 else x.shape
    x2 = x.reshape(nframe, dim)
    t1 = t.reshape(nframe)
    x_y = jnp.take_along_axis(x2, t1[:, None], axis=1, mode="fill", fill_value=jnp.nan)
    z = margin - x_y + x2
    h = z if p == 1 else z * z
    if w is not None:
        h = h * jnp.take(w.astype(x.dtype), t1, mode="fill", fill_value=jnp.nan)[:, None]
    not_target = jnp.arange(dim)[None, :] != t1[:, None]
    h = jnp.where((z > 0) & not_target, h, jnp.zeros((), h.dtype))
    loss = (jnp.sum(h, axis=1) / dim).reshape(t.shape)
    return _R.apply_loss_reduction(loss, reduction)


@autocast_op("multilabel_margin_loss")
def multilabel_margin_loss(
    input: Any,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Multi-label hinge loss :math:`\sum_{j,i} \max(0, 1 - (x_{y_j} - x_i)) / C` over target
    classes :math:`y_j` and non-target classes :math:`i`.

    ``target`` holds class indices padded with -1: only the entries before the first
    -1 are targets.

    Args:
        input: ``(C)`` or ``(N, C)`` scores.
        target: integer class indices of the input's shape, padded with -1.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))
        Array(0.85, dtype=float32)
    """
    red = _reduction_enum(size_average, reduce, reduction)
    x, t = _arr(input), _arr(target)
    nframe, dim = _margin_shape_check(x, "multilabel_margin_loss")
    if not ((x.ndim <= 1 and t.ndim <= 1 and t.size == dim) or (x.ndim == 2 and t.shape == x.shape)):
        raise RuntimeError(f"inconsistent target size: {list_str(t.shape)} for input of size: {list_str(x.shape)}")
    ht = _host(t)
    if ht is not None and ht.size:
        ht2 = ht.reshape(nframe, dim)
        if (np.cumprod(ht2 >= 0, axis=1).astype(bool) & (ht2 >= dim)).any():
            raise RuntimeError("argument #2 'target' is out of range")
    return _multilabel_margin_impl(x, t, red)


def _multilabel_margin_impl(x: jax.Array, t: jax.Array, reduction: int) -> jax.Array:
    nframe, dim = (1, 1 if x.ndim == 0 else x.shape[0]) if x.ndim <= 1 else x.shape
    x2 = x.reshape(nframe, dim)
    t2 = t.reshape(nframe, dim)
    # Targets are the entries before the first -1.
    valid = jnp.cumprod(t2 >= 0, axis=1).astype(bool)
    safe = jnp.where(valid, t2, 0)
    is_target = jnp.any((safe[:, :, None] == jnp.arange(dim)[None, None, :]) & valid[:, :, None], axis=1)
    x_y = jnp.take_along_axis(x2, safe, axis=1, mode="fill", fill_value=jnp.nan)  # (n, dim)
    z = 1 - x_y[:, :, None] + x2[:, None, :]  # [n, j, i]
    use = valid[:, :, None] & ~is_target[:, None, :] & (z > 0)
    loss = jnp.sum(jnp.where(use, z, jnp.zeros((), z.dtype)), axis=(1, 2)) / dim
    loss = loss.reshape(()) if x.ndim <= 1 else loss
    return _R.apply_loss_reduction(loss, reduction)


@autocast_op("triplet_margin_loss")
def triplet_margin_loss(
    anchor: Any,
    positive: Any,
    negative: Any,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""Triplet loss :math:`\max(d(a, p) - d(a, n) + \text{margin}, 0)` with the
    :math:`p`-norm distance :math:`d(x, y) = \lVert x - y + \epsilon \rVert_p`.

    Args:
        anchor, positive, negative: ``(N, D)`` or ``(D,)``, same number of dimensions.
        margin: positive margin. Default: 1.
        p: norm degree. Default: 2.
        eps: added to the differences for numerical stability.
        swap: use the distance swap (min of :math:`d(a, n)` and :math:`d(p, n)`).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> a = jnp.zeros((1, 2)); pos = jnp.zeros((1, 2)); neg = jnp.array([[3.0, 4.0]])
        >>> F.triplet_margin_loss(a, pos, neg, eps=0.0)
        Array(0., dtype=float32)
    """
    red = _reduction_enum(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a, pos, neg = _arr(anchor), _arr(positive), _arr(negative)
    if not (a.ndim == pos.ndim == neg.ndim):
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, "
            f"but got: anchor {a.ndim}D, positive {pos.ndim}D, and negative {neg.ndim}D inputs"
        )
    return _triplet_margin_impl(a, pos, neg, margin, float(p), eps, swap, red)


def _triplet_margin_impl(
    a: jax.Array, pos: jax.Array, neg: jax.Array, margin: Any, p: float, eps: Any, swap: bool, reduction: int
) -> jax.Array:
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = jnp.minimum(d_neg, pairwise_distance(pos, neg, p, eps))
    return _R.apply_loss_reduction(clamp_min(margin + d_pos - d_neg, 0), reduction)


def triplet_margin_with_distance_loss(
    anchor: Any,
    positive: Any,
    negative: Any,
    *,
    distance_function: Any = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    r"""Triplet loss :math:`\max(d(a, p) - d(a, n) + \text{margin}, 0)` with any distance :math:`d`.

    Args:
        anchor, positive, negative: arrays with the same number of dimensions, e.g.
            ``(N, D)`` or ``(D,)`` (any shapes ``distance_function`` takes).
        distance_function: a callable ``d(x1, x2)`` returning the distances (non-negative);
            ``None`` uses the pairwise distance :math:`\lVert x_1 - x_2 + 10^{-6} \rVert_2`
            over the last dimension (``F.pairwise_distance``'s defaults).
        margin: positive margin. Default: 1.
        swap: use the distance swap (min of :math:`d(a, n)` and :math:`d(p, n)`).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: an invalid ``reduction`` or ``margin <= 0`` (torch's messages).
        RuntimeError: inputs with different numbers of dimensions.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> a = jnp.zeros((1, 2)); pos = jnp.zeros((1, 2)); neg = jnp.array([[0.5, 0.0]])
        >>> l1 = lambda x, y: jnp.abs(x - y).sum(-1)
        >>> F.triplet_margin_with_distance_loss(a, pos, neg, distance_function=l1)
        Array(0.5, dtype=float32)
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a, pos, neg = _arr(anchor), _arr(positive), _arr(negative)
    if not (a.ndim == pos.ndim == neg.ndim):
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, "
            f"but got: anchor {a.ndim}D, positive {pos.ndim}D, and negative {neg.ndim}D inputs"
        )
    if distance_function is None:
        distance_function = pairwise_distance
    dist_pos = distance_function(a, pos)
    dist_neg = distance_function(a, neg)
    if swap:
        dist_neg = jnp.minimum(dist_neg, distance_function(pos, neg))
    loss = clamp_min(margin + dist_pos - dist_neg, 0)
    return _R.apply_loss_reduction(loss, _WEIGHTED_MODE[reduction])
