"""Gradient accumulation against torch's loop (``(loss / k).backward()`` per micro-batch,
``step(); zero_grad()`` every ``k``): across calls with ``jmod.optim.MultiSteps``, and
inside one compiled step with a Python loop over micro-batches."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jmod
from jmod import nn

pytestmark = pytest.mark.torch

K = 3


def _pair():
    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    j = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    j.load_state_dict(t.state_dict())
    return j, t


def _data(n):
    rng = np.random.default_rng(0)
    return [
        (rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32))
        for _ in range(n)
    ]


def _torch_run(t, topt, data, sched=None):
    for i, (x, y) in enumerate(data):
        loss = ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean() / K
        loss.backward()
        if (i + 1) % K == 0:
            topt.step()
            topt.zero_grad()
            if sched is not None:
                sched.step()


def _loss(m, x, y):
    return ((m(x) - y) ** 2).mean()


def _close(j, t):
    for name, p in t.named_parameters():
        np.testing.assert_allclose(np.asarray(j.get_parameter(name)), p.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01}), ("AdamW", {"lr": 0.01, "weight_decay": 0.1})],
)
def test_multisteps_across_compiled_calls_matches_torch(name, kwargs):
    j, t = _pair()
    topt = getattr(torch.optim, name)(t.parameters(), **kwargs)
    jopt = jmod.optim.MultiSteps(getattr(jmod.optim, name)(j.parameters(), **kwargs), every_k_schedule=K)
    data = _data(2 * K)

    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(_loss)(model, x, y)
        opt.step(grads)
        return loss

    _torch_run(t, topt, data)
    before = np.asarray(j[0].weight)
    for i, (x, y) in enumerate(data):
        step(j, jopt, jnp.asarray(x), jnp.asarray(y))
        if i < K - 1:  # nothing moves until the k-th micro-batch
            np.testing.assert_array_equal(np.asarray(j[0].weight), before)
    assert step.trace_count == 1
    _close(j, t)


def test_multisteps_keeps_param_groups_live_and_schedulers_work():
    j, t = _pair()
    topt = torch.optim.Adam([{"params": t[0].parameters()}, {"params": t[2].parameters(), "lr": 0.05}], lr=0.01)
    jopt = jmod.optim.Adam([{"params": j[0].parameters()}, {"params": j[2].parameters(), "lr": 0.05}], lr=0.01)
    jopt = jmod.optim.MultiSteps(jopt, K)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=1, gamma=0.5)
    jsched = jmod.optim.lr_scheduler.StepLR(jopt, step_size=1, gamma=0.5)
    data = _data(3 * K)
    _torch_run(t, topt, data, tsched)
    for i, (x, y) in enumerate(data):
        jopt.step(jmod.grad(_loss)(j, jnp.asarray(x), jnp.asarray(y)))
        if (i + 1) % K == 0:
            jsched.step()
    assert [g["lr"] for g in jopt.param_groups] == [g["lr"] for g in topt.param_groups]
    _close(j, t)


def test_multisteps_continues_the_wrapped_state_and_pickles():
    j, t = _pair()
    topt = torch.optim.Adam(t.parameters(), lr=0.01)
    jopt = jmod.optim.Adam(j.parameters(), lr=0.01)
    x, y = _data(1)[0]
    # one plain step first: the wrapper continues its moments and step count
    ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
    topt.step()
    topt.zero_grad()
    jopt.step(jmod.grad(_loss)(j, jnp.asarray(x), jnp.asarray(y)))
    jopt = jmod.optim.MultiSteps(jopt, K)
    jopt, j = pickle.loads(pickle.dumps((jopt, j)))
    data = _data(K)
    _torch_run(t, topt, data)
    for x, y in data:
        jopt.step(jmod.grad(_loss)(j, jnp.asarray(x), jnp.asarray(y)))
    _close(j, t)
    assert set(jopt.state_dict()["state"]) == set(jopt.__class__.state_dict(jopt)["state"])


def test_multisteps_over_a_generic_optax_optimizer():
    j, t = _pair()
    topt = torch.optim.SGD(t.parameters(), lr=0.1)
    jopt = jmod.optim.MultiSteps(jmod.optim.Optimizer(j, optax.sgd(0.1)), K)
    data = _data(K)
    _torch_run(t, topt, data)
    for x, y in data:
        jopt.step(jmod.grad(_loss)(j, jnp.asarray(x), jnp.asarray(y)))
    _close(j, t)


def test_accumulation_inside_one_compiled_step_matches_torch():
    j, t = _pair()
    topt = torch.optim.AdamW(t.parameters(), lr=0.01)
    jopt = jmod.optim.AdamW(j.parameters(), lr=0.01)
    data = _data(2 * K)
    _torch_run(t, topt, data)

    @jmod.jit
    def step(model, opt, xs, ys):  # xs: (K, micro_batch, ...)
        total = None
        for i in range(xs.shape[0]):
            grads = jmod.grad(lambda m: _loss(m, xs[i], ys[i]) / xs.shape[0])(model)
            total = grads if total is None else jax.tree.map(jnp.add, total, grads)
        opt.step(total)

    for c in range(2):
        chunk = data[c * K : (c + 1) * K]
        step(j, jopt, jnp.stack([x for x, _ in chunk]), jnp.stack([y for _, y in chunk]))
    _close(j, t)


def test_bad_argument():
    with pytest.raises(TypeError, match="wraps a jmod optimizer"):
        jmod.optim.MultiSteps(optax.sgd(0.1), 2)
    with pytest.raises(TypeError, match="does not apply to LBFGS"):
        jmod.optim.MultiSteps(jmod.optim.LBFGS(nn.Linear(2, 2).parameters()), 2)
