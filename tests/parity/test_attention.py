"""Parity of ``F.scaled_dot_product_attention``, ``F.multi_head_attention_forward`` and
``nn.MultiheadAttention`` with torch 2.13 (CPU).

Where torch's behaviour depends on its kernel choice (an ``attn_mask`` together with
``is_causal``), the sweeps ask torch first and expect jmod to do the same thing: the
same numbers, or the same error type and message.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
import jmod.nn.functional as F
from jmod import nn
from jmod.func import functional_call
from tests.helpers import assert_matches_torch
from tests.parity._allpairs import all_pairs, case_id

pytestmark = pytest.mark.torch

TF = torch.nn.functional


# ----------------------------------------------------------------------------- helpers
class JFn(nn.Module):
    """A parameterless jmod module calling ``fn(*inputs, **fixed, **call_kwargs)``."""

    def __init__(self, fn, **fixed):
        super().__init__()
        self.fn = fn
        self.fixed = fixed

    def forward(self, *args, **kwargs):
        return self.fn(*args, **self.fixed, **kwargs)


class TFn(torch.nn.Module):
    def __init__(self, fn, **fixed):
        super().__init__()
        self.fn = fn
        self.fixed = fixed

    def forward(self, *args, **kwargs):
        return self.fn(*args, **self.fixed, **kwargs)


class ScaledDotProductAttention(JFn):
    """Names the functional's rows in the parity summary."""


class ScaledDotProductAttentionFloat16(JFn):
    """The float16 run, reported apart because of its looser tolerance."""


def _sdpa_pair(cls=ScaledDotProductAttention, **fixed):
    return cls(F.scaled_dot_product_attention, **fixed), TFn(TF.scaled_dot_product_attention, **fixed)


def _to_torch(x, requires_grad=False):
    if isinstance(x, np.ndarray):
        return torch.tensor(x, requires_grad=requires_grad and np.issubdtype(x.dtype, np.floating))
    return x


def _to_jax(x):
    return jnp.asarray(x) if isinstance(x, np.ndarray) else x


def torch_error(torch_mod, *inputs, kwargs=None):
    """The exception torch raises for this call (inputs requiring grad, as in the parity helper), or None."""
    kwargs = kwargs or {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_mod(*[_to_torch(x, True) for x in inputs], **{k: _to_torch(v) for k, v in kwargs.items()})
    except Exception as e:  # noqa: BLE001 - any torch error is the expectation
        return e
    return None


def parity_or_same_error(jmod_mod, torch_mod, *inputs, kwargs=None, **opts):
    """assert_matches_torch, or, when torch raises, the same error type and message from jmod."""
    err = torch_error(torch_mod, *inputs, kwargs=kwargs)
    if err is None:
        return assert_matches_torch(jmod_mod, torch_mod, *inputs, kwargs=kwargs, **opts)
    with pytest.raises(type(err), match=re.escape(str(err))):
        jmod_mod(*[_to_jax(x) for x in inputs], **{k: _to_jax(v) for k, v in (kwargs or {}).items()})
    return None


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _keep_mask(rng, shape):
    """A boolean SDPA mask (True = attend) that keeps key 0 so no row is fully masked."""
    m = rng.random(shape) > 0.4
    m[..., 0] = True
    return m


# =========================================================== scaled_dot_product_attention
SDPA_SHAPES = {
    "4d": ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)),
    "4d_square": ((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4)),
    "4d_L_gt_S": ((1, 2, 6, 4), (1, 2, 3, 4), (1, 2, 3, 4)),
    "3d_Ev_ne_E": ((3, 4, 4), (3, 6, 4), (3, 6, 5)),
    "5d": ((2, 1, 2, 3, 4), (2, 1, 2, 5, 4), (2, 1, 2, 5, 4)),
    "2d": ((3, 4), (5, 4), (5, 4)),
    "4d_broadcast_kv": ((2, 2, 3, 4), (1, 2, 5, 4), (2, 1, 5, 4)),
}
SDPA_MASKS = ["none", "bool_2d", "bool_full", "float_2d", "float_bcast"]


def _sdpa_mask(kind, rng, q_shape, k_shape):
    L, S = q_shape[-2], k_shape[-2]
    batch = np.broadcast_shapes(q_shape[:-2], k_shape[:-2])
    if kind == "none":
        return None
    if kind == "bool_2d":
        return _keep_mask(rng, (L, S))
    if kind == "bool_full":
        return _keep_mask(rng, (*batch, L, S))
    if kind == "float_2d":
        return _rand(rng, L, S)
    # broadcast over every batch dim but the first, and over the queries
    shape = (*batch[:1], *([1] * (len(batch) - 1)), 1, S) if batch else (1, S)
    return _rand(rng, *shape)


