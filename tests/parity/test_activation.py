"""Activation layers and functionals against torch: values, gradients (also at the kinks
and for extreme inputs), reprs, the implicit softmax dim, and error messages."""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jmod
import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._helpers_layers_a import assert_same_signature, jmod_fn, same_error, torch_fn

pytestmark = pytest.mark.torch

# Every kink of every activation (0, ±0.5, ±1, ±3, 6, 2.5 = softplus threshold/beta
# below), extreme values (overflow of exp in softplus/elu/sigmoid) and random values.
_EDGES = [-1e4, -100.0, -20.0, -3.5, -3.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.5, 3.0, 3.5, 6.0, 20.0, 100.0]
X = np.concatenate(
    [np.array([_EDGES], np.float32), np.random.default_rng(0).standard_normal((2, len(_EDGES))).astype(np.float32) * 3]
)

ELEMENTWISE = [
    ("ReLU", {}),
    ("ReLU", {"inplace": True}),
    ("ReLU6", {}),
    ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.2, "inplace": True}),
    ("ELU", {}),
    ("ELU", {"alpha": 0.5}),
    ("SELU", {}),
    ("CELU", {"alpha": 2.0}),
    ("GELU", {}),
    ("GELU", {"approximate": "tanh"}),
    ("SiLU", {}),
    ("Mish", {}),
    ("Sigmoid", {}),
    ("Tanh", {}),
    ("Hardtanh", {}),
    ("Hardtanh", {"min_val": -3.0, "max_val": 0.5}),
    ("Hardswish", {}),
    ("Hardsigmoid", {}),
    ("Softplus", {}),
    ("Softplus", {"beta": 2.0, "threshold": 5.0}),
    ("Softsign", {}),
    ("Threshold", {"threshold": 0.5, "value": -2.0}),
    ("LogSigmoid", {}),
    ("Tanhshrink", {}),
    ("Softshrink", {}),
    ("Softshrink", {"lambd": 1.0}),
    ("Hardshrink", {}),
    ("Hardshrink", {"lambd": 3.0}),
    ("PReLU", {}),
]


@pytest.mark.parametrize("name,kwargs", ELEMENTWISE, ids=[f"{n}-{k}" for n, k in ELEMENTWISE])
def test_elementwise_matches_torch(name, kwargs):
    j = getattr(nn, name)(**kwargs)
    assert repr(j) == repr(getattr(torch.nn, name)(**kwargs))
    # torch's in-place ops refuse a leaf that requires grad; jmod's inplace=True is
    # the out-of-place op, so compare it with torch's out-of-place layer.
    t = getattr(torch.nn, name)(**{k: v for k, v in kwargs.items() if k != "inplace"})
    assert_matches_torch(j, t, X, check_jit=(name, kwargs) in _JIT_CHECKED)


# Compiled checks for the layers whose code has tracing-relevant structure (masked
# branches, custom derivatives, parameters); the rest are plain jnp expressions.
_JIT_CHECKED = [
    ("ReLU", {}),
    ("ELU", {}),
    ("GELU", {}),
    ("Hardtanh", {"min_val": -3.0, "max_val": 0.5}),
    ("Hardswish", {}),
    ("Softplus", {"beta": 2.0, "threshold": 5.0}),
    ("Softsign", {}),
    ("Threshold", {"threshold": 0.5, "value": -2.0}),
    ("PReLU", {}),
]


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("ReLU", {}),
        ("ReLU6", {"inplace": True}),
        ("LeakyReLU", {"negative_slope": 0.3}),
        ("ELU", {"alpha": 0.1, "inplace": True}),
        ("CELU", {"alpha": 1.5}),
        ("SELU", {"inplace": True}),
        ("GELU", {"approximate": "none"}),
        ("SiLU", {"inplace": True}),
        ("Mish", {"inplace": True}),
        ("Hardswish", {"inplace": True}),
        ("Hardsigmoid", {"inplace": True}),
        ("Hardtanh", {"min_val": -2, "max_val": 3, "inplace": True}),
        ("Softplus", {"beta": 0.5, "threshold": 10}),
        ("Threshold", {"threshold": 0.1, "value": 20, "inplace": True}),
        ("Softshrink", {"lambd": 0.25}),
        ("Hardshrink", {"lambd": 2}),
        ("RReLU", {}),
        ("RReLU", {"lower": 0.1, "upper": 0.3, "inplace": True}),
        ("PReLU", {"num_parameters": 3, "init": 0.1}),
        ("GLU", {"dim": 1}),
        ("Softmax", {"dim": 1}),
        ("Softmax", {}),
        ("Softmin", {"dim": -1}),
        ("LogSoftmax", {"dim": 0}),
        ("Softmax2d", {}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("Softsign", {}),
        ("Tanhshrink", {}),
        ("LogSigmoid", {}),
    ],
)
def test_repr_matches_torch(name, kwargs):
    assert repr(getattr(nn, name)(**kwargs)) == repr(getattr(torch.nn, name)(**kwargs))


