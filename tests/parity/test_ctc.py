"""CTCLoss / F.ctc_loss against torch: every reduction, blank positions, padded and
concatenated targets, unbatched input, repeated labels, impossible alignments with and
without ``zero_infinity``, empty inputs, raw (unnormalized) ``log_probs`` (torch's
gradient formula ``exp(log_probs) - posterior``), gradients through ``log_softmax``,
compiled calls with traced lengths, and torch's error messages.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jmod
import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_close, assert_matches_torch, record
from tests.parity._helpers_layers_a import all_reductions, jmod_fn, same_error, torch_fn

pytestmark = pytest.mark.torch


def _case(seed, T, N, C, S, blank=0, raw=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, C)).astype(np.float32)
    lp = x if raw else np.asarray(TF.log_softmax(torch.tensor(x), -1))
    targets = rng.integers(0, C - 1, size=(N, S))
    targets = np.where(targets >= blank, targets + 1, targets)  # never the blank
    return lp, targets.astype(np.int64), rng


def _concat(targets, tl):
    return np.concatenate([targets[n, : tl[n]] for n in range(len(tl))]).astype(np.int64)


CASES = [
    # (blank, form, raw log_probs, jit)
    (0, "padded", False, True),
    (0, "concat", False, False),
    (2, "padded", True, False),
    (4, "concat", True, True),
]


@pytest.mark.parametrize(
    "blank,form,raw,jit", CASES, ids=[f"blank{b}-{f}-{'raw' if r else 'logsm'}" for b, f, r, _ in CASES]
)
def test_ctc_loss_reductions(blank, form, raw, jit):
    T, N, C, S = 7, 4, 5, 4
    lp, targets, _ = _case(1 + blank, T, N, C, S, blank, raw)
    il = np.array([7, 6, 5, 7], np.int64)
    tl = np.array([4, 2, 0, 3], np.int64)  # includes an empty target
    tg = targets if form == "padded" else _concat(targets, tl)
    j, t = all_reductions("CTCLoss", blank=blank)
    assert_matches_torch(j, t, lp, tg, il, tl, check_jit=jit, atol=1e-5, rtol=1e-5)


def test_ctc_loss_tuple_lengths_and_long_sequences():
    # torch's documentation example sizes; lengths as tuples
    T, N, C, S = 50, 4, 20, 30
    lp, targets, _ = _case(3, T, N, C, S)
    il, tl = (50, 45, 40, 50), (30, 20, 10, 1)
    j, t = jmod_fn(F.ctc_loss, reduction="none"), torch_fn(TF.ctc_loss, reduction="none")
    assert_matches_torch(j, t, lp, _concat(targets, tl), il, tl, check_jit=False, atol=1e-4, rtol=1e-5)


def test_ctc_loss_repeated_labels():
    # Repeated labels need a blank in between: [1, 1, 1] needs 5 steps.
    lp, _, _ = _case(4, 6, 3, 4, 3)
    tg = np.array([[1, 1, 1], [2, 2, 3], [3, 1, 3]], np.int64)
    il = np.array([5, 6, 4], np.int64)
    tl = np.array([3, 3, 3], np.int64)
    j, t = all_reductions("CTCLoss")
    assert_matches_torch(j, t, lp, tg, il, tl, check_jit=False)


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_loss_impossible_alignments(zero_infinity):
    # Targets longer than their inputs (inf losses: NaN gradients unless zero_infinity),
    # empty inputs (loss 0 for an empty target, inf otherwise; 0 gradient).
    lp, _, _ = _case(5, 4, 5, 4, 3)
    tg = np.array([[1, 1, 1], [1, 2, 3], [1, 2, 3], [2, 0, 0], [3, 0, 0]], np.int64)
    il = np.array([4, 2, 4, 0, 0], np.int64)
    tl = np.array([3, 3, 2, 1, 0], np.int64)
    j, t = all_reductions("CTCLoss", zero_infinity=zero_infinity)
    assert_matches_torch(j, t, lp, tg, il, tl, check_jit=zero_infinity)
    out = F.ctc_loss(jnp.asarray(lp), tg, il, tl, reduction="none", zero_infinity=zero_infinity)
    if zero_infinity:
        assert float(out[0]) == 0.0 and float(out[1]) == 0.0
    else:
        assert np.isinf(np.asarray(out)[[0, 1, 3]]).all() and float(out[4]) == 0.0


def test_ctc_loss_unbatched():
    lp, targets, _ = _case(6, 6, 1, 5, 3)
    lp = np.ascontiguousarray(lp[:, 0])
    tg = targets[0]  # 1-D: concatenated form of one target; tg[None]: padded (1, S)
    for tg_, il, tl in [(tg[:2], np.array(5), np.array(2)), (tg[None], (6,), (3,))]:
        j, t = all_reductions("CTCLoss")
        assert_matches_torch(j, t, lp, tg_, il, tl, check_jit=False)


def test_ctc_loss_gradient_through_log_softmax():
    # Through log_softmax both the true derivative and torch's formula give the same
    # logit gradient; check the composition against torch.
    x, targets, _ = _case(7, 8, 3, 6, 4, raw=True)
    il, tl = np.array([8, 7, 6], np.int64), np.array([4, 3, 2], np.int64)
    j = jmod_fn(lambda x, *a: F.ctc_loss(F.log_softmax(x, -1), *a, reduction="sum"), name="ctc_loss_logits")
    t = torch_fn(lambda x, *a: TF.ctc_loss(TF.log_softmax(x, -1), *a, reduction="sum"), name="ctc_loss_logits")
    assert_matches_torch(j, t, x, targets, il, tl, check_jit=True)


@pytest.mark.parametrize("form", ["padded", "concat"])
def test_ctc_loss_jmod_jit_traced_lengths(form):
    # Lengths and targets passed as traced arguments: static shapes, no value checks.
    T, N, C, S = 6, 3, 5, 3
    lp, targets, _ = _case(8, T, N, C, S)
    il = np.array([6, 4, 5], np.int64)
    tl = np.array([3, 1, 2], np.int64)
    tg = targets if form == "padded" else _concat(targets, tl)
    t_lp = torch.tensor(lp, requires_grad=True)
    expected = TF.ctc_loss(t_lp, torch.tensor(tg), torch.tensor(il), torch.tensor(tl), reduction="mean")
    (t_grad,) = torch.autograd.grad(expected, t_lp)
    loss_mod = nn.CTCLoss()
    got = jmod.jit(lambda m, *xs: m(*xs))(loss_mod, jnp.asarray(lp), jnp.asarray(tg), jnp.asarray(il), jnp.asarray(tl))
    grad = jax.jit(jax.grad(lambda a, *xs: F.ctc_loss(a, *xs)))(
        jnp.asarray(lp), jnp.asarray(tg), jnp.asarray(il), jnp.asarray(tl)
    )
    fe = assert_close(got, expected, atol=1e-5, rtol=1e-5, what="CTCLoss jmod.jit")
    ge = assert_close(grad, t_grad, atol=1e-5, rtol=1e-5, what="CTCLoss jit grad")
    record("CTCLoss", fe, ge)


def test_ctc_loss_module_repr_and_constants():
    for kw in [{}, {"blank": 3, "reduction": "sum", "zero_infinity": True}]:
        j, t = nn.CTCLoss(**kw), torch.nn.CTCLoss(**kw)
        assert repr(j) == repr(t)
        assert (j.blank, j.reduction, j.zero_infinity) == (t.blank, t.reduction, t.zero_infinity)
        assert list(j.state_dict()) == list(t.state_dict()) == []


def test_ctc_loss_errors_match_torch():
    lp = np.asarray(TF.log_softmax(torch.randn(5, 2, 4), -1))
    tg = np.array([[1, 2, 0], [3, 3, 1]], np.int64)

    def check(lp_, tg_, il, tl, **kw):
        def conv(v, jmod_side):
            if isinstance(v, np.ndarray):
                return jnp.asarray(v) if jmod_side else torch.tensor(v)
            return v

        same_error(
            lambda: F.ctc_loss(conv(lp_, True), conv(tg_, True), conv(il, True), conv(tl, True), **kw),
            lambda: TF.ctc_loss(conv(lp_, False), conv(tg_, False), conv(il, False), conv(tl, False), **kw),
        )

    check(lp, tg, (5, 5), (2, 3), blank=4)
    check(lp, tg, (5, 5), (2, 3), blank=-1)
    check(lp, tg, (5,), (2, 3))
    check(lp, tg, (5, 5), (2, 3, 1))
    check(lp, tg, (6, 5), (2, 3))
    check(lp, tg, (-1, 5), (2, 3))
    check(lp, tg, (5, 5), (-1, 3))
    check(lp, tg, (5, 5), (2, 4))
    check(lp, tg[:1], (5, 5), (2, 3))
    check(lp, np.array([1, 2, 3]), (5, 5), (2, 3))
    check(lp, np.array([1, 2, 3, 3, 1, 1]), (5, 5), (2, 3))
    check(lp, tg, np.array([5.0, 5.0], np.float32), np.array([2, 3]))
    check(lp, tg, np.array([5, 5]), np.array([2.0, 3.0], np.float32))
    check(lp, tg, np.array([True, True]), np.array([2, 3]))
    check(lp, tg, (5, 5), (2, 3), reduction="foo")
    check(lp[None], tg, (5, 5), (2, 3))
    check(lp[0, 0], tg, (5, 5), (2, 3))
    check(lp[:0], tg, (0, 0), (0, 0))
    check(lp.astype(np.float16), tg, (5, 5), (2, 3))
    check(lp, tg[None], (5, 5), (2, 3))
    check(lp, np.array(1), (5, 5), (2, 3))
