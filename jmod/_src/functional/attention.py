"""Attention: ``scaled_dot_product_attention`` and ``multi_head_attention_forward``.

Both follow torch 2.13 on CPU number for number, including the corners where torch's
behaviour depends on which kernel its dispatcher picks (see
:func:`_torch_cpu_picks_fused_kernel`): fully masked rows give 0 in
``scaled_dot_product_attention`` and NaN in ``multi_head_attention_forward`` with
``need_weights=True``, exactly as torch does.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.amp import autocast_op
from jmod._src.arrays import to_jax
from jmod._src.random import next_key

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


# --------------------------------------------------------------------------- dtype names
# torch's C++ names for dtypes, used verbatim in the error messages it raises.
def _cpp_dtype_name(dtype: Any) -> str:
    names = {
        "float32": "float",
        "float64": "double",
        "float16": "c10::Half",
        "bfloat16": "c10::BFloat16",
        "int64": "long int",
        "int32": "int",
        "int16": "short int",
        "int8": "signed char",
        "uint8": "unsigned char",
        "bool": "bool",
        "complex64": "c10::complex<float>",
        "complex128": "c10::complex<double>",
    }
    return names.get(jnp.dtype(dtype).name, jnp.dtype(dtype).name)


def _scalar_type_name(dtype: Any) -> str:
    names = {
        "float32": "Float",
        "float64": "Double",
        "float16": "Half",
        "bfloat16": "BFloat16",
        "int64": "Long",
        "int32": "Int",
        "int16": "Short",
        "int8": "Char",
        "uint8": "Byte",
        "bool": "Bool",
    }
    return names.get(jnp.dtype(dtype).name, jnp.dtype(dtype).name)


def _is_floating(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


def _as_array(x: Any) -> Any:
    return None if x is None else (x if isinstance(x, jax.Array) else to_jax(x))


def _compute_dtype(dtype: Any) -> Any:
    # torch's math backend keeps half/bfloat16 intermediates in float32 (its CPU flash
    # kernel accumulates in float32 too); the result is cast back to the input dtype.
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def _broadcast_error(a: tuple, b: tuple) -> str | None:
    """torch's message for ``a (op) b`` with shapes that do not broadcast, else ``None``."""
    ndim = max(len(a), len(b))
    pa = (1,) * (ndim - len(a)) + tuple(a)
    pb = (1,) * (ndim - len(b)) + tuple(b)
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x != y and x != 1 and y != 1:
            return f"The size of tensor a ({x}) must match the size of tensor b ({y}) at non-singleton dimension {i}"
    return None


# ------------------------------------------------------------ scaled_dot_product_attention
def _torch_cpu_picks_fused_kernel(q: Any, k: Any, v: Any, attn_mask: Any, dropout_p: float, enable_gqa: bool) -> bool:
    """Whether torch 2.13's CPU dispatcher runs its fused (flash) kernel rather than the math one.

    The two kernels agree numerically but not on every corner: the fused kernel applies
    ``attn_mask`` *and* ``is_causal`` together, the math kernel rejects the combination.
    This replays ``use_flash_attention_cpp`` (aten/src/ATen/native/transformers/
    sdp_utils_cpp.cpp) on shapes and dtypes. Two of its checks have no JAX counterpart
    and are taken as passed: unit stride of the last dimension (true for contiguous
    tensors) and a mask that does not require grad (torch sends a float mask that
    requires grad to the math kernel, which then rejects ``is_causal`` with it).
    """
    if dropout_p > 0.0:
        return False
    if not (q.ndim == k.ndim == v.ndim == 4):
        return False
    if not (q.shape[0] == k.shape[0] == v.shape[0]):
        return False
    hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
    if enable_gqa:
        if hk != hv or hk == 0 or hq % hk != 0:
            return False
    elif not (hq == hk == hv):
        return False
    if attn_mask is not None:
        if attn_mask.ndim < 2:
            n = max(attn_mask.ndim, 1)
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got -2)")
        L, S = q.shape[-2], k.shape[-2]
        if attn_mask.shape[-2] not in (L, 1) or attn_mask.shape[-1] not in (S, 1):
            return False
        if attn_mask.ndim == 4:
            if attn_mask.shape[0] not in (1, q.shape[0]) or attn_mask.shape[1] not in (1, hq):
                return False
        elif attn_mask.ndim != 2:
            return False
    if not (q.shape[-1] == k.shape[-1] == v.shape[-1]):
        return False
    if q.shape[-2] == 0 or k.shape[-2] == 0:
        return False
    return q.dtype == k.dtype == v.dtype and jnp.dtype(q.dtype).name in ("float32", "float64", "float16", "bfloat16")


def _safe_softmax(scores: jax.Array) -> jax.Array:
    """Softmax over the last axis that gives 0 (not NaN) for rows that are all ``-inf``.

    torch's SDPA uses the same rule (``at::_safe_softmax``). The double ``where``
    keeps NaN out of the gradient of masked rows too (their gradient is 0, as in torch).
    """
    fully_masked = jnp.all(scores == -jnp.inf, axis=-1, keepdims=True)
    probs = jax.nn.softmax(jnp.where(fully_masked, 0.0, scores), axis=-1)
    return jnp.where(fully_masked, 0.0, probs)


