"""jmod's global generator: torch-like API, reproducibility, distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod


def test_manual_seed_reproduces_and_streams_advance():
    jmod.manual_seed(123)
    a = jmod.randn(4)
    b = jmod.randn(4)
    assert not np.allclose(a, b)
    jmod.manual_seed(123)
    np.testing.assert_array_equal(jmod.randn(4), a)
    state = jmod.get_rng_state()
    c = jmod.rand(3)
    jmod.set_rng_state(state)
    np.testing.assert_array_equal(jmod.rand(3), c)
    assert jmod.initial_seed() == 123


def test_draw_shapes_dtypes_and_ranges():
    assert jmod.rand(2, 3).shape == (2, 3) and jmod.randn((4,)).dtype == jnp.float32
    r = jmod.randint(3, 7, (1000,))
    assert r.min() >= 3 and r.max() < 7 and r.dtype == jnp.int32
    assert jmod.randint(5, size=(2,)).shape == (2,)
    assert sorted(np.asarray(jmod.randperm(6)).tolist()) == list(range(6))
    b = jmod.bernoulli(jnp.full((20000,), 0.3))
    assert abs(float(b.mean()) - 0.3) < 0.02
    n = jmod.normal(2.0, 3.0, size=(20000,))
    assert abs(float(n.mean()) - 2.0) < 0.1 and abs(float(n.std()) - 3.0) < 0.1


def test_multinomial_with_and_without_replacement():
    probs = jnp.array([[0.1, 0.0, 0.6, 0.3], [0.0, 0.0, 1.0, 0.0]])
    s = jmod.multinomial(probs, 4000, replacement=True)
    assert s.shape == (2, 4000)
    freq = np.bincount(np.asarray(s[0]), minlength=4) / 4000
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.6, 0.3], atol=0.03)
    assert (s[1] == 2).all()
    w = jmod.multinomial(jnp.array([1.0, 1.0, 0.0, 1.0]), 3)
    assert sorted(np.asarray(w).tolist()) == [0, 1, 3]
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        jmod.multinomial(jnp.ones(3), 4)


def test_generators_are_independent_and_work_in_jit():
    g = jmod.Generator().manual_seed(5)
    jmod.manual_seed(5)
    np.testing.assert_array_equal(jmod.rand(3, generator=g), jmod.rand(3))
    f = jmod.jit(lambda g: jmod.multinomial(jnp.ones(10), 3, generator=g))
    assert not np.array_equal(f(g), f(g))
    jax.block_until_ready(f(g))
