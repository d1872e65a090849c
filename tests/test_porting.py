"""Porting real torch code: nanoGPT and torchvision's ResNet, written in torch and in jmod.

The model pairs live in tests/models/ (``gpt_torch.py``/``gpt_jmod.py``,
``resnet_torch.py``/``resnet_jmod.py``): the line diff between each pair is the port,
counted by ``tests/models/port_stats.py``. The tests load torch's weights into the jmod
port and compare logits, losses, every gradient and several optimizer steps under
``jmod.jit``; check the initialisations statistically against torch; and cover what the
ports rely on: in-place init on arrays read from a module, tied weights, frozen
parameters in optimizer-grouping code, parameter groups, random numbers for sampling,
``jmod.nn.utils`` (gradient clipping, parameters <-> vector).
"""

import copy
import math
import pickle
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
import torch

import jmod
from jmod import nn
from jmod._src.errors import SharedStorageError
from jmod.nn.parameter import requires_grad
from tests.helpers import MAX_ERRORS
from tests.models import gpt_jmod, gpt_torch, port_stats, resnet_jmod, resnet_torch

pytestmark = pytest.mark.torch

GPT_CONFIG = dict(block_size=16, vocab_size=64, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=True)


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _max_err(a, b):
    return float(np.max(np.abs(_np(a).astype(np.float64) - _np(b).astype(np.float64))))


def _gpt_pair(flash=True):
    torch.manual_seed(0)
    t = gpt_torch.GPT(gpt_torch.GPTConfig(**GPT_CONFIG, flash=flash))
    j = gpt_jmod.GPT(gpt_jmod.GPTConfig(**GPT_CONFIG, flash=flash))
    j.load_state_dict(t.state_dict())
    return j, t


def _chi2_ok(observed, expected):
    """Chi-square goodness of fit (expected counts rescaled to the observed total)."""
    observed, expected = np.asarray(observed, np.float64), np.asarray(expected, np.float64)
    return scipy.stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > 1e-4


def _same_distribution(jvals, tvals, what):
    """Two samples from the same distribution: KS test, and mean/std within 6 standard errors."""
    jvals, tvals = np.ravel(jvals).astype(np.float64), np.ravel(tvals).astype(np.float64)
    n, m = jvals.size, tvals.size
    assert scipy.stats.ks_2samp(jvals, tvals).pvalue > 1e-4, what
    sd = max(tvals.std(), 1e-12)
    assert abs(jvals.mean() - tvals.mean()) < 6 * sd * math.sqrt(1 / n + 1 / m), what
    assert abs(jvals.std() / sd - 1) < 6 * math.sqrt(1 / (2 * n) + 1 / (2 * m)), what


# =============================================================================== init
def test_gpt_init_matches_torch_statistically():
    """nanoGPT's apply(_init_weights) + the c_proj loop over named_parameters() values."""
    cfg = dict(GPT_CONFIG, n_embd=64, vocab_size=128)
    torch.manual_seed(1)
    t = gpt_torch.GPT(gpt_torch.GPTConfig(**cfg))
    j = gpt_jmod.GPT(gpt_jmod.GPTConfig(**cfg))
    tparams = dict(t.named_parameters())
    assert [n for n, _ in j.named_parameters()] == list(tparams)
    scaled = 0.02 / math.sqrt(2 * cfg["n_layer"])
    for name, p in j.named_parameters():
        jv, tv = np.asarray(p), _np(tparams[name])
        if name.endswith("bias") or re.search(r"ln_.*weight", name):
            np.testing.assert_array_equal(jv, tv, err_msg=name)  # zeros_ / LayerNorm's ones
            continue
        _same_distribution(jv, tv, name)
        expected = scaled if name.endswith("c_proj.weight") else 0.02
        assert abs(jv.std() / expected - 1) < 6 / math.sqrt(2 * jv.size), (name, jv.std(), expected)
        assert abs(jv.mean()) < 6 * expected / math.sqrt(jv.size), name
    # the tied embedding was initialised once, through both modules, as one array
    assert j.transformer.wte.weight is j.lm_head.weight
    assert j.get_num_params() == t.get_num_params()


@pytest.mark.parametrize("zero_init_residual", [False, True])
def test_resnet_init_matches_torch_statistically(zero_init_residual):
    """torchvision's `for m in self.modules(): kaiming_normal_/constant_` loop, BasicBlock and Bottleneck."""
    for arch, layers, width in ((resnet_torch.BasicBlock, [2, 2, 2, 2], 8), (resnet_torch.Bottleneck, [1, 1, 1, 1], 4)):
        jblock = getattr(resnet_jmod, arch.__name__)
        torch.manual_seed(2)
        t = resnet_torch.ResNet(arch, layers, num_classes=10, width=width, zero_init_residual=zero_init_residual)
        j = resnet_jmod.ResNet(jblock, layers, num_classes=10, width=width, zero_init_residual=zero_init_residual)
        tparams = dict(t.named_parameters())
        assert [n for n, _ in j.named_parameters()] == list(tparams)
        last_bn = "bn3" if arch is resnet_torch.Bottleneck else "bn2"
        for name, p in j.named_parameters():
            jv, tv = np.asarray(p), _np(tparams[name])
            module = j.get_submodule(name.rsplit(".", 1)[0])
            if isinstance(module, nn.BatchNorm2d):
                fill = (
                    0.0 if (zero_init_residual and f".{last_bn}.weight" in f".{name}") or name.endswith("bias") else 1.0
                )
                np.testing.assert_array_equal(jv, np.full_like(jv, fill), err_msg=name)
                np.testing.assert_array_equal(jv, tv, err_msg=name)
            elif isinstance(module, nn.Conv2d):
                # kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / fan_out)
                fan_out = jv.shape[0] * jv.shape[2] * jv.shape[3]
                assert abs(jv.std() / math.sqrt(2 / fan_out) - 1) < 6 / math.sqrt(2 * jv.size), name
                _same_distribution(jv, tv, name)
            else:
                # fc keeps Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
                bound = 1 / math.sqrt(tparams["fc.weight"].shape[1])
                assert np.abs(jv).max() <= bound and np.abs(tv).max() <= bound, name
                assert abs(jv.std() / (bound / math.sqrt(3)) - 1) < 6 / math.sqrt(2 * jv.size) + 0.05, name


