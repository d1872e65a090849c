"""``jmod.nn.init`` against ``torch.nn.init``: the deterministic fills exactly, the random
ones statistically (mean, standard deviation, KS test, support; see
``tests/parity/test_init_distributions.py``), the gain table, fan computations, errors
and torch's deprecated names."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from jmod.nn import init
from tests.parity.test_init_distributions import compare_samples

pytestmark = pytest.mark.torch

SHAPE = (256, 64, 2, 2)  # 65,536 values; fan_in 256, fan_out 1024


def _pair(fn_name, shape=SHAPE, **kwargs):
    torch.manual_seed(1)
    t = torch.empty(shape)
    getattr(torch.nn.init, fn_name)(t, **kwargs)
    jmod.manual_seed(0)
    j = getattr(init, fn_name)(jnp.zeros(shape), **kwargs)
    assert j.shape == tuple(t.shape) and j.dtype == jnp.float32
    return np.asarray(j).ravel(), t.numpy().ravel()


@pytest.mark.parametrize(
    "fn_name,kwargs",
    [
        ("uniform_", {}),
        ("uniform_", {"a": -3.0, "b": 0.5}),
        ("normal_", {}),
        ("normal_", {"mean": 2.0, "std": 0.1}),
        ("trunc_normal_", {}),
        ("trunc_normal_", {"mean": 0.5, "std": 1.0, "a": -1.0, "b": 1.5}),
        ("xavier_uniform_", {}),
        ("xavier_uniform_", {"gain": 2.0}),
        ("xavier_normal_", {"gain": 0.5}),
        ("kaiming_uniform_", {}),
        ("kaiming_uniform_", {"a": math.sqrt(5)}),
        ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "leaky_relu", "a": 0.2}),
        ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}),
        ("kaiming_normal_", {"nonlinearity": "tanh", "mode": "fan_in"}),
    ],
)
def test_random_fills_are_distributed_as_torchs(fn_name, kwargs):
    j, t = _pair(fn_name, **kwargs)
    compare_samples(j, t, f"{fn_name}({kwargs})")
    if fn_name == "trunc_normal_":
        a, b = kwargs.get("a", -2.0), kwargs.get("b", 2.0)
        assert a <= j.min() and j.max() <= b


@pytest.mark.parametrize("shape", [(64, 128), (128, 64), (16, 8, 3, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal(shape, gain):
    jmod.manual_seed(0)
    w = np.asarray(init.orthogonal_(jnp.zeros(shape), gain=gain), np.float64).reshape(shape[0], -1)
    small = w @ w.T if shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(small, gain**2 * np.eye(small.shape[0]), atol=1e-5)
    # the entries are distributed as torch's
    torch.manual_seed(0)
    t = torch.nn.init.orthogonal_(torch.empty(shape), gain=gain).numpy().ravel()
    compare_samples(w.ravel().astype(np.float32), t, f"orthogonal_{shape}")


def test_sparse():
    jmod.manual_seed(0)
    w = np.asarray(init.sparse_(jnp.zeros((100, 300)), sparsity=0.3, std=0.5))
    assert ((w == 0).sum(axis=0) >= 30).all()  # ceil(0.3 * 100) zeros in every column
    torch.manual_seed(0)
    t = torch.nn.init.sparse_(torch.empty(100, 300), sparsity=0.3, std=0.5).numpy()
    compare_samples(w[w != 0], t[t != 0], "sparse_ nonzeros")


@pytest.mark.parametrize(
    "fn_name,shape,args",
    [
        ("constant_", (3, 4), (0.25,)),
        ("ones_", (2, 3, 4), ()),
        ("zeros_", (5,), ()),
        ("eye_", (3, 5), ()),
        ("eye_", (5, 3), ()),
        ("dirac_", (4, 4, 3), ()),
        ("dirac_", (6, 3, 3, 3), ()),
        ("dirac_", (8, 2, 3, 3), (2,)),
        ("dirac_", (6, 2, 3, 3, 3), (3,)),
    ],
)
def test_deterministic_fills_are_exact(fn_name, shape, args):
    t = getattr(torch.nn.init, fn_name)(torch.full(shape, 7.0), *args).numpy()
    j = np.asarray(getattr(init, fn_name)(jnp.full(shape, 7.0), *args))
    np.testing.assert_array_equal(j, t)


def test_calculate_gain_table_and_errors():
    cases = [
        ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None), ("conv_transpose1d", None),
        ("conv_transpose2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu", None),
    ]  # fmt: skip
    for nonlinearity, param in cases:
        assert init.calculate_gain(nonlinearity, param) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-12
        ), nonlinearity
    for bad in [("leaky_relu", "x"), ("softmax", None), ("leaky_relu", True)]:
        with pytest.raises(ValueError) as t_err:
            torch.nn.init.calculate_gain(*bad)
        with pytest.raises(ValueError) as j_err:
            init.calculate_gain(*bad)
        assert str(j_err.value) == str(t_err.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.init.xavier_uniform_(m.zeros(5)),
        lambda m: m.init.kaiming_normal_(m.zeros(5)),
        lambda m: m.init.eye_(m.zeros(2, 2, 2)),
        lambda m: m.init.dirac_(m.zeros(2, 2)),
        lambda m: m.init.orthogonal_(m.zeros(5)),
        lambda m: m.init.sparse_(m.zeros(2, 2, 2), 0.1),
        lambda m: m.init.kaiming_uniform_(m.zeros(2, 2), mode="fan_avg"),
        lambda m: m.init.dirac_(m.zeros(5, 2, 3), 2),
    ],
    ids=["xavier-1d", "kaiming-1d", "eye-3d", "dirac-2d", "orthogonal-1d", "sparse-3d", "bad-mode", "dirac-groups"],
)
def test_errors_match_torch(call):
    class T:
        init, zeros = torch.nn.init, staticmethod(lambda *s: torch.zeros(*s))

    class J:
        init, zeros = nn.init, staticmethod(lambda *s: jnp.zeros(s))

    with pytest.raises(Exception) as t_err:
        call(T)
    with pytest.raises(type(t_err.value)) as j_err:
        call(J)
    assert str(j_err.value) == str(t_err.value)


def test_zero_element_tensors_warn_like_torch():
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        torch.nn.init.kaiming_uniform_(torch.empty(0, 3))
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        out = init.kaiming_uniform_(jnp.zeros((0, 3)))
    assert out.shape == (0, 3)


def test_generator_argument_and_seed_reproduce():
    g1, g2 = jmod.Generator().manual_seed(3), jmod.Generator().manual_seed(3)
    a = init.normal_(jnp.zeros((4, 4)), generator=g1)
    b = init.normal_(jnp.zeros((4, 4)), generator=g2)
    np.testing.assert_array_equal(a, b)
    jmod.manual_seed(5)
    c = init.kaiming_uniform_(jnp.zeros((4, 4)))
    jmod.manual_seed(5)
    np.testing.assert_array_equal(c, init.kaiming_uniform_(jnp.zeros((4, 4))))


def test_init_keeps_the_dtype():
    for dt in (jnp.bfloat16, jnp.float16, jnp.float32):
        assert init.xavier_normal_(jnp.zeros((4, 4), dt)).dtype == dt
        assert init.constant_(jnp.zeros((4, 4), dt), 1.5).dtype == dt


def test_deprecated_names_warn_like_torch():
    for old in ["uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
                "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse"]:  # fmt: skip
        args = {"constant": (0.5,), "sparse": (0.1,)}.get(old, ())
        shape = (3, 3, 3) if old == "dirac" else (3, 3)
        with pytest.warns(FutureWarning) as t_rec:
            getattr(torch.nn.init, old)(torch.zeros(shape), *args)
        with pytest.warns(FutureWarning) as j_rec:
            out = getattr(init, old)(jnp.zeros(shape), *args)
        assert str(j_rec[0].message) == str(t_rec[0].message)
        assert out.shape == shape
