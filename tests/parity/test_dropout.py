"""Dropout layers: statistics of the masks (JAX keys cannot reproduce torch's masks),
torch's exact arithmetic on kept/dropped elements, eval/identity, fresh masks per call,
reproducibility from ``jmod.manual_seed``, channel-wise masks, alpha dropout's
self-normalisation, gradients, tracing, reprs and errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jmod
import jmod.nn.functional as F
from jmod import nn
from jmod._src.errors import UnthreadedRandomStateError
from jmod.func import functional_call
from tests.parity._helpers_layers_a import assert_same_signature, same_error

pytestmark = pytest.mark.torch

N = 20000  # fraction-of-zeros tolerance 0.02 is > 5 standard deviations at this size
ALPHA = 1.7580993408473766  # torch's alpha dropout constant


def _x(shape=(40, 500), seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_scaling(p):
    x = _x()
    y = nn.Dropout(p)(x)
    kept = np.asarray(y != 0)
    assert abs(1 - kept.mean() - p) < 0.02
    # survivors are scaled by 1/(1-p) exactly as torch computes it (x * (1 / (1 - p)))
    expected = np.asarray(x) * np.float32(1.0 / (1 - p))
    np.testing.assert_allclose(np.asarray(y)[kept], expected[kept], rtol=1e-6)


def test_dropout_eval_identity_and_no_draw():
    x = _x()
    m = nn.Dropout(0.5).eval()
    state = np.asarray(jmod.get_rng_state())
    np.testing.assert_array_equal(np.asarray(m(x)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.5, training=False)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.0)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(jmod.get_rng_state()), state)  # nothing drawn


def test_fresh_mask_each_call_and_reseeding_reproduces():
    x = _x()
    m = nn.Dropout(0.5)
    jmod.manual_seed(123)
    a, b = np.asarray(m(x)), np.asarray(m(x))
    assert (a != b).mean() > 0.3
    jmod.manual_seed(123)
    np.testing.assert_array_equal(np.asarray(m(x)), a)
    np.testing.assert_array_equal(np.asarray(m(x)), b)


def test_p_one_and_special_values_match_torch():
    x = np.array([1.0, -2.0, np.inf, np.nan], np.float32)
    for jf, tf in [(F.dropout, TF.dropout), (F.alpha_dropout, TF.alpha_dropout)]:
        got = np.asarray(jf(jnp.asarray(x), 1.0, True))
        exp = tf(torch.tensor(x), 1.0, True).numpy()
        np.testing.assert_array_equal(got, exp)  # input * 0: NaN for inf/NaN, as torch
    got = F.feature_alpha_dropout(jnp.ones((2, 3, 4)), 1.0, True)
    np.testing.assert_array_equal(np.asarray(got), TF.feature_alpha_dropout(torch.ones(2, 3, 4), 1.0, True).numpy())


@pytest.mark.parametrize(
    "name", ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
)
@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_invalid_p_matches_torch(name, p):
    same_error(lambda: getattr(nn, name)(p), lambda: getattr(torch.nn, name)(p))


@pytest.mark.parametrize(
    "fn", ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
)
def test_functional_invalid_p_and_repr(fn):
    same_error(lambda: getattr(F, fn)(jnp.ones((2, 3, 4)), 2.0), lambda: getattr(TF, fn)(torch.ones(2, 3, 4), 2.0))
    cls = {"dropout": "Dropout", "alpha_dropout": "AlphaDropout", "feature_alpha_dropout": "FeatureAlphaDropout"}.get(
        fn, fn.replace("dropout", "Dropout")
    )
    for kw in [{}, {"p": 0.2, "inplace": True}]:
        assert repr(getattr(nn, cls)(**kw)) == repr(getattr(torch.nn, cls)(**kw))


def _channel_check(y: np.ndarray, x: np.ndarray, p: float, channel_axes: int) -> None:
    """Each (n, c) channel is all dropped or all kept (scaled by 1/(1-p))."""
    flat_y = y.reshape(*y.shape[:channel_axes], -1)
    flat_x = x.reshape(*x.shape[:channel_axes], -1)
    dropped = (flat_y == 0).all(-1)
    kept = np.isclose(flat_y, flat_x / (1 - p), rtol=1e-6).all(-1)
    assert (dropped | kept).all()
    assert abs(dropped.mean() - p) < 0.05


@pytest.mark.parametrize(
    "name,shape,channel_axes",
    [
        ("Dropout1d", (50, 40, 3), 2),
        ("Dropout1d", (400, 3), 1),  # unbatched (C, L)
        ("Dropout2d", (50, 40, 2, 2), 2),
        ("Dropout3d", (50, 40, 2, 1, 2), 2),
        ("Dropout3d", (400, 2, 1, 2), 1),  # unbatched (C, D, H, W)
    ],
)
def test_channel_dropout(name, shape, channel_axes):
    p = 0.3
    x = np.abs(np.random.default_rng(1).standard_normal(shape).astype(np.float32)) + 0.1
    y = np.asarray(getattr(nn, name)(p)(jnp.asarray(x)))
    _channel_check(y, x, p, channel_axes)
    assert np.array_equal(np.asarray(getattr(nn, name)(p).eval()(jnp.asarray(x))), x)


def test_dropout2d_legacy_shapes_warn_like_torch():
    p = 0.3
    x = np.abs(np.random.default_rng(2).standard_normal((50, 40, 3)).astype(np.float32)) + 0.1
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        y = np.asarray(nn.Dropout2d(p)(jnp.asarray(x)))
    _channel_check(y, x, p, 2)  # torch treats it as (N, C, L)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d, which is deprecated"):
        nn.Dropout2d(p)(jnp.ones((4, 5)))
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d, which is deprecated"):
        nn.Dropout3d(p)(jnp.ones((4, 5, 6)))
    same_error(lambda: F.dropout1d(jnp.ones((2, 3, 4, 5))), lambda: TF.dropout1d(torch.ones(2, 3, 4, 5)))
    same_error(
        lambda: F.feature_alpha_dropout(jnp.ones(5), 0.5, True),
        lambda: TF.feature_alpha_dropout(torch.ones(5), 0.5, True),
    )


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_alpha_dropout_arithmetic_matches_torch(p):
    # Masks differ, but torch's affine map is deterministic: kept elements become
    # a*x + alpha*a*p, dropped ones alpha*a*(p-1); compare both sets with torch's.
    x = np.random.default_rng(3).standard_normal(N).astype(np.float32)
    a = 1.0 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))
    drop_value = np.float32(ALPHA * a * (p - 1))
    t = TF.alpha_dropout(torch.tensor(x), p, True).numpy()
    j = np.asarray(F.alpha_dropout(jnp.asarray(x), p, True))
    for out in (t, j):
        dropped = np.isclose(out, drop_value, rtol=0, atol=1e-6)
        assert abs(dropped.mean() - p) < 0.02
    kept_both = ~np.isclose(t, drop_value, atol=1e-6) & ~np.isclose(j, drop_value, atol=1e-6)
    np.testing.assert_allclose(j[kept_both], t[kept_both], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(j[np.isclose(j, drop_value, atol=1e-6)], drop_value, rtol=1e-6)


@pytest.mark.parametrize("name", ["AlphaDropout", "FeatureAlphaDropout"])
def test_alpha_dropout_keeps_selu_statistics(name):
    # SELU-normalised input: zero mean, unit variance; alpha dropout preserves both.
    x = jnp.asarray(np.random.default_rng(4).standard_normal((100, 400, 2)).astype(np.float32))
    y = np.asarray(getattr(nn, name)(0.2)(x))
    assert abs(y.mean()) < 0.05 and abs(y.var() - 1) < 0.05
    if name == "FeatureAlphaDropout":
        a = 1.0 / math.sqrt((ALPHA * ALPHA * 0.2 + 1) * 0.8)
        dropped = np.isclose(y, ALPHA * a * (0.2 - 1), atol=1e-6).all(-1)
        assert abs(dropped.mean() - 0.2) < 0.02  # whole channels
    np.testing.assert_array_equal(np.asarray(getattr(nn, name)(0.2).eval()(x)), np.asarray(x))
    # the functional forms default to training=False, as torch
    np.testing.assert_array_equal(
        np.asarray(
            getattr(F, name.replace("AlphaDropout", "alpha_dropout").replace("Feature", "feature_").lower())(x, 0.2)
        ),
        np.asarray(x),
    )


def test_dropout_gradient_is_the_mask():
    x = _x((20, 50))
    key = jax.random.key(0)

    def f(x):
        with jmod.fork_rng(key):
            return F.dropout(x, 0.4)

    y = f(x)
    g = jax.grad(lambda x: f(x).sum())(x)
    np.testing.assert_allclose(np.asarray(g), np.where(np.asarray(y) != 0, 1 / 0.6, 0.0), rtol=1e-6)


def test_dropout_under_jit_needs_a_threaded_key():
    m = nn.Dropout(0.5)
    x = _x((10, 20))
    with pytest.raises(UnthreadedRandomStateError):
        jax.jit(lambda x: functional_call(m, {}, (x,)))(x)
    f = jax.jit(lambda x, k: functional_call(m, {}, (x,), key=k))
    y1, y2 = f(x, jax.random.key(1)), f(x, jax.random.key(2))
    assert (np.asarray(y1) != np.asarray(y2)).any()
    np.testing.assert_array_equal(np.asarray(f(x, jax.random.key(1))), np.asarray(y1))
    m.eval()  # no randomness in eval: a plain jax.jit is fine
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda x: functional_call(m, {}, (x,)))(x)), np.asarray(x))


@pytest.mark.parametrize(
    "name",
    ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
    + ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"],
)
def test_signature_matches_torch(name):
    if name[0].isupper():
        assert_same_signature(getattr(nn, name), getattr(torch.nn, name))
    else:
        assert_same_signature(getattr(F, name), getattr(TF, name))
