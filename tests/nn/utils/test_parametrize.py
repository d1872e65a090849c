"""jmod.nn.utils.parametrize against torch.nn.utils.parametrize (cases after torch's
test/nn/test_parametrization.py): same state-dict keys, same outputs and gradients
from the same weights, the class swap, remove/right_inverse/cached, and how it
composes with jmod.jit, jmod.grad, optimizers, deepcopy and pickle."""

from __future__ import annotations

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
import jmod.nn.utils.parametrize as P
from jmod import nn
from jmod._src import structure
from tests.helpers import assert_close, assert_matches_torch, count_traces

TP = torch.nn.utils.parametrize
pytestmark = pytest.mark.torch
RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# The same parametrizations, written once for each library.
class Symmetric(nn.Module):
    def forward(self, X):
        return jnp.triu(X) + jnp.triu(X, 1).T

    def right_inverse(self, A):
        return jnp.triu(A)


class TSymmetric(torch.nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).T

    def right_inverse(self, A):
        return A.triu()


class Skew(nn.Module):
    def forward(self, X):
        X = jnp.tril(X, -1)
        return X - X.T


class TSkew(torch.nn.Module):
    def forward(self, X):
        X = X.tril(-1)
        return X - X.T


class Scale(nn.Module):
    def forward(self, X):
        return 2.0 * X

    def right_inverse(self, X):
        return X / 2.0


class TScale(torch.nn.Module):
    def forward(self, X):
        return 2.0 * X

    def right_inverse(self, X):
        return X / 2.0


class RankOne(nn.Module):
    def forward(self, x, y):
        return x[:, None] @ y[None, :]

    def right_inverse(self, Z):
        U, S, Vh = jnp.linalg.svd(Z, full_matrices=False)
        s0 = jnp.sqrt(S[0])
        return U[:, 0] * s0, Vh[0, :] * s0


class TRankOne(torch.nn.Module):
    def forward(self, x, y):
        return x.unsqueeze(-1) @ y.unsqueeze(-2)

    def right_inverse(self, Z):
        U, S, Vh = torch.linalg.svd(Z, full_matrices=False)
        s0 = S[0].sqrt()
        return U[:, 0] * s0, Vh[0, :] * s0


class Reshape(nn.Module):  # changes the shape: needs unsafe=True
    def forward(self, X):
        return X.reshape(-1)


class TReshape(torch.nn.Module):
    def forward(self, X):
        return X.reshape(-1)


def _linears(n_in=4, n_out=4):
    t = torch.nn.Linear(n_in, n_out)
    return nn.Linear(n_in, n_out), t


