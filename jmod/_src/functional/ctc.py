"""Connectionist Temporal Classification loss (``torch.nn.functional.ctc_loss``).

The forward algorithm runs in log space over time with ``jax.lax.scan`` on static
shapes: the targets are laid out as a padded ``(N, S)`` array (the concatenated 1-D
form is gathered into it) and every sequence runs for the full ``T`` steps, its
``log_alpha`` frozen once ``t`` reaches its input length.

Gradient: torch's CTC backward does not return the derivative of the loss with respect
to ``log_probs`` taken as free variables; it returns ``exp(log_probs) - gamma`` (the
posterior of each label), which is the derivative with respect to the *logits* when
``log_probs = log_softmax(logits)``. Through a ``log_softmax`` both give the same logit
gradient; on ``log_probs`` directly they differ by ``exp(log_probs)``. jmod reproduces
torch's formula exactly (a ``jax.custom_jvp`` that runs the backward ``log_beta``
recursion torch runs), so gradients with respect to ``log_probs`` match torch's,
including 0 beyond each input length, NaN for impossible alignments and 0 for them
with ``zero_infinity=True``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.amp import autocast_op
from jmod._src.functional import _reduction as _R
from jmod._src.functional._torch_ops import is_concrete, torch_dtype_name

__all__ = ["ctc_loss"]

_WHILE = " (while checking arguments for ctc_loss_allocate_outputs)"


def _lengths(x: Any, name: str) -> tuple[jax.Array, np.ndarray | None]:
    """Lengths as a flat integer array and, when concrete, their host values."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        x = [int(x)]
    if isinstance(x, (tuple, list)):
        x = [int(np.asarray(v)) if not isinstance(v, int) else v for v in x]
        host = np.asarray(x, dtype=np.int64).reshape(-1)
        return jnp.asarray(host, jnp.int32), host
    a = x if isinstance(x, jax.Array) else jnp.asarray(np.asarray(x))
    if not jnp.issubdtype(a.dtype, jnp.integer):
        raise RuntimeError(f"{name} must be integral")
    a = a.reshape(-1).astype(jnp.int32)
    return a, (np.asarray(a).astype(np.int64) if is_concrete(a) else None)


