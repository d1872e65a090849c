"""jmod.optim.lr_scheduler against torch.optim.lr_scheduler: the same schedulers on the
same tiny regression, learning rates compared float for float and parameters after
the optimizer steps, plus state dicts, ReduceLROnPlateau, warnings and errors."""

import math
import pickle
import warnings

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jmod
from jmod import nn
from jmod.optim import lr_scheduler as jsched

tsched = torch.optim.lr_scheduler
STEPS = 12


def _models():
    torch.manual_seed(0)
    t = torch.nn.Linear(4, 2)
    j = nn.Linear(4, 2)
    j.load_state_dict(t.state_dict())
    return j, t


def _optimizers(j, t, kind="sgd", groups=False):
    """The same optimizer for the jmod and the torch model (two groups with different
    lrs when ``groups``)."""
    if groups:
        jp = [{"params": [j.weight]}, {"params": [j.bias], "lr": 0.05}]
        tp = [{"params": [t.weight]}, {"params": [t.bias], "lr": 0.05}]
    else:
        jp, tp = j.parameters(), t.parameters()
    if kind == "sgd":
        return jmod.optim.SGD(jp, lr=0.1, momentum=0.9), torch.optim.SGD(tp, lr=0.1, momentum=0.9)
    if kind == "adam":
        return jmod.optim.Adam(jp, lr=0.1), torch.optim.Adam(tp, lr=0.1)
    if kind == "adagrad":
        return jmod.optim.Adagrad(jp, lr=0.1), torch.optim.Adagrad(tp, lr=0.1)
    if kind == "nadam":
        return jmod.optim.NAdam(jp, lr=0.1), torch.optim.NAdam(tp, lr=0.1)
    if kind == "rprop":
        return jmod.optim.Rprop(jp, lr=0.1), torch.optim.Rprop(tp, lr=0.1)
    if kind == "asgd":
        return jmod.optim.ASGD(jp, lr=0.1, t0=3), torch.optim.ASGD(tp, lr=0.1, t0=3)
    raise ValueError(kind)


def _data(i):
    rng = np.random.default_rng(i)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    return x, (x @ np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 1.0], [-1.0, 0.3]], np.float32)).astype(np.float32)


def _loss_j(m, x, y):
    return ((m(x) - y) ** 2).mean()


def _train_step(j, jopt, t, topt, i, jstep=None):
    x, y = _data(i)
    topt.zero_grad()
    ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
    topt.step()
    if jstep is not None:
        jstep(j, jopt, jnp.asarray(x), jnp.asarray(y))
    else:
        jopt.step(jmod.grad(_loss_j)(j, jnp.asarray(x), jnp.asarray(y)))


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def _assert_lrs_equal(jl, tl):
    assert len(jl) == len(tl)
    for a, b in zip(jl, tl):
        assert type(a) is float and a == pytest.approx(b, rel=1e-12, abs=1e-15), (jl, tl)


def _assert_params_close(j, t):
    for name, p in t.named_parameters():
        np.testing.assert_allclose(np.asarray(j.get_parameter(name)), p.detach().numpy(), rtol=1e-5, atol=1e-6)


def _run(make, kind="sgd", groups=False, steps=STEPS, jstep=None):
    j, t = _models()
    jopt, topt = _optimizers(j, t, kind, groups)
    js, ts = make(jsched, jopt), make(tsched, topt)
    jl, tl, jm, tm = [js.get_last_lr()], [ts.get_last_lr()], [_momenta(jopt)], [_momenta(topt)]
    for i in range(steps):
        _train_step(j, jopt, t, topt, i, jstep)
        js.step()
        ts.step()
        jl.append(js.get_last_lr())
        tl.append(ts.get_last_lr())
        jm.append(_momenta(jopt))
        tm.append(_momenta(topt))
    return j, t, jopt, topt, js, ts, jl, tl, jm, tm


def _compare(make, kind="sgd", groups=False):
    j, t, jopt, topt, js, ts, jl, tl, jm, tm = _run(make, kind, groups)
    for a, b in zip(jl, tl):
        _assert_lrs_equal(a, b)
    for a, b in zip(jm, tm):
        assert a == b  # the same float arithmetic
    assert [g["lr"] for g in jopt.param_groups] == pytest.approx([g["lr"] for g in topt.param_groups], rel=1e-12)
    _assert_params_close(j, t)
    return js, ts