def test_single_parametrization_matches_torch():
    j, t = _linears()
    P.register_parametrization(j, "weight", Symmetric())
    TP.register_parametrization(t, "weight", TSymmetric())
    assert list(j.state_dict()) == list(t.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert repr(j).replace("Symmetric", "TSymmetric") == repr(t)
    assert type(j).__name__ == "ParametrizedLinear" and P.type_before_parametrizations(j) is nn.Linear
    assert P.is_parametrized(j) and P.is_parametrized(j, "weight") and not P.is_parametrized(j, "bias")
    assert_matches_torch(j, t, _x(3, 4))
    assert_close(j.weight, t.weight, atol=1e-6, rtol=0, what="weight")


def test_chained_parametrizations_and_buffer():
    j, t = _linears()
    for m, mods in ((j, (Skew(), Scale())), (t, (TSkew(), TScale()))):
        TPmod = P if m is j else TP
        TPmod.register_parametrization(m, "weight", mods[0])
        TPmod.register_parametrization(m, "weight", mods[1])
    assert list(j.state_dict()) == list(t.state_dict())
    assert len(j.parametrizations.weight) == 2
    assert_matches_torch(j, t, _x(2, 4))

    # a buffer can be parametrized too (stays a buffer, no gradient)
    jb, tb = nn.Module(), torch.nn.Module()
    jb.register_buffer("w", jnp.asarray(_x(3, 3)))
    tb.register_buffer("w", torch.tensor(np.asarray(jb.w)))
    P.register_parametrization(jb, "w", Symmetric())
    TP.register_parametrization(tb, "w", TSymmetric())
    assert list(jb.state_dict()) == list(tb.state_dict()) == ["parametrizations.w.original"]
    assert not list(jb.parameters())
    assert_close(jb.w, tb.w, atol=1e-6, rtol=0, what="buffer")


def test_several_originals_right_inverse():
    j, t = _linears()
    P.register_parametrization(j, "weight", RankOne())
    TP.register_parametrization(t, "weight", TRankOne())
    keys = ["bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    assert list(j.state_dict()) == list(t.state_dict()) == keys
    assert j.parametrizations.weight.ntensors == 2 and not j.parametrizations.weight.is_tensor
    assert_matches_torch(j, t, _x(3, 4))
    assert int(jnp.linalg.matrix_rank(j.weight)) == 1


def test_assignment_calls_right_inverse():
    j, t = _linears()
    P.register_parametrization(j, "weight", Symmetric())
    TP.register_parametrization(t, "weight", TSymmetric())
    j.load_state_dict(t.state_dict())
    A = _x(4, 4)
    A = A + A.T
    slot = j.parametrizations.weight._parameters["original"]
    j.weight = jnp.asarray(A)
    with torch.no_grad():
        t.weight = torch.tensor(A)
    assert j.parametrizations.weight._parameters["original"] is slot  # same slot: optimizers keep it
    assert_close(j.weight, t.weight, atol=1e-6, rtol=0, what="assigned")
    assert_close(j.parametrizations.weight.original, t.parametrizations.weight.original, atol=1e-6, rtol=0, what="o")
    # an array read from another module's parameter is a value here, not a tie
    other = nn.Linear(4, 4)
    j.weight = other.weight
    assert "weight" not in other._parameters or other._parameters["weight"] is not slot
    assert [n for n, _ in j.named_parameters()] == ["bias", "parametrizations.weight.original"]


def test_remove_parametrizations_matches_torch():
    for leave in (True, False):
        j, t = _linears()
        P.register_parametrization(j, "weight", Skew())
        P.register_parametrization(j, "bias", Scale(), unsafe=True)
        TP.register_parametrization(t, "weight", TSkew())
        TP.register_parametrization(t, "bias", TScale(), unsafe=True)
        j.load_state_dict(t.state_dict())
        slot = j.parametrizations.weight._parameters["original"]
        P.remove_parametrizations(j, "weight", leave_parametrized=leave)
        TP.remove_parametrizations(t, "weight", leave_parametrized=leave)
        assert type(j).__name__ == type(t).__name__ == "ParametrizedLinear"
        assert list(j.state_dict()) == list(t.state_dict())
        assert j._parameters["weight"] is slot
        P.remove_parametrizations(j, "bias", leave_parametrized=leave)
        TP.remove_parametrizations(t, "bias", leave_parametrized=leave)
        assert type(j) is nn.Linear and not hasattr(j, "parametrizations")
        assert list(j.state_dict()) == list(t.state_dict()) == ["weight", "bias"]
        assert_matches_torch(j, t, _x(2, 4), load_weights=False)

    # several originals: leave_parametrized=True gives one new parameter
    j, t = _linears()
    P.register_parametrization(j, "weight", RankOne())
    TP.register_parametrization(t, "weight", TRankOne())
    j.load_state_dict(t.state_dict())
    P.remove_parametrizations(j, "weight")
    TP.remove_parametrizations(t, "weight")
    assert list(j.state_dict()) == list(t.state_dict())
    assert_close(j.weight, t.weight, atol=1e-5, rtol=0, what="rank one removed")


def _torch_error(fn):
    with pytest.raises(Exception) as e:
        fn()
    return type(e.value), str(e.value)


def test_errors_match_torch():
    j, t = _linears()
    cases = [
        (lambda: P.register_parametrization(j, "foo", Skew()), lambda: TP.register_parametrization(t, "foo", TSkew())),
        (lambda: P.remove_parametrizations(j, "weight"), lambda: TP.remove_parametrizations(t, "weight")),
        (
            lambda: P.register_parametrization(j, "weight", Reshape()),
            lambda: TP.register_parametrization(t, "weight", TReshape()),
        ),
        (lambda: P.ParametrizationList([], j.weight), lambda: TP.ParametrizationList([], t.weight)),
    ]
    for jf, tf in cases:
        tt, tm = _torch_error(tf)
        with pytest.raises(tt) as e:
            jf()
        assert str(e.value) == tm
    # after a successful registration: chained shape check, assigning without right_inverse,
    # and leave_parametrized=False with several originals
    P.register_parametrization(j, "weight", Skew())
    TP.register_parametrization(t, "weight", TSkew())
    cases = [(lambda: setattr(j, "weight", jnp.zeros((4, 4)))), (lambda: setattr(t, "weight", torch.zeros(4, 4)))]
    tt, tm = _torch_error(cases[1])
    with pytest.raises(tt) as e:
        cases[0]()
    assert str(e.value) == tm.replace("TSkew", "Skew")
    j2, t2 = _linears()
    P.register_parametrization(j2, "weight", RankOne())
    TP.register_parametrization(t2, "weight", TRankOne())
    tt, tm = _torch_error(lambda: TP.remove_parametrizations(t2, "weight", leave_parametrized=False))
    with pytest.raises(tt) as e:
        P.remove_parametrizations(j2, "weight", leave_parametrized=False)
    assert str(e.value) == tm
    # unsafe=True allows a shape change, as in torch
    j3 = P.register_parametrization(nn.Linear(2, 3), "weight", Reshape(), unsafe=True)
    assert j3.weight.shape == (6,)


def test_jit_traces_once_and_retraces_on_registration():
    m = nn.Linear(4, 4)
    x = jnp.asarray(_x(2, 4))
    fn, traces = count_traces(lambda m, x: m(x))
    f = jmod.jit(fn)
    f(m, x)
    signal = structure.Signal()
    structure.watch(m, signal)
    P.register_parametrization(m, "weight", Symmetric())
    assert not signal.ok()  # the class change is a structural change
    out = f(m, x)
    assert traces[0] == 2
    for _ in range(3):
        out = f(m, x)
    assert traces[0] == 2
    assert_close(out, x @ m.weight.T + m.bias, atol=1e-6, rtol=0, what="jit")
    P.remove_parametrizations(m, "weight")
    f(m, x)
    assert traces[0] == 3  # back to a plain Linear: one more trace


def test_grad_keys_and_values_match_torch():
    j, t = _linears()
    P.register_parametrization(j, "weight", Symmetric())
    TP.register_parametrization(t, "weight", TSymmetric())
    j.load_state_dict(t.state_dict())
    x = _x(3, 4)
    grads = jmod.grad(lambda m, x: (m(x) ** 2).sum())(j, jnp.asarray(x))
    (t(torch.tensor(x)) ** 2).sum().backward()
    assert sorted(grads) == sorted(n for n, _ in t.named_parameters())
    for n, p in t.named_parameters():
        assert_close(grads[n], p.grad, atol=1e-5, rtol=1e-5, what=n)


def test_optimizer_made_before_registration_keeps_the_parameter():
    m = nn.Linear(3, 3)
    opt = jmod.optim.SGD(m.parameters(), lr=0.1)
    P.register_parametrization(m, "weight", Skew())
    x = jnp.asarray(_x(2, 3))
    before = m.parametrizations.weight.original

    @jmod.jit
    def step(m, opt, x):
        grads = jmod.grad(lambda m: (m(x) ** 2).sum())(m)
        opt.step(grads)

    step(m, opt, x)
    assert not np.allclose(m.parametrizations.weight.original, before)


def test_cached():
    m = P.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
    calls = []
    m.parametrizations.weight[0].register_forward_hook(lambda *a: calls.append(1))
    with P.cached():
        w1 = m.weight
        w2 = m.weight
        assert w1 is w2 and len(calls) == 1
        m.parametrizations.weight.original = m.parametrizations.weight.original + 1.0  # an update: recompute
        assert not np.allclose(m.weight, w1) and len(calls) == 2
        x = jnp.ones((1, 3))
        out = jmod.jit(lambda m, x: m(x) + m(x))(m, x)  # inside a trace: traced originals, own cache entry
        assert_close(out, 2 * (x @ m.weight.T + m.bias), atol=1e-5, rtol=0, what="cached jit")
        assert not isinstance(m.weight, jax.core.Tracer)
    assert P._cache == {}
    tm = TP.register_parametrization(torch.nn.Linear(3, 3), "weight", TSymmetric())
    with TP.cached():
        assert tm.weight is tm.weight


def test_deepcopy_and_pickle():
    j, t = _linears()
    P.register_parametrization(j, "weight", Scale())
    TP.register_parametrization(t, "weight", TScale())
    with pytest.raises(RuntimeError, match="Serialization of parametrized modules"):
        pickle.dumps(t)  # torch refuses; jmod pickles (documented difference)
    for c in (copy.deepcopy(j), pickle.loads(pickle.dumps(j))):
        assert type(c).__name__ == "ParametrizedLinear" and type(c) is not type(j)
        assert list(c.state_dict()) == list(j.state_dict())
        assert_close(c.weight, j.weight, atol=0, rtol=0, what="copy")
        P.remove_parametrizations(c, "weight")
        assert type(c) is nn.Linear
        assert P.is_parametrized(j, "weight")  # the original keeps its class and property
        assert_close(c.weight, j.weight, atol=1e-6, rtol=0, what="removed copy")


def test_load_torch_state_dict_and_transfer():
    j, t = _linears()
    P.register_parametrization(j, "weight", Skew())
    TP.register_parametrization(t, "weight", TSkew())
    j.load_state_dict(t.state_dict())
    assert_close(j.weight, t.weight, atol=1e-6, rtol=0, what="loaded")
    j2, t2 = _linears()
    P.transfer_parametrizations_and_params(j, j2)
    TP.transfer_parametrizations_and_params(t, t2)
    assert list(j2.state_dict()) == list(t2.state_dict())
    assert_close(j2.weight, t2.weight, atol=1e-6, rtol=0, what="transferred")