def test_init_on_arrays_read_from_a_module_updates_it():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    for p in m.parameters():
        nn.init.constant_(p, 0.5)
    assert all(bool((p == 0.5).all()) for p in m.parameters())
    for n, p in m.named_parameters():
        if n.endswith("bias"):
            nn.init.zeros_(p)
    np.testing.assert_array_equal(m[1].bias, np.zeros(2))
    new = nn.init.kaiming_normal_(m[0].weight, mode="fan_out", nonlinearity="relu")
    assert new is m[0].weight and float(jnp.abs(new - 0.5).max()) > 0  # the module holds the returned array
    nn.init.normal_(m.state_dict()["1.weight"], mean=3.0)  # state_dict() values are read from the module too
    assert float(m[1].weight.mean()) > 2


def test_init_on_an_array_of_no_module_changes_nothing_else():
    m = nn.Linear(3, 2)
    stale = m.weight
    nn.init.zeros_(m.weight)  # m.weight now holds a new array; `stale` is the old value
    before = {k: np.asarray(v) for k, v in m.state_dict().items()}
    free = jnp.ones((2, 3))
    for arr in (free, stale, jnp.array(m.weight), m.weight * 1):
        kept = np.asarray(arr)
        out = nn.init.normal_(arr, mean=5.0)
        assert out is not arr and float(out.mean()) > 3  # the new array is returned...
        np.testing.assert_array_equal(arr, kept)  # ...the array given is unchanged (immutable)...
        for k, v in m.state_dict().items():  # ...and so is the module
            np.testing.assert_array_equal(v, before[k], err_msg=k)


# ======================================================================== tied weights
class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.wte.weight = self.head.weight  # nanoGPT's spelling

    def forward(self, idx):
        return self.head(jnp.tanh(self.wte(idx)))


class TorchTiedLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(10, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.wte.weight = self.head.weight

    def forward(self, idx):
        return self.head(torch.tanh(self.wte(idx)))


def _is_tied(m):
    return m.wte._parameters["weight"] is m.head._parameters["weight"]


def _tied_loss(m, idx):
    return jmod.nn.functional.cross_entropy(m(idx).reshape(-1, 10), ((idx + 1) % 10).reshape(-1))


def test_tied_weights_one_parameter_two_state_dict_keys_like_torch():
    j, t = _gpt_pair()
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert len(list(j.parameters())) == len(list(t.parameters())) == 28
    assert list(j.state_dict()) == list(t.state_dict())  # both transformer.wte.weight and lm_head.weight
    assert j.transformer.wte._parameters["weight"] is j.lm_head._parameters["weight"]
    # A torch checkpoint holding both keys loads; with different values the later key
    # wins in both libraries (both write one parameter, in module order).
    sd = t.state_dict()
    sd["lm_head.weight"] = sd["lm_head.weight"] + 1.0
    t2 = gpt_torch.GPT(gpt_torch.GPTConfig(**GPT_CONFIG))
    t2.load_state_dict(sd)
    j2 = gpt_jmod.GPT(gpt_jmod.GPTConfig(**GPT_CONFIG))
    j2.load_state_dict(sd)
    np.testing.assert_array_equal(_np(t2.transformer.wte.weight), _np(sd["lm_head.weight"]))
    np.testing.assert_array_equal(j2.transformer.wte.weight, _np(t2.transformer.wte.weight))
    assert j2.transformer.wte.weight is j2.lm_head.weight


def test_tied_gradient_is_the_sum_of_both_uses_and_matches_torch():
    torch.manual_seed(0)
    t = TorchTiedLM()
    j = TiedLM()
    j.load_state_dict(t.state_dict())
    idx = np.array([[1, 2, 3], [4, 5, 9]])
    grads = jmod.grad(_tied_loss)(j, jnp.asarray(idx))
    assert list(grads) == [n for n, _ in t.named_parameters()] == ["wte.weight"]
    torch.nn.functional.cross_entropy(
        t(torch.tensor(idx)).flatten(0, 1), torch.tensor((idx + 1) % 10).flatten()
    ).backward()
    (g,) = grads.values()
    np.testing.assert_allclose(g, _np(t.head.weight.grad), atol=1e-6)

    # the same model untied: the two uses' gradients, which add up to the tied one
    class Untied(TiedLM):
        def __init__(self):
            super().__init__()
            self.wte.weight = nn.Parameter(jnp.array(self.head.weight))

    u = Untied()
    u.wte.weight = j.wte.weight + 0  # same values, own parameter
    u.head.weight = j.head.weight + 0
    ug = jmod.grad(_tied_loss)(u, jnp.asarray(idx))
    np.testing.assert_allclose(g, ug["wte.weight"] + ug["head.weight"], atol=1e-6)
    assert float(jnp.abs(ug["wte.weight"]).max()) > 0 and float(jnp.abs(ug["head.weight"]).max()) > 0


def test_tie_survives_jit_training_deepcopy_pickle_and_save_load(tmp_path):
    j = TiedLM()
    opt = jmod.optim.AdamW(j.parameters(), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 1  # one entry, one update per step

    @jmod.jit
    def step(m, opt, idx):
        loss, grads = jmod.value_and_grad(_tied_loss)(m, idx)
        opt.step(grads)
        return loss

    before = j.head.weight
    for _ in range(3):
        step(j, opt, jnp.array([[1, 2, 3]]))
    assert _is_tied(j) and j.wte.weight is j.head.weight and float(jnp.abs(j.head.weight - before).max()) > 0
    for clone in (copy.deepcopy(j), pickle.loads(pickle.dumps(j))):
        assert _is_tied(clone)
        np.testing.assert_array_equal(clone.wte.weight, j.wte.weight)
        assert clone.wte._parameters["weight"] is not j.wte._parameters["weight"]
    jmod.save(j.state_dict(), tmp_path / "tied.safetensors")
    loaded = jmod.load(tmp_path / "tied.safetensors")
    assert sorted(loaded) == ["head.weight", "wte.weight"]
    fresh = TiedLM()
    fresh.load_state_dict(loaded)
    assert _is_tied(fresh)
    np.testing.assert_array_equal(fresh.head.weight, j.head.weight)
    # the loaded tie trains as one parameter
    opt2 = jmod.optim.SGD(fresh.parameters(), lr=1.0)
    opt2.step(jmod.grad(_tied_loss)(fresh, jnp.array([[1]])))
    assert fresh.wte.weight is fresh.head.weight


def test_tie_spellings_that_tie_like_torch():
    def build(lib, spell):
        N = lib.nn if lib is torch else nn
        m = N.Module()
        m.wte = N.Embedding(5, 3)
        m.lm = N.Linear(3, 5, bias=False)
        if spell == "assign":
            m.lm.weight = m.wte.weight
        elif spell == "setattr":
            setattr(m.wte, "weight", m.lm.weight)
        elif spell == "register_parameter":
            m.lm.register_parameter("weight", m.wte.weight)
        elif spell == "parameter_list":
            m.shared = N.ParameterList([m.wte.weight])
        elif spell == "slot":
            m.lm.weight = m.wte._parameters["weight"]
        return m

    for spell in ("assign", "setattr", "register_parameter", "parameter_list", "slot"):
        t, j = build(torch, spell), build(jmod, spell)
        assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()], spell
        assert list(j.state_dict()) == list(t.state_dict()), spell
        assert len(list(j.parameters())) == len(list(t.parameters())), spell


def test_spellings_that_cannot_tie_raise_and_name_the_fix():
    # torch: nn.Parameter(t) makes a SECOND parameter sharing t's storage (not a copy,
    # not a tie): two entries in parameters(), equal values forever.
    tm = torch.nn.Module()
    tm.wte, tm.lm = torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5, bias=False)
    tm.lm.weight = torch.nn.Parameter(tm.wte.weight)
    assert tm.lm.weight is not tm.wte.weight and tm.lm.weight.data_ptr() == tm.wte.weight.data_ptr()
    assert len(list(tm.parameters())) == 2

    m = nn.Module()
    m.wte, m.lm = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
    with pytest.raises(SharedStorageError, match=r"assign the array itself: `module.weight = other.weight`.*jnp.array"):
        m.lm.weight = nn.Parameter(m.wte.weight)
    with pytest.raises(SharedStorageError):
        m.lm.register_parameter("weight", nn.Parameter(m.wte._parameters["weight"]))
    with pytest.raises(SharedStorageError):
        nn.Embedding.from_pretrained(m.wte.weight)  # torch: shares the source's storage too
    assert m.lm._parameters["weight"] is not m.wte._parameters["weight"]  # nothing was registered
    # torch's `.data` tying has no jmod counterpart: it fails loudly, never copies
    with pytest.raises(AttributeError):
        m.lm.weight.data = m.wte.weight.data

    # what the error suggests: a tie, or an explicit independent copy
    m.lm.weight = m.wte.weight
    assert len(list(m.parameters())) == 1
    m2 = nn.Module()
    m2.wte, m2.lm = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
    m2.lm.weight = nn.Parameter(jnp.array(m2.wte.weight))
    assert len(list(m2.parameters())) == 2
    # re-wrapping a parameter in its own place is allowed (torch's freezing idiom)...
    lin = nn.Linear(2, 2)
    lin.bias = nn.Parameter(lin.bias, requires_grad=False)
    assert [requires_grad(p) for p in lin.parameters()] == [True, False]
    # ...but not one side of a tie: in torch the frozen side would share the trained side's storage
    tied = TiedLM()
    tied.head.weight = nn.Parameter(tied.head.weight, requires_grad=False)
    with pytest.raises(
        SharedStorageError, match=r"'head.weight' was made with nn.Parameter.*'wte.weight'.*requires_grad = False"
    ):
        list(tied.named_parameters())
    tied = TiedLM()
    tied.head._parameters["weight"].requires_grad = False  # what the error suggests: one flag, both uses
    assert list(tied.named_parameters()) and not requires_grad(tied.wte.weight)
    # loading another live model's state_dict(assign=True) takes its values
    other = nn.Linear(2, 2)
    lin.load_state_dict(other.state_dict(), assign=True)
    np.testing.assert_array_equal(lin.weight, other.weight)


# ============================================= frozen parameters, optimizer parameter groups
class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 7)
        self.ln = nn.LayerNorm(7)
        self.fc2 = nn.Linear(7, 3)

    def forward(self, x):
        return self.fc2(jnp.tanh(self.ln(self.fc1(x))))


class TorchSmall(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(5, 7)
        self.ln = torch.nn.LayerNorm(7)
        self.fc2 = torch.nn.Linear(7, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.ln(self.fc1(x))))


def _small_pair():
    torch.manual_seed(0)
    t = TorchSmall()
    with torch.no_grad():  # LayerNorm's constant init would hide per-element differences
        for p in t.ln.parameters():
            p.normal_()
    j = Small()
    j.load_state_dict(t.state_dict())
    return j, t


def _small_loss(m, x, y):
    return ((m(x) - y) ** 2).mean()