# name -> (factory(scheduler module, optimizer), optimizer kinds)
CASES = {
    "LambdaLR": (lambda S, o: S.LambdaLR(o, lr_lambda=lambda e: 0.9**e), ["sgd"]),
    "MultiplicativeLR": (lambda S, o: S.MultiplicativeLR(o, lr_lambda=lambda e: 0.95), ["sgd"]),
    "StepLR": (lambda S, o: S.StepLR(o, step_size=3, gamma=0.5), ["sgd"]),
    "MultiStepLR": (lambda S, o: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3), ["sgd"]),
    "ConstantLR": (lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=4), ["sgd"]),
    # LinearLR scales the lr before the first step: Rprop's step sizes and ASGD's eta start from it
    "LinearLR": (
        lambda S, o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
        ["sgd", "rprop", "asgd"],
    ),
    "ExponentialLR": (lambda S, o: S.ExponentialLR(o, gamma=0.8), ["sgd"]),
    "SequentialLR": (
        lambda S, o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.1, total_iters=3), S.ExponentialLR(o, gamma=0.7)], milestones=[4]
        ),
        ["sgd"],
    ),
    "PolynomialLR": (lambda S, o: S.PolynomialLR(o, total_iters=7, power=2.0), ["sgd"]),
    "CosineAnnealingLR": (lambda S, o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.001), ["sgd"]),
    "ChainedScheduler": (
        lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.5, total_iters=3), S.ExponentialLR(o, gamma=0.9)]),
        ["sgd"],
    ),
    "CyclicLR": (lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3), ["sgd", "adam"]),
    "CyclicLR-triangular2": (
        lambda S, o: (
            S.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=2, step_size_down=3, mode="triangular2")
            if len(o.param_groups) == 2
            else S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, step_size_down=3, mode="triangular2")
        ),
        ["sgd"],
    ),
    "CyclicLR-exp_range": (
        lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, mode="exp_range", gamma=0.9),
        ["adam"],
    ),
    "CyclicLR-no-momentum": (
        lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False),
        ["adagrad"],
    ),
    "OneCycleLR": (lambda S, o: S.OneCycleLR(o, max_lr=0.1, total_steps=STEPS), ["sgd", "adam", "nadam"]),
    "OneCycleLR-3phase-linear": (
        lambda S, o: S.OneCycleLR(
            o, max_lr=0.2, epochs=3, steps_per_epoch=4, pct_start=0.25, anneal_strategy="linear", three_phase=True
        ),
        ["adam"],
    ),
    "CosineAnnealingWarmRestarts": (
        lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.001),
        ["sgd"],
    ),
}
PARAMS = [
    pytest.param(name, kind, groups, id=f"{name}-{kind}{'-groups' if groups else ''}")
    for name, (_, kinds) in CASES.items()
    for kind in kinds
    for groups in (False, True)
]


@pytest.mark.parametrize("name,kind,groups", PARAMS)
def test_schedule_matches_torch(name, kind, groups):
    _compare(CASES[name][0], kind, groups)


def _comparable(state):
    """A scheduler state dict without what cannot be compared across libraries."""
    out = {}
    for k, v in state.items():
        if k == "_schedulers":
            v = [_comparable(s) for s in v]
        elif k in ("lr_lambdas", "_scale_fn_custom"):
            continue
        out[k] = v
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_has_torchs_entries_and_round_trips_mid_schedule(name):
    make, kinds = CASES[name]
    kind = kinds[-1]
    j, t, jopt, topt, js, ts, *_ = _run(make, kind, steps=5)
    saved = js.state_dict()
    assert _comparable(saved) == _comparable(ts.state_dict())
    saved_opt = jopt.state_dict()
    for g in saved_opt["param_groups"]:
        assert "initial_lr" in g
    saved = pickle.loads(pickle.dumps(saved))  # a checkpoint
    # Resume in a fresh model/optimizer: build the scheduler first, then load (torch's order).
    j2, _ = _models()
    j2.load_state_dict(j.state_dict())
    jopt2, _ = _optimizers(j2, t, kind)
    js2 = make(jsched, jopt2)
    jopt2.load_state_dict(saved_opt)
    js2.load_state_dict(saved)
    assert js2.get_last_lr() == js.get_last_lr()
    for i in range(5, STEPS):
        x, y = _data(i)
        topt.zero_grad()
        ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
        jopt2.step(jmod.grad(_loss_j)(j2, jnp.asarray(x), jnp.asarray(y)))
        js2.step()
        ts.step()
        _assert_lrs_equal(js2.get_last_lr(), ts.get_last_lr())
        assert _momenta(jopt2) == _momenta(topt)
    _assert_params_close(j2, t)


