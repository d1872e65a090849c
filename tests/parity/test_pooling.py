"""Max/avg/LP/adaptive pooling and max-unpooling (modules and functionals) against torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._layers_b import assert_same_error, case_id, functional_pair, pairwise

pytestmark = pytest.mark.torch

SIZES = {1: (9,), 2: (7, 6), 3: (5, 6, 4)}  # odd sizes so that ceil_mode adds a window


def _x(n, seed=0, batch=(2, 3)):
    return np.random.default_rng(seed).standard_normal((*batch, *SIZES[n])).astype(np.float32)


MAX_OPTIONS = {
    "n": [1, 2, 3],
    "kernel": [2, "k32"],
    "stride": [None, 1, 2],
    "padding": [0, 1],
    "dilation": [1, 2],
    "ceil_mode": [False, True],
    "return_indices": [False, True],
}


def _kernel(value, n):
    return (3, 2, 2)[:n] if value == "k32" else value


MAX_CASES = pairwise(MAX_OPTIONS)


@pytest.mark.parametrize("case", MAX_CASES, ids=[case_id(c) for c in MAX_CASES])
def test_max_pool_matches_torch(case):
    n = case["n"]
    kwargs = dict(case, kernel_size=_kernel(case["kernel"], n))
    del kwargs["n"], kwargs["kernel"]
    t = getattr(torch.nn, f"MaxPool{n}d")(**kwargs)
    j = getattr(nn, f"MaxPool{n}d")(**kwargs)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(n))


@pytest.mark.parametrize(("n", "return_indices"), [(1, True), (2, False)])
def test_max_pool_ties_send_the_gradient_where_torch_does(n, return_indices):
    """Rounded inputs have many equal values per window: the first maximum (row-major) wins."""
    x = np.round(_x(n, 1) * 1.5).astype(np.float32)
    t = getattr(torch.nn, f"MaxPool{n}d")(3, stride=1, padding=1, return_indices=return_indices)
    j = getattr(nn, f"MaxPool{n}d")(3, stride=1, padding=1, return_indices=return_indices)
    assert_matches_torch(j, t, x)


@pytest.mark.parametrize("n", [1, 2])
def test_max_pool_indices_for_nan_and_all_minus_inf_windows(n):
    x = _x(n, 2)
    x.reshape(-1)[::7] = np.nan
    x[0, 0] = -np.inf
    for kwargs in [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True, dilation=2)]:
        tv, ti = getattr(torch.nn.functional, f"max_pool{n}d")(torch.tensor(x), return_indices=True, **kwargs)
        jv, ji = getattr(F, f"max_pool{n}d")(jnp.asarray(x), return_indices=True, **kwargs)
        np.testing.assert_array_equal(np.asarray(ji), ti.numpy())
        np.testing.assert_array_equal(np.asarray(jv), tv.numpy())
        jv2 = getattr(F, f"max_pool{n}d")(jnp.asarray(x), **kwargs)
        np.testing.assert_array_equal(np.asarray(jv2), tv.numpy())


AVG_OPTIONS = {
    "n": [1, 2, 3],
    "kernel": [2, 3, "k32"],
    "stride": [None, 1, 2],
    "padding": [0, 1],
    "ceil_mode": [False, True],
    "count_include_pad": [False, True],
    "divisor_override": [None, 5],
}

AVG_CASES = pairwise(AVG_OPTIONS, lambda c: not (c["n"] == 1 and c["divisor_override"] is not None))


@pytest.mark.parametrize("case", AVG_CASES, ids=[case_id(c) for c in AVG_CASES])
def test_avg_pool_matches_torch(case):
    n = case["n"]
    kwargs = dict(case, kernel_size=_kernel(case["kernel"], n))
    del kwargs["n"], kwargs["kernel"]
    if n == 1:
        del kwargs["divisor_override"]
    t = getattr(torch.nn, f"AvgPool{n}d")(**kwargs)
    j = getattr(nn, f"AvgPool{n}d")(**kwargs)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(n, 3))


def test_avg_pool_integer_input_truncates_like_torch():
    x = np.arange(2 * 25).reshape(2, 5, 5).astype(np.int32)
    for kwargs in [dict(kernel_size=3, stride=2, ceil_mode=True), dict(kernel_size=2, padding=1)]:
        out = F.avg_pool2d(jnp.asarray(x), **kwargs)
        expected = torch.nn.functional.avg_pool2d(torch.tensor(x).long(), **kwargs)
        np.testing.assert_array_equal(np.asarray(out), expected.numpy())


LP_CASES = [
    (1, 2, 3, None, False),
    (2, 2, (3, 2), (2, 1), True),
    (2, 3.5, 2, None, False),
    (2, float("inf"), 3, 2, True),
    (3, 1.5, (2, 3, 2), 1, False),
]


@pytest.mark.parametrize(("n", "p", "kernel", "stride", "ceil_mode"), LP_CASES, ids=[str(c) for c in LP_CASES])
def test_lp_pool_matches_torch(n, p, kernel, stride, ceil_mode):
    t = getattr(torch.nn, f"LPPool{n}d")(p, kernel, stride, ceil_mode)
    j = getattr(nn, f"LPPool{n}d")(p, kernel, stride, ceil_mode)
    assert repr(j) == repr(t)
    x = _x(n, 4)
    if not float(p).is_integer():
        x = np.abs(x)  # a fractional power of a negative number is NaN in both
    assert_matches_torch(j, t, x, atol=2e-5, grad_atol=2e-5)  # p-th roots of sums of p-th powers: ~2 ulp of |out|~3


def test_lp_pool_zero_window_has_zero_gradient():
    x = _x(2, 5)
    x[:, :, :2, :2] = 0.0
    j, t = functional_pair("F.lp_pool2d", F.lp_pool2d, torch.nn.functional.lp_pool2d, 2.0, 2)
    assert_matches_torch(j, t, x)


ADAPTIVE_CASES = [
    # (n, output_size): divisible, non-divisible (overlapping windows), larger than the input, None entries
    (1, 4),
    (2, (4, 5)),
    (2, (3, None)),
    (2, (9, 2)),
    (3, (None, 5, 1)),
]


@pytest.mark.parametrize(("n", "output_size"), ADAPTIVE_CASES, ids=[str(c) for c in ADAPTIVE_CASES])
def test_adaptive_avg_pool_matches_torch(n, output_size):
    t = getattr(torch.nn, f"AdaptiveAvgPool{n}d")(output_size)
    j = getattr(nn, f"AdaptiveAvgPool{n}d")(output_size)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(n, 6))


@pytest.mark.parametrize(("n", "output_size"), ADAPTIVE_CASES, ids=[str(c) for c in ADAPTIVE_CASES])
def test_adaptive_max_pool_matches_torch(n, output_size):
    return_indices = isinstance(output_size, tuple)
    t = getattr(torch.nn, f"AdaptiveMaxPool{n}d")(output_size, return_indices)
    j = getattr(nn, f"AdaptiveMaxPool{n}d")(output_size, return_indices)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(n, 7))


def test_adaptive_max_pool_nan_and_minus_inf_indices():
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 0.0], [-np.inf] * 5]], np.float32)
    tv, ti = torch.nn.functional.adaptive_max_pool1d(torch.tensor(x), 2, return_indices=True)
    jv, ji = F.adaptive_max_pool1d(jnp.asarray(x), 2, return_indices=True)
    np.testing.assert_array_equal(np.asarray(ji), ti.numpy())
    np.testing.assert_array_equal(np.asarray(jv), tv.numpy())


def test_adaptive_pool_zero_output_size():
    x = _x(2, 8)
    for fn in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        out = getattr(F, fn)(jnp.asarray(x), (0, 2))
        assert out.shape == tuple(getattr(torch.nn.functional, fn)(torch.tensor(x), (0, 2)).shape)


def test_unbatched_and_functional_forms():
    x = _x(2, 9, batch=(3,))
    cases = [
        ("F.max_pool2d_with_indices", F.max_pool2d_with_indices, torch.nn.functional.max_pool2d_with_indices, (2,), {}),
        ("F.avg_pool2d", F.avg_pool2d, torch.nn.functional.avg_pool2d, (3, 2, 1, True, False), {}),
        ("F.adaptive_max_pool2d", F.adaptive_max_pool2d, torch.nn.functional.adaptive_max_pool2d, ((4, 4), True), {}),
    ]
    for name, jf, tf, args, kwargs in cases:
        j, t = functional_pair(name, jf, tf, *args, **kwargs)
        assert_matches_torch(j, t, x)


@pytest.mark.parametrize("n", [1, 2])
def test_max_unpool_roundtrip_matches_torch(n):
    x = _x(n, 10)
    pool_t = getattr(torch.nn, f"MaxPool{n}d")(2, stride=2, return_indices=True, ceil_mode=False)
    out_t, idx_t = pool_t(torch.tensor(x))
    t = getattr(torch.nn, f"MaxUnpool{n}d")(2)
    j = getattr(nn, f"MaxUnpool{n}d")(2)
    assert repr(j) == repr(t)
    size = list(x.shape[-n:])
    # the pooled values are a differentiable input; the indices are integer data
    assert_matches_torch(j, t, out_t.detach().numpy(), idx_t.numpy(), kwargs={"output_size": size})


def test_max_unpool_output_size_errors_match_torch():
    x = np.zeros((1, 1, 3, 3), np.float32)
    idx = np.zeros((1, 1, 3, 3), np.int64)
    for size in ([9, 9], [4, 6], [1, 2, 3]):
        assert_same_error(
            lambda: F.max_unpool2d(jnp.asarray(x), jnp.asarray(idx, jnp.int32), 2, output_size=size),
            lambda: torch.nn.functional.max_unpool2d(torch.tensor(x), torch.tensor(idx), 2, output_size=size),
        )


def _error_cases():
    cases = []
    for n in (1, 2, 3):
        x = np.zeros((1, 2) + (5,) * n, np.float32)
        for name in ("max", "maxI", "avg"):
            fn = f"{'max' if name.startswith('max') else 'avg'}_pool{n}d"
            extra = {"return_indices": True} if name == "maxI" else {}
            cases += [
                (fn, x, (3,), dict(padding=2, **extra)),
                (fn, x, (0,), extra),
                (fn, x, (0, 1), extra),
                (fn, x, (2, 0), extra),
                (fn, x, (2,), dict(padding=-1, **extra)),
                (fn, x, (7,), extra),
                (fn, x, ((2,) * (n + 1),), extra),
                (fn, x, (2, (2,) * (n + 1)), extra),
                (fn, np.zeros((1, 0) + (5,) * n, np.float32), (2,), extra),
            ]
            if name != "avg":
                cases += [
                    (fn, x, (2,), dict(dilation=0, **extra)),
                    (fn, x, (2,), dict(padding=2, dilation=3, **extra)),
                ]
            if n > 1 or name != "avg":
                cases.append((fn, np.zeros((5,) * n, np.float32), (2,), extra))
    x2 = np.zeros((1, 2, 5, 5), np.float32)
    cases += [
        ("avg_pool2d", x2, (2,), dict(divisor_override=0)),
        ("adaptive_avg_pool2d", x2, ((3, 2, 1),), {}),
        ("adaptive_avg_pool2d", np.zeros((5,), np.float32), (2,), {}),
        ("adaptive_avg_pool2d", np.zeros((1, 2, 0, 5), np.float32), (2,), {}),
        ("adaptive_avg_pool2d", x2, (-1,), {}),
        ("adaptive_avg_pool2d", np.zeros((2, 5), np.float32), ((None, 2),), {}),
        ("adaptive_max_pool2d", np.zeros((5, 5), np.float32), (2,), {}),
        ("adaptive_max_pool2d", x2, ((1, 2, 3),), {}),
        ("adaptive_avg_pool1d", np.zeros((1, 2, 5), np.float32), ((2, 3),), {}),
        ("adaptive_avg_pool1d", np.zeros((5,), np.float32), (2,), {}),
        ("adaptive_avg_pool1d", np.zeros((1, 2, 0), np.float32), (2,), {}),
        ("adaptive_max_pool1d", np.zeros((1, 2, 0), np.float32), (2,), {}),
        ("adaptive_max_pool1d", np.zeros((1, 2, 5), np.float32), (None,), {}),
        ("adaptive_avg_pool3d", np.zeros((5, 5), np.float32), (2,), {}),
        ("adaptive_avg_pool3d", np.zeros((1, 2, 5, 5, 5), np.float32), ((1, 2),), {}),
        ("adaptive_max_pool3d", np.zeros((1, 2, 0, 5, 5), np.float32), (2,), {}),
    ]
    return cases


ERROR_CASES = _error_cases()


@pytest.mark.parametrize(
    ("fn", "x", "args", "kwargs"), ERROR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)]
)
def test_errors_match_torch(fn, x, args, kwargs):
    assert_same_error(
        lambda: getattr(F, fn)(jnp.asarray(x), *args, **kwargs),
        lambda: getattr(torch.nn.functional, fn)(torch.tensor(x), *args, **kwargs),
    )


REPR_CASES = [
    ("MaxPool2d", (3,), {}),
    ("MaxPool2d", ((3, 2),), {"return_indices": True, "ceil_mode": True, "dilation": 2}),
    ("MaxPool1d", (3, 1, 1), {}),
    ("MaxPool3d", ([2, 2, 1],), {"stride": (1, 2, 2)}),
    ("AvgPool1d", (3,), {}),
    ("AvgPool2d", (3,), {"stride": 1, "padding": 1, "divisor_override": 2}),
    ("AvgPool3d", ((1, 2, 3),), {"ceil_mode": True}),
    ("LPPool1d", (2, 3), {}),
    ("LPPool2d", (2.5, 3, 2, True), {}),
    ("LPPool3d", (1, (1, 2, 3)), {}),
    ("AdaptiveAvgPool2d", ((3, None),), {}),
    ("AdaptiveAvgPool1d", (4,), {}),
    ("AdaptiveMaxPool2d", ((3, None),), {"return_indices": True}),
    ("AdaptiveMaxPool3d", (2,), {}),
    ("MaxUnpool2d", (3,), {}),
    ("MaxUnpool1d", (3, 2, 1), {}),
    ("MaxUnpool3d", ((1, 2, 3),), {}),
]


@pytest.mark.parametrize(("cls", "args", "kwargs"), REPR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(REPR_CASES)])
def test_repr_and_attributes_match_torch(cls, args, kwargs):
    t = getattr(torch.nn, cls)(*args, **kwargs)
    j = getattr(nn, cls)(*args, **kwargs)
    assert repr(j) == repr(t)
    for attr in (
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "ceil_mode",
        "return_indices",
        "count_include_pad",
        "divisor_override",
        "norm_type",
        "output_size",
    ):
        if hasattr(t, attr):
            assert getattr(j, attr) == getattr(t, attr), attr


def test_compiles_under_jit():
    m = nn.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True)
    x = jnp.asarray(_x(2, 11))
    v, i = jax.jit(lambda a: m(a))(x)
    tv, ti = torch.nn.functional.max_pool2d(torch.tensor(np.asarray(x)), 3, 2, 1, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(np.asarray(i), ti.numpy())
    np.testing.assert_allclose(np.asarray(v), tv.numpy())


@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool_gradient_goes_to_the_nan_torch_picks(return_indices):
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 0.0, 2.0, 5.0, 5.0, -1.0]]], np.float32)
    cot = np.arange(1.0, 4.0, dtype=np.float32).reshape(1, 1, 3)

    def f(a):
        out = F.max_pool1d(a, 3, return_indices=return_indices)
        return ((out[0] if return_indices else out) * cot).sum()

    t = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.max_pool1d(t, 3) * torch.tensor(cot)).sum().backward()
    np.testing.assert_array_equal(np.asarray(jax.grad(f)(jnp.asarray(x))), t.grad.numpy())
    # forward mode uses the same choice of element
    tangent = np.arange(9.0, dtype=np.float32).reshape(1, 1, 9)
    _, jv = jax.jvp(lambda a: F.max_pool1d(a, 3), (jnp.asarray(x),), (jnp.asarray(tangent),))
    np.testing.assert_array_equal(np.asarray(jv), [[[1.0, 3.0, 6.0]]])  # last NaN, last NaN, first max


def test_max_unpool_overlapping_windows_matches_torch():
    """Overlapping pooling repeats indices; torch's backward gives each repeat the gradient."""
    x = _x(2, 12)
    _, idx_t = torch.nn.functional.max_pool2d(torch.tensor(x), 3, stride=1, padding=1, return_indices=True)
    values = torch.tensor(x).flatten(2).gather(2, idx_t.flatten(2)).reshape(idx_t.shape).numpy()
    t = torch.nn.MaxUnpool2d(3, stride=1, padding=1)
    j = nn.MaxUnpool2d(3, stride=1, padding=1)
    assert_matches_torch(j, t, values, idx_t.numpy(), kwargs={"output_size": list(x.shape[-2:])})
