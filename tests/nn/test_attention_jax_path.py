"""scaled_dot_product_attention on jax.nn.dot_product_attention: torch's numbers for
masks (bool, float with -inf, rows with no key left), is_causal, scale and GQA; the
math path where jax's function is not faithful (dropout)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod.nn.functional as F
from jmod._src.functional import attention as A

B, H, L, S, E = 2, 4, 5, 6, 8


def _inputs(hk: int = H):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, H, L, E)).astype(np.float32)
    k = rng.standard_normal((B, hk, S, E)).astype(np.float32)
    v = rng.standard_normal((B, hk, S, E)).astype(np.float32)
    return q, k, v


def _masks():
    rng = np.random.default_rng(1)
    bool_mask = rng.random((B, 1, L, S)) > 0.4
    bool_mask[0, 0, 2] = False  # a query row with no key left
    float_mask = np.where(bool_mask, rng.standard_normal((B, 1, L, S)), -np.inf).astype(np.float32)
    return {"none": None, "bool": bool_mask, "float": float_mask}


@pytest.mark.torch
@pytest.mark.parametrize("mask", ["none", "bool", "float"])
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("gqa", [False, True])
def test_jax_path_matches_torch(mask: str, is_causal: bool, gqa: bool) -> None:
    import torch

    q, k, v = _inputs(2 if gqa else H)
    m = _masks()[mask]
    assert A._jax_attention_implementation(
        jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), m, 0.0, H // k.shape[1], H // k.shape[1]
    ) == "xla"
    kw = dict(attn_mask=None if m is None else jnp.asarray(m), is_causal=is_causal, scale=0.3, enable_gqa=gqa)

    def f(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, **kw)

    out, vjp = jax.vjp(jax.jit(f), *map(jnp.asarray, (q, k, v)))
    ct = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    grads = vjp(jnp.asarray(ct))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tout = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=None if m is None else torch.tensor(m), is_causal=is_causal, scale=0.3, enable_gqa=gqa
    )
    tout.backward(torch.tensor(ct))
    np.testing.assert_allclose(np.asarray(out), tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    for g, t in zip(grads, (tq, tk, tv)):
        np.testing.assert_allclose(np.asarray(g), t.grad.numpy(), rtol=1e-5, atol=1e-5)
    with A._force_math_path():
        math = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw))(*map(jnp.asarray, (q, k, v)))
    np.testing.assert_allclose(np.asarray(out), np.asarray(math), rtol=1e-5, atol=1e-6)


def test_math_path_where_jax_is_not_faithful() -> None:
    q, k, v = map(jnp.asarray, _inputs())
    assert A._jax_attention_implementation(q, k, v, None, 0.1, 1, 1) is None  # dropout
    assert A._jax_attention_implementation(q[0], k[0], v[0], None, 0.0, 1, 1) is None  # 3-D
    assert A._jax_attention_implementation(q.astype(jnp.float16), k, v, None, 0.0, 1, 1) is None  # CPU half
    assert A._jax_attention_implementation(q, k, v[..., :4], None, 0.0, 1, 1) is None  # Ev != E
    with A._force_math_path():
        assert A._jax_attention_implementation(q, k, v, None, 0.0, 1, 1) is None