@autocast_op("scaled_dot_product_attention")
def scaled_dot_product_attention(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> jax.Array:
    r"""Compute :math:`\mathrm{softmax}(QK^T \cdot \text{scale} + \text{bias})\,V`, with optional dropout.

    torch's ``torch.nn.functional.scaled_dot_product_attention``, with the numbers of
    its CPU kernels. Equivalent to::

        L, S = query.shape[-2], key.shape[-2]
        scale = 1 / sqrt(query.shape[-1]) if scale is None else scale
        bias = zeros(L, S)
        if is_causal: bias = where(tril(ones(L, S)), bias, -inf)
        if attn_mask is bool: bias = where(attn_mask, bias, -inf)
        elif attn_mask is not None: bias = bias + attn_mask
        if enable_gqa: key, value = repeat key/value heads to query's (axis -3)
        weights = softmax(query @ key.mT * scale + bias)   # all -inf row -> 0
        weights = dropout(weights, dropout_p)                # always, when dropout_p > 0
        return weights @ value

    Args:
        query: ``(N, ..., Hq, L, E)``; at least 2-D, any number of leading batch dims.
        key: ``(N, ..., H, S, E)``; batch dims broadcast against ``query``'s.
        value: ``(N, ..., H, S, Ev)``.
        attn_mask: optional mask broadcastable to ``(N, ..., Hq, L, S)``. A boolean mask
            says which positions **take part** in attention (``True`` = attend; the
            opposite of ``MultiheadAttention``'s masks); a float mask (query's dtype or
            float32) is added to the scores. A query row with no position left gives
            an output row of zeros (torch's CPU kernels do the same).
        dropout_p: probability of dropping an attention weight (the survivors are
            scaled by :math:`1/(1-p)`). Applied whenever it is positive: this function
            has no training flag, pass ``0.0`` in evaluation. The mask is drawn from
            jmod's global generator (``jmod.manual_seed``).
        is_causal: apply a causal mask: query ``i`` attends to keys ``0..i``
            (lower-triangular, aligned top-left when ``L != S``). Combined with
            ``attn_mask``, torch 2.13 on CPU either applies both (4-D inputs without
            dropout, when its fused kernel runs) or raises ``RuntimeError``
            (otherwise); jmod follows the same rule, see Raises.
        scale: keyword-only scaling of :math:`QK^T`; default :math:`1/\sqrt{E}`.
        enable_gqa: grouped-query attention: ``key``/``value`` with fewer heads
            (dimension -3) than ``query`` are repeated to match; each head count must
            divide ``Hq``.

    Returns:
        ``(N, ..., Hq, L, Ev)``, in the inputs' dtype (float16/bfloat16 are computed in
        float32, as torch does).

    Raises:
        RuntimeError: with torch's message, for inputs under 2-D, mismatched q/k/v
            dtypes, non-float inputs, a mask that is not bool/float32/query's dtype or
            does not broadcast, GQA head counts that do not divide, ``dropout_p > 1``,
            and ``attn_mask`` with ``is_causal`` where torch's math kernel would run
            (inputs not 4-D, ``dropout_p > 0``, broadcast batch or heads, ``E != Ev``,
            a 3-D mask, ``L`` or ``S`` zero).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> q = jnp.ones((2, 4, 3, 8)); k = v = jnp.ones((2, 4, 5, 8))
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
        (2, 4, 3, 8)
        >>> mask = jnp.array([True, True, False, False, False])  # attend to the first two keys
        >>> F.scaled_dot_product_attention(q, k, v, attn_mask=jnp.broadcast_to(mask, (3, 5))).shape
        (2, 4, 3, 8)
    """
    query, key, value, attn_mask = (_as_array(x) for x in (query, key, value, attn_mask))
    dropout_p = float(dropout_p)
    scale, rep_k, rep_v = _sdpa_check(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    rng = next_key() if dropout_p > 0.0 else None
    impl = _jax_attention_implementation(query, key, value, attn_mask, dropout_p, rep_k, rep_v)
    return _sdpa_core(
        query,
        key,
        value,
        attn_mask,
        rng,
        scale=scale,
        is_causal=is_causal,
        dropout_p=dropout_p,
        rep_k=rep_k,
        rep_v=rep_v,
        implementation=impl,
    )


def _sdpa_check(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    attn_mask: jax.Array | None,
    dropout_p: float,
    is_causal: bool,
    scale: float | None,
    enable_gqa: bool,
) -> tuple[float, int, int]:
    """Raise torch's errors for invalid SDPA arguments; return ``(scale, key_repeats, value_repeats)``."""
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(
            "Expected query, key, and value to all be  at least 2 dimensional, but got "
            f"query.dim: {query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead."
        )
    if not (query.dtype == key.dtype == value.dtype):
        raise RuntimeError(
            "Expected query, key, and value to have the same dtype, but got "
            f"query.dtype: {_cpp_dtype_name(query.dtype)} key.dtype: {_cpp_dtype_name(key.dtype)} "
            f"and value.dtype: {_cpp_dtype_name(value.dtype)} instead."
        )
    if attn_mask is not None and not (
        attn_mask.dtype == jnp.bool_ or attn_mask.dtype == query.dtype or attn_mask.dtype == jnp.float32
    ):
        raise RuntimeError(
            "Expected attn_mask dtype to be bool or float or to match query dtype, but got "
            f"attn_mask.dtype: {_cpp_dtype_name(attn_mask.dtype)} and  query.dtype: "
            f"{_cpp_dtype_name(query.dtype)} instead."
        )
    if not _is_floating(query):
        raise RuntimeError(f"expected scalar type Float but found {_scalar_type_name(query.dtype)}")
    if dropout_p > 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")

    fused = _torch_cpu_picks_fused_kernel(query, key, value, attn_mask, dropout_p, enable_gqa)
    if is_causal and attn_mask is not None and not fused:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if fused and dropout_p < 0.0:
        raise RuntimeError("scaled_dot_product_attention_flash_attention: Currently do not support dropout > 0")

    k_shape, v_shape = key.shape, value.shape
    rep_k = rep_v = 1
    if enable_gqa:
        if query.ndim < 3:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-query.ndim}, {query.ndim - 1}], but got -3)"
            )
        hq = query.shape[-3]
        hk = key.shape[-3] if key.ndim >= 3 else 1
        hv = value.shape[-3] if value.ndim >= 3 else 1
        if hk == 0 or hv == 0 or hq % hk != 0 or hq % hv != 0:
            raise RuntimeError("Number of heads in key and value must divide the number of heads in ")
        if key.ndim >= 3:
            rep_k = hq // hk
            k_shape = (*k_shape[:-3], hq, *k_shape[-2:])
        if value.ndim >= 3:
            rep_v = hq // hv
            v_shape = (*v_shape[:-3], hq, *v_shape[-2:])

    L, S, E = query.shape[-2], k_shape[-2], query.shape[-1]
    if k_shape[-1] != E:
        raise RuntimeError(
            f"Expected query and key to have the same embedding dimension, but got query.size(-1): {E} "
            f"and key.size(-1): {k_shape[-1]} instead."
        )
    if v_shape[-2] != S:
        raise RuntimeError(
            f"Expected key and value to have the same sequence length, but got key.size(-2): {S} "
            f"and value.size(-2): {v_shape[-2]} instead."
        )
    msg = _broadcast_error(query.shape[:-2], k_shape[:-2])
    if msg is not None:
        raise RuntimeError(msg)
    batch = jnp.broadcast_shapes(query.shape[:-2], k_shape[:-2])
    scores_shape = (*batch, L, S)
    msg = _broadcast_error(batch, v_shape[:-2])
    if msg is not None:
        raise RuntimeError(msg)
    if attn_mask is not None:
        msg = _broadcast_error(scores_shape, attn_mask.shape)
        if msg is not None:
            raise RuntimeError(msg)
        if jnp.broadcast_shapes(scores_shape, attn_mask.shape) != scores_shape:
            raise RuntimeError(
                f"output with shape {list(scores_shape)} doesn't match the broadcast shape "
                f"{list(jnp.broadcast_shapes(scores_shape, attn_mask.shape))}"
            )
    if scale is None:
        scale = 1.0 / math.sqrt(E) if E > 0 else math.inf
    return float(scale), rep_k, rep_v