@autocast_op("ctc_loss")
def ctc_loss(
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> jax.Array:
    r"""The Connectionist Temporal Classification loss.

    The negative log likelihood :math:`-\log p(y \mid x)` of each target sequence,
    summed over every alignment of it to the input (blanks between labels, repeated
    labels merged), computed with the forward algorithm in log space.

    Args:
        log_probs: :math:`(T, N, C)` or unbatched :math:`(T, C)` log-probabilities
            (e.g. ``F.log_softmax(logits, -1)``), float32 or float64.
        targets: padded :math:`(N, S)` class indices, or all target sequences
            concatenated in one :math:`(\sum_n \text{target\_lengths}_n)` array (may be
            empty when every target length is 0). Floating targets are truncated to
            integers, as torch.
        input_lengths: :math:`(N)` or :math:`()` lengths of the inputs, each
            :math:`\leq T`: an integer array, tuple or list.
        target_lengths: :math:`(N)` or :math:`()` lengths of the targets (each at
            most :math:`S` in the padded form; summing to the length of the
            concatenated form).
        blank: the blank label. Default: 0.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. ``'mean'`` divides each loss by
            its target length (at least 1) and averages over the batch.
        zero_infinity: zero infinite losses (inputs too short to align to their
            targets) and their gradients. Default: ``False``.

    Returns:
        the loss: a scalar, or :math:`(N)` (:math:`()` unbatched) with ``'none'``.

    Raises:
        RuntimeError: lengths that are not integers, sizes that do not match, a
            ``blank`` outside ``[0, C)``, lengths out of range (checked when the
            lengths are concrete), with torch's messages.
        NotImplementedError: ``log_probs`` that are not float32/float64 (torch's CPU
            kernel has no other dtypes).

    Note:
        The gradient with respect to ``log_probs`` is torch's:
        :math:`e^{\text{log\_probs}} - \gamma` (the logits' gradient when the
        ``log_probs`` come from ``log_softmax``), 0 for steps beyond each input length.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> log_probs = jax.nn.log_softmax(jnp.zeros((4, 1, 3)), -1)
        >>> loss = F.ctc_loss(log_probs, jnp.array([[1, 2]]), (4,), (2,), reduction="sum")
        >>> round(float(loss), 4)
        1.6864
    """
    red = _R.get_enum(reduction)
    lp = log_probs if isinstance(log_probs, jax.Array) else jnp.asarray(np.asarray(log_probs))
    tg = targets if isinstance(targets, jax.Array) else jnp.asarray(np.asarray(targets))
    il, il_host = _lengths(input_lengths, "input_lengths")
    tl, tl_host = _lengths(target_lengths, "target_lengths")
    if lp.dtype not in (jnp.float32, jnp.float64):
        raise NotImplementedError(f"\"ctc_loss_cpu\" not implemented for '{torch_dtype_name(lp.dtype)}'")
    if lp.size == 0:
        raise RuntimeError("log_probs tensor must not be empty")
    batched = lp.ndim == 3
    if not batched:
        lp = lp[:, None] if lp.ndim >= 1 else lp[None]
    if lp.ndim != 3:
        raise RuntimeError(
            f"Expected 3-dimensional tensor, but got {lp.ndim}-dimensional tensor for argument #1 'log_probs'{_WHILE}"
        )
    n_time, batch, n_classes = lp.shape
    if not 0 <= blank < n_classes:
        raise RuntimeError("blank must be in label range")
    if il.shape[0] != batch:
        raise RuntimeError("input_lengths must be of size batch_size")
    if tl.shape[0] != batch:
        raise RuntimeError("target_lengths must be of size batch_size")
    if tg.ndim not in (1, 2):
        raise RuntimeError(
            f"Expected 1 to 2 dimensions, but got {tg.ndim}-dimensional tensor for argument #2 'targets'{_WHILE}"
        )
    if tl_host is not None:
        for v in tl_host:
            if v < 0:
                raise RuntimeError(f"Expected target_lengths to have value at least 0, but got value {v}{_WHILE}")
        if tg.ndim == 1 and tg.shape[0] != int(tl_host.sum()):
            raise RuntimeError(
                f"Expected tensor to have size {int(tl_host.sum())} at dimension 0, but got size {tg.shape[0]} "
                f"for argument #2 'targets'{_WHILE}"
            )
    if tg.ndim == 2:
        if tg.shape[0] != batch:
            raise RuntimeError(
                f"Expected tensor to have size {batch} at dimension 0, but got size {tg.shape[0]} "
                f"for argument #2 'targets'{_WHILE}"
            )
        max_tl = int(tl_host.max()) if tl_host is not None and tl_host.size else 0
        if tg.shape[1] < max_tl:
            raise RuntimeError(
                f"Expected tensor to have size at least {max_tl} at dimension 1, but got size {tg.shape[1]} "
                f"for argument #2 'targets'{_WHILE}"
            )
    if il_host is not None:
        for v in il_host:
            if v < 0:
                raise RuntimeError(f"Expected input_lengths to have value at least 0, but got value {v}{_WHILE}")
            if v > n_time:
                raise RuntimeError(f"Expected input_lengths to have value at most {n_time}, but got value {v}{_WHILE}")

    # Padded (N, S) targets with a static S.
    tg = tg.astype(jnp.int32)
    if tg.ndim == 2:
        padded = tg
    else:
        width = (int(tl_host.max()) if tl_host.size else 0) if tl_host is not None else tg.shape[0]
        offsets = jnp.cumsum(tl) - tl
        idx = offsets[:, None] + jnp.arange(width, dtype=jnp.int32)[None, :]
        padded = jnp.take(tg, jnp.clip(idx, 0, max(tg.shape[0] - 1, 0)), axis=0) if tg.shape[0] else idx * 0
    width = padded.shape[1]
    valid = jnp.arange(width)[None, :] < tl[:, None]
    padded = jnp.where(valid, padded, blank)
    # Extended labels l': blank, l_1, blank, l_2, ..., blank.
    ext = jnp.full((batch, 2 * width + 1), blank, jnp.int32).at[:, 1::2].set(padded)

    nll = _ctc_core(lp, ext, il, tl, int(blank), bool(zero_infinity))
    if red == _R.MEAN:
        return jnp.mean(nll / jnp.maximum(tl, 1).astype(nll.dtype))
    if red == _R.SUM:
        return jnp.sum(nll)
    return nll if batched else nll[0]


def _lse3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """``log(e^a + e^b + e^c)`` as torch's CTC kernel computes it (max shift, 0 if all -inf)."""
    m = jnp.maximum(jnp.maximum(a, b), c)
    m = jnp.where(m == -jnp.inf, jnp.zeros((), m.dtype), m)
    return jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m)) + m


