"""Lazy modules against torch: LazyLinear, LazyConv1d/2d/3d, LazyConvTranspose1d/2d/3d,
LazyBatchNorm1d/2d/3d, LazyInstanceNorm1d/2d/3d (``torch/nn/modules/lazy.py``).

For each class: the uninitialized module (repr, state_dict, loading state dicts in both
states, torch's error texts), the first call (the module becomes ``cls_to_become``
with torch's shapes and repr), and, with torch's weights loaded, the same outputs and
gradients; the first call also inside ``model.compile()`` and in a ``Sequential``.
"""

import copy
import pickle

import jax
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from tests.helpers import assert_close, assert_matches_torch

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(0)

SHAPE_ERROR = (
    "Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
    "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call `forward` "
    "to initialize the parameters before accessing their attributes."
)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# name -> (constructor args, constructor kwargs, input shape)
CASES = {
    "LazyLinear": ((3,), {}, (4, 5)),
    "LazyLinear-nobias": ((3,), {"bias": False}, (2, 3, 5)),
    "LazyConv1d": ((4, 3), {"padding": 1}, (2, 3, 8)),
    "LazyConv2d": ((4, 3), {"stride": 2, "groups": 2}, (2, 4, 7, 7)),
    "LazyConv2d-unbatched": ((4, (2, 3)), {"bias": False}, (3, 6, 6)),
    "LazyConv3d": ((2, 2), {"dilation": 2}, (1, 2, 5, 5, 5)),
    "LazyConvTranspose1d": ((4, 3), {"stride": 2, "output_padding": 1}, (2, 3, 6)),
    "LazyConvTranspose2d": ((4, 3), {"groups": 2}, (2, 4, 5, 5)),
    "LazyConvTranspose3d": ((2, 2), {"padding": 1}, (1, 3, 4, 4, 4)),
    "LazyBatchNorm1d": ((), {}, (6, 3)),
    "LazyBatchNorm2d": ((), {"momentum": None}, (2, 3, 4, 4)),
    "LazyBatchNorm3d": ((), {"affine": False}, (2, 3, 3, 3, 3)),
    "LazyInstanceNorm1d": ((), {}, (2, 3, 6)),
    "LazyInstanceNorm2d": ((), {"track_running_stats": False}, (2, 3, 5, 5)),
    "LazyInstanceNorm3d": ((), {"affine": False}, (2, 3, 3, 3, 3)),
}


def _pair(case):
    args, kwargs, shape = CASES[case]
    cls = case.split("-")[0]
    return getattr(nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs), shape


@pytest.mark.parametrize("case", list(CASES))
def test_first_call_becomes_the_eager_class_and_matches_torch(case):
    j, t, shape = _pair(case)
    assert repr(j) == repr(t)
    assert j.has_uninitialized_params() and t.has_uninitialized_params()
    x = _x(*shape)
    target = type(t).cls_to_become
    yj, yt = j(x), t(torch.from_numpy(x))
    assert type(j).__name__ == type(t).__name__ == target.__name__
    assert type(j) is getattr(nn, type(t).__name__)
    assert not any(nn.parameter.is_lazy(v) for v in j.state_dict().values())
    assert repr(j) == repr(t)
    assert yj.shape == tuple(yt.shape)
    sj, st = j.state_dict(), t.state_dict()
    assert list(sj) == list(st)
    assert [tuple(v.shape) for v in sj.values()] == [tuple(v.shape) for v in st.values()]
    assert not j._forward_pre_hooks and not j._load_state_dict_pre_hooks
    # The norms' initial state is deterministic: the first call's statistics match as is.
    if "Norm" in case:
        for k in st:
            assert_close(sj[k], st[k].detach().numpy(), atol=1e-6, rtol=1e-5, what=f"{case} {k} after the first call")
    assert_matches_torch(j, t, x, train=True)