# Whether scaled_dot_product_attention may use jax.nn.dot_product_attention (set False
# to measure the math path: benchmarks/big_model.py attention-memory).
_USE_JAX_ATTENTION = [True]


@contextlib.contextmanager
def _force_math_path(force: bool = True) -> Iterator[None]:
    """Trace attention on the math path (``True``) or let it pick (``False``)."""
    saved = _USE_JAX_ATTENTION[0]
    _USE_JAX_ATTENTION[0] = not force
    try:
        yield
    finally:
        _USE_JAX_ATTENTION[0] = saved


def _jax_attention_implementation(
    query: jax.Array, key: jax.Array, value: jax.Array, attn_mask: Any, dropout_p: float, rep_k: int, rep_v: int
) -> str | None:
    """``"xla"`` (or ``"auto"`` on GPU for half precision) when ``jax.nn.dot_product_attention``
    computes torch's numbers for these arguments, else ``None`` (the math path).

    Faithful means: no dropout (jax's function has none); 4-D ``(B, H, L, E)`` inputs
    without batch broadcasting; key and value of one shape (same heads, ``E == Ev``);
    GQA through jax's head grouping (query head ``n`` uses key head ``n // G``, which is
    torch's ``repeat_interleave``); float32/float64, whose logits and softmax jax keeps
    in the input precision (for float16/bfloat16 its XLA path casts the weights to the
    input dtype before the second matmul, where torch's CPU kernels stay in float32:
    those take the math path on CPU; on GPU jax may pick cuDNN's fused kernel, as
    torch's CUDA dispatcher picks its flash kernels).
    """
    if not _USE_JAX_ATTENTION[0] or dropout_p > 0.0:
        return None
    if not (query.ndim == key.ndim == value.ndim == 4) or key.shape != value.shape:
        return None
    B, H, L, E = query.shape
    if key.shape[0] != B or L == 0 or key.shape[2] == 0 or key.shape[3] != E or rep_k != rep_v:
        return None
    if H != key.shape[1] * rep_k:
        return None
    if attn_mask is not None and jnp.broadcast_shapes(attn_mask.shape, (B, H, L, key.shape[2])) != (
        B, H, L, key.shape[2]
    ):
        return None
    name = jnp.dtype(query.dtype).name
    if name in ("float32", "float64"):
        return "xla"
    if name in ("float16", "bfloat16") and jax.default_backend() == "gpu":
        return "auto"
    return None