class ScaledDotProductAttentionMasks(nn.Module):
    """``scaled_dot_product_attention(q, k, v, attn_mask=m, **fixed)`` for each mask given:
    several mask kinds checked in one parity run (one compilation instead of one each)."""

    def __init__(self, fn, names, **fixed):
        super().__init__()
        self.fn, self.names, self.fixed = fn, names, fixed

    def forward(self, q, k, v, **masks):
        return tuple(self.fn(q, k, v, attn_mask=masks.get(name), **self.fixed) for name in self.names)


class _TorchMasks(torch.nn.Module):
    def __init__(self, fn, names, **fixed):
        super().__init__()
        self.fn, self.names, self.fixed = fn, names, fixed

    def forward(self, q, k, v, **masks):
        return tuple(self.fn(q, k, v, attn_mask=masks.get(name), **self.fixed) for name in self.names)


# Every mask kind with and without is_causal on 4-D inputs (torch's fused kernel) and
# 3-D inputs (its math kernel, which rejects a mask with is_causal); the other layouts
# with fewer masks. Masks torch rejects must give jmod the same error; the others are
# compared together.
SDPA_SWEEP = {
    ("4d", False): SDPA_MASKS,
    ("4d", True): SDPA_MASKS,
    ("3d_Ev_ne_E", False): SDPA_MASKS,
    ("3d_Ev_ne_E", True): SDPA_MASKS,
    ("4d_L_gt_S", False): ["bool_2d", "float_bcast"],
    ("4d_L_gt_S", True): ["none", "bool_full"],
    ("4d_square", True): ["none", "float_bcast"],
    ("5d", False): ["bool_full", "float_bcast"],
    ("2d", True): ["none", "float_2d"],
    ("4d_broadcast_kv", False): ["bool_full", "float_2d"],
}


@pytest.mark.parametrize(("shape", "is_causal"), list(SDPA_SWEEP), ids=[f"{s}-causal={c}" for s, c in SDPA_SWEEP])
def test_sdpa_masks_causal_shapes(shape, is_causal):
    rng = np.random.default_rng(0)
    qs, ks, vs = SDPA_SHAPES[shape]
    q, k, v = _rand(rng, *qs), _rand(rng, *ks), _rand(rng, *vs)
    accepted, masks = [], {}
    for kind in SDPA_SWEEP[shape, is_causal]:
        mask = _sdpa_mask(kind, rng, qs, ks)
        kwargs = {"is_causal": is_causal} if mask is None else {"is_causal": is_causal, "attn_mask": mask}
        err = torch_error(TFn(TF.scaled_dot_product_attention), q, k, v, kwargs=kwargs)
        if err is not None:
            with pytest.raises(type(err), match=re.escape(str(err))):
                F.scaled_dot_product_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), **kwargs)
            continue
        accepted.append(kind)
        if mask is not None:
            masks[kind] = mask
    assert accepted, "torch rejected every mask"
    jm = ScaledDotProductAttentionMasks(F.scaled_dot_product_attention, accepted, is_causal=is_causal)
    tm = _TorchMasks(TF.scaled_dot_product_attention, accepted, is_causal=is_causal)
    assert_matches_torch(jm, tm, q, k, v, kwargs=masks)


def test_sdpa_mask_with_causal_follows_torch_kernel_choice():
    """torch 2.13 CPU applies both on 4-D inputs (fused kernel) and raises on 3-D ones (math kernel)."""
    rng = np.random.default_rng(1)
    mask = _keep_mask(rng, (3, 5))
    q, k, v = _rand(rng, 2, 2, 3, 4), _rand(rng, 2, 2, 5, 4), _rand(rng, 2, 2, 5, 4)
    both = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True)
    combined = F.scaled_dot_product_attention(q, k, v, attn_mask=mask & np.tril(np.ones((3, 5), bool)))
    np.testing.assert_array_equal(both, combined)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q[0], k[0], v[0], attn_mask=mask, is_causal=True)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True, dropout_p=0.5)


@pytest.mark.parametrize(("shape", "scale"), [("4d", 0.3), ("4d", 0.0), ("3d_Ev_ne_E", -0.5)])
def test_sdpa_scale(shape, scale):
    rng = np.random.default_rng(2)
    qs, ks, vs = SDPA_SHAPES[shape]
    jm, tm = _sdpa_pair(scale=scale)
    assert_matches_torch(jm, tm, _rand(rng, *qs), _rand(rng, *ks), _rand(rng, *vs))


def test_sdpa_default_scale_is_one_over_sqrt_e():
    rng = np.random.default_rng(3)
    q, k, v = _rand(rng, 2, 3, 16), _rand(rng, 2, 5, 16), _rand(rng, 2, 5, 16)
    np.testing.assert_allclose(
        F.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v, scale=0.25), atol=0, rtol=0
    )


