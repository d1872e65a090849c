"""The hook-based jmod.nn.utils.weight_norm / spectral_norm against torch's: parameter
and buffer names, the deprecation warning, outputs and gradients w.r.t. weight_g /
weight_v / weight_orig, power-iteration buffers over training steps (eager and under
jmod.jit), remove_*, and torch's error messages."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from jmod.nn.utils import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm
from tests.helpers import assert_close, assert_matches_torch, count_traces

TU = torch.nn.utils
pytestmark = pytest.mark.torch
RNG = np.random.default_rng(2)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("cls,args,shape,dim", [("Linear", (4, 3), (2, 4), 0), ("Conv1d", (2, 3, 3), (2, 2, 6), None)])
def test_weight_norm_matches_torch(cls, args, shape, dim):
    with pytest.warns(FutureWarning, match="`torch.nn.utils.weight_norm` is deprecated"):
        j = weight_norm(getattr(nn, cls)(*args), dim=dim)
    t = _quiet(TU.weight_norm, getattr(torch.nn, cls)(*args), dim=dim)
    assert list(j.state_dict()) == list(t.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(*shape))  # grads w.r.t. weight_g and weight_v
    j.load_state_dict(t.state_dict())
    x = _x(*shape)
    out = jmod.jit(lambda m, x: m(x))(j, jnp.asarray(x))  # the pre-hook runs inside the trace
    assert_close(out, t(torch.tensor(x)), atol=1e-5, rtol=1e-5, what="jmod.jit")
    remove_weight_norm(j)
    TU.remove_weight_norm(t)
    assert list(j.state_dict()) == list(t.state_dict()) == ["bias", "weight"]
    assert_close(j.weight, t.weight, atol=1e-6, rtol=0, what="removed")


def test_weight_norm_errors_match_torch():
    j = _quiet(weight_norm, nn.Linear(2, 2))
    t = _quiet(TU.weight_norm, torch.nn.Linear(2, 2))
    for jf, tf in (
        (lambda: _quiet(weight_norm, j), lambda: _quiet(TU.weight_norm, t)),
        (lambda: remove_weight_norm(j, "bias"), lambda: TU.remove_weight_norm(t, "bias")),
    ):
        with pytest.raises(Exception) as te:
            tf()
        with pytest.raises(type(te.value)) as je:
            jf()
        assert str(je.value) == str(te.value)


def test_weight_norm_training_under_jit():
    """The pre-hook sets a plain attribute inside the trace; it is carried like state."""
    t = _quiet(TU.weight_norm, torch.nn.Linear(3, 2))
    j = _quiet(weight_norm, nn.Linear(3, 2))
    j.load_state_dict(t.state_dict())
    t_opt = torch.optim.SGD(t.parameters(), lr=0.5)
    j_opt = jmod.optim.SGD(j.parameters(), lr=0.5)
    fn, traces = count_traces(lambda m, opt, x: _step(m, opt, x))
    step = jmod.jit(fn)
    for _ in range(3):
        x = _x(4, 3)
        t_opt.zero_grad()
        (t(torch.tensor(x)) ** 2).sum().backward()
        t_opt.step()
        step(j, j_opt, jnp.asarray(x))
    assert traces[0] == 1
    for k, v in t.state_dict().items():
        assert_close(j.state_dict()[k], v, atol=1e-5, rtol=1e-5, what=k)
    x = _x(1, 3)
    assert_close(j(jnp.asarray(x)), t(torch.tensor(x)), atol=1e-5, rtol=1e-5, what="after training")
    assert_close(j.weight, t.weight, atol=1e-5, rtol=1e-5, what="weight attribute")


def _step(m, opt, x):
    grads = jmod.grad(lambda m: (m(x) ** 2).sum())(m)
    opt.step(grads)


@pytest.mark.parametrize("cls,args,shape", [("Linear", (5, 4), (3, 5)), ("ConvTranspose1d", (3, 2, 2), (1, 3, 4))])
def test_spectral_norm_matches_torch(cls, args, shape):
    j = spectral_norm(getattr(nn, cls)(*args), n_power_iterations=2)
    t = TU.spectral_norm(getattr(torch.nn, cls)(*args), n_power_iterations=2)
    keys = ["bias", "weight_orig", "weight_u", "weight_v"]
    assert list(j.state_dict()) == list(t.state_dict()) == keys
    assert [n for n, _ in j.named_parameters()] == ["bias", "weight_orig"]
    assert_matches_torch(j, t, _x(*shape), train=True, atol=2e-5)


def test_spectral_norm_buffers_over_steps_eager_and_jit():
    t = TU.spectral_norm(torch.nn.Linear(6, 4))
    je = spectral_norm(nn.Linear(6, 4))
    jj = spectral_norm(nn.Linear(6, 4))
    je.load_state_dict(t.state_dict())
    jj.load_state_dict(t.state_dict())
    fn, traces = count_traces(lambda m, x: m(x))
    f = jmod.jit(fn)
    for step in range(4):
        x = _x(2, 6)
        with torch.no_grad():
            out = t(torch.tensor(x))
        for j, out_j in ((je, je(jnp.asarray(x))), (jj, f(jj, jnp.asarray(x)))):
            assert_close(out_j, out, atol=2e-5, rtol=1e-5, what=f"out {step}")
            for name in ("weight_u", "weight_v"):
                assert_close(getattr(j, name), getattr(t, name), atol=2e-5, rtol=1e-5, what=f"{name} {step}")
            assert_close(j.weight, t.weight, atol=2e-5, rtol=1e-5, what=f"weight {step}")
    assert traces[0] == 1
    # state dict metadata carries the version, as torch's
    assert j.state_dict()._metadata[""]["spectral_norm"] == t.state_dict()._metadata[""]["spectral_norm"]
    remove_spectral_norm(jj)
    TU.remove_spectral_norm(t)
    assert list(jj.state_dict()) == list(t.state_dict()) == ["bias", "weight"]
    assert_close(jj.weight, t.weight, atol=2e-5, rtol=1e-5, what="removed")
    assert not jj._state_dict_hooks and not jj._forward_pre_hooks and not jj._load_state_dict_pre_hooks


def test_spectral_norm_errors_match_torch():
    j, t = spectral_norm(nn.Linear(2, 2)), TU.spectral_norm(torch.nn.Linear(2, 2))
    jn, tn = nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False)
    for jf, tf in (
        (lambda: spectral_norm(j), lambda: TU.spectral_norm(t)),
        (lambda: remove_spectral_norm(j, "bias"), lambda: TU.remove_spectral_norm(t, "bias")),
        (lambda: spectral_norm(jn, "bias"), lambda: TU.spectral_norm(tn, "bias")),
        (lambda: spectral_norm(jn, n_power_iterations=0), lambda: TU.spectral_norm(tn, n_power_iterations=0)),
    ):
        with pytest.raises(Exception) as te:
            tf()
        with pytest.raises(type(te.value)) as je:
            jf()
        assert str(je.value) == str(te.value)