def _run_small(jopt_fn, topt_fn, steps=4, jit=False):
    """Train the Small pair side by side; compare every parameter after every step."""
    j, t = _small_pair()
    jopt, topt = jopt_fn(j), topt_fn(t)
    rng = np.random.default_rng(0)

    def jstep(m, opt, x, y):
        opt.step(jmod.grad(_small_loss)(m, x, y))

    step = jmod.jit(jstep) if jit else jstep
    for _ in range(steps):
        x = rng.standard_normal((4, 5)).astype(np.float32)
        y = rng.standard_normal((4, 3)).astype(np.float32)
        topt.zero_grad()
        ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
        step(j, jopt, jnp.asarray(x), jnp.asarray(y))
        for name, p in t.named_parameters():
            np.testing.assert_allclose(j.get_parameter(name), _np(p), rtol=1e-5, atol=1e-6, err_msg=name)
    return j, jopt, topt


TORCH_GROUPS = {
    "SGD": (dict(lr=0.1, momentum=0.5), [dict(weight_decay=0.01, momentum=0.9), dict(lr=0.05, nesterov=True)]),
    "Adam": (dict(lr=0.01), [dict(weight_decay=0.1), dict(betas=(0.8, 0.99), lr=0.02, amsgrad=True)]),
    "AdamW": (dict(lr=0.01, weight_decay=0.3), [dict(), dict(weight_decay=0.0, eps=1e-6)]),
}


@pytest.mark.parametrize("opt_name", sorted(TORCH_GROUPS))
def test_torch_spelled_parameter_groups_match_torch(opt_name):
    defaults, (g0, g1) = TORCH_GROUPS[opt_name]

    def groups(m):  # torch's spelling: lists of arrays from named_parameters()
        decay = [p for n, p in m.named_parameters() if p.ndim >= 2]
        nodecay = [p for n, p in m.named_parameters() if p.ndim < 2]
        return [{"params": decay, **g0}, {"params": nodecay, **g1}]

    _run_small(
        lambda m: getattr(jmod.optim, opt_name)(groups(m), **defaults),
        lambda m: getattr(torch.optim, opt_name)(groups(m), **defaults),
        jit=True,
    )


def test_param_groups_by_predicate_and_by_names_match_torch():
    """jmod's convenience builds the same groups as torch's spelling (the numbers are the optimizer's)."""
    opt_name = "AdamW"
    defaults, (g0, g1) = TORCH_GROUPS[opt_name]

    def torch_groups(m):
        decay = [p for n, p in m.named_parameters() if p.dim() >= 2]
        nodecay = [p for n, p in m.named_parameters() if p.dim() < 2]
        return [{"params": decay, **g0}, {"params": nodecay, **g1}]

    def by_predicate(m):
        # the parameters no group selects come first; give that group g0's options
        rest, small = jmod.optim.param_groups(m, {"where": lambda n, p: p.ndim < 2, **g1})
        return [{**rest, **g0}, small]

    def by_names(m):
        names0, names1 = ["fc1.weight", "fc2.weight"], ["fc1.bias", "ln.weight", "ln.bias", "fc2.bias"]
        return jmod.optim.param_groups(m, {"params": names0, **g0}, {"params": names1, **g1}, rest=False)

    def topt_fn(m):
        return getattr(torch.optim, opt_name)(torch_groups(m), **defaults)

    jcls = getattr(jmod.optim, opt_name)
    _, jopt, _ = _run_small(lambda m: jcls(by_predicate(m), **defaults), topt_fn)
    assert [g["params"] for g in jopt.param_groups] == [
        ["fc1.weight", "fc2.weight"],
        ["fc1.bias", "ln.weight", "ln.bias", "fc2.bias"],
    ]
    _run_small(lambda m: jcls(by_names(m), **defaults), topt_fn, jit=True)


def test_param_groups_validation():
    m = Small()
    with pytest.raises(ValueError, match=r"'fc1.wieght', which is not a parameter"):
        jmod.optim.param_groups(m, {"params": ["fc1.wieght"]})
    with pytest.raises(ValueError, match="did you mean 'fc1.weight'"):
        jmod.optim.param_groups(m, {"params": ["weight"]})  # suffix hint
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        jmod.optim.param_groups(m, {"params": ["fc1.weight"]}, {"params": ["fc1.weight"]})
    with pytest.raises(ValueError, match="exactly one of 'params'"):
        jmod.optim.param_groups(m, {"lr": 0.1})
    with pytest.raises(ValueError, match="exactly one of 'params'"):
        jmod.optim.param_groups(m, {"params": ["fc1.weight"], "where": lambda n, p: True})
    with pytest.raises(TypeError, match="takes the model first"):
        jmod.optim.param_groups(m.parameters(), {"params": ["fc1.weight"]})
    # the first group that selects a parameter takes it; a tied parameter answers to both names
    groups = jmod.optim.param_groups(
        m, {"where": lambda n, p: n.startswith("fc1")}, {"where": lambda n, p: p.ndim == 2}
    )
    assert [[n for n, _ in g["params"]] for g in groups] == [
        ["ln.weight", "ln.bias", "fc2.bias"],
        ["fc1.weight", "fc1.bias"],
        ["fc2.weight"],
    ]
    t = TiedLM()
    (g,) = jmod.optim.param_groups(t, {"params": ["wte.weight"], "lr": 0.5}, rest=False)
    (h,) = jmod.optim.param_groups(t, {"params": ["head.weight"], "lr": 0.5}, rest=False)
    assert g["params"][0][1] is h["params"][0][1] is t.head.weight


def test_frozen_parameters_readable_for_optimizer_grouping():
    j, t = _gpt_pair()
    for m in (j, t):
        m.transformer.wpe.requires_grad_(False)  # Module.requires_grad_: the same spelling
    t.transformer.h[0].ln_1.bias.requires_grad = False
    j.transformer.h[0].ln_1._parameters["bias"].requires_grad = False  # the slot holds the flag
    flags = [(n, requires_grad(p)) for n, p in j.named_parameters()]
    assert flags == [(n, p.requires_grad) for n, p in t.named_parameters()]
    assert requires_grad(j.lm_head.weight) and not requires_grad(j.transformer.wpe.weight)
    assert not requires_grad(j.transformer.h[0].attn.c_attn.weight * 1)  # a computed array is no parameter
    topt = t.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    jopt = j.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    assert j.optim_summary == t.optim_summary == (9, 26624, 17, 896 - 32)
    names = {id(p): n for n, p in t.named_parameters()}
    for jg, tg in zip(jopt.param_groups, topt.param_groups):
        assert jg["params"] == [names[id(p)] for p in tg["params"]]
        assert (jg["weight_decay"], jg["lr"], jg["betas"]) == (tg["weight_decay"], tg["lr"], tg["betas"])