GQA_CASES = {
    "hk2_causal": (((2, 4, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), True),
    "hk1": (((2, 4, 3, 4), (2, 1, 5, 4), (2, 1, 5, 4)), False),
    "hk2_hv1_causal": (((2, 4, 3, 4), (2, 2, 5, 4), (2, 1, 5, 4)), True),  # k/v head counts differ: math kernel
    "3d": (((4, 3, 4), (2, 5, 4), (2, 5, 4)), False),  # 3-D: heads are dim 0
}


class ScaledDotProductAttentionGQA(nn.Module):
    """The GQA cases in one parity run: inputs in groups of (q, k, v)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *qkv):
        causal = [c for _, c in GQA_CASES.values()]
        return tuple(self.fn(*qkv[3 * i : 3 * i + 3], is_causal=c, enable_gqa=True) for i, c in enumerate(causal))


class _TorchGQA(torch.nn.Module):
    forward = ScaledDotProductAttentionGQA.forward

    def __init__(self, fn):
        super().__init__()
        self.fn = fn


def test_sdpa_gqa():
    rng = np.random.default_rng(4)
    inputs = [_rand(rng, *s) for shapes, _ in GQA_CASES.values() for s in shapes]
    assert_matches_torch(ScaledDotProductAttentionGQA(F.scaled_dot_product_attention), _TorchGQA(TF.scaled_dot_product_attention),
                         *inputs)


def test_sdpa_gqa_equals_explicit_repeat():
    rng = np.random.default_rng(5)
    q, k, v = _rand(rng, 2, 6, 3, 4), _rand(rng, 2, 2, 5, 4), _rand(rng, 2, 2, 5, 4)
    gqa = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    explicit = F.scaled_dot_product_attention(q, np.repeat(k, 3, axis=1), np.repeat(v, 3, axis=1))
    np.testing.assert_allclose(gqa, explicit, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("ndim", "kind"), [(4, "bool"), (3, "float")])
def test_sdpa_fully_masked_rows_are_zero_with_zero_grad(ndim, kind):
    """torch 2.13 (both CPU kernels) gives 0 output and 0 gradient for a row with no key left."""
    rng = np.random.default_rng(6)
    lead = (2, 2) if ndim == 4 else (2,)
    q, k, v = _rand(rng, *lead, 3, 4), _rand(rng, *lead, 5, 4), _rand(rng, *lead, 5, 4)
    if kind == "bool":
        mask = _keep_mask(rng, (3, 5))
        mask[1] = False
    else:
        mask = _rand(rng, 3, 5)
        mask[1] = -np.inf
    jm, tm = _sdpa_pair()
    assert_matches_torch(jm, tm, q, k, v, kwargs={"attn_mask": mask})
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not np.any(np.asarray(out[..., 1, :]))


def test_sdpa_float_mask_gradient():
    """A float mask is differentiable (torch takes its math kernel for a mask requiring grad)."""
    rng = np.random.default_rng(7)
    jm, tm = _sdpa_pair()
    q, k, v = _rand(rng, 2, 2, 3, 4), _rand(rng, 2, 2, 5, 4), _rand(rng, 2, 2, 5, 4)
    jm.forward = lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    tm.forward = lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m)
    assert_matches_torch(jm, tm, q, k, v, _rand(rng, 2, 1, 3, 5))


def test_sdpa_float16_computes_in_float32():
    rng = np.random.default_rng(8)
    q, k, v = (_rand(rng, 2, 2, 4, 8).astype(np.float16) for _ in range(3))
    jm, tm = _sdpa_pair(ScaledDotProductAttentionFloat16)
    # float16 has a 1e-3 relative step; torch and jmod both round one float32 result.
    assert_matches_torch(jm, tm, q, k, v, atol=2e-3, rtol=2e-3, check_grad=False)
    assert F.scaled_dot_product_attention(q, k, v).dtype == jnp.float16


def test_sdpa_empty_sequences():
    rng = np.random.default_rng(9)
    q, k, v = _rand(rng, 2, 2, 3, 4), _rand(rng, 2, 2, 5, 4), _rand(rng, 2, 2, 5, 4)
    empty_l = F.scaled_dot_product_attention(q[:, :, :0], k, v)
    assert empty_l.shape == (2, 2, 0, 4)
    empty_s = F.scaled_dot_product_attention(q, k[:, :, :0], v[:, :, :0], is_causal=True)
    expected = TF.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k[:, :, :0]), torch.tensor(v[:, :, :0]))
    np.testing.assert_array_equal(empty_s, expected.numpy())


SDPA_ERROR_CASES = {
    "1d_inputs": (((4,), (4,), (4,)), {}),
    "dtype_mismatch": (((2, 3, 4), (2, 5, 4), ("f16", 2, 5, 4)), {}),
    "int_inputs": ((("i32", 2, 3, 4), ("i32", 2, 5, 4), ("i32", 2, 5, 4)), {}),
    "int_mask": (((2, 3, 4), (2, 5, 4), (2, 5, 4)), {"attn_mask": ("i32", 3, 5)}),
    "f16_mask_f32_query": (((2, 3, 4), (2, 5, 4), (2, 5, 4)), {"attn_mask": ("f16", 3, 5)}),
    "gqa_not_dividing": (((2, 3, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), {"enable_gqa": True}),
    "gqa_more_kv_heads": (((2, 2, 3, 4), (2, 4, 5, 4), (2, 4, 5, 4)), {"enable_gqa": True}),
    "gqa_2d": (((3, 4), (5, 4), (5, 4)), {"enable_gqa": True}),
    "heads_no_broadcast": (((2, 4, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), {}),
    "dropout_above_1": (((2, 3, 4), (2, 5, 4), (2, 5, 4)), {"dropout_p": 1.5}),
    "negative_dropout_fused": (((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), {"dropout_p": -0.5}),
    "mask_not_broadcastable": (((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), {"attn_mask": (3, 4)}),
    "mask_wider_than_scores": (((2, 3, 4), (2, 5, 4), (2, 5, 4)), {"attn_mask": (7, 2, 3, 5)}),
    "mask_1d_fused": (((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), {"attn_mask": (5,)}),
    "causal_with_mask_3d": (((2, 3, 4), (2, 5, 4), (2, 5, 4)), {"attn_mask": ("bool", 3, 5), "is_causal": True}),
}


def _make(spec, rng):
    kind, shape = ("f32", spec) if not isinstance(spec[0], str) else (spec[0], spec[1:])
    x = _rand(rng, *shape)
    return {"f32": x, "f16": x.astype(np.float16), "i32": x.astype(np.int32), "bool": x > 0}[kind]


@pytest.mark.parametrize("case", list(SDPA_ERROR_CASES))
def test_sdpa_errors_match_torch(case):
    rng = np.random.default_rng(10)
    shapes, kwargs = SDPA_ERROR_CASES[case]
    q, k, v = (_make(s, rng) for s in shapes)
    kwargs = {n: _make(s, rng) if isinstance(s, tuple) else s for n, s in kwargs.items()}
    err = torch_error(TFn(TF.scaled_dot_product_attention), q, k, v, kwargs=kwargs)
    assert err is not None, f"torch accepted {case}"
    with pytest.raises(type(err), match=re.escape(str(err))):
        F.scaled_dot_product_attention(*(jnp.asarray(x) for x in (q, k, v)), **kwargs)


@pytest.mark.parametrize(
    "shapes",
    [((2, 3, 4), (2, 5, 3), (2, 5, 4)), ((2, 3, 4), (2, 5, 4), (2, 6, 4))],
    ids=["embed_dim", "seq_len"],
)
def test_sdpa_shape_errors(shapes):
    """q/k embedding sizes or k/v lengths that differ are errors (torch's 4-D fused kernel
    silently reads past a shorter value; jmod always raises)."""
    rng = np.random.default_rng(11)
    with pytest.raises(RuntimeError, match="Expected"):
        F.scaled_dot_product_attention(*(_rand(rng, *s) for s in shapes))


def test_sdpa_scale_is_keyword_only():
    with pytest.raises(TypeError):
        F.scaled_dot_product_attention(jnp.ones((2, 3, 4)), jnp.ones((2, 5, 4)), jnp.ones((2, 5, 4)), None, 0.0, False, 0.5)


# --- dropout: always applied when dropout_p > 0 (the functional has no training flag)
def _uniform_attention_inputs(B=2, H=2, L=8, S=32, E=4):
    # Zero queries give uniform weights 1/S; identity values make the output the weights.
    q = jnp.zeros((B, H, L, E))
    k = jnp.ones((B, H, S, E))
    v = jnp.broadcast_to(jnp.eye(S), (B, H, S, S))
    return q, k, v


@pytest.mark.parametrize("p", [0.3])
def test_sdpa_dropout_statistics(p):
    q, k, v = _uniform_attention_inputs()
    S = k.shape[-2]
    jmod.manual_seed(0)
    out = np.asarray(F.scaled_dot_product_attention(q, k, v, dropout_p=p))
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1.0 / (S * (1.0 - p)), rtol=1e-6)
    # 1024 Bernoulli draws: the dropped fraction is within 4 standard deviations of p.
    assert abs((~kept).mean() - p) < 4 * np.sqrt(p * (1 - p) / out.size)
    # Expected row sum is 1, as without dropout.
    assert abs(out.sum(-1).mean() - 1.0) < 4 * np.sqrt(p / (1 - p) / S / out[..., 0].size)


def test_sdpa_dropout_rng_follows_manual_seed():
    q, k, v = _uniform_attention_inputs(B=1, H=1)
    jmod.manual_seed(123)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    jmod.manual_seed(123)
    c = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)
    assert not np.any(np.asarray(F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)))


def test_sdpa_dropout_under_jit_with_a_key():
    q, k, v = _uniform_attention_inputs(B=1, H=1)
    jm, _ = _sdpa_pair(dropout_p=0.5)
    f = jax.jit(lambda key, q: functional_call(jm, {}, (q, k, v), key=key))
    a, b = f(jax.random.key(0), q), f(jax.random.key(1), q)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, f(jax.random.key(0), q))


# ================================================================ MultiheadAttention
E, H, L, N = 8, 2, 5, 3
KDIM, VDIM = 6, 5

MHA_SWEEP = all_pairs(
    {
        # kpm_float / attn_bool_2d / attn_float_3d alone are exercised inside both_*.
        "masks": ["none", "kpm_bool", "both_bool", "both_float", "causal_hint"],
        # "cross": another key/value sequence (S != L) of embed_dim features; "kdim_vdim"
        # adds kdim/vdim (separate projection weights). The parity helper passes
        # separate arrays either way, so "self" differs from "cross" by S == L.
        "kv": ["self", "cross", "kdim_vdim"],
        "need_weights": [True, False],
        "batch_first": [False, True],
        "unbatched": [False, True],
        "average_attn_weights": [True, False],
        "add_bias_kv": [False, True],
        "add_zero_attn": [False, True],
        "bias": [True, False],
    }
)


def _mha_inputs(rng, kv, batch_first, unbatched, S=None):
    S = S if S is not None else (L if kv == "self" else 4)
    kd, vd = (KDIM, VDIM) if kv == "kdim_vdim" else (E, E)

    def seq(n, d):
        if unbatched:
            return _rand(rng, n, d)
        return _rand(rng, N, n, d) if batch_first else _rand(rng, n, N, d)

    query = seq(L, E)
    if kv == "self":
        return query, query, query, S
    return query, seq(S, kd), seq(S, vd), S


def _mha_masks(kind, rng, S, unbatched):
    """Masks in MultiheadAttention's convention (bool True = masked out)."""
    kwargs = {}
    lead = () if unbatched else (N,)
    heads = H if unbatched else N * H
    if kind in ("kpm_bool", "both_bool"):
        kpm = rng.random((*lead, S)) > 0.6
        kpm[..., 0] = False
        kwargs["key_padding_mask"] = kpm
    if kind in ("kpm_float", "both_float"):
        kpm = _rand(rng, *lead, S)
        kpm[..., -1] = -np.inf
        kwargs["key_padding_mask"] = kpm
    if kind in ("attn_bool_2d", "both_bool"):
        am = rng.random((L, S)) > 0.6
        am[:, 0] = False
        kwargs["attn_mask"] = am
    if kind in ("attn_float_3d", "both_float"):
        kwargs["attn_mask"] = _rand(rng, heads, L, S)
    if kind == "causal_hint":
        # A mask that is *not* causal with the hint: torch replaces it by a causal mask
        # when need_weights=False and no key_padding_mask is given, and uses it otherwise.
        kwargs["attn_mask"] = _rand(rng, L, S)
        kwargs["is_causal"] = True
    return kwargs


@pytest.mark.parametrize("case", MHA_SWEEP, ids=[case_id(c) for c in MHA_SWEEP])
def test_mha_sweep(case):
    rng = np.random.default_rng(12)
    kdim, vdim = (KDIM, VDIM) if case["kv"] == "kdim_vdim" else (None, None)
    ctor = dict(
        bias=case["bias"],
        add_bias_kv=case["add_bias_kv"],
        add_zero_attn=case["add_zero_attn"],
        kdim=kdim,
        vdim=vdim,
        batch_first=case["batch_first"],
    )
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, H, **ctor)
    jm = nn.MultiheadAttention(E, H, **ctor)
    q, k, v, S = _mha_inputs(rng, case["kv"], case["batch_first"], case["unbatched"])
    kwargs = _mha_masks(case["masks"], rng, S, case["unbatched"])
    kwargs.update(need_weights=case["need_weights"], average_attn_weights=case["average_attn_weights"])
    assert_matches_torch(jm, tm, q, k, v, kwargs=kwargs, train=False)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_causal_hint_replaces_mask_like_torch(need_weights):
    """With need_weights=False and no key_padding_mask, torch applies a causal mask in
    place of attn_mask, whatever attn_mask holds; with need_weights=True it uses attn_mask.
    (test_mha_sweep's causal_hint cases compare this with torch.)"""
    rng = np.random.default_rng(13)
    jm = nn.MultiheadAttention(E, H)
    x = _rand(rng, L, N, E)
    not_causal = _rand(rng, L, L)
    kwargs = {"attn_mask": not_causal, "is_causal": True, "need_weights": need_weights}
    hinted = jm(x, x, x, **kwargs)[0]
    causal = jm(x, x, x, attn_mask=np.triu(np.full((L, L), -np.inf, np.float32), 1), need_weights=need_weights)[0]
    plain = jm(x, x, x, attn_mask=not_causal, need_weights=need_weights)[0]
    expected = plain if need_weights else causal
    np.testing.assert_allclose(hinted, expected, atol=1e-6)