def test_resume_with_last_epoch_uses_initial_lr_like_torch():
    j, t = _models()
    jopt, topt = _optimizers(j, t)
    for o in (jopt, topt):
        o.param_groups[0]["initial_lr"] = 0.4
    js = jsched.CosineAnnealingLR(jopt, T_max=10, last_epoch=3)
    ts = tsched.CosineAnnealingLR(topt, T_max=10, last_epoch=3)
    _assert_lrs_equal(js.get_last_lr(), ts.get_last_lr())
    for i in range(4):
        _train_step(j, jopt, t, topt, i)
        js.step()
        ts.step()
        _assert_lrs_equal(js.get_last_lr(), ts.get_last_lr())
    assert js.base_lrs == ts.base_lrs == [0.4]


@pytest.mark.parametrize(
    "make",
    [
        lambda S, o: S.StepLR(o, step_size=3, gamma=0.5),
        lambda S, o: S.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.3),
        lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=4),
        lambda S, o: S.LinearLR(o, start_factor=0.2, total_iters=6),
        lambda S, o: S.ExponentialLR(o, gamma=0.9),
        lambda S, o: S.PolynomialLR(o, total_iters=7, power=0.5),
        lambda S, o: S.CosineAnnealingLR(o, T_max=5),
        lambda S, o: S.LambdaLR(o, lr_lambda=lambda e: 1 / (e + 1)),  # no closed form: get_lr
    ],
    ids=["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "Cosine", "LambdaLR"],
)
def test_deprecated_step_epoch_uses_the_closed_form(make):
    j, t = _models()
    jopt, topt = _optimizers(j, t, groups=True)
    js, ts = make(jsched, jopt), make(tsched, topt)
    for i, epoch in enumerate([4, 1, 7, 7, 12, 0, 3]):
        _train_step(j, jopt, t, topt, i)
        with pytest.warns(UserWarning, match="The epoch parameter in `scheduler.step\\(\\)` was not necessary"):
            js.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts.step(epoch)
        _assert_lrs_equal(js.get_last_lr(), ts.get_last_lr())


def test_cosine_warm_restarts_with_fractional_and_interleaved_epochs():
    j, t = _models()
    jopt, topt = _optimizers(j, t)
    js = jsched.CosineAnnealingWarmRestarts(jopt, T_0=3, T_mult=2)
    ts = tsched.CosineAnnealingWarmRestarts(topt, T_0=3, T_mult=2)
    for epoch in [0.25, 0.5, 2.75, 3.5, 9.1, 20.0, None, None, 4, None]:
        js.step(epoch)
        ts.step(epoch)
        _assert_lrs_equal(js.get_last_lr(), ts.get_last_lr())
        assert (js.T_cur, js.T_i, js.last_epoch) == (ts.T_cur, ts.T_i, ts.last_epoch)


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.89995, 0.8, 0.85, 0.86, 0.87, 0.5, 0.6, 0.7, 0.8, 0.49, 0.9, 1.0, 1.1, 1.2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"patience": 1},
        {"patience": 0, "cooldown": 2},
        {"mode": "max", "patience": 1},
        {"mode": "max", "threshold_mode": "abs", "threshold": 0.05, "patience": 0},
        {"threshold_mode": "abs", "threshold": 0.02, "patience": 1, "factor": 0.5},
        {"patience": 0, "factor": 0.5, "min_lr": 0.02},
        {"patience": 0, "factor": 0.5, "min_lr": [0.03, 0.0001]},
        {"patience": 0, "factor": 0.9, "eps": 0.004},
    ],
)
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    j, t = _models()
    jopt, topt = _optimizers(j, t, groups=True)
    js = jsched.ReduceLROnPlateau(jopt, **kwargs)
    ts = tsched.ReduceLROnPlateau(topt, **kwargs)
    sign = -1.0 if kwargs.get("mode") == "max" else 1.0
    for i, m in enumerate(PLATEAU_METRICS):
        _train_step(j, jopt, t, topt, i % 4)
        js.step(jnp.asarray(sign * m) if i % 2 else sign * m)  # a scalar array or a float
        ts.step(torch.tensor(sign * m) if i % 2 else sign * m)
        _assert_lrs_equal(js.get_last_lr(), ts.get_last_lr())
        assert (js.num_bad_epochs, js.cooldown_counter, js.best, js.last_epoch) == (
            ts.num_bad_epochs,
            ts.cooldown_counter,
            ts.best,
            ts.last_epoch,
        )
    _assert_params_close(j, t)
    state = js.state_dict()
    assert state == ts.state_dict()
    js2 = jsched.ReduceLROnPlateau(jopt)
    js2.load_state_dict(state)
    assert (js2.mode, js2.best, js2.patience) == (ts.mode, ts.best, ts.patience)


