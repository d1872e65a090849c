"""``embedding``, ``embedding_bag`` and ``one_hot`` (torch.nn.functional semantics).

Gradients follow torch's embedding backward: lookups of ``padding_idx`` contribute no
gradient, and ``scale_grad_by_freq`` divides each row's gradient by the number of times
its index occurs in the mini-batch.

``max_norm``: torch renormalises the looked-up rows of ``weight`` *in place* (under
``no_grad``) before the lookup. JAX arrays are immutable, so here the lookup uses the
renormalised rows and, when ``weight`` is a module's parameter (e.g. ``emb.weight``, or
any array read from a module), that parameter is updated to the renormalised array, as
torch's in-place write would; other arrays are left unchanged (call
:func:`embedding_renorm` to get the new table). The renormalisation itself is not
differentiated (torch runs it under ``no_grad``): the gradient of the weight is the
gradient of a plain lookup of the renormalised table.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.arrays import is_tracer, long_dtype
from jmod._src.functional._torch_ops import size_str, torch_dtype_name, vector_norm

__all__ = ["embedding", "embedding_bag", "embedding_renorm", "one_hot"]


@jax.custom_jvp
def _scale_grad(x: jax.Array, scale: jax.Array) -> jax.Array:
    """Identity on ``x`` whose derivative is multiplied by ``scale`` (no gradient to ``scale``)."""
    return x


@_scale_grad.defjvp
def _scale_grad_jvp(primals: tuple, tangents: tuple) -> tuple:
    x, scale = primals
    tx, _ = tangents
    return x, tx * scale.astype(tx.dtype)


def _check_indices(input: jax.Array, fn: str) -> None:
    if not jnp.issubdtype(input.dtype, jnp.integer):
        raise RuntimeError(
            f"Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int; "
            f"but got torch.{torch_dtype_name(input.dtype)}Tensor instead (while checking arguments for {fn})"
        )


def _normalize_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    if padding_idx is None:
        return None
    if padding_idx > 0:
        if padding_idx >= num_embeddings:
            raise AssertionError("Padding_idx must be within num_embeddings")
    elif padding_idx < 0:
        if padding_idx < -num_embeddings:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx = num_embeddings + padding_idx
    return padding_idx


def _write_back(weight: Any, new: jax.Array) -> None:
    """Emulate torch's in-place renorm on the parameter ``weight`` was read from (if any).

    Skipped when ``new`` is traced but ``weight`` is not (a concrete parameter closed over
    by a plain ``jax.jit``): the traced value could not leave the trace. Inside
    ``functional_call``/``jmod.jit`` the parameter itself is traced and is written.
    """
    from jmod.nn.parameter import owner_of

    slot = owner_of(weight)
    if slot is not None and (is_tracer(weight) or not is_tracer(new)):
        slot.data = new
        slot._note_read()


def embedding_renorm(weight: Any, input: Any, max_norm: float, norm_type: float = 2.0) -> jax.Array:
    r"""torch's ``embedding_renorm_`` as a pure function: return ``weight`` with every row
    indexed by ``input`` whose ``norm_type``-norm exceeds ``max_norm`` scaled by
    ``max_norm / (norm + 1e-7)``. Not differentiated through (the result's gradient
    passes to ``weight`` unchanged), as torch runs it under ``no_grad``.

    Args:
        weight: ``(num_embeddings, embedding_dim)`` table.
        input: integer indices of the rows to renormalise.
        max_norm: the largest allowed norm.
        norm_type: the p of the p-norm. Default: 2.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> w = F.embedding_renorm(jnp.array([[3.0, 4.0], [0.3, 0.4]]), jnp.array([0, 1]), 1.0)
        >>> [[round(v, 4) for v in row] for row in w.tolist()]
        [[0.6, 0.8], [0.3, 0.4]]
    """
    w = jnp.asarray(weight)
    idx = jnp.asarray(input)
    _check_indices(idx, "embedding_renorm_")
    idx = idx.reshape(-1)
    if idx.size == 0:
        return w
    rows = jnp.take(w, idx, axis=0, mode="clip")
    norms = vector_norm(rows, norm_type, axis=-1)
    scale = jnp.where(norms > max_norm, max_norm / (norms + 1e-7), jnp.ones((), norms.dtype)).astype(w.dtype)
    renormed = jax.lax.stop_gradient(w.at[idx].set(rows * scale[:, None], mode="drop"))
    # Value of the renormalised table, gradient of the identity (x - stop_gradient(x) == 0).
    return renormed + (w - jax.lax.stop_gradient(w))


def _host(x: Any) -> np.ndarray | None:
    """``x`` on the host when concrete (value checks use NumPy: they compile nothing and
    also work on constants closed over by a trace), else ``None``."""
    return None if is_tracer(x) else np.asarray(x)


def _check_bounds(idx: jax.Array, num: int) -> None:
    h = _host(idx)
    if h is not None and h.size and (h.min() < 0 or h.max() >= num):
        raise IndexError("index out of range in self")


def _lookup(weight: jax.Array, idx: jax.Array) -> jax.Array:
    # Out-of-range indices (only possible under a trace, where they cannot be checked)
    # give NaN rows instead of silently wrapping or clamping.
    safe = jnp.where(idx < 0, weight.shape[0], idx)
    return jnp.take(weight, safe, axis=0, mode="fill", fill_value=jnp.nan)


def _grad_scale(idx: jax.Array, num: int, padding_idx: int | None, scale_grad_by_freq: bool) -> jax.Array | None:
    """Per-index gradient multiplier (0 at padding_idx, 1/count with scale_grad_by_freq)."""
    scale = None
    if scale_grad_by_freq:
        flat = idx.reshape(-1)
        counts = jnp.zeros((num,), jnp.int32).at[flat].add(1, mode="drop")
        scale = 1.0 / jnp.maximum(jnp.take(counts, idx, mode="clip"), 1).astype(jnp.float32)
    if padding_idx is not None:
        keep = (idx != padding_idx).astype(jnp.float32)
        scale = keep if scale is None else scale * keep
    return scale


def _bag_freq_scale(idx: jax.Array, num: int) -> jax.Array:
    """The gradient divisor torch's CPU ``embedding_bag`` backward uses for ``scale_grad_by_freq``.

    torch (``_embedding_bag_dense_backward_cpu_sum_mean``) divides the gradient of the
    k-th smallest distinct index by ``counts[sorted_indices[k]]`` (the count of the
    value at sorted *position* k), not by that index's own count as ``embedding`` does.
    jmod reproduces this so that gradients match torch's.
    """
    flat = idx.reshape(-1)
    counts = jnp.zeros((num,), jnp.int32).at[flat].add(1, mode="drop")
    srt = jnp.sort(flat)
    first = jnp.concatenate([jnp.ones((1,), bool), srt[1:] != srt[:-1]])
    rank_at = jnp.cumsum(first) - 1  # rank among distinct values, per sorted position
    rank = rank_at[jnp.searchsorted(srt, flat, side="left")]
    divisor = jnp.take(counts, srt[rank], mode="clip")
    return 1.0 / jnp.maximum(divisor, 1).astype(jnp.float32)


def embedding(
    input: Any,
    weight: Any,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> jax.Array:
    r"""Look up rows of ``weight`` by the integer indices in ``input``.

    Args:
        input: integer indices of any shape.
        weight: ``(num_embeddings, embedding_dim)`` table.
        padding_idx: lookups of this index get no gradient (negative counts from the end).
        max_norm: renormalise the looked-up rows to at most this ``norm_type``-norm (see
            the module docstring for how the in-place update is emulated).
        norm_type: the p of the p-norm for ``max_norm``. Default: 2.
        scale_grad_by_freq: scale each row's gradient by the inverse of its frequency in
            ``input``.
        sparse: accepted for torch compatibility (gradients are dense in JAX).

    Returns:
        ``(*input.shape, embedding_dim)``.

    Raises:
        RuntimeError: non-integer indices or a weight that is not 2-D.
        IndexError: an index out of range (checked when ``input`` is concrete).
        AssertionError: ``padding_idx`` out of range (torch's message).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> w = jnp.arange(6.0).reshape(3, 2)
        >>> F.embedding(jnp.array([[0, 2]]), w)
        Array([[[0., 1.],
                [4., 5.]]], dtype=float32)
    """
    idx = jnp.asarray(input)
    w = jnp.asarray(weight)
    _check_indices(idx, "embedding")
    if w.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    num = w.shape[0]
    padding_idx = _normalize_padding_idx(padding_idx, num)
    _check_bounds(idx, num)
    if max_norm is not None:
        w = embedding_renorm(w, idx, max_norm, norm_type)
        _write_back(weight, w)
    out = _lookup(w, idx)
    scale = _grad_scale(idx, num, padding_idx, scale_grad_by_freq)
    if scale is not None:
        out = _scale_grad(out, scale[..., None])
    return out


def embedding_bag(
    input: Any,
    weight: Any,
    offsets: Any = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Any = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> jax.Array:
    r"""Sums, means or maxes of bags of embeddings, without materialising each lookup's
    gradient path separately.

    Args:
        input: ``(B, N)`` (``B`` bags of ``N`` indices; ``offsets`` must be ``None``) or
            ``(L,)`` (bags delimited by ``offsets``).
        weight: ``(num_embeddings, embedding_dim)`` table.
        offsets: ``(B,)`` start position of each bag in a 1-D ``input`` (``(B+1,)`` with
            ``include_last_offset``). Empty bags give zeros.
        max_norm, norm_type: renormalise looked-up rows, as :func:`embedding`.
        scale_grad_by_freq: scale gradients by inverse frequency (not with ``'max'``), with
            the divisor torch's CPU kernel uses (see :func:`_bag_freq_scale`).
        mode: ``'sum'``, ``'mean'`` or ``'max'``.
        sparse: accepted for torch compatibility (not with ``'max'``).
        per_sample_weights: weights of ``input``'s shape (``'sum'`` only).
        include_last_offset: ``offsets`` has one more entry, the end of the last bag.
        padding_idx: entries equal to it are excluded from the bags (and from the
            ``'mean'`` count) and get no gradient.

    Returns:
        ``(B, embedding_dim)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> w = jnp.arange(6.0).reshape(3, 2)
        >>> F.embedding_bag(jnp.array([0, 1, 2]), w, jnp.array([0, 1]), mode="sum")
        Array([[0., 1.],
               [6., 8.]], dtype=float32)
    """
    idx = jnp.asarray(input)
    w = jnp.asarray(weight)
    psw = None if per_sample_weights is None else jnp.asarray(per_sample_weights)
    if jnp.issubdtype(w.dtype, jnp.integer) and jnp.issubdtype(idx.dtype, jnp.floating):
        import warnings

        warnings.warn(
            "Argument order of nn.functional.embedding_bag was changed. "
            "Usage `embedding_bag(weight, input, ...)` is deprecated, "
            "and should now be `embedding_bag(input, weight, ...)`.",
            stacklevel=2,
        )
        idx, w = w, idx
        weight = input
    if psw is not None and idx.shape != psw.shape:
        raise ValueError(
            f"embedding_bag: If per_sample_weights ({size_str(psw.shape)}) is not None, "
            f"then it must have the same shape as the input ({size_str(idx.shape)})"
        )
    if w.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {w.ndim}")
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed length "
                f"sequences. However, found offsets of type {type(offsets)}"
            )
        n_bags, bag_len = idx.shape
        seg = jnp.repeat(jnp.arange(n_bags), bag_len)
        idx = idx.reshape(-1)
        if psw is not None:
            psw = psw.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        offsets = jnp.asarray(offsets)
        if offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        n_bags = offsets.shape[0] - 1 if include_last_offset else offsets.shape[0]
        seg = None
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    if mode == "max":
        if scale_grad_by_freq:
            raise ValueError("max mode does not support scaling the gradient by the frequency")
        if sparse:
            raise ValueError("max mode does not support sparse weights")
    elif mode not in ("sum", "mean"):
        raise ValueError("mode has to be one of sum, mean or max")
    _check_indices(idx, "embedding_bag")
    num, dim = w.shape
    if padding_idx is not None and not (-num <= padding_idx < num):
        raise RuntimeError(
            f"padding_idx must be within the number of embeddings, {-num} through {num - 1}, but got {padding_idx}"
        )
    if padding_idx is not None and padding_idx < 0:
        padding_idx += num
    if max_norm is not None:
        w = embedding_renorm(w, idx, max_norm, norm_type)
        _write_back(weight, w)
    if psw is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for mode='sum' "
            f"(got mode='{mode}'). Please open a feature request on GitHub."
        )
    length = idx.shape[0]
    if seg is None:
        off = _host(offsets)
        if off is not None and off.size:
            if off[0] != 0:
                raise RuntimeError(
                    "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. "
                    f"However, got {int(off[0])}\n[ torch.LongTensor{{}} ]"
                )
            if off[-1] > length:
                raise RuntimeError(
                    f"offsets[-1] can not be greater than input's length {length} but got offsets[-1] of {int(off[-1])}"
                )
            if np.any(np.diff(off) < 0):
                raise RuntimeError("offsets must be non-decreasing")
        pos = jnp.arange(length)
        # Bag of each position: the last offset <= position. With include_last_offset,
        # positions at or after the final offset fall outside every bag (id n_bags,
        # dropped by the segment ops).
        seg = jnp.searchsorted(offsets, pos, side="right") - 1
        if include_last_offset:
            seg = jnp.where(pos >= offsets[-1], n_bags, seg)
    hidx = _host(idx)
    if hidx is not None and hidx.size:
        bad = (hidx < 0) | (hidx >= num)
        if bad.any():
            i = int(np.argmax(bad))
            raise RuntimeError(
                f"Index {i} of input takes value {int(hidx[i])} which is not in the valid range [0, {num})"
            )

    if n_bags == 0:
        return jnp.zeros((0, dim), w.dtype)
    emb = _lookup(w, idx)  # (L, dim)
    if scale_grad_by_freq:
        emb = _scale_grad(emb, _bag_freq_scale(idx, num)[:, None])
    # Entries in no bag (after the last offset with include_last_offset) or equal to
    # padding_idx are excluded from the reduction.
    valid = (seg >= 0) & (seg < n_bags)
    if padding_idx is not None:
        valid = valid & (idx != padding_idx)
    zero = jnp.zeros((), emb.dtype)
    if mode == "max":
        masked = jnp.where(valid[:, None], emb, -jnp.inf)
        bag_max = jax.ops.segment_max(masked, seg, num_segments=n_bags)  # (B, dim)
        count = jax.ops.segment_sum(valid.astype(jnp.int32), seg, num_segments=n_bags)
        # Route the value (and so the gradient) through the first maximal entry of each
        # bag and dimension, as torch's CPU kernel does.
        seg_c = jnp.clip(seg, 0, n_bags - 1)
        is_max = valid[:, None] & (emb == bag_max[seg_c])
        first = jax.ops.segment_min(
            jnp.where(is_max, jnp.arange(length)[:, None], length), seg, num_segments=n_bags
        )  # (B, dim)
        chosen = is_max & (jnp.arange(length)[:, None] == first[seg_c])
        out = jax.ops.segment_sum(jnp.where(chosen, emb, zero), seg, num_segments=n_bags)
        return jnp.where(count[:, None] > 0, out, zero)
    contrib = jnp.where(valid[:, None], emb, zero)
    if psw is not None:
        contrib = contrib * psw.astype(emb.dtype)[:, None]
    out = jax.ops.segment_sum(contrib, seg, num_segments=n_bags)
    if mode == "mean":
        count = jax.ops.segment_sum(valid.astype(emb.dtype), seg, num_segments=n_bags)
        out = jnp.where(count[:, None] > 0, out / jnp.maximum(count, 1)[:, None], zero)
    return out


def one_hot(tensor: Any, num_classes: int = -1) -> jax.Array:
    r"""One-hot encode integer class values: ``(*)`` -> ``(*, num_classes)`` of torch's long dtype.

    Args:
        tensor: integer class values.
        num_classes: number of classes; -1 infers ``max(tensor) + 1`` (needs a concrete
            array, not a traced one).

    Raises:
        RuntimeError: non-integer input, negative or too large class values, or an empty
            input with ``num_classes=-1`` (torch's messages).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.one_hot(jnp.array([0, 2]))
        Array([[1, 0, 0],
               [0, 0, 1]], dtype=int32)
    """
    x = jnp.asarray(tensor)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    h = _host(x)
    if num_classes == -1:
        if x.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        if h is None:
            raise RuntimeError(
                "one_hot with num_classes=-1 needs concrete values to infer the number of classes; "
                "pass num_classes explicitly inside jax.jit / jmod.jit"
            )
        num_classes = int(h.max()) + 1
    if h is not None and h.size:
        if h.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if h.max() >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    return (x[..., None] == jnp.arange(num_classes)).astype(long_dtype())
