"""jmod.grad / value_and_grad: gradients keyed like named_parameters, torch parity, write-back."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 2)
        self.register_buffer("seen", jnp.zeros(()))

    def forward(self, x):
        self.seen = self.seen + x.shape[0]
        return self.fc2(jax.nn.relu(self.fc1(x)))


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(jax.nn.relu(self.fc1(x)))


@pytest.mark.torch
def test_gradients_match_torch_and_are_keyed_like_named_parameters():
    t = torch.nn.ModuleDict({"fc1": torch.nn.Linear(4, 6), "fc2": torch.nn.Linear(6, 2)})
    j = Plain()
    j.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    t["fc2"](torch.relu(t["fc1"](torch.tensor(x)))).pow(2).sum().backward()
    grads = jmod.grad(lambda m: (m(jnp.asarray(x)) ** 2).sum())(j)
    assert list(grads) == [n for n, _ in j.named_parameters()]
    tgrads = dict(t.named_parameters())
    for name, g in grads.items():
        np.testing.assert_allclose(g, tgrads[name].grad.numpy(), rtol=1e-5, atol=1e-6)


def test_frozen_parameters_are_left_out_and_aux_and_buffers():
    m = Net()
    m.fc1.requires_grad_(False)
    (loss, aux), grads = jmod.value_and_grad(lambda m, x: (m(x).sum(), "aux"), has_aux=True)(m, jnp.ones((3, 4)))
    assert aux == "aux" and sorted(grads) == ["fc2.bias", "fc2.weight"]
    assert float(m.seen) == 3.0  # forward's buffer update is written back after the gradient call
    jmod.grad(lambda m: m(jnp.ones((2, 4))).sum())(m)
    assert float(m.seen) == 5.0


def test_argnums_mix_modules_and_arrays_and_containers():
    m1, m2 = Net(), Net()
    x = jnp.ones((2, 4))
    g_m, g_x = jmod.grad(lambda m, x: m(x).sum(), argnums=(0, 1))(m1, x)
    assert set(g_m) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"} and g_x.shape == (2, 4)
    g = jmod.grad(lambda ms: ms[0](x).sum() + ms[1](x).sum())([m1, m2])
    assert isinstance(g, list) and set(g[1]) == set(g_m)
    np.testing.assert_allclose(g[0]["fc2.bias"], g_m["fc2.bias"])
    with pytest.raises(TypeError, match="positional"):
        jmod.grad(lambda m, x: m(x).sum(), argnums=1)(m1)


def test_tied_weights_get_the_sum_of_both_uses():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(3, 3, bias=False)
            self.dec = nn.Linear(3, 3, bias=False)
            self.dec.weight = self.enc.weight

        def forward(self, x):
            return self.dec(self.enc(x))

    m = Tied()
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3)), jnp.float32)
    g = jmod.grad(lambda m: m(x).sum())(m)
    assert list(g) == ["enc.weight"]
    w = m.enc.weight
    expected = jax.grad(lambda w: ((x @ w.T) @ w.T).sum())(w)
    np.testing.assert_allclose(g["enc.weight"], expected, rtol=1e-5)


def test_grad_inside_jit_writes_buffers_and_module_left_clean():
    m = Net()
    step = jmod.jit(lambda m, x: jmod.grad(lambda m: m(x).sum())(m))
    with jax.check_tracer_leaks():
        g = step(m, jnp.ones((4, 4)))
    assert float(m.seen) == 4.0 and not isinstance(m.fc1.weight, jax.core.Tracer)
    assert set(g) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