def test_jit_train_step_uses_scheduled_lr_with_one_trace():
    def train(m, opt, x, y):
        opt.step(jmod.grad(_loss_j)(m, x, y))

    step = jmod.jit(train)
    j, t = _models()
    jopt, topt = _optimizers(j, t, "sgd", groups=True)
    js, ts = jsched.StepLR(jopt, step_size=2, gamma=0.5), tsched.StepLR(topt, step_size=2, gamma=0.5)
    for i in range(7):
        _train_step(j, jopt, t, topt, i, jstep=step)
        js.step()
        ts.step()
        _assert_lrs_equal(js.get_last_lr(), ts.get_last_lr())
        _assert_params_close(j, t)
    assert step.trace_count == 1
    assert js.get_last_lr() == [0.1 * 0.5**3, 0.05 * 0.5**3]
    # The live value inside the optimizer state followed the schedule.
    hp = jopt._find_hyperparams(jopt.opt_state, 1)
    assert float(hp["lr"]) == pytest.approx(0.05 * 0.5**3)


def test_jit_train_step_with_cycled_betas_has_one_trace():
    def train(m, opt, x, y):
        opt.step(jmod.grad(_loss_j)(m, x, y))

    step = jmod.jit(train)
    make = CASES["OneCycleLR"][0]
    j, t, jopt, topt, js, ts, jl, tl, jm, tm = _run(make, "adam", steps=STEPS, jstep=step)
    assert step.trace_count == 1
    for a, b in zip(jl, tl):
        _assert_lrs_equal(a, b)
    assert jm == tm
    _assert_params_close(j, t)