def _shift(x: jax.Array, k: int) -> jax.Array:
    """``x[:, s - k]`` along the last axis (``-inf`` where out of range); ``k < 0`` shifts left."""
    pad = jnp.full(x.shape[:-1] + (abs(k),), -jnp.inf, x.dtype)
    if k > 0:
        return jnp.concatenate([pad, x[..., :-k]], axis=-1)
    return jnp.concatenate([x[..., -k:], pad], axis=-1)


def _ctc_setup(lp: jax.Array, ext: jax.Array) -> tuple[jax.Array, jax.Array]:
    n_time = lp.shape[0]
    lp_ext = jnp.take_along_axis(lp, jnp.broadcast_to(ext[None], (n_time,) + ext.shape), axis=2)  # (T, N, L)
    s = jnp.arange(ext.shape[1])
    # The skip transition s - 2 -> s: s is a label and differs from the label before.
    skip = (s % 2 == 1)[None, :] & (s >= 2)[None, :] & (ext != jnp.roll(ext, 2, axis=1))
    return lp_ext, skip


def _ctc_alpha(lp_ext: jax.Array, skip: jax.Array, il: jax.Array, tl: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``log_alpha`` for every step ``(T, N, L)`` and the negative log likelihoods ``(N,)``."""
    n_time, _, n_ext = lp_ext.shape
    s = jnp.arange(n_ext)[None, :]
    neg_inf = jnp.asarray(-jnp.inf, lp_ext.dtype)
    alpha0 = jnp.where(s == 0, lp_ext[0], jnp.where((s == 1) & (tl[:, None] > 0), lp_ext[0], neg_inf))

    def step(prev: jax.Array, xs: tuple) -> tuple:
        t, lp_t = xs
        new = _lse3(prev, _shift(prev, 1), jnp.where(skip, _shift(prev, 2), neg_inf)) + lp_t
        new = jnp.where((t < il)[:, None], new, prev)
        return new, new

    last, rest = jax.lax.scan(step, alpha0, (jnp.arange(1, n_time), lp_ext[1:]))
    alphas = jnp.concatenate([alpha0[None], rest], axis=0)
    end = 2 * tl
    l1 = jnp.take_along_axis(last, end[:, None], axis=1)[:, 0]
    l2 = jnp.take_along_axis(last, jnp.maximum(end - 1, 0)[:, None], axis=1)[:, 0]
    l2 = jnp.where(tl > 0, l2, neg_inf)
    m = jnp.maximum(l1, l2)
    m = jnp.where(m == -jnp.inf, jnp.zeros((), m.dtype), m)
    nll = -(jnp.log(jnp.exp(l1 - m) + jnp.exp(l2 - m)) + m)
    # An empty input aligns to the empty target only (torch: 0 or inf).
    nll = jnp.where(il == 0, jnp.where(tl == 0, -jnp.zeros((), nll.dtype), jnp.inf), nll)
    return alphas, nll


def _ctc_grad(
    lp: jax.Array,
    ext: jax.Array,
    lp_ext: jax.Array,
    skip: jax.Array,
    il: jax.Array,
    tl: jax.Array,
    alphas: jax.Array,
    nll: jax.Array,
) -> jax.Array:
    """torch's CTC gradient ``exp(lp) - exp(log(sum alpha beta) + nll - lp)`` for ``t < il``."""
    n_time, _, n_ext = lp_ext.shape
    n_classes = lp.shape[2]
    s = jnp.arange(n_ext)[None, :]
    neg_inf = jnp.asarray(-jnp.inf, lp.dtype)
    end = 2 * tl[:, None]
    skip_from = _shift(jnp.where(skip, 0.0, -jnp.inf), -2) == 0  # s -> s + 2 allowed

    def step(nxt: jax.Array, xs: tuple) -> tuple:
        t, lp_t = xs
        rec = _lse3(nxt, _shift(nxt, -1), jnp.where(skip_from, _shift(nxt, -2), neg_inf)) + lp_t
        init = jnp.where((s == end) | ((s == end - 1) & (end > 0)), lp_t, neg_inf)
        beta = jnp.where((t == il - 1)[:, None], init, jnp.where((t < il - 1)[:, None], rec, neg_inf))
        return beta, beta

    _, betas = jax.lax.scan(
        step, jnp.full(lp_ext.shape[1:], -jnp.inf, lp.dtype), (jnp.arange(n_time), lp_ext), reverse=True
    )
    ab = alphas + betas
    # Per class: log sum over its states of alpha * beta, relative to the class's
    # log-probability (a posterior; summed linearly after a per-step max shift).
    q = jnp.where(ab == -jnp.inf, neg_inf, ab - lp_ext)
    m = jnp.max(q, axis=2, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros((), m.dtype))
    onehot = jax.nn.one_hot(ext, n_classes, dtype=lp.dtype)  # (N, L, C)
    summed = jnp.einsum("tns,nsc->tnc", jnp.exp(q - m), onehot, precision=jax.lax.Precision.HIGHEST)
    lcab = jnp.log(summed) + m + lp
    grad = jnp.exp(lp) - jnp.exp(lcab + nll[None, :, None] - lp)
    return jnp.where((jnp.arange(n_time)[:, None] < il[None, :])[:, :, None], grad, jnp.zeros((), lp.dtype))


@functools.partial(jax.custom_jvp, nondiff_argnums=(4, 5))
def _ctc_nll(lp: jax.Array, ext: jax.Array, il: jax.Array, tl: jax.Array, blank: int, zero_infinity: bool) -> jax.Array:
    lp_ext, skip = _ctc_setup(lp, ext)
    _, nll = _ctc_alpha(lp_ext, skip, il, tl)
    if zero_infinity:
        nll = jnp.where(nll == jnp.inf, jnp.zeros((), nll.dtype), nll)
    return nll


@_ctc_nll.defjvp
def _ctc_nll_jvp(blank: int, zero_infinity: bool, primals: tuple, tangents: tuple) -> tuple:
    lp, ext, il, tl = primals
    dlp = tangents[0]
    lp_ext, skip = _ctc_setup(lp, ext)
    alphas, nll = _ctc_alpha(lp_ext, skip, il, tl)
    grad = _ctc_grad(lp, ext, lp_ext, skip, il, tl, alphas, nll)
    if zero_infinity:
        inf = nll == jnp.inf
        grad = jnp.where(inf[None, :, None], jnp.zeros((), grad.dtype), grad)
        nll = jnp.where(inf, jnp.zeros((), nll.dtype), nll)
    return nll, jnp.sum(grad * dlp, axis=(0, 2))


# One compiled kernel per shape, so eager calls do not retrace the scans each time
# (inside an outer trace it is inlined).
_ctc_core = jax.jit(_ctc_nll, static_argnums=(4, 5))
