"""``linear_cross_entropy``: a linear layer followed by cross entropy, and its options.

Without ``options`` it is exactly ``cross_entropy(linear(input, linear_weight,
linear_bias), target, ...)`` (torch's reference path). With a
:class:`LinearCrossEntropyOptions` (and a configuration torch's chunked path supports:
class-index targets, no label smoothing, a 2-D ``linear_weight``) the batch is split
into chunks of ``batch_chunk_size`` rows (torch's rule for resolving it from
``chunking_method``); each chunk's logits are computed, reduced to per-row losses and
recomputed in the backward pass (``jax.checkpoint`` inside ``jax.lax.map``), so the
full ``(N, C)`` logits are never held at once. ``acc_policy`` is validated and
accepted: XLA decides which intermediates it keeps, so the three policies compute the
same thing. ``acc_dtype`` (float32 for float16/bfloat16 inputs, as torch resolves it on
CPU) is the dtype the chunk's logits and softmax are computed in.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.functional._torch_ops import torch_dtype_name
from jmod._src.functional.linear import linear
from jmod._src.functional.loss import _is_int, _nll_check, cross_entropy

__all__ = ["LinearCrossEntropyOptions", "linear_cross_entropy"]

_ACC_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _dtype_name(dtype: Any) -> str | None:
    """A jnp dtype name for a jnp/NumPy dtype or a torch dtype (``torch.float32``)."""
    if dtype is None:
        return None
    text = str(dtype)
    if text.startswith("torch."):
        text = text[len("torch.") :]
    try:
        return jnp.dtype(text).name
    except TypeError:
        return None


@dataclasses.dataclass(slots=True, frozen=True)
class LinearCrossEntropyOptions:
    """Configuration of the chunked :func:`~jmod.nn.functional.linear_cross_entropy`.

    The chunked implementation processes the batch dimension in pieces, so the full
    ``(num_batches, num_classes)`` logits are never materialized: useful when
    ``num_classes`` is much larger than ``in_features`` (LLM vocabulary heads). Pass
    ``options=None`` for the reference path, an instance of this class to opt in.
    Unsupported configurations (probability targets, label smoothing, K-dimensional
    weights) fall back to the reference path with a warning, as in torch.

    Args:
        allow_retain_graph: accepted for torch compatibility (jmod's gradients are
            functional; a second gradient computation always works). Default: ``False``.
        batch_chunk_size: rows per chunk; ``None`` means one chunk (or the size
            ``chunking_method`` gives). Must be a positive int.
        chunking_method: ``"auto"`` (``"aspect_ratio:2"``, or ``"aspect_ratio"`` for
            float16/bfloat16 inputs: torch's CPU picks), ``"aspect_ratio"`` (chunks whose
            logits take the memory of the input:
            ``next_pow2(ceil(N / ceil(C / in_features)))`` rows), ``"aspect_ratio:K"``
            (that divided by ``K``), or ``None`` (use ``batch_chunk_size``).
        acc_policy: ``"auto"`` | ``"accurate"`` | ``"balanced"`` | ``"compact"``:
            torch's memory/precision trade-offs between its intermediates; validated and
            accepted (under XLA the compiler decides what is kept).
        acc_dtype: the accumulation dtype: ``None`` (float32 for float16/bfloat16
            inputs under ``acc_policy="auto"``, else the input's dtype), or one of
            float16, bfloat16, float32, float64 (jnp or torch dtypes).

    Raises:
        ValueError: an unknown ``acc_policy`` or ``chunking_method``, a non-positive
            ``batch_chunk_size``, an unsupported ``acc_dtype`` (torch's messages).

    Examples:
        >>> from jmod import nn
        >>> nn.LinearCrossEntropyOptions(batch_chunk_size=64)
        LinearCrossEntropyOptions(allow_retain_graph=False, batch_chunk_size=64, chunking_method='auto', acc_policy='auto', acc_dtype=None)
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: Literal["accurate", "balanced", "compact", "auto"] = "auto"
    acc_dtype: Any = None

    def __post_init__(self) -> None:
        if self.acc_policy not in {"auto", "accurate", "balanced", "compact"}:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = self.chunking_method.partition(":")
            if not sep:
                factor = "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}")
        if not (
            self.batch_chunk_size is None
            or (
                isinstance(self.batch_chunk_size, int)
                and not isinstance(self.batch_chunk_size, bool)
                and self.batch_chunk_size > 0
            )
        ):
            raise ValueError(f"batch_chunk_size must be positive int or None, got {self.batch_chunk_size!r}")
        if self.acc_dtype is not None and _dtype_name(self.acc_dtype) not in _ACC_DTYPES:
            raise ValueError(
                "acc_dtype must be one of {None, float16, bfloat16, float32, float64}, "
                f"got {self.acc_dtype!r}. Pass acc_dtype=None to let the op pick automatically."
            )

    def _chunk_size(self, num_batches: int, in_features: int, num_classes: int, dtype: Any) -> int:
        """torch's ``_adjust``: the batch chunk size for a call (raises on a conflict)."""
        method = self.chunking_method
        if method == "auto" and self.batch_chunk_size is not None:
            method = None
        if method == "auto":
            method = "aspect_ratio" if jnp.dtype(dtype).name in ("float16", "bfloat16") else "aspect_ratio:2"
        size = num_batches if self.batch_chunk_size is None else min(self.batch_chunk_size, num_batches)
        if method is not None:
            factor = int(method.split(":", 1)[1]) if ":" in method else 1
            inc = -(-num_classes // in_features) if in_features else num_classes
            target = -(-num_batches // inc) if inc else num_batches
            size = min((1 << (target - 1).bit_length()) // factor, num_batches)
            if self.batch_chunk_size is not None and self.batch_chunk_size != size:
                raise ValueError(
                    f"batch_chunk_size (={self.batch_chunk_size}) and chunking_method ('{method}') give different "
                    f"chunk sizes ({self.batch_chunk_size} vs {size}); pass only one."
                )
        return max(1, size)

    def _acc_dtype(self, dtype: Any) -> Any:
        if self.acc_dtype is not None:
            return jnp.dtype(_dtype_name(self.acc_dtype))
        if self.acc_policy == "auto" and jnp.dtype(dtype).name in ("float16", "bfloat16"):
            return jnp.dtype(jnp.float32)
        return jnp.dtype(dtype)


def linear_cross_entropy(
    input: Any,
    linear_weight: Any,
    target: Any,
    *,
    linear_bias: Any = None,
    weight: Any = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: LinearCrossEntropyOptions | None = None,
) -> jax.Array:
    r"""Cross entropy of ``input`` transformed linearly: ``cross_entropy(linear(input, linear_weight), target)``.

    Args:
        input: :math:`(\text{in\_features})` or :math:`(N, \text{in\_features})`.
        linear_weight: :math:`(C, \text{in\_features})`, or
            :math:`(C, d_1, \dots, d_K, \text{in\_features})` for a K-dimensional loss
            (batched input only).
        target: class indices :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots, d_K)`;
            or class probabilities of the logits' shape :math:`(C)`, :math:`(N, C)` or
            :math:`(N, C, d_1, \dots, d_K)`.
        linear_bias: optional bias of shape :math:`(C, d_1, \dots, d_K)`.
        weight: optional ``(C,)`` rescaling weight per class.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        ignore_index: ignored target value; ``None`` means -100 for class indices and
            is required for probability targets.
        label_smoothing: in ``[0, 1]``.
        options: ``None`` (reference path) or a :class:`LinearCrossEntropyOptions`
            (batch-chunked path).

    Raises:
        RuntimeError: wrong dimensions or shapes, ``ignore_index`` with probability
            targets (torch's messages), and :func:`cross_entropy`'s errors.
        ValueError: ``batch_chunk_size`` and ``chunking_method`` giving different sizes.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.ones((2, 3)); w = jnp.zeros((4, 3))
        >>> round(float(F.linear_cross_entropy(x, w, jnp.array([0, 3]))), 4)
        1.3863
    """
    x, lw, t = jnp.asarray(input), jnp.asarray(linear_weight), jnp.asarray(target)
    b = None if linear_bias is None else jnp.asarray(linear_bias)
    w = None if weight is None else jnp.asarray(weight)
    if x.ndim < 1 or x.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {x.ndim}")
    if lw.ndim < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {lw.ndim}")
    num_batches = x.shape[:-1]
    in_features = x.shape[-1]
    if in_features != lw.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {x.shape[-1]} and {lw.shape[-1]}, respectively"
        )
    num_classes = lw.shape[0]
    out_features = tuple(lw.shape[1:-1])
    if b is not None and tuple(b.shape) != (num_classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(num_classes, *out_features)}, got {tuple(b.shape)}")
    if len(out_features) > 0 and len(num_batches) == 0:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(lw.shape)} requires"
            f" batched input, (N, {in_features}), got unbatched"
            f" input with shape {tuple(x.shape)}"
        )
    logits_shape = (*num_batches, num_classes, *out_features)
    if tuple(t.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = ignore_index if ignore_index is not None else -100
    long_target = _is_int(t) and torch_dtype_name(t.dtype) == "Long"
    chunked = (
        options is not None
        and reduction in {"mean", "sum", "none"}
        and label_smoothing == 0.0
        and long_target
        and not out_features
    )
    if options is not None and not chunked:
        warnings.warn(
            "linear_cross_entropy: ``options`` ignored; chunked path needs "
            "reduction in {'mean','sum','none'}, label_smoothing == 0, target.dtype"
            " == int64, out_features == (). Got "
            f"reduction={reduction!r}, label_smoothing={label_smoothing}, "
            f"target.dtype={t.dtype}, out_features={out_features}"
            ", tracing=False"
            f", linear_bias.shape={tuple(b.shape) if b is not None else None}.",
            stacklevel=2,
        )
    if chunked:
        return _chunked(x, lw, t, b, w, reduction, ignore_index, options)
    if out_features:
        lw = lw.reshape((math.prod(out_features, start=num_classes), in_features))
        if b is not None:
            b = b.reshape(math.prod(out_features, start=num_classes))
    logits = linear(x, lw, b).reshape(logits_shape)
    return cross_entropy(
        logits, t, weight=w, reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing
    )


def _chunked(
    x: jax.Array,
    lw: jax.Array,
    t: jax.Array,
    b: jax.Array | None,
    w: jax.Array | None,
    reduction: str,
    ignore_index: int,
    options: LinearCrossEntropyOptions,
) -> jax.Array:
    # cross_entropy's checks and messages on the target (shapes, dtype, weight, bounds).
    _nll_check(np.broadcast_to(np.zeros((), x.dtype), (*x.shape[:-1], lw.shape[0])), t, w, ignore_index)
    batched = x.ndim == 2
    if not batched:
        x, t = x[None], t[None]
    num_batches, in_features = x.shape
    num_classes = lw.shape[0]
    chunk = options._chunk_size(num_batches, in_features, num_classes, x.dtype)
    acc = options._acc_dtype(x.dtype)
    dtype = jnp.dtype(x.dtype)
    if dtype != acc and not (dtype.name in ("float16", "bfloat16") and acc == jnp.float32):
        raise RuntimeError(
            "linear_cross_entropy supports float32 acc_dtype with"
            f" float16/bfloat16 inputs, but got {acc.name} acc_dtype and {dtype.name} inputs."
        )
    n_chunks = -(-num_batches // chunk)
    pad = n_chunks * chunk - num_batches
    xs = jnp.pad(x, ((0, pad), (0, 0))).reshape(n_chunks, chunk, in_features)
    ts = jnp.pad(t, (0, pad), constant_values=ignore_index).reshape(n_chunks, chunk)
    lw_acc = lw.astype(acc)
    b_acc = None if b is None else b.astype(acc)
    w_acc = None if w is None else w.astype(acc)

    @jax.checkpoint
    def rows(args: tuple) -> tuple:
        xc, tc = args
        logp = jax.nn.log_softmax(linear(xc.astype(acc), lw_acc, b_acc), axis=-1)
        valid = tc != ignore_index
        safe = jnp.where(valid, tc, 0)
        picked = jnp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
        wt = jnp.ones((), acc) if w_acc is None else jnp.take(w_acc, safe)
        zero = jnp.zeros((), acc)
        return jnp.where(valid, -picked * wt, zero), jnp.where(valid, wt * jnp.ones_like(picked), zero)

    losses, weights = jax.lax.map(rows, (xs, ts))
    losses = losses.reshape(-1)[:num_batches]
    if reduction == "none":
        out = losses if batched else losses[0]
    elif reduction == "sum":
        out = jnp.sum(losses)
    else:
        out = jnp.sum(losses) / jnp.sum(weights.reshape(-1)[:num_batches])
    return out.astype(dtype)