def _jax_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, attn_mask: Any, scale: float, is_causal: bool, implementation: str
) -> jax.Array:
    """torch's SDPA on ``jax.nn.dot_product_attention`` (see ``_jax_attention_implementation``).

    torch's mask semantics on jax's arguments: a bool mask is jax's ``mask``; a float
    mask becomes ``mask = (attn_mask != -inf)`` plus a finite ``bias`` (jax masks with a
    large negative number, whose weights are exactly 0 like ``-inf``'s); rows with no
    key left give 0, as torch's CPU kernels do (jax would average them). The scale is
    applied to ``q`` before the product, in the order of the math path.
    """
    B, H, L, E = q.shape
    S = k.shape[2]
    mask = bias = None
    if attn_mask is not None:
        attn_mask = jnp.broadcast_to(attn_mask, (B, H, L, S))
        if attn_mask.dtype == jnp.bool_:
            mask = attn_mask
        else:
            mask = attn_mask != -jnp.inf
            bias = jnp.where(mask, attn_mask, 0).astype(q.dtype)
    t = lambda a: jnp.swapaxes(a, 1, 2)  # noqa: E731  (B, H, T, E) <-> (B, T, H, E)
    out = jax.nn.dot_product_attention(
        t(q * jnp.asarray(scale, q.dtype)),
        t(k),
        t(v),
        bias=bias,
        mask=mask,
        scale=1.0,
        is_causal=is_causal,
        implementation=None if implementation == "auto" else implementation,
    )
    out = t(out)
    if mask is not None:
        live = mask
        if is_causal:
            live = live & jnp.tril(jnp.ones((L, S), jnp.bool_))
        out = jnp.where(jnp.any(live, axis=-1, keepdims=True), out, 0)
    return out


# Compiled as one program per shape/configuration: eagerly, op-by-op dispatch would
# compile every small operation separately (seconds for a transformer layer).
@autocast_op("scaled_dot_product_attention")  # outside jax.jit: its cache does not know the autocast state
@functools.partial(jax.jit, static_argnames=("scale", "is_causal", "dropout_p", "rep_k", "rep_v", "implementation"))
def _sdpa_core(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    attn_mask: jax.Array | None,
    rng: jax.Array | None,
    *,
    scale: float,
    is_causal: bool,
    dropout_p: float,
    rep_k: int,
    rep_v: int,
    implementation: str | None = None,
) -> jax.Array:
    if implementation is not None:
        return _jax_attention(query, key, value, attn_mask, scale, is_causal, implementation)
    if rep_k > 1:
        key = jnp.repeat(key, rep_k, axis=-3)
    if rep_v > 1:
        value = jnp.repeat(value, rep_v, axis=-3)
    L, S = query.shape[-2], key.shape[-2]
    out_dtype = query.dtype
    cdt = _compute_dtype(out_dtype)
    q, k, v = query.astype(cdt), key.astype(cdt), value.astype(cdt)
    scores = jnp.matmul(q * scale, jnp.swapaxes(k, -1, -2))
    if is_causal:
        scores = jnp.where(jnp.tril(jnp.ones((L, S), jnp.bool_)), scores, -jnp.inf)
    if attn_mask is not None:
        if attn_mask.dtype == jnp.bool_:
            scores = jnp.where(attn_mask, scores, -jnp.inf)
        else:
            scores = scores + attn_mask.astype(cdt)
    weights = _safe_softmax(scores)
    if dropout_p > 0.0:
        weights = _dropout_with_key(weights, dropout_p, rng)
    return jnp.matmul(weights, v).astype(out_dtype)


# ------------------------------------------------------------ multi_head_attention_forward
def _none_or_dtype(input: Any) -> Any:
    if input is None:
        return None
    return _as_array(input).dtype


def _check_mask_type(mask: Any, mask_name: str, other_type: Any, other_name: str, stacklevel: int = 3) -> None:
    """The checks of torch's ``F._canonical_mask``: bool or float only; warn when the two masks' types differ."""
    if mask is None:
        return
    if mask.dtype != jnp.bool_ and not _is_floating(mask):
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if other_type is not None and mask.dtype != other_type:
        warnings.warn(
            f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both instead.",
            stacklevel=stacklevel,
        )