def test_relu6_is_hardtanh_and_hardtanh_deprecated_kwargs():
    assert isinstance(nn.ReLU6(), nn.Hardtanh)
    with pytest.warns(FutureWarning, match="`min_value` is deprecated"):
        m = nn.Hardtanh(min_value=-2.0)
    assert m.min_val == -2.0
    with pytest.warns(FutureWarning, match="`max_value` is deprecated"):
        m = nn.Hardtanh(max_value=2.0)
    assert m.max_val == 2.0


@pytest.mark.parametrize("shape,num_parameters", [((5,), 1), ((4, 3), 3), ((2, 3, 4, 5), 3), ((), 1)])
def test_prelu_matches_torch(shape, num_parameters):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    t = torch.nn.PReLU(num_parameters, init=0.1)
    with torch.no_grad():
        t.weight.copy_(torch.linspace(-0.5, 0.5, num_parameters))
    j = nn.PReLU(num_parameters, init=0.1)
    assert j.weight.shape == (num_parameters,) and list(j.state_dict()) == ["weight"]
    assert_matches_torch(j, t, x)


def test_prelu_errors_match_torch():
    x, w = np.ones((3, 4), np.float32), np.ones(3, np.float32)
    same_error(lambda: F.prelu(jnp.asarray(x), jnp.asarray(w)), lambda: TF.prelu(torch.tensor(x), torch.tensor(w)))
    same_error(lambda: F.prelu(jnp.ones(()), jnp.ones(3)), lambda: TF.prelu(torch.ones(()), torch.ones(3)))
    same_error(lambda: F.prelu(jnp.ones(4), jnp.ones(4)), lambda: TF.prelu(torch.ones(4), torch.ones(4)))
    same_error(
        lambda: F.prelu(jnp.ones((3, 4)), jnp.ones((4, 1))), lambda: TF.prelu(torch.ones(3, 4), torch.ones(4, 1))
    )


@pytest.mark.parametrize("shape,dim", [((4, 6), -1), ((4, 6), 1), ((6, 3), 0), ((2, 4, 3), 1)])
def test_glu_matches_torch(shape, dim):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    assert_matches_torch(nn.GLU(dim), torch.nn.GLU(dim), x)


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax", "Softmin"])
@pytest.mark.parametrize("dim", [0, -1])
def test_softmax_family_matches_torch(name, dim):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32) * 3
    x[0, 0, :] = [1e4, -1e4, 0.0, 50.0, 1e4]  # stability: large logits
    assert_matches_torch(getattr(nn, name)(dim), getattr(torch.nn, name)(dim), x, check_jit=dim == -1)


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5)])
def test_softmax2d_matches_torch(shape):
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    assert_matches_torch(nn.Softmax2d(), torch.nn.Softmax2d(), x)


def test_softmax2d_rejects_other_ranks():
    same_error(lambda: nn.Softmax2d()(jnp.ones((2, 3))), lambda: torch.nn.Softmax2d()(torch.ones(2, 3)))