def test_mha_is_causal_needs_attn_mask():
    m = nn.MultiheadAttention(E, H)
    x = jnp.ones((L, N, E))
    err = torch_error(torch.nn.MultiheadAttention(E, H), np.ones((L, N, E), np.float32), np.ones((L, N, E), np.float32),
                      np.ones((L, N, E), np.float32), kwargs={"is_causal": True})
    with pytest.raises(type(err), match=re.escape(str(err))):
        m(x, x, x, is_causal=True)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_fully_masked_query(need_weights):
    """A query with every key masked: NaN with need_weights=True (plain softmax), the
    output projection's bias with need_weights=False (SDPA gives 0), as torch's general path."""
    rng = np.random.default_rng(14)
    tm, jm = torch.nn.MultiheadAttention(E, H), nn.MultiheadAttention(E, H)
    with torch.no_grad():
        tm.out_proj.bias.normal_()
    x = _rand(rng, L, N, E)
    am = np.zeros((L, L), bool)
    am[2] = True
    kwargs = {"attn_mask": am, "need_weights": need_weights}
    assert_matches_torch(jm, tm, x, x, x, kwargs=kwargs, train=False, check_grad=False)
    out = np.asarray(jm(x, x, x, **kwargs)[0])
    if need_weights:
        assert np.isnan(out[2]).all()
    else:
        np.testing.assert_allclose(out[2], np.broadcast_to(tm.out_proj.bias.detach().numpy(), (N, E)), atol=1e-6)