def _canonical_mask(
    mask: Any,
    mask_name: str,
    other_type: Any,
    other_name: str,
    target_type: Any,
    check_other: bool = True,
) -> Any:
    """torch's ``F._canonical_mask``: a bool mask becomes 0/-inf in ``target_type``."""
    if mask is None:
        return None
    mask = _as_array(mask)
    _check_mask_type(mask, mask_name, other_type if check_other else None, other_name)
    if mask.dtype == jnp.bool_:
        mask = jnp.where(mask, jnp.asarray(-jnp.inf, target_type), jnp.asarray(0, target_type))
    return mask


def _mha_shape_check(query: Any, key: Any, value: Any, key_padding_mask: Any, attn_mask: Any, num_heads: int) -> bool:
    """torch's ``_mha_shape_check``: validate the ranks and return whether the input is batched."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key` and `value` to be 3-D"
                f" but found {key.ndim}-D and {value.ndim}-D tensors respectively"
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D"
                f" but found {key_padding_mask.ndim}-D tensor instead"
            )
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise AssertionError(
                "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D"
                f" but found {attn_mask.ndim}-D tensor instead"
            )
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D"
                f" but found {key.ndim}-D and {value.ndim}-D tensors respectively"
            )
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D"
                f" but found {key_padding_mask.ndim}-D tensor instead"
            )
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D"
                    f" but found {attn_mask.ndim}-D tensor instead"
                )
            if attn_mask.ndim == 3:
                expected_shape = (num_heads, query.shape[0], key.shape[0])
                if tuple(attn_mask.shape) != expected_shape:
                    raise AssertionError(f"Expected `attn_mask` shape to be {expected_shape} but got {_size(attn_mask.shape)}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")


@autocast_op("linear")
def _linear(x: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
    out = jnp.matmul(x, w.T)
    return out if b is None else out + b


# torch's multi_head_attention_forward computes the weights with torch.baddbmm / bmm
# and F.softmax: the same ops here, so autocast treats them as torch's lists do.
@autocast_op("baddbmm")
def _baddbmm(input: jax.Array, batch1: jax.Array, batch2: jax.Array) -> jax.Array:
    return input + jnp.matmul(batch1, batch2)


@autocast_op("bmm")
def _bmm(input: jax.Array, mat2: jax.Array) -> jax.Array:
    return jnp.matmul(input, mat2)


@autocast_op("softmax")
def _plain_softmax(input: jax.Array, dim: int, dtype: Any = None) -> jax.Array:
    return jax.nn.softmax(input if dtype is None else input.astype(dtype), axis=dim)


def _in_projection_packed(q: Any, k: Any, v: Any, w: Any, b: Any = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    # torch takes shortcuts when q/k/v are the same tensor; they compute the same
    # numbers as projecting each input with its third of the packed weight.
    w_q, w_k, w_v = jnp.split(w, 3)
    b_q = b_k = b_v = None
    if b is not None:
        b_q, b_k, b_v = jnp.split(b, 3)
    return _linear(q, w_q, b_q), _linear(k, w_k, b_k), _linear(v, w_v, b_v)


def _in_projection(q: Any, k: Any, v: Any, w_q: Any, w_k: Any, w_v: Any, b_q: Any = None, b_k: Any = None, b_v: Any = None):
    Eq, Ek, Ev = q.shape[-1], k.shape[-1], v.shape[-1]
    if tuple(w_q.shape) != (Eq, Eq):
        raise AssertionError(f"expecting query weights shape of {(Eq, Eq)}, but got {_size(w_q.shape)}")
    if tuple(w_k.shape) != (Eq, Ek):
        raise AssertionError(f"expecting key weights shape of {(Eq, Ek)}, but got {_size(w_k.shape)}")
    if tuple(w_v.shape) != (Eq, Ev):
        raise AssertionError(f"expecting value weights shape of {(Eq, Ev)}, but got {_size(w_v.shape)}")
    if b_q is not None and tuple(b_q.shape) != (Eq,):
        raise AssertionError(f"expecting query bias shape of {(Eq,)}, but got {_size(b_q.shape)}")
    if b_k is not None and tuple(b_k.shape) != (Eq,):
        raise AssertionError(f"expecting key bias shape of {(Eq,)}, but got {_size(b_k.shape)}")
    if b_v is not None and tuple(b_v.shape) != (Eq,):
        raise AssertionError(f"expecting value bias shape of {(Eq,)}, but got {_size(b_v.shape)}")
    return _linear(q, w_q, b_q), _linear(k, w_k, b_k), _linear(v, w_v, b_v)


def multi_head_attention_forward(
    query: Any,
    key: Any,
    value: Any,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Any,
    in_proj_bias: Any,
    bias_k: Any,
    bias_v: Any,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Any,
    out_proj_bias: Any,
    training: bool = True,
    key_padding_mask: Any = None,
    need_weights: bool = True,
    attn_mask: Any = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Any = None,
    k_proj_weight: Any = None,
    v_proj_weight: Any = None,
    static_k: Any = None,
    static_v: Any = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[jax.Array, jax.Array | None]:
    r"""The computation behind :class:`jmod.nn.MultiheadAttention` (torch's function of the same name).

    Args:
        query: ``(L, N, E)`` or unbatched ``(L, E)`` (sequence first).
        key: ``(S, N, E_k)`` or ``(S, E_k)``.
        value: ``(S, N, E_v)`` or ``(S, E_v)``.
        embed_dim_to_check: ``E``; the query's last dimension must equal it.
        num_heads: number of heads; must divide ``E``.
        in_proj_weight: packed ``(3E, E)`` q/k/v projection (unless
            ``use_separate_proj_weight``).
        in_proj_bias: packed ``(3E,)`` projection bias or ``None``.
        bias_k: ``(1, 1, E)`` bias appended to the key sequence, or ``None``.
        bias_v: ``(1, 1, E)`` bias appended to the value sequence, or ``None``.
        add_zero_attn: append a zero key and value (after the projection).
        dropout_p: dropout on the attention weights, used only when ``training``.
        out_proj_weight: ``(E, E)`` output projection.
        out_proj_bias: ``(E,)`` or ``None``.
        training: apply dropout.
        key_padding_mask: ``(N, S)`` or ``(S,)``: bool (``True`` = ignore this key) or
            float (added to the scores).
        need_weights: also return the attention weights. With ``False`` the
            attention runs through :func:`scaled_dot_product_attention`, so a query
            row with every key masked gives zeros there and NaN with ``True``, as
            in torch.
        attn_mask: ``(L, S)`` or ``(N * num_heads, L, S)`` (``(num_heads, L, S)``
            unbatched): bool (``True`` = not allowed) or float (added).
        use_separate_proj_weight: use ``q_proj_weight``/``k_proj_weight``/
            ``v_proj_weight`` instead of ``in_proj_weight``.
        q_proj_weight: ``(E, E)``.
        k_proj_weight: ``(E, E_k)``.
        v_proj_weight: ``(E, E_v)``.
        static_k: ``(N * num_heads, S, E / num_heads)`` keys used instead of the projected ones.
        static_v: ``(N * num_heads, S, E / num_heads)`` values used instead of the projected ones.
        average_attn_weights: average the returned weights over the heads.
        is_causal: hint that ``attn_mask`` is the causal mask. It needs ``attn_mask``
            (``RuntimeError`` otherwise); with ``need_weights=False`` and no
            ``key_padding_mask`` the mask is then *replaced* by a causal mask, as
            torch does.

    Returns:
        ``(attn_output, attn_weights)``: ``(L, N, E)`` (``(L, E)`` unbatched) and, with
        ``need_weights``, ``(N, L, S)`` averaged or ``(N, num_heads, L, S)`` per head
        (without ``N`` unbatched), else ``None``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> E, H = 4, 2
        >>> x = jnp.ones((3, 2, E))
        >>> out, w = F.multi_head_attention_forward(
        ...     x, x, x, E, H, jnp.ones((3 * E, E)), jnp.zeros(3 * E), None, None, False, 0.0,
        ...     jnp.eye(E), jnp.zeros(E), training=False)
        >>> out.shape, w.shape
        ((3, 2, 4), (2, 3, 3))
    """
    (
        query, key, value, in_proj_weight, in_proj_bias, bias_k, bias_v, out_proj_weight, out_proj_bias,
        key_padding_mask, attn_mask, q_proj_weight, k_proj_weight, v_proj_weight, static_k, static_v,
    ) = (
        _as_array(x)
        for x in (
            query, key, value, in_proj_weight, in_proj_bias, bias_k, bias_v, out_proj_weight, out_proj_bias,
            key_padding_mask, attn_mask, q_proj_weight, k_proj_weight, v_proj_weight, static_k, static_v,
        )
    )  # fmt: skip
    # torch's first checks, made here rather than in the compiled part so that the
    # deprecation warning is issued on every call, not only when tracing.
    _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    _check_mask_type(key_padding_mask, "key_padding_mask", _none_or_dtype(attn_mask), "attn_mask")
    dropout_p = float(dropout_p) if training else 0.0
    rng = next_key() if dropout_p > 0.0 else None
    return _mha_forward(
        query, key, value, in_proj_weight, in_proj_bias, bias_k, bias_v, out_proj_weight, out_proj_bias,
        key_padding_mask, attn_mask, q_proj_weight, k_proj_weight, v_proj_weight, static_k, static_v, rng,
        embed_dim_to_check=embed_dim_to_check,
        num_heads=num_heads,
        add_zero_attn=bool(add_zero_attn),
        dropout_p=dropout_p,
        need_weights=bool(need_weights),
        use_separate_proj_weight=bool(use_separate_proj_weight),
        average_attn_weights=bool(average_attn_weights),
        is_causal=bool(is_causal),
    )  # fmt: skip


@functools.partial(
    jax.jit,
    static_argnames=(
        "embed_dim_to_check", "num_heads", "add_zero_attn", "dropout_p", "need_weights",
        "use_separate_proj_weight", "average_attn_weights", "is_causal",
    ),
)  # fmt: skip
def _mha_forward(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    in_proj_weight: jax.Array | None,
    in_proj_bias: jax.Array | None,
    bias_k: jax.Array | None,
    bias_v: jax.Array | None,
    out_proj_weight: jax.Array,
    out_proj_bias: jax.Array | None,
    key_padding_mask: jax.Array | None,
    attn_mask: jax.Array | None,
    q_proj_weight: jax.Array | None,
    k_proj_weight: jax.Array | None,
    v_proj_weight: jax.Array | None,
    static_k: jax.Array | None,
    static_v: jax.Array | None,
    rng: jax.Array | None,
    *,
    embed_dim_to_check: int,
    num_heads: int,
    add_zero_attn: bool,
    dropout_p: float,
    need_weights: bool,
    use_separate_proj_weight: bool,
    average_attn_weights: bool,
    is_causal: bool,
) -> tuple[jax.Array, jax.Array | None]:
    """torch's ``multi_head_attention_forward`` body, after the argument checks and the random key."""
    is_batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not is_batched:
        query = query[:, None]
        key = key[:, None]
        value = value[:, None]
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask[None]

    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]

    key_padding_mask = _canonical_mask(
        mask=key_padding_mask,
        mask_name="key_padding_mask",
        other_type=None,
        other_name="attn_mask",
        target_type=query.dtype,
        check_other=False,
    )

    if is_causal and attn_mask is None:
        raise RuntimeError(
            "Need attn_mask if specifying the is_causal hint. "
            "You may use the Transformer module method "
            "`generate_square_subsequent_mask` to create this mask."
        )

    if is_causal and key_padding_mask is None and not need_weights:
        # The hint stands for the mask: scaled_dot_product_attention applies a causal
        # mask itself (torch drops attn_mask here, whatever it holds).
        attn_mask = None
    else:
        attn_mask = _canonical_mask(
            mask=attn_mask, mask_name="attn_mask", other_type=None, other_name="", target_type=query.dtype, check_other=False
        )
        if key_padding_mask is not None:
            # The merged mask is no longer causal.
            is_causal = False

    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(
                f"key's sequence and batch dims {_size(key.shape[:2])} do not match value's {_size(value.shape[:2])}"
            )
    elif key.shape != value.shape:
        raise AssertionError(f"key shape {_size(key.shape)} does not match value shape {_size(value.shape)}")

    # ---- in-projection
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        q, k, v = _in_projection_packed(query, key, value, in_proj_weight, in_proj_bias)
    else:
        if q_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but q_proj_weight is None")
        if k_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but k_proj_weight is None")
        if v_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but v_proj_weight is None")
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = jnp.split(in_proj_bias, 3)
        q, k, v = _in_projection(query, key, value, q_proj_weight, k_proj_weight, v_proj_weight, b_q, b_k, b_v)

    # ---- attention mask to 3-D
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(
                    f"The shape of the 2D attn_mask is {_size(attn_mask.shape)}, but should be {(tgt_len, src_len)}."
                )
            attn_mask = attn_mask[None]
        elif attn_mask.ndim == 3:
            correct_3d_size = (bsz * num_heads, tgt_len, src_len)
            if tuple(attn_mask.shape) != correct_3d_size:
                raise RuntimeError(
                    f"The shape of the 3D attn_mask is {_size(attn_mask.shape)}, but should be {correct_3d_size}."
                )
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")

    # ---- bias_k / bias_v appended along the sequence
    if bias_k is not None and bias_v is not None:
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        k = jnp.concatenate([k, jnp.tile(bias_k, (1, bsz, 1)).astype(k.dtype)])
        v = jnp.concatenate([v, jnp.tile(bias_v, (1, bsz, 1)).astype(v.dtype)])
        if attn_mask is not None:
            attn_mask = jnp.pad(attn_mask, [(0, 0)] * (attn_mask.ndim - 1) + [(0, 1)])
        if key_padding_mask is not None:
            key_padding_mask = jnp.pad(key_padding_mask, [(0, 0)] * (key_padding_mask.ndim - 1) + [(0, 1)])
    else:
        if bias_k is not None:
            raise AssertionError("bias_k is set but bias_v is None")
        if bias_v is not None:
            raise AssertionError("bias_v is set but bias_k is None")

    # ---- heads: (seq, N, E) -> (N * heads, seq, head_dim)
    q = jnp.swapaxes(q.reshape(tgt_len, bsz * num_heads, head_dim), 0, 1)
    if static_k is None:
        k = jnp.swapaxes(k.reshape(k.shape[0], bsz * num_heads, head_dim), 0, 1)
    else:
        static_k = _as_array(static_k)
        if static_k.shape[0] != bsz * num_heads:
            raise AssertionError(f"expecting static_k.size(0) of {bsz * num_heads}, but got {static_k.shape[0]}")
        if static_k.shape[2] != head_dim:
            raise AssertionError(f"expecting static_k.size(2) of {head_dim}, but got {static_k.shape[2]}")
        k = static_k
    if static_v is None:
        v = jnp.swapaxes(v.reshape(v.shape[0], bsz * num_heads, head_dim), 0, 1)
    else:
        static_v = _as_array(static_v)
        if static_v.shape[0] != bsz * num_heads:
            raise AssertionError(f"expecting static_v.size(0) of {bsz * num_heads}, but got {static_v.shape[0]}")
        if static_v.shape[2] != head_dim:
            raise AssertionError(f"expecting static_v.size(2) of {head_dim}, but got {static_v.shape[2]}")
        v = static_v

    if add_zero_attn:
        zero_attn_shape = (bsz * num_heads, 1, head_dim)
        k = jnp.concatenate([k, jnp.zeros(zero_attn_shape, k.dtype)], axis=1)
        v = jnp.concatenate([v, jnp.zeros(zero_attn_shape, v.dtype)], axis=1)
        if attn_mask is not None:
            attn_mask = jnp.pad(attn_mask, [(0, 0)] * (attn_mask.ndim - 1) + [(0, 1)])
        if key_padding_mask is not None:
            key_padding_mask = jnp.pad(key_padding_mask, [(0, 0)] * (key_padding_mask.ndim - 1) + [(0, 1)])

    src_len = k.shape[1]

    # ---- merge key padding and attention masks
    if key_padding_mask is not None:
        if key_padding_mask.shape[0] != bsz:
            raise AssertionError(f"Expected key_padded_mask.shape[0] to be {bsz}, but got {key_padding_mask.shape[0]}")
        if key_padding_mask.shape[1] != src_len:
            raise AssertionError(
                f"Expected key_padded_mask.shape[1] to be {src_len}, but got {key_padding_mask.shape[1]}"
            )
        key_padding_mask = jnp.broadcast_to(
            key_padding_mask.reshape(bsz, 1, 1, src_len), (bsz, num_heads, 1, src_len)
        ).reshape(bsz * num_heads, 1, src_len)
        attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask

    if need_weights:
        E = q.shape[-1]
        q_scaled = q * math.sqrt(1.0 / float(E))
        if is_causal and attn_mask is None:
            raise AssertionError("FIXME: is_causal not implemented for need_weights")
        if attn_mask is not None:
            attn_output_weights = _baddbmm(attn_mask, q_scaled, jnp.swapaxes(k, -2, -1))
        else:
            attn_output_weights = _bmm(q_scaled, jnp.swapaxes(k, -2, -1))
        # A plain softmax: a row with every key masked is NaN, as in torch.
        attn_output_weights = _plain_softmax(attn_output_weights, -1)
        if dropout_p > 0.0:
            attn_output_weights = _dropout_with_key(attn_output_weights, dropout_p, rng)
        attn_output = _bmm(attn_output_weights, v)
        attn_output = jnp.swapaxes(attn_output, 0, 1).reshape(tgt_len * bsz, embed_dim)
        attn_output = _linear(attn_output, out_proj_weight, out_proj_bias)
        attn_output = attn_output.reshape(tgt_len, bsz, attn_output.shape[1])
        attn_output_weights = attn_output_weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            attn_output_weights = attn_output_weights.mean(axis=1)
        if not is_batched:
            attn_output = attn_output[:, 0]
            attn_output_weights = attn_output_weights[0]
        return attn_output, attn_output_weights

    if attn_mask is not None:
        if attn_mask.shape[0] == 1 and attn_mask.ndim == 3:
            attn_mask = attn_mask[None]
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    scale, rep_k, rep_v = _sdpa_check(q, k, v, attn_mask, dropout_p, is_causal, None, False)
    impl = _jax_attention_implementation(q, k, v, attn_mask, dropout_p, rep_k, rep_v)
    attn_output = _sdpa_core(
        q,
        k,
        v,
        attn_mask,
        rng,
        scale=scale,
        is_causal=is_causal,
        dropout_p=dropout_p,
        rep_k=rep_k,
        rep_v=rep_v,
        implementation=impl,
    )
    attn_output = jnp.transpose(attn_output, (2, 0, 1, 3)).reshape(bsz * tgt_len, embed_dim)
    attn_output = _linear(attn_output, out_proj_weight, out_proj_bias)
    attn_output = attn_output.reshape(tgt_len, bsz, attn_output.shape[1])
    if not is_batched:
        attn_output = attn_output[:, 0]
    return attn_output, None


def _size(shape: tuple) -> str:
    """``torch.Size`` repr of a shape (torch prints it in its mask-shape errors)."""
    return f"torch.Size({list(shape)})"


# ------------------------------------------------------------------ attention dropout
def _dropout_with_key(input: jax.Array, p: float, key: jax.Array | None) -> jax.Array:
    if p == 1.0:
        return input * jnp.zeros((), input.dtype)
    keep = jax.random.bernoulli(key, 1.0 - p, input.shape)
    return jnp.where(keep, input * jnp.asarray(1.0 / (1.0 - p), input.dtype), jnp.zeros((), input.dtype))