@pytest.mark.parametrize("fn", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4), (2, 3, 2, 2)])
def test_softmax_implicit_dim_warns_and_picks_torchs_dim(fn, shape):
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = getattr(TF, fn)(torch.tensor(x)).numpy()
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {fn} has been deprecated"):
        got = getattr(F, fn)(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


def test_softmax_module_without_dim_warns():
    x = np.random.default_rng(6).standard_normal((2, 3, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.nn.Softmax()(torch.tensor(x)).numpy()
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        got = nn.Softmax()(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


def test_softmax_dtype_and_zero_dim():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    got = F.softmax(jnp.asarray(x), dim=0, dtype=jnp.float16)
    assert got.dtype == jnp.float16
    got = F.log_softmax(jnp.asarray(x), dim=0, dtype=torch.float32)  # torch dtypes are accepted
    np.testing.assert_allclose(np.asarray(got), TF.log_softmax(torch.tensor(x), 0).numpy(), rtol=1e-6)
    assert float(F.softmax(jnp.asarray(2.0), dim=0)) == 1.0
    assert float(F.softmax(jnp.asarray(2.0), dim=-1)) == 1.0
    same_error(lambda: F.softmax(jnp.asarray(2.0), dim=1), lambda: TF.softmax(torch.tensor(2.0), dim=1))
    same_error(lambda: F.softmax(jnp.ones((3, 4)), dim=2), lambda: TF.softmax(torch.ones(3, 4), dim=2))
    same_error(lambda: F.log_softmax(jnp.ones((3, 4)), dim=-3), lambda: TF.log_softmax(torch.ones(3, 4), dim=-3))


@pytest.mark.parametrize(
    "p,dim", [(p, 1) for p in (2.0, 1.0, 3.0, 0.5, math.inf, -math.inf, 0.0)] + [(2.0, 0), (math.inf, 0)]
)
def test_normalize_matches_torch(p, dim):
    # One compiled check per p; the dims only change a static axis.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    x[0] = 0.0  # a zero row: torch's gradient is finite (1/eps), not NaN
    x[1, 2] = 0.0
    x[2, :2] = [3.0, -3.0]  # ties for p=inf
    x[2, 2:] = 1.0
    x[:, 4] = 0.0  # a zero column for dim=0
    assert_matches_torch(
        jmod_fn(F.normalize, p=p, dim=dim),
        torch_fn(TF.normalize, p=p, dim=dim),
        x,
        check_jit=dim == 1 and p in (2.0, math.inf, 0.5),
    )


def test_normalize_eps_and_errors():
    x = np.array([[1e-8, 0.0], [3.0, 4.0]], np.float32)
    np.testing.assert_allclose(
        np.asarray(F.normalize(jnp.asarray(x), eps=1e-3)), TF.normalize(torch.tensor(x), eps=1e-3).numpy(), rtol=1e-6
    )
    same_error(lambda: F.normalize(jnp.ones(3)), lambda: TF.normalize(torch.ones(3)))
    np.testing.assert_allclose(np.asarray(F.normalize(jnp.array([3.0, 4.0]), dim=0)), [0.6, 0.8], rtol=1e-6)
    with pytest.raises(TypeError, match="out="):
        F.normalize(jnp.ones((2, 2)), out=jnp.ones((2, 2)))


def test_integer_inputs_keep_torchs_dtype():
    xi = np.array([-3, -1, 0, 2, 9], np.int64)
    for jf, tf in [
        (F.relu, TF.relu),
        (F.relu6, TF.relu6),
        (F.hardtanh, TF.hardtanh),
        (lambda x: F.threshold(x, 1.5, 5.5), lambda x: TF.threshold(x, 1.5, 5.5)),
    ]:
        got, exp = jf(jnp.asarray(xi)), tf(torch.tensor(xi))
        assert jnp.issubdtype(got.dtype, jnp.integer)
        np.testing.assert_array_equal(np.asarray(got), exp.numpy())
    for jf, tf in [(F.sigmoid, torch.sigmoid), (F.tanhshrink, TF.tanhshrink), (F.softsign, TF.softsign)]:
        np.testing.assert_allclose(np.asarray(jf(jnp.asarray(xi))), tf(torch.tensor(xi)).numpy(), rtol=1e-6)


def test_activation_argument_errors_match_torch():
    x = torch.randn(3, 4)
    jx = jnp.asarray(x.numpy())
    same_error(lambda: F.gelu(jx, approximate="foo"), lambda: TF.gelu(x, approximate="foo"))
    same_error(lambda: nn.GELU("foo")(jx), lambda: torch.nn.GELU("foo")(x))
    same_error(lambda: F.celu(jx, alpha=0.0), lambda: TF.celu(x, alpha=0.0))
    same_error(lambda: F.softshrink(jx, -1.0), lambda: TF.softshrink(x, -1.0))
    same_error(lambda: F.softshrink(jx, -0.5), lambda: TF.softshrink(x, -0.5))
    same_error(lambda: F.hardtanh(jx, 2.0, 1.0), lambda: TF.hardtanh(x, 2.0, 1.0))
    same_error(lambda: nn.Hardtanh(2.0, 1.0), lambda: torch.nn.Hardtanh(2.0, 1.0))
    same_error(lambda: nn.Hardtanh(1.0, 1.0), lambda: torch.nn.Hardtanh(1.0, 1.0))
    same_error(lambda: F.glu(jnp.ones((3, 5))), lambda: TF.glu(torch.ones(3, 5)))
    same_error(lambda: F.glu(jnp.ones(())), lambda: TF.glu(torch.ones(())))
    same_error(lambda: F.glu(jnp.ones((3, 4)), dim=2), lambda: TF.glu(torch.ones(3, 4), dim=2))
    with pytest.raises(NotImplementedError, match="softmax_lastdim_kernel_impl"):
        F.softmax(jnp.array([1, 2]), dim=0)  # torch: not implemented for integer inputs either
    # hardshrink accepts a negative lambda (the identity), as torch
    np.testing.assert_array_equal(np.asarray(F.hardshrink(jx, -1.0)), TF.hardshrink(x, -1.0).numpy())


@pytest.mark.parametrize("lower,upper", [(1 / 8, 1 / 3), (0.2, 0.2)])
def test_rrelu_eval_matches_torch(lower, upper):
    assert_matches_torch(nn.RReLU(lower, upper), torch.nn.RReLU(lower, upper), X, train=False)


def test_rrelu_training_draws_slopes_in_range():
    x = -jnp.ones((2000,))
    m = nn.RReLU(0.1, 0.3)
    jmod.manual_seed(1)
    y1 = m(x)
    slopes = -np.asarray(y1)
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3
    assert abs(slopes.mean() - 0.2) < 0.01 and slopes.std() > 0.05
    np.testing.assert_array_equal(np.asarray(m(jnp.ones(5))), np.ones(5))
    jmod.manual_seed(1)
    np.testing.assert_array_equal(np.asarray(m(x)), np.asarray(y1))


def test_gumbel_softmax():
    logits = jnp.log(jnp.array([[0.1, 0.2, 0.7]] * 2000))
    jmod.manual_seed(0)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(np.asarray(soft.sum(-1)), 1.0, rtol=1e-5)
    hard = F.gumbel_softmax(logits, hard=True)
    assert set(np.unique(np.asarray(hard)).tolist()) == {0.0, 1.0}
    freq = np.asarray(hard.mean(0))
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.7], atol=0.04)  # > 3.9 standard deviations
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated"):
        F.gumbel_softmax(logits[:2], eps=1e-5)


ACT_CLASSES = [
    "Threshold",
    "ReLU",
    "RReLU",
    "Hardtanh",
    "ReLU6",
    "Sigmoid",
    "Hardsigmoid",
    "Tanh",
    "SiLU",
    "Mish",
    "Hardswish",
    "ELU",
    "CELU",
    "SELU",
    "GLU",
    "GELU",
    "Hardshrink",
    "LeakyReLU",
    "LogSigmoid",
    "Softplus",
    "Softshrink",
    "PReLU",
    "Softsign",
    "Tanhshrink",
    "Softmin",
    "Softmax",
    "Softmax2d",
    "LogSoftmax",
]
ACT_FUNCTIONS = [
    "threshold",
    "relu",
    "relu6",
    "hardtanh",
    "elu",
    "selu",
    "celu",
    "leaky_relu",
    "rrelu",
    "glu",
    "tanhshrink",
    "softsign",
    "softmin",
    "softmax",
    "gumbel_softmax",
    "log_softmax",
    "tanh",
    "sigmoid",
    "hardsigmoid",
    "silu",
    "mish",
    "hardswish",
    "normalize",
]


@pytest.mark.parametrize("name", ACT_CLASSES + ACT_FUNCTIONS)
def test_signature_matches_torch(name):
    # (gelu, logsigmoid, softplus, hardshrink, softshrink, prelu are C builtins in torch
    # without an inspectable signature; their argument names are checked by the calls above.)
    if name[0].isupper():
        assert_same_signature(getattr(nn, name), getattr(torch.nn, name))
    else:
        assert_same_signature(getattr(F, name), getattr(TF, name))