def test_mha_unbatched_3d_attn_mask_and_kpm():
    rng = np.random.default_rng(15)
    tm, jm = torch.nn.MultiheadAttention(E, H, batch_first=True), nn.MultiheadAttention(E, H, batch_first=True)
    x = _rand(rng, L, E)
    kpm = np.zeros(L, np.float32)
    kpm[3] = -np.inf
    kwargs = {"attn_mask": _rand(rng, H, L, L), "key_padding_mask": kpm, "average_attn_weights": False}
    assert_matches_torch(jm, tm, x, x, x, kwargs=kwargs, train=False)


def test_mha_mismatched_mask_types_warn_like_torch():
    rng = np.random.default_rng(16)
    tm, jm = torch.nn.MultiheadAttention(E, H), nn.MultiheadAttention(E, H)
    x = _rand(rng, L, N, E)
    kpm = np.zeros((N, L), bool)
    kpm[:, -1] = True
    kwargs = {"key_padding_mask": kpm, "attn_mask": _rand(rng, L, L)}
    msg = "Support for mismatched key_padding_mask and attn_mask is deprecated. Use same type for both instead."
    jm.load_state_dict(tm.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = tm(*(torch.tensor(a) for a in (x, x, x)), **{k: torch.tensor(v) for k, v in kwargs.items()})
    with pytest.warns(UserWarning, match=re.escape(msg)):
        got = jm(x, x, x, **kwargs)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.detach().numpy(), atol=1e-5, rtol=1e-5)