@pytest.mark.parametrize("case", list(CASES))
def test_loading_torchs_weights_into_an_uninitialized_module(case):
    """torch's _lazy_load_hook: the load materializes with the loaded shapes; the module
    stays lazy until its first call, which keeps the loaded values."""
    j, t, shape = _pair(case)
    x = _x(*shape)
    t(torch.from_numpy(x))
    assert j.load_state_dict(t.state_dict()) is not None
    assert not j.has_uninitialized_params()
    assert type(j).__name__ == case.split("-")[0]  # not converted before the first call
    if "InstanceNorm" in case and CASES[case][1].get("affine", True):
        # torch's quirk, kept: the load leaves num_features at 0, which InstanceNorm's
        # forward then rejects
        t2 = _pair(case)[1]
        t2.load_state_dict(t.state_dict())
        with pytest.raises(ValueError) as ej:
            j(x)
        with pytest.raises(ValueError) as et:
            t2(torch.from_numpy(x))
        assert str(ej.value) == str(et.value)
        return
    assert_matches_torch(j, t, x, train=False, load_weights=False, check_jit=False)
    assert type(j).__name__ == type(t).__name__


@pytest.mark.parametrize("case", ["LazyLinear", "LazyConv2d", "LazyConvTranspose1d", "LazyBatchNorm2d"])
def test_uninitialized_state_dict_as_torch(case):
    j, t, shape = _pair(case)
    sj, st = j.state_dict(), t.state_dict()
    assert list(sj) == list(st)
    lazy = [k for k, v in st.items() if torch.nn.parameter.is_lazy(v)]
    assert lazy == [k for k, v in sj.items() if nn.parameter.is_lazy(v)]
    assert [repr(sj[k]) for k in lazy] == [repr(st[k]) for k in lazy]
    assert [type(sj[k]).__name__ for k in lazy] == [type(st[k]).__name__ for k in lazy]
    # uninitialized into uninitialized (jmod's own and torch's state dicts): nothing changes
    j2 = _pair(case)[0]
    assert str(j2.load_state_dict(sj)) == "<All keys matched successfully>"
    assert str(j2.load_state_dict(st)) == "<All keys matched successfully>"
    assert j2.has_uninitialized_params()
    # uninitialized into initialized: torch's error
    x = _x(*shape)
    j2(x)
    t2 = _pair(case)[1]
    t2(torch.from_numpy(x))
    with pytest.raises(RuntimeError) as ej:
        j2.load_state_dict(sj)
    with pytest.raises(RuntimeError) as et:
        t2.load_state_dict(st)
    assert str(ej.value) == str(et.value) == SHAPE_ERROR


def test_errors_use_torchs_messages():
    j, t = nn.LazyLinear(3), torch.nn.LazyLinear(3)
    for getter in (lambda m: m.weight.shape, lambda m: m.weight.share_memory_()):
        with pytest.raises(RuntimeError) as ej:
            getter(j)
        with pytest.raises(RuntimeError) as et:
            getter(t)
        assert str(ej.value) == str(et.value)
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter in .*When using LazyModules"):
        j.weight + 1
    with pytest.raises(NotImplementedError) as ej:
        nn.modules.lazy.LazyModuleMixin.initialize_parameters(j)
    with pytest.raises(NotImplementedError) as et:
        torch.nn.modules.lazy.LazyModuleMixin.initialize_parameters(t)
    assert str(ej.value) == str(et.value)
    # a second input with another in_features, after a load (torch's AssertionError)
    j2, t2 = nn.LazyLinear(3), torch.nn.LazyLinear(3)
    j2.load_state_dict(torch.nn.Linear(4, 3).state_dict())
    t2.load_state_dict(torch.nn.Linear(4, 3).state_dict())
    with pytest.raises(AssertionError) as ej:
        j2(_x(2, 5))
    with pytest.raises(AssertionError) as et:
        t2(torch.ones(2, 5))
    assert str(ej.value) == str(et.value)
    with pytest.raises(ValueError) as ej:
        nn.LazyConv2d(4, 3, groups=2)(_x(1, 3, 5, 5))
    with pytest.raises(ValueError) as et:
        torch.nn.LazyConv2d(4, 3, groups=2)(torch.ones(1, 3, 5, 5))
    assert str(ej.value) == str(et.value)
    with pytest.raises(RuntimeError) as ej:
        nn.LazyConv2d(4, 3)(_x(3, 5))
    with pytest.raises(RuntimeError) as et:
        torch.nn.LazyConv2d(4, 3)(torch.ones(3, 5))
    assert str(ej.value) == str(et.value)


