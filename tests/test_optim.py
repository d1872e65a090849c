"""jmod.optim against torch.optim, step for step on the same weights and data."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import jmod
from jmod import nn


class JNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 7)
        self.fc2 = nn.Linear(7, 3)

    def forward(self, x):
        return self.fc2(jnp.tanh(self.fc1(x)))


class TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(5, 7)
        self.fc2 = torch.nn.Linear(7, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def _pair():
    torch.manual_seed(0)
    t = TNet()
    j = JNet()
    j.load_state_dict(t.state_dict())
    return j, t


def _loss_j(m, x, y):
    return ((m(x) - y) ** 2).mean()


def _run(make_j, make_t, steps=5, jit=False, freeze=None, opts=None):
    j, t = _pair()
    if freeze:
        getattr(j, freeze).requires_grad_(False)
        getattr(t, freeze).requires_grad_(False)
    jopt = make_j(j)
    topt = make_t(t)
    if opts is not None:
        opts.extend([jopt, topt])
    rng = np.random.default_rng(0)

    def jstep(m, opt, x, y):
        _, g = jmod.value_and_grad(_loss_j)(m, x, y)
        opt.step(g)

    step = jmod.jit(jstep) if jit else jstep
    worst = 0.0
    for _ in range(steps):
        x = rng.standard_normal((4, 5)).astype(np.float32)
        y = rng.standard_normal((4, 3)).astype(np.float32)
        topt.zero_grad()
        ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
        step(j, jopt, jnp.asarray(x), jnp.asarray(y))
        for name, p in t.named_parameters():
            a = np.asarray(j.get_parameter(name))
            b = p.detach().numpy()
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
            worst = max(worst, float(np.abs(a - b).max()))
    if jit:
        assert step.trace_count == 1
    return j, t, worst


CASES = {
    "sgd": ({"lr": 0.1}, jmod.optim.SGD, torch.optim.SGD),
    "sgd_momentum": ({"lr": 0.1, "momentum": 0.9}, jmod.optim.SGD, torch.optim.SGD),
    "sgd_dampening_wd": (
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
        jmod.optim.SGD,
        torch.optim.SGD,
    ),
    "sgd_nesterov_maximize": (
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True},
        jmod.optim.SGD,
        torch.optim.SGD,
    ),
    "adam": ({"lr": 1e-2}, jmod.optim.Adam, torch.optim.Adam),
    "adam_l2_amsgrad": (
        {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True},
        jmod.optim.Adam,
        torch.optim.Adam,
    ),
    "adamw": ({"lr": 1e-2}, jmod.optim.AdamW, torch.optim.AdamW),
    "adamw_wd": ({"lr": 1e-2, "weight_decay": 0.3, "amsgrad": True}, jmod.optim.AdamW, torch.optim.AdamW),
    "rmsprop": ({"lr": 1e-2}, jmod.optim.RMSprop, torch.optim.RMSprop),
    "rmsprop_centered_momentum": (
        {"lr": 1e-2, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.01},
        jmod.optim.RMSprop,
        torch.optim.RMSprop,
    ),
    "adagrad": ({"lr": 1e-1, "lr_decay": 0.01, "weight_decay": 0.01}, jmod.optim.Adagrad, torch.optim.Adagrad),
    "adamax": ({"lr": 1e-2}, jmod.optim.Adamax, torch.optim.Adamax),
    "adamax_wd_maximize": (
        {"lr": 1e-2, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.1, "maximize": True},
        jmod.optim.Adamax,
        torch.optim.Adamax,
    ),
    "nadam": ({"lr": 1e-2}, jmod.optim.NAdam, torch.optim.NAdam),
    "nadam_l2_momentum_decay": (
        {"lr": 1e-2, "weight_decay": 0.1, "momentum_decay": 0.05},
        jmod.optim.NAdam,
        torch.optim.NAdam,
    ),
    "nadam_decoupled": (
        {"lr": 1e-2, "betas": (0.8, 0.95), "weight_decay": 0.1, "decoupled_weight_decay": True},
        jmod.optim.NAdam,
        torch.optim.NAdam,
    ),
    # 8 steps: RAdam takes the rectified branch (rho_t > 5) from step 6 on
    "radam": ({"lr": 1e-2}, jmod.optim.RAdam, torch.optim.RAdam, 8),
    "radam_l2": ({"lr": 1e-2, "betas": (0.9, 0.9), "weight_decay": 0.1}, jmod.optim.RAdam, torch.optim.RAdam, 8),
    "radam_decoupled_maximize": (
        {"lr": 1e-2, "betas": (0.8, 0.95), "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        jmod.optim.RAdam,
        torch.optim.RAdam,
        8,
    ),
    "adadelta": ({}, jmod.optim.Adadelta, torch.optim.Adadelta),
    "adadelta_wd": (
        {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1},
        jmod.optim.Adadelta,
        torch.optim.Adadelta,
    ),
    "rprop": ({}, jmod.optim.Rprop, torch.optim.Rprop),
    # the step sizes hit both clamps and the gradients change sign
    "rprop_etas_step_sizes": (
        {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.08)},
        jmod.optim.Rprop,
        torch.optim.Rprop,
        8,
    ),
    "asgd": ({}, jmod.optim.ASGD, torch.optim.ASGD),
    # t0=2: the average ``ax`` starts moving at step 3 (mu < 1)
    "asgd_averaging_wd": (
        {"lr": 0.1, "lambd": 1e-2, "alpha": 0.5, "t0": 2, "weight_decay": 0.1},
        jmod.optim.ASGD,
        torch.optim.ASGD,
        8,
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_step_for_step(case, jit):
    kwargs, jcls, tcls, *steps = CASES[case]
    _run(
        lambda m: jcls(m.parameters(), **kwargs),
        lambda m: tcls(m.parameters(), **kwargs),
        jit=jit,
        steps=steps[0] if steps else 5,
    )


@pytest.mark.torch
def test_parameter_groups_match_torch():
    def groups(m, names):
        decay = [p for n, p in names(m) if n.endswith("weight")]
        no_decay = [p for n, p in names(m) if n.endswith("bias")]
        return [{"params": decay, "weight_decay": 0.5}, {"params": no_decay, "weight_decay": 0.0, "lr": 0.05}]

    _run(
        lambda m: jmod.optim.AdamW(groups(m, lambda m: m.named_parameters()), lr=1e-2),
        lambda m: torch.optim.AdamW(groups(m, lambda m: m.named_parameters()), lr=1e-2),
        jit=True,
    )


@pytest.mark.torch
def test_frozen_parameters_are_never_updated_and_state_untouched():
    j, t, _ = _run(
        lambda m: jmod.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.5),
        lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.5),
        freeze="fc1",
        jit=True,
    )
    np.testing.assert_array_equal(np.asarray(j.fc1.weight), t.fc1.weight.detach().numpy())


@pytest.mark.torch
def test_learning_rate_change_through_param_groups_without_retrace():
    j, t = _pair()
    jopt = jmod.optim.SGD(j.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)
    step = jmod.jit(lambda m, opt, x, y: opt.step(jmod.grad(_loss_j)(m, x, y)))
    rng = np.random.default_rng(1)
    for i in range(6):
        lr = 0.1 * (0.5**i)
        for g in jopt.param_groups:
            g["lr"] = lr
        for g in topt.param_groups:
            g["lr"] = lr
        x = rng.standard_normal((4, 5)).astype(np.float32)
        y = rng.standard_normal((4, 3)).astype(np.float32)
        topt.zero_grad()
        ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
        step(j, jopt, jnp.asarray(x), jnp.asarray(y))
    for name, p in t.named_parameters():
        np.testing.assert_allclose(np.asarray(j.get_parameter(name)), p.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert step.trace_count == 1
    assert jopt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**5)


NEW_OPTIMIZERS = {
    "Adamax": {"lr": 1e-2, "weight_decay": 0.1},
    "NAdam": {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "RAdam": {"lr": 1e-2, "weight_decay": 0.1},
    "Adadelta": {"lr": 0.5, "weight_decay": 0.1},
    "Rprop": {"lr": 0.05, "etas": (0.3, 1.5)},
    "ASGD": {"lr": 0.1, "lambd": 1e-2, "t0": 2, "weight_decay": 0.1},
}


def _jmod_state_by_param(jopt):
    """jmod's per-parameter optimizer state as ``{param key: {torch field: array}}``."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(jopt.opt_state)[0]:
        names = [p.key for p in path if isinstance(p, jax.tree_util.DictKey)]
        if len(names) >= 2 and names[-2] in jopt._keys:
            out.setdefault(names[-2], {})[names[-1]] = np.asarray(leaf)
    return out


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(NEW_OPTIMIZERS))
def test_groups_frozen_parameter_and_state_layout_match_torch(name):
    """Two parameter groups (one with its own lr and options), a parameter without a
    gradient (skipped, its state untouched), compiled: torch's parameters, and per
    parameter the same state fields with the same values as torch's optimizer state."""
    kw = NEW_OPTIMIZERS[name]

    def groups(m):
        named = list(m.named_parameters())
        weights = [p for n, p in named if n.endswith("weight")]
        biases = [p for n, p in named if n.endswith("bias")]
        return [{"params": weights}, {"params": biases, "lr": kw["lr"] / 2, "weight_decay": 0.0}]

    opts = []
    j, t, worst = _run(
        lambda m: getattr(jmod.optim, name)(groups(m), **kw),
        lambda m: getattr(torch.optim, name)(groups(m), **kw),
        steps=8,
        jit=True,
        freeze="fc1",
        opts=opts,
    )
    jopt, topt = opts
    np.testing.assert_array_equal(np.asarray(j.fc1.weight), t.fc1.weight.detach().numpy())
    jstate = _jmod_state_by_param(jopt)
    for pname, p in t.named_parameters():
        tstate = topt.state.get(p, {})
        if pname.startswith("fc1"):
            assert not tstate  # torch never created it
            assert float(jstate[pname]["step"]) == 0.0
            continue
        assert sorted(jstate[pname]) == sorted(tstate), pname
        for field, value in tstate.items():
            np.testing.assert_allclose(
                jstate[pname][field], value.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=f"{pname}.{field}"
            )


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(NEW_OPTIMIZERS))
def test_new_optimizers_hyperparameter_changes_without_retrace(name):
    """``param_groups[0]["lr"] = ...`` (and Rprop's ``etas``) between compiled steps, as
    torch: same parameters, one trace."""
    kw = NEW_OPTIMIZERS[name]
    j, t = _pair()
    jopt = getattr(jmod.optim, name)(j.parameters(), **kw)
    topt = getattr(torch.optim, name)(t.parameters(), **kw)
    step = jmod.jit(lambda m, opt, x, y: opt.step(jmod.grad(_loss_j)(m, x, y)))
    rng = np.random.default_rng(1)
    for i in range(6):
        changes = {"lr": kw["lr"] * (0.7 ** (i + 1))}  # from before the first step
        if name == "Rprop":
            changes["etas"] = (0.3 + 0.02 * i, 1.5 - 0.05 * i)
        for opt in (jopt, topt):
            for g in opt.param_groups:
                for k, v in changes.items():
                    g[k] = v
        x = rng.standard_normal((4, 5)).astype(np.float32)
        y = rng.standard_normal((4, 3)).astype(np.float32)
        topt.zero_grad()
        ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
        step(j, jopt, jnp.asarray(x), jnp.asarray(y))
    for pname, p in t.named_parameters():
        np.testing.assert_allclose(np.asarray(j.get_parameter(pname)), p.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert step.trace_count == 1


@pytest.mark.parametrize("name", sorted(NEW_OPTIMIZERS))
def test_new_optimizer_signatures_match_torch(name):
    import inspect

    def described(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert described(getattr(jmod.optim, name)) == described(getattr(torch.optim, name))
    assert (
        getattr(jmod.optim, name)(nn.Linear(2, 2)).defaults.items()
        <= getattr(torch.optim, name)(torch.nn.Linear(2, 2).parameters()).defaults.items()
    )


def test_optax_schedule_and_generic_transformation():
    j, _ = _pair()
    schedule = optax.linear_schedule(1.0, 0.0, 4)
    opt = jmod.optim.Optimizer(j, optax.sgd(schedule))
    deltas = []
    for _ in range(5):
        before = j.fc2.bias
        opt.step(jmod.grad(lambda m: m.fc2.bias.sum())(j))  # gradient 1: the step is the learning rate
        deltas.append(float((before - j.fc2.bias)[0]))
    np.testing.assert_allclose(deltas, [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-6)


def test_optimizer_from_submodule_parameters_finds_gradients_by_grad_name():
    j, _ = _pair()
    opt = jmod.optim.SGD(j.fc2.parameters(), lr=1.0)  # names "weight", "bias" relative to fc2
    before1, before2 = j.fc1.weight, j.fc2.weight
    opt.step(jmod.grad(_loss_j)(j, jnp.ones((2, 5)), jnp.zeros((2, 3))))  # keys "fc2.weight", ...
    np.testing.assert_array_equal(j.fc1.weight, before1)
    assert not np.allclose(j.fc2.weight, before2)


def test_step_with_unrelated_gradients_is_an_error():
    j, _ = _pair()
    other = JNet()
    opt = jmod.optim.SGD(j, lr=1.0)
    with pytest.raises(ValueError, match="none of this optimizer's parameters"):
        opt.step({"something.else": jnp.zeros(3)})
    opt.step(jmod.grad(_loss_j)(other, jnp.ones((2, 5)), jnp.zeros((2, 3))))  # same names: fine, by name


def test_state_dict_round_trip_and_validation(tmp_path):
    j, _ = _pair()
    opt = jmod.optim.Adam(j.parameters(), lr=1e-2)
    x, y = jnp.ones((2, 5)), jnp.zeros((2, 3))
    for _ in range(2):
        opt.step(jmod.grad(_loss_j)(j, x, y))
    sd = opt.state_dict()
    jmod.save(sd, tmp_path / "opt.safetensors")
    loaded = jmod.load(tmp_path / "opt.safetensors")
    j2, _ = _pair()
    j2.load_state_dict(j.state_dict())
    opt2 = jmod.optim.Adam(j2.parameters(), lr=1e-2)
    opt2.load_state_dict(loaded)
    for _ in range(2):
        opt.step(jmod.grad(_loss_j)(j, x, y))
        opt2.step(jmod.grad(_loss_j)(j2, x, y))
    for (n, a), (_, b) in zip(j.named_parameters(), j2.named_parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=n)
    bad = dict(sd)
    bad["state"] = {k: v for k, v in list(sd["state"].items())[1:]}
    with pytest.raises(ValueError, match="missing"):
        opt2.load_state_dict(bad)


def test_invalid_arguments_raise_torch_errors():
    j, _ = _pair()
    with pytest.raises(ValueError, match="Invalid learning rate"):
        jmod.optim.Adam(j.parameters(), lr=-1.0)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        jmod.optim.SGD(j.parameters(), lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0"):
        jmod.optim.Adam(j.parameters(), betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        ps = list(j.parameters())
        jmod.optim.SGD([{"params": ps}, {"params": ps[:1]}], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        jmod.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="step"):
        jmod.optim.SGD(j, lr=0.1).step()
    assert jmod.optim.SGD(j, lr=0.1).zero_grad() is None


def test_tied_parameter_is_one_optimizer_entry():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3, bias=False)
            self.b = nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    m = Tied()
    opt = jmod.optim.SGD(m.parameters(), lr=0.1)
    assert len(opt._slots) == 1
    g = jmod.grad(lambda m: m(jnp.ones((1, 3))).sum())(m)
    assert list(g) == ["a.weight"]
    opt.step(g)
    assert m.a.weight is m.b.weight
    jax.block_until_ready(m.a.weight)


def test_constructor_checks_match_torch():
    """Bad hyperparameters, a bare array, an empty list: torch's errors; duplicate
    parameters in a group: torch's warning (and one update per parameter)."""
    import warnings

    tm, jm = torch.nn.Linear(2, 2), nn.Linear(2, 2)
    cases = [
        ("Adagrad", {"lr": 0.1, "lr_decay": -1}),
        ("Adagrad", {"lr": 0.1, "initial_accumulator_value": -1}),
        ("Adagrad", {"lr": 0.1, "eps": -1}),
        ("Adagrad", {"lr": -0.1}),
        ("SGD", {"lr": 0.1, "nesterov": True}),
        ("Adam", {"lr": 0.1, "betas": (1.0, 0.9)}),
        ("RMSprop", {"lr": 0.1, "alpha": -1}),
        # the new optimizers, including which check fires first
        ("Adamax", {"lr": 0.1, "eps": -1, "betas": (1.0, 0.9)}),
        ("Adamax", {"betas": (0.9, 1.0), "weight_decay": -1}),
        ("Adamax", {"weight_decay": -1}),
        ("NAdam", {"momentum_decay": -1}),
        ("NAdam", {"weight_decay": -1, "momentum_decay": -1}),
        ("NAdam", {"lr": -1, "eps": -1}),
        ("RAdam", {"betas": (-0.1, 0.9)}),
        ("RAdam", {"eps": -1, "weight_decay": -1}),
        ("Adadelta", {"rho": 1.1}),
        ("Adadelta", {"rho": -0.1, "eps": -1}),
        ("Adadelta", {"eps": -1, "weight_decay": -1}),
        ("Adadelta", {"weight_decay": -1}),
        ("Rprop", {"etas": (1.0, 1.2)}),
        ("Rprop", {"etas": (0.5, 1.0)}),
        ("Rprop", {"lr": -1, "etas": (0, 0)}),
        ("ASGD", {"weight_decay": -1}),
        ("ASGD", {"lr": -1, "weight_decay": -1}),
    ]
    for name, kw in cases:
        with pytest.raises(ValueError) as t_err:
            getattr(torch.optim, name)(tm.parameters(), **kw)
        with pytest.raises(ValueError) as j_err:
            getattr(jmod.optim, name)(jm.parameters(), **kw)
        assert str(j_err.value) == str(t_err.value), (name, kw)
    with pytest.raises(TypeError, match="params argument given to the optimizer should be an iterable"):
        jmod.optim.SGD(jm.weight, lr=0.1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        jmod.optim.SGD([], lr=0.1)
    with warnings.catch_warnings(record=True) as t_rec:
        warnings.simplefilter("always")
        torch.optim.SGD([tm.weight, tm.weight], lr=0.1)
    with pytest.warns(UserWarning) as j_rec:
        opt = jmod.optim.SGD([jm.weight, jm.weight], lr=0.1)
    assert str(j_rec[0].message) == str(t_rec[0].message)
    assert len(opt.param_groups[0]["params"]) == 1


@pytest.mark.parametrize(
    "name,kw",
    [
        ("Adam", {"lr": 0.01}),
        ("SGD", {"lr": 0.1, "momentum": 0.9}),
        ("AdamW", {"lr": 0.01, "amsgrad": True}),
        ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
        ("Adagrad", {"lr": 0.1}),
        ("Adamax", {"lr": 0.01}),
        ("NAdam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.1}),
        ("RAdam", {"lr": 0.01}),
        ("Adadelta", {"lr": 1.0}),
        ("Rprop", {"lr": 0.01}),
        ("ASGD", {"lr": 0.1, "lambd": 0.1, "t0": 1}),
    ],
)
def test_resume_from_a_torch_optimizer_state_dict(name, kw):
    """A torch run's model and optimizer state dicts load into jmod, and training goes on
    with torch's numbers (moments, step counts and per-group lrs carried over)."""
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    jm = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    topt = getattr(torch.optim, name)(
        [{"params": tm[0].parameters()}, {"params": tm[1].parameters(), "lr": kw["lr"] / 2}], **kw
    )
    x = torch.randn(4, 3)

    def torch_step():
        topt.zero_grad()
        tm(x).pow(2).mean().backward()
        topt.step()

    for _ in range(3):
        torch_step()
    jm.load_state_dict(tm.state_dict())
    jopt = getattr(jmod.optim, name)([{"params": jm[0].parameters()}, {"params": jm[1].parameters(), "lr": 0.5}], **kw)
    fresh = copy.deepcopy((jm, jopt))
    jopt.load_state_dict(topt.state_dict())
    assert jopt.param_groups[1]["lr"] == kw["lr"] / 2

    def jmod_step(m, opt):
        opt.step(jmod.grad(lambda m: (m(jnp.asarray(x.numpy())) ** 2).mean())(m))

    for _ in range(2):
        torch_step()
        jmod_step(jm, jopt)
        jmod_step(*fresh)
    for (n, a), b, c in zip(jm.named_parameters(), tm.parameters(), fresh[0].parameters()):
        np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), atol=1e-6, err_msg=n)
        assert np.abs(np.asarray(c) - b.detach().numpy()).max() > 1e-4  # without the state it differs


def test_torch_optimizer_state_dict_of_another_shape_is_refused():
    tm, jm = torch.nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    topt, jopt = torch.optim.SGD(tm.parameters(), lr=0.1), jmod.optim.SGD(jm.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        jopt.load_state_dict(topt.state_dict())


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_model_and_optimizer_copy_together_and_train_the_same(how):
    import pickle

    jmod.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    opt = jmod.optim.AdamW([{"params": m[0].parameters()}, {"params": m[1].parameters(), "lr": 0.05}], lr=0.01)
    x = jnp.ones((2, 3))

    def step(model, o):
        o.step(jmod.grad(lambda mm: (mm(x) ** 2).mean())(model))

    step(m, opt)
    m2, opt2 = copy.deepcopy((m, opt)) if how == "deepcopy" else pickle.loads(pickle.dumps((m, opt)))
    assert [type(g).__name__ for g in opt2.param_groups] == ["ParamGroup", "ParamGroup"]
    opt2.param_groups[1]["lr"] = 0.05  # the copy's groups drive the copy's state
    before = np.asarray(m[0].weight)
    for _ in range(2):
        step(m, opt)
        step(m2, opt2)
    for (n, a), b in zip(m.named_parameters(), m2.parameters()):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-7, err_msg=n)
    assert not np.allclose(np.asarray(m[0].weight), before)
    opt2.param_groups[0]["lr"] = 0.0
    step(m2, opt2)
    assert opt.param_groups[0]["lr"] == 0.01  # the original is independent