def test_warnings_match_torch():
    j, t = _models()
    jopt, topt = _optimizers(j, t)
    js, ts = jsched.StepLR(jopt, step_size=2), tsched.StepLR(topt, step_size=2)
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        js.step()
    with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        ts.step()
    with pytest.warns(UserWarning, match=r"please use `get_last_lr\(\)`"):
        js.get_lr()
    # In the right order there is no warning.
    j, t = _models()
    jopt, topt = _optimizers(j, t)
    js = jsched.ExponentialLR(jopt, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _train_step(j, jopt, t, topt, 0)
        js.step()
        js.step()
    assert jopt.param_groups[0]["lr"] == 0.025


def _error(make):
    """(type, message) of what ``make(module, optimizer)`` raises, or None."""
    try:
        make()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None


ERRORS = {
    "cawr-T_0": lambda S, o, a: S.CosineAnnealingWarmRestarts(o, T_0=0),
    "cawr-T_0-float": lambda S, o, a: S.CosineAnnealingWarmRestarts(o, T_0=1.5),
    "cawr-T_mult": lambda S, o, a: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
    "cawr-eta_min": lambda S, o, a: S.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"),
    "cawr-epoch": lambda S, o, a: S.CosineAnnealingWarmRestarts(o, T_0=2).step(-1),
    "linear-start": lambda S, o, a: S.LinearLR(o, start_factor=0),
    "linear-end": lambda S, o, a: S.LinearLR(o, end_factor=1.5),
    "constant-factor": lambda S, o, a: S.ConstantLR(o, factor=2),
    "lambda-count": lambda S, o, a: S.LambdaLR(o, lr_lambda=[lambda e: 1.0] * 3),
    "multiplicative-callable": lambda S, o, a: S.MultiplicativeLR(o, lr_lambda=1.0),
    "plateau-factor": lambda S, o, a: S.ReduceLROnPlateau(o, factor=1.0),
    "plateau-mode": lambda S, o, a: S.ReduceLROnPlateau(o, mode="up"),
    "plateau-threshold-mode": lambda S, o, a: S.ReduceLROnPlateau(o, threshold_mode="pct"),
    "plateau-min-lr": lambda S, o, a: S.ReduceLROnPlateau(o, min_lr=[0.1, 0.2, 0.3]),
    "cyclic-mode": lambda S, o, a: S.CyclicLR(o, 0.01, 0.1, mode="sine"),
    "cyclic-max-lr": lambda S, o, a: S.CyclicLR(o, 0.01, [0.1, 0.2, 0.3]),
    "cyclic-momentum": lambda S, o, a: S.CyclicLR(a, 0.01, 0.1),
    "onecycle-steps": lambda S, o, a: S.OneCycleLR(o, max_lr=0.1),
    "onecycle-total": lambda S, o, a: S.OneCycleLR(o, max_lr=0.1, total_steps=0),
    "onecycle-epochs": lambda S, o, a: S.OneCycleLR(o, max_lr=0.1, epochs=0, steps_per_epoch=3),
    "onecycle-steps-per-epoch": lambda S, o, a: S.OneCycleLR(o, max_lr=0.1, epochs=2, steps_per_epoch=1.5),
    "onecycle-pct": lambda S, o, a: S.OneCycleLR(o, max_lr=0.1, total_steps=5, pct_start=1.5),
    "onecycle-anneal": lambda S, o, a: S.OneCycleLR(o, max_lr=0.1, total_steps=5, anneal_strategy="exp"),
    "onecycle-overstep": lambda S, o, a: [
        s.step() for s in [S.OneCycleLR(o, max_lr=0.1, total_steps=2)] for _ in range(3)
    ],
    "sequential-empty": lambda S, o, a: S.SequentialLR(o, [], milestones=[]),
    "sequential-milestones": lambda S, o, a: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 3)], milestones=[]),
    "sequential-plateau": lambda S, o, a: S.SequentialLR(o, [S.StepLR(o, 2), S.ReduceLROnPlateau(o)], milestones=[2]),
    "chained-empty": lambda S, o, a: S.ChainedScheduler([]),
    "resume-without-initial-lr": lambda S, o, a: S.StepLR(o, 2, last_epoch=4),
    "not-an-optimizer": lambda S, o, a: S.StepLR(object(), 2),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name):
    j, t = _models()
    jopt, topt = _optimizers(j, t)
    jada, tada = _optimizers(j, t, "adagrad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        je = _error(lambda: ERRORS[name](jsched, jopt, jada))
        te = _error(lambda: ERRORS[name](tsched, topt, tada))
    assert te is not None and je == te


def test_optimizers_without_a_live_lr_are_refused():
    j, _ = _models()
    with pytest.raises(KeyError, match="param 'lr' is not specified"):
        jsched.StepLR(jmod.optim.Optimizer(j, optax.sgd(0.1)), 2)
    with pytest.raises(TypeError, match="is an optax schedule"):
        jsched.StepLR(jmod.optim.SGD(j, lr=optax.linear_schedule(0.1, 0.0, 10)), 2)
    opt = jmod.optim.Optimizer(j, optax.sgd(0.1), defaults={"lr": 0.1})
    with pytest.raises(TypeError, match="not a live hyperparameter"):
        jsched.ExponentialLR(opt, 0.5)


def test_lambda_state_dict_saves_callable_objects_only():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)

    j, t = _models()
    jopt, topt = _optimizers(j, t, groups=True)
    js = jsched.LambdaLR(jopt, [Warmup(4), lambda e: 0.5**e])
    ts = tsched.LambdaLR(topt, [Warmup(4), lambda e: 0.5**e])
    assert js.state_dict()["lr_lambdas"] == ts.state_dict()["lr_lambdas"] == [{"n": 4}, None]
    js2 = jsched.LambdaLR(jopt, [Warmup(10), lambda e: 1.0])
    js2.load_state_dict(js.state_dict())
    assert js2.lr_lambdas[0].n == 4
    assert math.isclose(js2.get_last_lr()[0], 0.025)