MHA_ERROR_CASES = {
    "attn_mask_2d_shape": {"attn_mask": ("f32", L, L + 1)},
    "attn_mask_3d_shape": {"attn_mask": ("f32", H, L, L)},
    "attn_mask_4d": {"attn_mask": ("f32", N, H, L, L)},
    "kpm_int": {"key_padding_mask": ("i32", N, L)},
    "attn_mask_int": {"attn_mask": ("i32", L, L)},
    "kpm_3d": {"key_padding_mask": ("bool", N, 1, L)},
    "kpm_batch": {"key_padding_mask": ("bool", N + 1, L)},
    "kpm_length": {"key_padding_mask": ("bool", N, L + 1)},
}


@pytest.mark.parametrize("case", list(MHA_ERROR_CASES))
def test_mha_errors_match_torch(case):
    rng = np.random.default_rng(17)
    x = _rand(rng, L, N, E)
    kwargs = {n: _make(s[1:] if s[0] == "f32" else s, rng) for n, s in MHA_ERROR_CASES[case].items()}
    err = torch_error(torch.nn.MultiheadAttention(E, H), x, x, x, kwargs=kwargs)
    assert err is not None
    with pytest.raises(type(err), match=re.escape(str(err))):
        nn.MultiheadAttention(E, H)(x, x, x, **kwargs)


