"""jmod.nn.utils.parametrizations (weight_norm, spectral_norm, orthogonal) against
torch.nn.utils.parametrizations: torch's weights loaded through state_dict, the same
outputs, gradients w.r.t. inputs and the originals, power-iteration buffers over
several training steps (eager and under jmod.jit), and training under jmod.jit."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from jmod.nn.utils import parametrizations as JP, parametrize as P
from tests.helpers import assert_close, assert_matches_torch, count_traces

TPZ = torch.nn.utils.parametrizations
pytestmark = pytest.mark.torch
RNG = np.random.default_rng(1)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _pair(cls, *args, **kwargs):
    return getattr(nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)


LAYERS = [
    ("Linear", (5, 4), (3, 5)),
    ("Conv2d", (3, 4, 3), (2, 3, 6, 6)),
    ("ConvTranspose1d", (3, 2, 3), (2, 3, 5)),
]


# a pairwise sweep of layers x dim (the product compiles 9 cases for the same code)
WN_CASES = [(LAYERS[0], 0), (LAYERS[1], 1), (LAYERS[2], None), (LAYERS[0], None), (LAYERS[2], 1)]


@pytest.mark.parametrize("layer,dim", WN_CASES, ids=[f"{c[0][0]}-{c[1]}" for c in WN_CASES])
def test_weight_norm_matches_torch(layer, dim):
    cls, args, shape = layer
    j, t = _pair(cls, *args)
    JP.weight_norm(j, dim=dim)
    TPZ.weight_norm(t, dim=dim)
    assert list(j.state_dict()) == list(t.state_dict())
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(*shape))


def test_weight_norm_loads_legacy_state_dict_and_removes():
    with pytest.warns(FutureWarning):
        t_old = torch.nn.utils.weight_norm(torch.nn.Linear(4, 3))  # torch's deprecated hook version
    j = JP.weight_norm(nn.Linear(4, 3))
    j.load_state_dict(t_old.state_dict())  # weight_g / weight_v -> original0 / original1
    assert_close(j.weight, t_old.weight, atol=1e-6, rtol=0, what="weight")
    t = TPZ.weight_norm(torch.nn.Linear(4, 3))
    t.load_state_dict(t_old.state_dict())
    P.remove_parametrizations(j, "weight")
    torch.nn.utils.parametrize.remove_parametrizations(t, "weight")
    assert list(j.state_dict()) == list(t.state_dict()) == ["bias", "weight"]
    assert_matches_torch(j, t, _x(2, 4))


SN_LAYERS = [
    ("Linear", (5, 4), (3, 5)),
    ("Conv2d", (2, 3, 3), (2, 2, 5, 5)),
    ("ConvTranspose2d", (3, 2, 2), (1, 3, 4, 4)),  # dim defaults to 1
]


@pytest.mark.parametrize("layer", SN_LAYERS, ids=[c[0] for c in SN_LAYERS])
def test_spectral_norm_matches_torch(layer):
    cls, args, shape = layer
    j, t = _pair(cls, *args)
    JP.spectral_norm(j, n_power_iterations=2)
    TPZ.spectral_norm(t, n_power_iterations=2)
    keys = ["bias", "parametrizations.weight.original", "parametrizations.weight.0._u", "parametrizations.weight.0._v"]
    assert list(j.state_dict()) == list(t.state_dict()) == keys
    assert j.parametrizations.weight[0].dim == t.parametrizations.weight[0].dim
    # training mode: forward runs the power method and updates _u/_v (compared too)
    assert_matches_torch(j, t, _x(*shape), train=True, atol=2e-5)


def test_spectral_norm_power_iteration_over_steps_eager_and_jit():
    t = TPZ.spectral_norm(torch.nn.Linear(6, 5))
    j_eager = JP.spectral_norm(nn.Linear(6, 5))
    j_jit = JP.spectral_norm(nn.Linear(6, 5))
    j_eager.load_state_dict(t.state_dict())
    j_jit.load_state_dict(t.state_dict())
    fn, traces = count_traces(lambda m, x: m(x))
    f = jmod.jit(fn)
    for step in range(4):
        x = _x(2, 6)
        with torch.no_grad():
            out = t(torch.tensor(x))
        for j, run in ((j_eager, j_eager), (j_jit, lambda x: f(j_jit, x))):
            assert_close(run(jnp.asarray(x)), out, atol=2e-5, rtol=1e-5, what=f"out {step}")
            for name, buf in t.named_buffers():
                assert_close(dict(j.named_buffers())[name], buf, atol=2e-5, rtol=1e-5, what=f"{name} {step}")
    assert traces[0] == 1
    # eval: no update
    t.eval(), j_jit.eval()
    u = j_jit.parametrizations.weight[0]._u
    f(j_jit, jnp.ones((1, 6)))
    assert j_jit.parametrizations.weight[0]._u is u


def test_spectral_norm_vector_and_errors():
    j = nn.Module()
    j.w = nn.Parameter(jnp.asarray(_x(5)))
    JP.spectral_norm(j, "w")
    assert_close(jnp.linalg.norm(j.w), np.float32(1), atol=1e-6, rtol=0, what="unit vector")
    jl, tl = _pair("Linear", 3, 3)
    for jf, tf in (
        (lambda: JP.spectral_norm(jl, "foo"), lambda: TPZ.spectral_norm(tl, "foo")),
        (lambda: JP.spectral_norm(jl, dim=2), lambda: TPZ.spectral_norm(tl, dim=2)),
        (lambda: JP.spectral_norm(jl, n_power_iterations=0), lambda: TPZ.spectral_norm(tl, n_power_iterations=0)),
    ):
        with pytest.raises(Exception) as te:
            tf()
        with pytest.raises(type(te.value)) as je:
            jf()
        assert str(je.value) == str(te.value)


# each map with and without the trivialization, square, tall and wide (pairwise)
ORTH = [
    ("matrix_exp", (4, 4), True),
    ("cayley", (3, 5), True),
    ("householder", (5, 3), True),
    ("householder", (3, 5), False),
    ("cayley", (4, 4), False),
    ("matrix_exp", (5, 3), False),
]


@pytest.mark.parametrize("orth_map,shape,triv", ORTH, ids=[f"{m}-{s[0]}x{s[1]}-{t}" for m, s, t in ORTH])
def test_orthogonal_matches_torch(orth_map, shape, triv):
    j, t = _pair("Linear", shape[1], shape[0])
    JP.orthogonal(j, orthogonal_map=orth_map, use_trivialization=triv)
    TPZ.orthogonal(t, orthogonal_map=orth_map, use_trivialization=triv)
    assert list(j.state_dict()) == list(t.state_dict())
    assert repr(j) == repr(t)
    j.load_state_dict(t.state_dict())
    Q = np.asarray(j.weight, np.float64)
    small = min(shape)
    gram = Q.T @ Q if shape[0] >= shape[1] else Q @ Q.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)
    assert_matches_torch(j, t, _x(2, shape[1]), atol=2e-5)


def test_orthogonal_initial_value_and_assignment():
    # the initial value of a square matrix: its orthogonalization by QR, as torch
    w = _x(4, 4)
    j, t = _pair("Linear", 4, 4)
    j.weight = jnp.asarray(w)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(w))
    for orth_map in ("matrix_exp", "cayley", "householder"):
        jj = JP.orthogonal(nn.Linear(4, 4), orthogonal_map=orth_map)
        jj.weight = jnp.asarray(w)  # right_inverse with a non-orthogonal value: orthogonalized
        tt = TPZ.orthogonal(torch.nn.Linear(4, 4), orthogonal_map=orth_map)
        with torch.no_grad():
            tt.weight = torch.tensor(w)
        assert_close(jj.weight, tt.weight, atol=2e-5, rtol=0, what=f"assigned {orth_map}")
    JP.orthogonal(j, orthogonal_map="householder", use_trivialization=False)
    TPZ.orthogonal(t, orthogonal_map="householder", use_trivialization=False)
    assert_close(j.weight, t.weight, atol=2e-5, rtol=0, what="householder init")
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions."):
        JP.orthogonal(nn.Linear(3, 3), "bias")
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        JP.orthogonal(nn.Linear(3, 3), orthogonal_map="qr")
    jm = JP.orthogonal(nn.Linear(3, 3), orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        jm.weight = jnp.eye(3)


def test_training_weight_normed_model_with_sgd_under_jit():
    torch.manual_seed(0)
    t = torch.nn.Sequential(TPZ.weight_norm(torch.nn.Linear(4, 8)), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    j = nn.Sequential(JP.weight_norm(nn.Linear(4, 8)), nn.Tanh(), nn.Linear(8, 1))
    j.load_state_dict(t.state_dict())
    t_opt = torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)
    j_opt = jmod.optim.SGD(j.parameters(), lr=0.1, momentum=0.9)
    fn, traces = count_traces(lambda m, opt, x, y: _step(m, opt, x, y))
    step = jmod.jit(fn)
    for _ in range(4):
        x, y = _x(8, 4), _x(8, 1)
        t_opt.zero_grad()
        t_loss = ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean()
        t_loss.backward()
        t_opt.step()
        j_loss = step(j, j_opt, jnp.asarray(x), jnp.asarray(y))
        assert_close(j_loss, t_loss, atol=1e-5, rtol=1e-5, what="loss")
    assert traces[0] == 1
    for (n, p), (tn, tp) in zip(j.state_dict().items(), t.state_dict().items()):
        assert n == tn
        assert_close(p, tp, atol=1e-5, rtol=1e-5, what=n)


def _step(m, opt, x, y):
    loss, grads = jmod.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(m)
    opt.step(grads)
    return loss
