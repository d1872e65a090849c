"""jmod.func: functional_call (torch.func semantics), get/set_state, stack_module_state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from jmod.func import functional_call, get_state, set_state, stack_module_state


class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("count", jnp.zeros(()))
        self.register_buffer("scratch", jnp.zeros(2), persistent=False)

    def forward(self, x):
        self.count = self.count + 1
        return self.lin(x)


def test_pure_and_leaves_module_unchanged():
    m = WithBuffer()
    before = {k: np.asarray(v) for k, v in m.state_dict().items()}
    params = {"lin.weight": jnp.ones((2, 3)), "lin.bias": jnp.zeros(2)}
    out, new_buffers = functional_call(m, params, (jnp.ones((1, 3)),), return_buffers=True)
    np.testing.assert_allclose(out, [[3.0, 3.0]])
    assert float(new_buffers["count"]) == 1.0 and set(new_buffers) == {"count"}
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    f = jax.jit(lambda p, x: functional_call(m, p, x))
    with jax.check_tracer_leaks():
        np.testing.assert_allclose(f(params, jnp.ones((1, 3))), [[3.0, 3.0]])
    g = jax.grad(lambda p: functional_call(m, p, jnp.ones((1, 3))).sum())(params)
    np.testing.assert_allclose(g["lin.weight"], np.ones((2, 3)))


def test_module_restored_when_forward_raises():
    class Bad(WithBuffer):
        def forward(self, x):
            self.count = self.count + 1
            raise RuntimeError("nope")

    m = Bad()
    with pytest.raises(RuntimeError, match="nope"):
        functional_call(m, {"count": jnp.ones(())}, (jnp.ones((1, 3)),))
    assert float(m.count) == 0.0


def test_tuple_of_dicts_strict_and_errors_match_torch():
    m = WithBuffer()
    p = {"lin.weight": jnp.ones((2, 3))}
    b = {"count": jnp.zeros(())}
    functional_call(m, (p, b), jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        functional_call(m, (p, p), jnp.ones((1, 3)))
    with pytest.raises(RuntimeError, match="Error\\(s\\) in reparametrizing for WithBuffer"):
        functional_call(m, p, jnp.ones((1, 3)), strict=True)
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'nope'"):
        functional_call(m, {**get_state(m).parameters, **get_state(m).buffers, "scratch": jnp.zeros(2), "nope": jnp.ones(1)}, jnp.ones((1, 3)), strict=True)


@pytest.mark.torch
def test_tied_weights_semantics_match_torch():
    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.foo = torch.nn.Parameter(torch.ones(()))
            self.foo_tied = self.foo

        def forward(self, x):
            return x + self.foo + self.foo_tied

    class J(nn.Module):
        def __init__(self):
            super().__init__()
            self.foo = nn.Parameter(jnp.ones(()))
            self.foo_tied = self.foo

        def forward(self, x):
            return x + self.foo + self.foo_tied

    t, j = T(), J()
    tf = torch.func.functional_call
    for kwargs in ({}, {"tie_weights": False}):
        a = tf(t, {"foo": torch.zeros(())}, torch.zeros(()), **kwargs)
        b = functional_call(j, {"foo": jnp.zeros(())}, jnp.zeros(()), **kwargs)
        np.testing.assert_allclose(b, a.detach().numpy())
    with pytest.raises(ValueError, match="which are tied"):
        functional_call(j, {"foo": jnp.zeros(()), "foo_tied": jnp.ones(())}, jnp.zeros(()))


def test_get_set_state_and_vmap_ensemble():
    models = [WithBuffer() for _ in range(3)]
    params, buffers = stack_module_state(models)
    assert params["lin.weight"].shape == (3, 2, 3)
    x = jnp.ones((5, 3))
    out = jax.vmap(lambda p, b: functional_call(models[0], (p, b), (x,)))(params, buffers)
    for i, m in enumerate(models):
        np.testing.assert_allclose(out[i], m(x), rtol=1e-6)
    s = get_state(models[0])
    assert list(s.buffers) == ["count"] and list(s.non_persistent_buffers) == ["scratch"]
    set_state(models[1], s)
    np.testing.assert_array_equal(models[1].lin.weight, models[0].lin.weight)
    assert jax.tree_util.tree_leaves(s)
    with pytest.raises(KeyError):
        set_state(models[1], {"nope": jnp.zeros(1)})


def test_key_argument_makes_random_layers_pure():
    class Noisy(nn.Module):
        def forward(self, x):
            return x + jmod.rand(*x.shape)

    m = Noisy()
    f = jax.jit(lambda x, k: functional_call(m, {}, (x,), key=k))
    a = f(jnp.zeros(3), jax.random.key(0))
    np.testing.assert_array_equal(a, f(jnp.zeros(3), jax.random.key(0)))
    assert not np.allclose(a, f(jnp.zeros(3), jax.random.key(1)))