@pytest.mark.parametrize(
    "args",
    [
        ((L, N, E), (L, E), (L, E)),
        ((L, E), (L, N, E), (L, N, E)),
        ((L, N, E), (L, N, E), (L + 1, N, E)),
        ((2, L, N, E), (2, L, N, E), (2, L, N, E)),
        ((L, N, E + 1), (L, N, E + 1), (L, N, E + 1)),
    ],
    ids=["batched_query_2d_key", "unbatched_query_3d_key", "key_value_shape", "4d_query", "embed_dim"],
)
def test_mha_input_shape_errors_match_torch(args):
    rng = np.random.default_rng(18)
    q, k, v = (_rand(rng, *s) for s in args)
    err = torch_error(torch.nn.MultiheadAttention(E, H), q, k, v)
    assert err is not None
    with pytest.raises(type(err), match=re.escape(str(err))):
        nn.MultiheadAttention(E, H)(q, k, v)


@pytest.mark.parametrize(
    "ctor",
    [
        {},
        {"bias": False},
        {"add_bias_kv": True},
        {"kdim": KDIM, "vdim": VDIM},
        {"kdim": KDIM},
        {"kdim": KDIM, "vdim": VDIM, "bias": False, "add_bias_kv": True, "add_zero_attn": True, "batch_first": True},
    ],
    ids=["default", "no_bias", "bias_kv", "kdim_vdim", "kdim_only", "everything"],
)
def test_mha_parameters_state_dict_and_repr_match_torch(ctor):
    tm, jm = torch.nn.MultiheadAttention(E, H, **ctor), nn.MultiheadAttention(E, H, **ctor)
    t_sd, j_sd = tm.state_dict(), jm.state_dict()
    assert list(j_sd) == list(t_sd)
    assert {k: tuple(v.shape) for k, v in j_sd.items()} == {k: tuple(v.shape) for k, v in t_sd.items()}
    assert [n for n, _ in jm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k", "bias_v"):
        assert (getattr(jm, name) is None) == (getattr(tm, name) is None), name
    for attr in ("embed_dim", "kdim", "vdim", "_qkv_same_embed_dim", "num_heads", "dropout", "batch_first", "head_dim",
                 "add_zero_attn"):
        assert getattr(jm, attr) == getattr(tm, attr), attr
    assert repr(jm) == repr(tm)
    assert type(jm.out_proj).__name__ == "NonDynamicallyQuantizableLinear"
    assert isinstance(jm.out_proj, nn.Linear)
    jm.load_state_dict(t_sd, strict=True)


def test_mha_default_initialisation():
    jmod.manual_seed(0)
    m = nn.MultiheadAttention(E, H, add_bias_kv=True)
    bound = np.sqrt(6.0 / (E + 3 * E))  # xavier uniform on (3E, E)
    w = np.asarray(m.in_proj_weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert not np.any(np.asarray(m.in_proj_bias)) and not np.any(np.asarray(m.out_proj.bias))
    assert np.abs(np.asarray(m.out_proj.weight)).max() <= 1 / np.sqrt(E)  # Linear's default
    bias_k, bias_v = np.asarray(m.bias_k), np.asarray(m.bias_v)
    assert bias_k.shape == (1, 1, E) and np.all(bias_k != 0) and not np.array_equal(bias_k, bias_v)
    separate = nn.MultiheadAttention(E, H, kdim=KDIM, vdim=VDIM)
    assert np.abs(np.asarray(separate.k_proj_weight)).max() <= np.sqrt(6.0 / (E + KDIM))


def test_mha_constructor_errors_match_torch():
    for args in ((0, 2), (8, 0), (8, 3)):
        try:
            torch.nn.MultiheadAttention(*args)
        except Exception as err:  # noqa: BLE001
            with pytest.raises(type(err), match=re.escape(str(err))):
                nn.MultiheadAttention(*args)
        else:
            raise AssertionError(f"torch accepted {args}")


def test_mha_dropout_in_training():
    """Training drops attention weights (scaled by 1/(1-p)); eval is deterministic."""
    rng = np.random.default_rng(19)
    p = 0.5
    m = nn.MultiheadAttention(E, H, dropout=p)
    x = _rand(rng, L, N, E)
    ref_w = np.asarray(m.eval()(x, x, x, average_attn_weights=False)[1])
    m.train()
    jmod.manual_seed(1)
    out1, w = m(x, x, x, average_attn_weights=False)
    w = np.concatenate([np.asarray(w)] + [np.asarray(m(x, x, x, average_attn_weights=False)[1]) for _ in range(3)])
    ref_w = np.concatenate([ref_w] * 4)
    kept = w != 0
    np.testing.assert_allclose(w[kept], ref_w[kept] / (1 - p), rtol=1e-5)
    assert abs((~kept).mean() - p) < 4 * np.sqrt(p * (1 - p) / w.size)
    jmod.manual_seed(1)
    np.testing.assert_array_equal(out1, m(x, x, x, average_attn_weights=False)[0])
    # need_weights=False routes the same dropout through scaled_dot_product_attention.
    out_a = m(x, x, x, need_weights=False)[0]
    out_b = m(x, x, x, need_weights=False)[0]
    assert not np.array_equal(out_a, out_b)
    m.eval()
    np.testing.assert_array_equal(m(x, x, x, need_weights=False)[0], m(x, x, x, need_weights=False)[0])


def test_mha_training_without_dropout_matches_torch():
    rng = np.random.default_rng(20)
    tm, jm = torch.nn.MultiheadAttention(E, H, dropout=0.0), nn.MultiheadAttention(E, H, dropout=0.0)
    x = _rand(rng, L, N, E)
    assert_matches_torch(jm, tm, x, x, x, train=True)


def test_mha_merge_masks_matches_torch():
    rng = np.random.default_rng(21)
    tm, jm = torch.nn.MultiheadAttention(E, H, batch_first=True), nn.MultiheadAttention(E, H, batch_first=True)
    x = _rand(rng, N, L, E)
    kpm = _rand(rng, N, L)
    for am in (_rand(rng, L, L), _rand(rng, N * H, L, L), None):
        for k in (kpm, None):
            t_m, t_type = tm.merge_masks(None if am is None else torch.tensor(am), None if k is None else torch.tensor(k),
                                         torch.tensor(x))
            j_m, j_type = jm.merge_masks(am, k, x)
            assert j_type == t_type
            if t_m is None:
                assert j_m is None
            else:
                np.testing.assert_allclose(j_m, t_m.numpy(), atol=1e-6)


def test_multi_head_attention_forward_static_kv_matches_torch():
    """The functional form with separate projection weights and static keys/values."""
    rng = np.random.default_rng(22)
    q = _rand(rng, L, N, E)
    k, v = _rand(rng, 4, N, KDIM), _rand(rng, 4, N, VDIM)
    w = dict(
        in_proj_weight=None,
        in_proj_bias=_rand(rng, 3 * E),
        bias_k=None,
        bias_v=None,
        out_proj_weight=_rand(rng, E, E),
        out_proj_bias=_rand(rng, E),
        q_proj_weight=_rand(rng, E, E),
        k_proj_weight=_rand(rng, E, KDIM),
        v_proj_weight=_rand(rng, E, VDIM),
        static_k=_rand(rng, N * H, 6, E // H),
        static_v=_rand(rng, N * H, 6, E // H),
    )

    def call(fn, conv):
        kw = {n: None if a is None else conv(a) for n, a in w.items()}
        pos = [kw.pop(n) for n in ("in_proj_weight", "in_proj_bias", "bias_k", "bias_v")]
        out = fn(conv(q), conv(k), conv(v), E, H, *pos, False, 0.0, kw.pop("out_proj_weight"), kw.pop("out_proj_bias"),
                 training=False, use_separate_proj_weight=True, average_attn_weights=False, **kw)
        return [np.asarray(o) for o in out]

    expected = call(TF.multi_head_attention_forward, torch.tensor)
    got = call(F.multi_head_attention_forward, jnp.asarray)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_mha_compiles_and_is_differentiable_under_jit():
    """jit of a loss through the module (parameters as inputs) equals the eager gradient."""
    rng = np.random.default_rng(23)
    m = nn.MultiheadAttention(E, H, batch_first=True).eval()
    x = jnp.asarray(_rand(rng, N, L, E))
    kpm = np.zeros((N, L), bool)
    kpm[:, -2:] = True
    params = dict(m.named_parameters())

    def loss(p, x):
        out, w = functional_call(m, p, (x, x, x), {"key_padding_mask": kpm})
        return (out**2).sum() + w.sum()

    g_eager = jax.grad(loss)(params, x)
    g_jit = jax.jit(jax.grad(loss))(params, x)
    for name in params:
        np.testing.assert_allclose(g_jit[name], g_eager[name], atol=1e-5, rtol=1e-5)


def test_canonical_mask_matches_torch():
    """torch.nn.functional's private mask helper, which ported transformer code calls."""
    rng = np.random.default_rng(24)
    for mask in (rng.random((N, L)) > 0.5, _rand(rng, N, L)):
        expected = TF._canonical_mask(torch.tensor(mask), "m", None, "", torch.float32)
        np.testing.assert_array_equal(F._canonical_mask(mask, "m", None, "", jnp.float32), expected.numpy())
    assert F._canonical_mask(None, "m", None, "", jnp.float32) is None
    assert F._none_or_dtype(None) is None and F._none_or_dtype(np.zeros(2, bool)) == jnp.bool_


@pytest.mark.parametrize("dtype", [jnp.float16, "float16", torch.float16])
def test_mha_dtype_argument(dtype):
    m = nn.MultiheadAttention(E, H, add_bias_kv=True, kdim=KDIM, dtype=dtype)
    assert {str(p.dtype) for p in m.parameters()} == {"float16"}