# =========================================================================== GPT parity
@pytest.mark.parametrize("flash", [True, False], ids=["sdpa", "manual_attention"])
def test_gpt_matches_torch_logits_loss_grads_and_adamw_steps_under_jit(flash):
    """nanoGPT's training step: forward, backward, clip_grad_norm_(1.0), AdamW groups, 5 steps.

    Tolerance 1e-5 on logits/loss/parameters; 2e-5 on gradients (float32, 2 layers:
    XLA and torch sum the matmuls in different orders).
    """
    j, t = _gpt_pair(flash)
    if not flash:
        assert "transformer.h.0.attn.bias" in j.state_dict()  # the causal-mask buffer, loaded from torch
        np.testing.assert_array_equal(j.transformer.h[0].attn.bias, _np(t.transformer.h[0].attn.bias))
    for m in (j, t):
        m.transformer.wpe.requires_grad_(False)  # frozen: left out by configure_optimizers
    topt = t.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    jopt = j.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")

    @jmod.jit
    def train_step(model, optimizer, X, Y):
        (loss, logits), grads = jmod.value_and_grad(lambda m: m(X, Y)[::-1], has_aux=True)(model)
        raw = dict(grads)
        total_norm = jmod.nn.utils.clip_grad_norm_(grads, 0.5)
        optimizer.step(grads)
        optimizer.zero_grad(set_to_none=True)
        return loss, logits, raw, grads, total_norm

    rng = np.random.default_rng(0)
    worst = {"logits": 0.0, "grads": 0.0, "params": 0.0}
    for _ in range(5):
        X, Y = rng.integers(0, 64, (2, 16)), rng.integers(0, 64, (2, 16))
        tlogits, tloss = t(torch.tensor(X), torch.tensor(Y))
        tloss.backward()
        traw = {n: p.grad.clone() for n, p in t.named_parameters() if p.grad is not None}
        tnorm = torch.nn.utils.clip_grad_norm_(t.parameters(), 0.5)
        tclipped = {n: p.grad for n, p in t.named_parameters() if p.grad is not None}
        topt.step()
        topt.zero_grad(set_to_none=True)
        loss, logits, raw, clipped, total_norm = train_step(j, jopt, jnp.asarray(X), jnp.asarray(Y))

        assert float(tnorm) > 0.5  # clipping is active
        np.testing.assert_allclose(float(loss), tloss.item(), rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(float(total_norm), float(tnorm), rtol=1e-5)
        np.testing.assert_allclose(logits, _np(tlogits), atol=1e-5)
        worst["logits"] = max(worst["logits"], _max_err(logits, tlogits))
        assert sorted(raw) == sorted(traw) and "transformer.wpe.weight" not in raw
        for name in traw:
            np.testing.assert_allclose(raw[name], _np(traw[name]), atol=2e-5, rtol=1e-4, err_msg=name)
            np.testing.assert_allclose(clipped[name], _np(tclipped[name]), atol=2e-5, rtol=1e-4, err_msg=name)
            worst["grads"] = max(worst["grads"], _max_err(raw[name], traw[name]))
        for name, p in t.named_parameters():
            np.testing.assert_allclose(j.get_parameter(name), _np(p), atol=1e-5, err_msg=name)
            worst["params"] = max(worst["params"], _max_err(j.get_parameter(name), p))
        # the tie survives compiled training; the frozen embedding never moves
        assert j.transformer.wte.weight is j.lm_head.weight
        np.testing.assert_array_equal(j.transformer.wpe.weight, _np(t.transformer.wpe.weight))
    assert train_step.trace_count == 1
    # shown in the session's "torch parity" summary (logits, gradients)
    MAX_ERRORS[f"port: GPT ({'sdpa' if flash else 'manual'})"] = [worst["logits"], worst["grads"]]
    MAX_ERRORS[f"port: GPT ({'sdpa' if flash else 'manual'}), params after 5 steps"] = [worst["params"], 0.0]


def test_gpt_generate_top_k_multinomial_reproducible_per_seed():
    j, t = _gpt_pair()
    j.eval()
    t.eval()
    prompt = np.array([[1, 2, 3], [7, 8, 9]])
    # nanoGPT's generate, compiled whole (the loop unrolls; the global generator is threaded)
    gen = jmod.jit(lambda m, idx: (m.generate(idx, 3, top_k=1), m.generate(idx, 3, temperature=0.8, top_k=5)))
    jmod.manual_seed(7)
    greedy, sampled = gen(j, jnp.asarray(prompt))
    # top_k=1 makes the sampling deterministic: torch's generate gives the same tokens
    np.testing.assert_array_equal(greedy, _np(t.generate(torch.tensor(prompt), 3, top_k=1)))
    np.testing.assert_array_equal(sampled[:, :3], prompt)
    jmod.manual_seed(7)
    np.testing.assert_array_equal(gen(j, jnp.asarray(prompt))[1], sampled)  # same seed, same tokens
    assert not np.array_equal(gen(j, jnp.asarray(prompt))[1], sampled)  # next call: fresh draws
    assert gen.trace_count == 1
    # every sampled token is among torch's top 5 for its prefix
    with torch.no_grad():
        for s in range(3, 6):
            logits, _ = t(torch.tensor(np.asarray(sampled[:, :s])))
            top5 = torch.topk(logits[:, -1, :], 5).indices.numpy()
            assert all(int(sampled[b, s]) in top5[b] for b in range(2))


def test_top_k_multinomial_sampling_distribution():
    """generate's sampling step: jax.lax.top_k + softmax + jmod.multinomial draws softmax over the top k."""
    logits = jnp.array([2.0, 1.0, 0.5, 0.0, -1.0, 3.0])
    v, _ = jax.lax.top_k(logits, 3)
    logits_k = jnp.where(logits < v[-1], -float("Inf"), logits)
    probs = jax.nn.softmax(logits_k, axis=-1)
    n = 20000
    draws = np.asarray(jmod.multinomial(jnp.broadcast_to(probs, (n, 6)), 1)[:, 0])
    counts = np.bincount(draws, minlength=6)
    assert counts[[2, 3, 4]].sum() == 0
    expected = np.asarray(probs)[[0, 1, 5]] * n
    assert _chi2_ok(counts[[0, 1, 5]], expected)


# ======================================================================== ResNet parity
def _resnet_pair(block="BasicBlock", layers=(2, 2, 2, 2), width=8):
    torch.manual_seed(0)
    t = resnet_torch.ResNet(getattr(resnet_torch, block), list(layers), num_classes=10, width=width)
    j = resnet_jmod.ResNet(getattr(resnet_jmod, block), list(layers), num_classes=10, width=width)
    j.load_state_dict(t.state_dict())
    return j, t


def test_resnet18_matches_torch_train_mode_sgd_steps_then_eval():
    """Train mode (BatchNorm batch statistics and running-stat updates), SGD momentum, 5 steps.

    Inputs are 2x3x64x64: at 32x32 layer4 is 1x1 and its BatchNorm normalises 2 numbers
    (output +-1 whatever the input), so gradients are ill-conditioned in both libraries
    and float32 rounding differences grow without bound. Gradient tolerance 1e-4: the
    stem conv's gradient (|g| ~ 2) sums 2*32*32 products through 8 BatchNorms, whose
    float32 summation order differs between XLA and torch's CPU kernels.
    """
    j, t = _resnet_pair()
    topt = torch.optim.SGD(t.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    jopt = jmod.optim.SGD(j.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    F = jmod.nn.functional

    @jmod.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(m):
            out = m(x)
            return F.cross_entropy(out, y), out

        (loss, out), grads = jmod.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.step(grads)
        return loss, out, grads

    rng = np.random.default_rng(0)
    worst = {"logits": 0.0, "grads": 0.0, "params": 0.0, "buffers": 0.0}
    for _ in range(5):
        x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
        y = rng.integers(0, 10, 2)
        tout = t(torch.tensor(x))
        tloss = torch.nn.functional.cross_entropy(tout, torch.tensor(y))
        tloss.backward()
        tgrads = {n: p.grad.clone() for n, p in t.named_parameters()}
        topt.step()
        topt.zero_grad()
        loss, out, grads = train_step(j, jopt, jnp.asarray(x), jnp.asarray(y))
        np.testing.assert_allclose(float(loss), tloss.item(), atol=1e-5)
        np.testing.assert_allclose(out, _np(tout), atol=5e-5)
        worst["logits"] = max(worst["logits"], _max_err(out, tout))
        assert sorted(grads) == sorted(tgrads)  # (a dict returned from jit comes back key-sorted)
        for name, g in tgrads.items():
            np.testing.assert_allclose(grads[name], _np(g), atol=1e-4, rtol=1e-4, err_msg=name)
            worst["grads"] = max(worst["grads"], _max_err(grads[name], g))
        for name, p in t.named_parameters():
            np.testing.assert_allclose(j.get_parameter(name), _np(p), atol=1e-5, err_msg=name)
            worst["params"] = max(worst["params"], _max_err(j.get_parameter(name), p))
        for name, b in t.named_buffers():  # running_mean/var, num_batches_tracked
            np.testing.assert_allclose(j.get_buffer(name), _np(b), atol=1e-5, err_msg=name)
            worst["buffers"] = max(worst["buffers"], _max_err(j.get_buffer(name), b))
    assert int(j.bn1.num_batches_tracked) == 5 and train_step.trace_count == 1
    t.eval()
    j.eval()
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        tout = t(torch.tensor(x))
    out = jmod.jit(lambda m, x: m(x))(j, jnp.asarray(x))
    np.testing.assert_allclose(out, _np(tout), atol=5e-5)
    worst["eval logits"] = _max_err(out, tout)
    MAX_ERRORS["port: ResNet-18 w8 train"] = [worst["logits"], worst["grads"]]
    MAX_ERRORS["port: ResNet-18 w8 params/buffers after 5 steps"] = [max(worst["params"], worst["buffers"]), 0.0]
    MAX_ERRORS["port: ResNet-18 w8 eval"] = [worst["eval logits"], 0.0]


def test_bottleneck_resnet_matches_torch_in_train_mode():
    """The Bottleneck port: train-mode forward (batch statistics, running-stat updates), compiled.

    Its gradients use the same conv/BatchNorm code as BasicBlock's, checked above.
    """
    j, t = _resnet_pair("Bottleneck", (1, 1, 1, 1), width=4)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        tout = t(torch.tensor(x))
    forward = jmod.jit(lambda m, x: m(x))
    out = forward(j, jnp.asarray(x))
    np.testing.assert_allclose(out, _np(tout), atol=5e-5)
    for name, b in t.named_buffers():
        np.testing.assert_allclose(j.get_buffer(name), _np(b), atol=1e-5, err_msg=name)
    assert int(j.layer4[0].bn3.num_batches_tracked) == 1


# ======================================================================== random numbers
def _draws():
    p = jnp.array([0.1, 0.2, 0.3, 0.4])
    return {
        "randn": jmod.randn(2, 8),
        "rand": jmod.rand(16),
        "randint": jmod.randint(0, 10, (16,)),
        "bernoulli": jmod.bernoulli(jnp.full((16,), 0.5)),
        "multinomial_replacement": jmod.multinomial(p, 16, replacement=True),
        "multinomial": jmod.multinomial(jnp.broadcast_to(p, (8, 4)), 3),
    }


def _equal(a, b):
    return {k: bool(np.array_equal(a[k], b[k])) for k in a}


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jmod.jit"])
def test_random_draws_fresh_per_call_reproducible_per_seed(compiled):
    draw = jmod.jit(_draws) if compiled else _draws
    jmod.manual_seed(3)
    first, second = draw(), draw()
    jmod.manual_seed(3)
    again = draw()
    assert all(_equal(first, again).values())
    assert not any(_equal(first, second).values())
    jmod.manual_seed(4)
    assert not any(_equal(first, draw()).values())
    if compiled:
        assert draw.trace_count == 1
    d = first
    assert d["randn"].shape == (2, 8) and d["randn"].dtype == jnp.float32
    assert ((0 <= d["rand"]) & (d["rand"] < 1)).all()
    assert ((0 <= d["randint"]) & (d["randint"] < 10)).all() and jnp.issubdtype(d["randint"].dtype, jnp.integer)
    assert set(np.unique(d["bernoulli"])) <= {0.0, 1.0}
    rows = np.asarray(d["multinomial"])
    assert rows.shape == (8, 3) and all(len(set(r)) == 3 for r in rows)  # without replacement: distinct


def test_random_distributions_match_torch():
    n = 20000
    torch.manual_seed(0)
    _same_distribution(jmod.randn(n), torch.randn(n), "randn")
    _same_distribution(jmod.rand(n), torch.rand(n), "rand")
    counts = np.bincount(np.asarray(jmod.randint(3, 8, (n,))), minlength=8)
    assert counts[:3].sum() == 0 and _chi2_ok(counts[3:], np.full(5, n / 5))
    p = np.array([0.1, 0.6, 0.9], np.float32)
    b = np.asarray(jmod.bernoulli(jnp.broadcast_to(jnp.asarray(p), (n, 3))))
    assert np.all(np.abs(b.mean(0) - p) < 6 * np.sqrt(p * (1 - p) / n))
    probs = np.array([0.5, 0.3, 0.2], np.float32)
    with_repl = np.bincount(np.asarray(jmod.multinomial(jnp.asarray(probs), n, replacement=True)), minlength=3)
    assert _chi2_ok(with_repl, probs * n)
    # Without replacement: ordered pairs (i, j) have torch's sequential probability
    # p_i * p_j / (1 - p_i); checked against the formula and torch's own draws.
    pairs_j = np.asarray(jmod.multinomial(jnp.broadcast_to(jnp.asarray(probs), (n, 3)), 2))
    pairs_t = torch.multinomial(torch.tensor(probs).expand(n, 3), 2).numpy()
    expected = {(i, k): probs[i] * probs[k] / (1 - probs[i]) for i in range(3) for k in range(3) if i != k}
    for pairs in (pairs_j, pairs_t):
        observed = [int(np.sum((pairs[:, 0] == i) & (pairs[:, 1] == k))) for i, k in expected]
        assert _chi2_ok(observed, np.array(list(expected.values())) * n)


# =================================================================== jmod.nn.utils
def _small_grads():
    j, t = _small_pair()
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    y = np.zeros((4, 3), np.float32)
    grads = jmod.grad(_small_loss)(j, jnp.asarray(x), jnp.asarray(y))

    def torch_grads():
        t.zero_grad()
        ((t(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        return t

    return grads, torch_grads


@pytest.mark.parametrize("norm_type", [2.0, 1.0, "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.05, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    base, torch_grads = _small_grads()
    grads = dict(base)
    total = jmod.nn.utils.clip_grad_norm_(grads, max_norm, norm_type=norm_type)
    t = torch_grads()
    ttotal = torch.nn.utils.clip_grad_norm_(t.parameters(), max_norm, norm_type=norm_type)
    np.testing.assert_allclose(float(total), float(ttotal), rtol=1e-5)
    assert total.shape == () and list(grads) == list(base)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(grads[name], _np(p.grad), rtol=1e-5, atol=1e-7, err_msg=name)
    # the two halves torch exposes give the same result
    again = dict(base)
    norm = jmod.nn.utils.get_total_norm(again, norm_type)
    jmod.nn.utils.clip_grads_with_norm_(again, max_norm, norm)
    np.testing.assert_allclose(float(norm), float(ttotal), rtol=1e-5)
    for name in grads:
        np.testing.assert_allclose(again[name], grads[name], rtol=1e-6)


def test_clip_grad_value_and_containers():
    base, torch_grads = _small_grads()
    grads = dict(base)
    assert jmod.nn.utils.clip_grad_value_(grads, 0.05) is None
    t = torch_grads()
    torch.nn.utils.clip_grad_value_(t.parameters(), 0.05)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(grads[name], _np(p.grad), rtol=1e-5, atol=1e-7, err_msg=name)
        assert float(jnp.abs(grads[name]).max()) <= np.float32(0.05)
    assert any(float(jnp.abs(g).max()) > 0.05 for g in base.values())  # something was clipped
    # lists, nested containers and None entries (torch skips parameters without .grad)
    nested = {"a": [jnp.array([3.0, 4.0]), None], "b": {"c": jnp.array([12.0])}, "d": None}
    total = jmod.nn.utils.clip_grad_norm_(nested, 1.0)
    assert float(total) == 13.0 and nested["d"] is None and nested["a"][1] is None
    np.testing.assert_allclose(nested["a"][0], np.array([3.0, 4.0]) / (13 + 1e-6), rtol=1e-6)
    as_list = [jnp.array([-2.0, 0.5])]
    jmod.nn.utils.clip_grad_value_(as_list, 1.0)
    np.testing.assert_array_equal(as_list[0], [-1.0, 0.5])
    with pytest.warns(FutureWarning, match="clip_grad_norm_"):
        jmod.nn.utils.clip_grad_norm({"a": jnp.ones(2)}, 1.0)


def test_clip_grad_errors_say_what_to_pass():
    model = Small()
    with pytest.raises(TypeError, match=r"no p.grad.*jmod.value_and_grad"):
        jmod.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    with pytest.raises(TypeError, match="no p.grad"):
        jmod.nn.utils.clip_grad_value_(model, 1.0)
    with pytest.raises(TypeError, match="single jax.Array cannot be changed"):
        jmod.nn.utils.clip_grad_norm_(jnp.ones(3), 1.0)
    with pytest.raises(TypeError, match="needs a dict or a list"):
        jmod.nn.utils.clip_grad_norm_((jnp.ones(3),), 1.0)
    # torch's own behaviour for an empty generator: a warning and a zero norm
    with pytest.warns(UserWarning, match="empty generator, no gradient clipping will occur"):
        total = jmod.nn.utils.clip_grad_norm_((g for g in []), 1.0)
    assert float(total) == 0.0
    # error_if_nonfinite: torch's message, eagerly and when the compiled step runs
    bad = {"w": jnp.array([1.0, jnp.inf])}
    with pytest.raises(RuntimeError) as torch_err:
        _raise_torch_nonfinite()
    with pytest.raises(RuntimeError, match=re.escape(str(torch_err.value))):
        jmod.nn.utils.clip_grad_norm_(dict(bad), 1.0, error_if_nonfinite=True)
    compiled = jmod.jit(lambda g: jmod.nn.utils.clip_grad_norm_(g, 1.0, error_if_nonfinite=True))
    assert float(compiled({"w": jnp.array([3.0, 4.0])})) == 5.0
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        jax.block_until_ready(compiled(bad))


def _raise_torch_nonfinite():
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.tensor([1.0, float("inf")])
    torch.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_parameters_to_vector_and_back_like_torch():
    j, t = _gpt_pair()
    vec = jmod.nn.utils.parameters_to_vector(j.parameters())
    tvec = torch.nn.utils.parameters_to_vector(t.parameters())
    np.testing.assert_array_equal(vec, _np(tvec))  # tied weight once, same order
    new = vec * 0.5 + 1.0
    jmod.nn.utils.vector_to_parameters(new, j.parameters())
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(tvec * 0.5 + 1.0, t.parameters())
    for name, p in t.named_parameters():
        np.testing.assert_allclose(j.get_parameter(name), _np(p), rtol=1e-6, err_msg=name)
    assert j.transformer.wte.weight is j.lm_head.weight  # written through the tie
    # the model itself works too, and so does compiled code
    jmod.nn.utils.vector_to_parameters(vec, j)
    np.testing.assert_array_equal(jmod.nn.utils.parameters_to_vector(j.parameters()), vec)
    small = Small()
    flat = jmod.nn.utils.parameters_to_vector(small.parameters())

    @jmod.jit
    def set_flat(m, v):
        jmod.nn.utils.vector_to_parameters(v, m.parameters())

    set_flat(small, flat * 2)
    np.testing.assert_allclose(jmod.nn.utils.parameters_to_vector(small.parameters()), flat * 2)
    # gradients flatten the same way (grads are keyed like named_parameters)
    grads = jmod.grad(_small_loss)(small, jnp.ones((2, 5)), jnp.zeros((2, 3)))
    assert jmod.nn.utils.parameters_to_vector(grads.values()).shape == flat.shape


def test_vector_to_parameters_errors():
    m = Small()
    stale = list(m.parameters())
    n = jmod.nn.utils.parameters_to_vector(stale).shape[0]
    with pytest.raises(TypeError, match=re.escape("expected torch.Tensor, but got: list")):
        jmod.nn.utils.vector_to_parameters([0.0] * n, m.parameters())
    # a vector too short for the last parameter: torch's error; torch has already
    # written the weight by then, jmod writes nothing unless every slice fits
    with pytest.raises(RuntimeError) as torch_err:
        torch.nn.utils.vector_to_parameters(torch.ones(5), torch.nn.Linear(2, 2).parameters())
    tiny = nn.Linear(2, 2)
    before = np.asarray(tiny.weight)
    with pytest.raises(RuntimeError, match=re.escape(str(torch_err.value))):
        jmod.nn.utils.vector_to_parameters(jnp.ones(5), tiny.parameters())
    np.testing.assert_array_equal(tiny.weight, before)
    jmod.nn.utils.vector_to_parameters(jnp.zeros(n), m.parameters())
    with pytest.raises(TypeError, match="read before the parameters were last updated"):
        jmod.nn.utils.vector_to_parameters(jnp.zeros(n), stale)
    with pytest.raises(ValueError, match=re.escape("torch.cat(): expected a non-empty list of Tensors")):
        jmod.nn.utils.parameters_to_vector([])


# ===================================================================== port statistics
def test_port_line_counts_and_kinds():
    """The numbers docs/porting.md quotes: how many lines each port touched, and why."""
    gpt, resnet = port_stats.port_stats("gpt"), port_stats.port_stats("resnet")
    assert gpt.unclassified == [] and resnet.unclassified == []
    assert (gpt.torch_lines, gpt.changed, gpt.removed, gpt.added) == (195, 31, 2, 0)
    assert (resnet.torch_lines, resnet.changed, resnet.removed, resnet.added) == (217, 1, 0, 0)
    assert gpt.kinds == {
        "tensor method -> jax.numpy (view, transpose, size, split, numel, dim, contiguous, flatten)": 18,
        port_stats.NAMESPACE: 8,
        "torch function -> jnp / jax.lax (tril, ones, arange, cat, topk)": 4,
        "masking -> jnp.where (masked_fill, in-place index assignment)": 2,
        "device plumbing dropped (.device of a traced array)": 2,
        "torch.long -> jnp.int32": 1,
        "requires_grad -> jmod.nn.parameter.requires_grad(p)": 1,
        "autograd context dropped (@torch.no_grad)": 1,
    }
    docs = (port_stats.HERE.parent.parent / "docs" / "porting.md").read_text()
    assert "33 of 195" in docs and "1 of 217" in docs