def test_uninitialized_parameter_and_buffer_as_torch():
    j, t = nn.UninitializedParameter(), torch.nn.UninitializedParameter()
    assert repr(j) == repr(t)
    j.materialize((2, 3))
    t.materialize((2, 3))
    assert tuple(j.shape) == tuple(t.shape) == (2, 3)
    assert repr(nn.UninitializedBuffer()) == repr(torch.nn.UninitializedBuffer())
    # A buffer is a plain array in jmod: materialize() replaces the placeholder in the
    # modules holding it (torch turns the object itself into a tensor).
    mj, mt = nn.Module(), torch.nn.Module()
    mj.b = nn.UninitializedBuffer()
    mt.b = torch.nn.UninitializedBuffer()
    mj.b.materialize((4,))
    mt.b.materialize((4,))
    assert tuple(mj.b.shape) == tuple(mt.b.shape) == (4,)
    p = nn.UninitializedParameter(requires_grad=False)
    assert not p.requires_grad
    p.materialize((4,))
    assert type(p) is nn.Parameter and not p.requires_grad


@pytest.mark.parametrize("case", list(CASES))
def test_first_call_inside_compile(case):
    j, t, shape = _pair(case)
    x = _x(*shape)
    t(torch.from_numpy(x))
    j.compile()
    y = j(x)
    assert type(j).__name__ == type(t).__name__
    assert y.shape == t(torch.from_numpy(x)).shape
    for v in j.state_dict().values():
        assert isinstance(v, jax.Array) and not isinstance(v, jax.core.Tracer)
    assert_matches_torch(j, t, x, train=True, check_jit=False)


def test_sequential_of_lazy_modules_matches_torch():
    def build(lib):
        # No gradient that is zero up to rounding (a ReLU kink, a bias just before a
        # train-mode BatchNorm): those differ by float noise.
        return lib.Sequential(lib.LazyLinear(6), lib.Tanh(), lib.LazyBatchNorm1d(), lib.LazyLinear(4))

    torch.manual_seed(0)
    j, t = build(nn), build(torch.nn)
    assert repr(j) == repr(t)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    with torch.no_grad():
        t(torch.from_numpy(x))
    jmod.jit(lambda m, x: m(x))(j, x)  # the first call inside jmod.jit
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, x, train=True, check_jit=False)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("case", ["LazyLinear", "LazyBatchNorm1d"])
def test_copies_of_an_uninitialized_module(how, case):
    j, t, shape = _pair(case)
    if how == "deepcopy" and case == "LazyBatchNorm1d":
        # torch cannot deepcopy an UninitializedBuffer (jmod can: see tests/nn/modules/test_lazy.py)
        t = torch.nn.LazyBatchNorm1d()
        with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
            copy.deepcopy(t)
        t = pickle.loads(pickle.dumps(t))  # a copy torch can make
        j = copy.deepcopy(j)
        j(_x(*shape))  # the copy works
        return
    copy_ = copy.deepcopy if how == "deepcopy" else lambda m: pickle.loads(pickle.dumps(m))
    j2, t2 = copy_(j), copy_(t)
    assert type(j2) is type(j) and j2.has_uninitialized_params() and repr(j2) == repr(t2)
    x = _x(*shape)
    j2(x)
    t2(torch.from_numpy(x))
    assert j.has_uninitialized_params() and t.has_uninitialized_params()  # the original is untouched
    assert type(j2).__name__ == type(t2).__name__ == case[4:]
    assert_matches_torch(j2, t2, x, train=True, check_jit=False)


@pytest.mark.parametrize("case", ["LazyLinear", "LazyConvTranspose2d", "LazyInstanceNorm1d"])
def test_initialize_parameters_explicitly(case):
    j, t, shape = _pair(case)
    x = _x(*shape)
    j.initialize_parameters(x)
    t.initialize_parameters(torch.from_numpy(x))
    assert not j.has_uninitialized_params() and not t.has_uninitialized_params()
    assert type(j).__name__ == type(t).__name__ == case  # still lazy until called
    assert [tuple(v.shape) for v in j.state_dict().values()] == [tuple(v.shape) for v in t.state_dict().values()]
    assert_matches_torch(j, t, x, train=True, check_jit=False)
