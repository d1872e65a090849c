"""jmod.optim.swa_utils against torch.optim.swa_utils: the same model trained the same way,
averaged the same way, gives the same averaged weights, buffers, state dict keys and learning
rates."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.optim import swa_utils as tswa

import jmod
from jmod import nn
from jmod.optim import swa_utils as jswa

pytestmark = pytest.mark.torch


def _pair():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    j = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    j.load_state_dict(t.state_dict())
    return j, t


def _batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((6, 3)).astype(np.float32) for _ in range(n)]


def _close_states(j, t):
    js, ts = j.state_dict(), t.state_dict()
    assert list(js) == list(ts)
    for k, v in ts.items():
        np.testing.assert_allclose(np.asarray(js[k]), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def _train(model, opt, x):
    opt.step(jmod.grad(lambda m: (m(x) ** 2).mean())(model))


FNS = {
    "swa_default": lambda mod: {},
    "ema_multi": lambda mod: {"multi_avg_fn": mod.get_ema_multi_avg_fn(0.8)},
    "swa_multi": lambda mod: {"multi_avg_fn": mod.get_swa_multi_avg_fn()},
    "ema_single": lambda mod: {"avg_fn": mod.get_ema_avg_fn(0.7)},
    "swa_single": lambda mod: {"avg_fn": mod.get_swa_avg_fn()},
    "custom_avg_fn": lambda mod: {"avg_fn": lambda a, c, n: 0.5 * a + 0.5 * c + 0.01 * n},
}


# every function eagerly; buffers averaged (use_buffers) on the default and the EMA paths;
# under jmod.jit the default and the EMA paths (the others differ only in the function)
CASES = [
    ("swa_default", False, False),
    ("ema_multi", True, False),
    ("swa_multi", False, False),
    ("ema_single", False, False),
    ("swa_single", True, False),
    ("custom_avg_fn", False, False),
    ("swa_default", True, True),
    ("ema_multi", False, True),
]


@pytest.mark.parametrize(
    ("fns", "use_buffers", "jit"),
    CASES,
    ids=[f"{f}-{'buffers' if b else 'params'}-{'jit' if j else 'eager'}" for f, b, j in CASES],
)
def test_averaged_model_matches_torch_over_training(fns, use_buffers, jit):
    j, t = _pair()
    tavg = tswa.AveragedModel(t, use_buffers=use_buffers, **FNS[fns](tswa))
    javg = jswa.AveragedModel(j, use_buffers=use_buffers, **FNS[fns](jswa))
    topt = torch.optim.SGD(t.parameters(), lr=0.1)
    jopt = jmod.optim.SGD(j.parameters(), lr=0.1)

    @jmod.jit
    def train_and_average(model, opt, avg, x):
        _train(model, opt, x)
        avg.update_parameters(model)

    for x in _batches(3):
        topt.zero_grad()
        (t(torch.tensor(x)) ** 2).mean().backward()
        topt.step()
        tavg.update_parameters(t)
        if jit:
            train_and_average(j, jopt, javg, jnp.asarray(x))
        else:
            # eagerly only the averaging is under test: the model takes torch's trained
            # weights and buffers (no jmod training step to compile)
            j.load_state_dict(t.state_dict())
            javg.update_parameters(j)
    _close_states(javg, tavg)
    assert int(javg.n_averaged) == int(tavg.n_averaged) == 3
    if jit:
        assert train_and_average.trace_count == 1
    x = _batches(1, seed=1)[0]
    javg.eval()
    tavg.eval()
    np.testing.assert_allclose(
        np.asarray(javg(jnp.asarray(x))), tavg(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_averaged_parameters_are_not_tied_to_the_model():
    j, _ = _pair()
    avg = jswa.AveragedModel(j)
    avg.update_parameters(j)  # copies the weights
    j[0].bias = j[0].bias + 1.0
    assert not np.allclose(np.asarray(avg.module[0].bias), np.asarray(j[0].bias))


def test_integer_buffers_are_averaged_like_torch():
    # use_buffers averages num_batches_tracked too (an integer): torch's EMA rounds toward zero
    j, t = _pair()
    tavg = tswa.AveragedModel(t, multi_avg_fn=tswa.get_ema_multi_avg_fn(0.5), use_buffers=True)
    javg = jswa.AveragedModel(j, multi_avg_fn=jswa.get_ema_multi_avg_fn(0.5), use_buffers=True)
    for x in _batches(3):
        t(torch.tensor(x))
        j(jnp.asarray(x))
        tavg.update_parameters(t)
        javg.update_parameters(j)
    _close_states(javg, tavg)


def test_state_dict_keys_and_loading_torch_weights():
    j, t = _pair()
    tavg = tswa.AveragedModel(t)
    tavg.update_parameters(t)
    tavg.update_parameters(t)
    javg = jswa.AveragedModel(j)
    assert list(javg.state_dict()) == list(tavg.state_dict())
    assert set(javg.state_dict()) == {"n_averaged"} | {"module." + k for k in t.state_dict()}
    javg.load_state_dict(tavg.state_dict())
    assert int(javg.n_averaged) == 2
    _close_states(javg, tavg)


def test_errors():
    j, _ = _pair()
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        jswa.AveragedModel(j, avg_fn=jswa.get_swa_avg_fn(), multi_avg_fn=jswa.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="Invalid decay value"):
        jswa.get_ema_multi_avg_fn(1.5)
    avg = jswa.AveragedModel(j, multi_avg_fn=lambda a, c, n: None)  # torch's in-place style
    avg.update_parameters(j)
    with pytest.raises(TypeError, match="must return the list"):
        avg.update_parameters(j)


def test_update_bn_matches_torch():
    j, t = _pair()
    data = [(torch.tensor(x), torch.zeros(6)) for x in _batches(3)]  # (input, target) pairs
    t.eval()
    j.eval()
    tswa.update_bn(data, t)
    jswa.update_bn(data, j)  # torch tensors are accepted
    _close_states(j, t)
    assert not j.training and j[1].momentum == t[1].momentum == 0.1
    jswa.update_bn([], nn.Linear(2, 2))  # no BatchNorm: nothing to do


@pytest.mark.parametrize(
    "kwargs",
    [
        {"swa_lr": 0.05},
        {"swa_lr": [0.05, 0.2], "anneal_epochs": 3, "anneal_strategy": "linear"},
        {"swa_lr": 0.05, "anneal_epochs": 0},
    ],
)
def test_swalr_matches_torch(kwargs):
    j, t = _pair()
    topt = torch.optim.SGD([{"params": t[0].parameters()}, {"params": t[3].parameters(), "lr": 0.3}], lr=0.5)
    jopt = jmod.optim.SGD([{"params": j[0].parameters()}, {"params": j[3].parameters(), "lr": 0.3}], lr=0.5)
    tsched = tswa.SWALR(topt, **kwargs)
    jsched = jswa.SWALR(jopt, **kwargs)
    for _ in range(12):
        assert jsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        topt.step()
        jopt._opt_called = True  # stands for jopt.step(grads): only the lr bookkeeping is compared
        tsched.step()
        jsched.step()
    assert [g["swa_lr"] for g in jopt.param_groups] == [g["swa_lr"] for g in topt.param_groups]
    state = jsched.state_dict()
    assert "anneal_func" not in state and "optimizer" not in state
    jsched.load_state_dict(state)
    assert jsched.anneal_func is not None
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        jswa.SWALR(jopt, swa_lr=0.1, anneal_strategy="exp")
