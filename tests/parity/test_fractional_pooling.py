"""FractionalMaxPool2d/3d and F.fractional_max_pool{2,3}d[_with_indices] against torch.

With the same ``_random_samples`` the windows, values, indices and gradients are torch's
exactly; without them the samples come from jmod's generator (what ``jmod.rand(N, C, n)``
draws), are repeatable under ``jmod.manual_seed`` and fresh on every compiled call.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jmod
import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_close, assert_matches_torch, record
from tests.parity._layers_b import assert_same_error, functional_pair

pytestmark = pytest.mark.torch

TF = torch.nn.functional


def _x(shape, seed=0, ties=False):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return np.round(x * 2) / 2 if ties else x  # ties: several equal maxima in a window


def _u(shape, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


# (n, input shape, constructor kwargs, samples shape): output_size vs output_ratio,
# return_indices, unbatched input, samples with more rows than the batch
MODULE_CASES = [
    (2, (2, 3, 10, 9), dict(kernel_size=2, output_size=(4, 5), return_indices=True), (2, 3, 2)),
    (2, (3, 11, 13), dict(kernel_size=(3, 2), output_ratio=(0.6, 0.45)), (1, 3, 2)),
    (2, (2, 2, 12, 12), dict(kernel_size=3, output_size=7), (4, 2, 2)),
    (3, (2, 2, 7, 8, 9), dict(kernel_size=2, output_size=(3, 4, 5), return_indices=True), (2, 2, 3)),
    (3, (2, 8, 7, 9), dict(kernel_size=(2, 3, 2), output_ratio=0.5), (1, 2, 3)),
]


@pytest.mark.parametrize(("n", "shape", "kwargs", "ushape"), MODULE_CASES, ids=range(len(MODULE_CASES)))
def test_module_with_samples_matches_torch(n, shape, kwargs, ushape):
    """Exact values and indices, gradients to the selected elements (ties in the input)."""
    u = _u(ushape)
    cls = f"FractionalMaxPool{n}d"
    t = getattr(torch.nn, cls)(**kwargs, _random_samples=torch.tensor(u))
    j = getattr(nn, cls)(**kwargs, _random_samples=u)
    assert repr(j) == repr(t)
    assert (j.kernel_size, j.output_size, j.output_ratio) == (t.kernel_size, t.output_size, t.output_ratio)
    # the compiled paths (jax.jit, jmod.jit with the samples buffer) on the first 2-d and 3-d cases
    check_jit = kwargs.get("return_indices", False)
    assert_matches_torch(
        j, t, _x(shape, ties=True), atol=0, rtol=0, grad_atol=1e-6, grad_rtol=1e-6, check_jit=check_jit
    )


@pytest.mark.parametrize("n", [2, 3])
def test_functionals_match_torch(n):
    shape, k, out = ((2, 3, 9, 11), 3, (5, 6)) if n == 2 else ((1, 2, 6, 7, 8), (2, 3, 2), (4, 3, 5))
    u = _u((shape[0], shape[1], n), 2)
    tu = torch.tensor(u)
    for name in (f"fractional_max_pool{n}d", f"fractional_max_pool{n}d_with_indices"):
        for ri in (False, True):
            j, t = functional_pair(
                f"F.{name}",
                lambda x, name=name, ri=ri: getattr(F, name)(x, k, out, None, ri, _random_samples=u),
                lambda x, name=name, ri=ri: getattr(TF, name)(x, k, out, None, ri, _random_samples=tu),
            )
            assert_matches_torch(j, t, _x(shape, 3), atol=0, rtol=0, grad_atol=1e-6, grad_rtol=1e-6, check_jit=False)


def test_nan_and_infinite_windows_match_torch():
    """torch's scan keeps the last NaN of a window and the first element of an all -inf one."""
    x = _x((1, 2, 8, 8), 4)
    x[0, 0, 1:3, 1:4] = np.nan
    x[0, 0, 5, 5] = np.nan
    x[0, 1, :4, :5] = -np.inf
    u = _u((1, 2, 2), 5)
    expected = TF.fractional_max_pool2d(torch.tensor(x), 2, 4, return_indices=True, _random_samples=torch.tensor(u))
    got = F.fractional_max_pool2d(x, 2, 4, return_indices=True, _random_samples=u)
    err = assert_close(got, expected, atol=0, rtol=0, what="fractional_max_pool2d NaN/-inf")
    record("F.fractional_max_pool2d", err, 0.0)


def test_large_planes_match_torch():
    """Window starts are computed in float32 as torch does: exact on large, odd-sized planes."""
    x = _x((1, 3, 157, 211), 6)
    u = _u((1, 3, 2), 7)
    for k, out in ((2, (61, 200)), (4, (97, 33))):
        expected = TF.fractional_max_pool2d(
            torch.tensor(x), k, out, return_indices=True, _random_samples=torch.tensor(u)
        )
        got = F.fractional_max_pool2d(x, k, out, return_indices=True, _random_samples=u)
        record("F.fractional_max_pool2d", assert_close(got, expected, atol=0, rtol=0, what=f"k={k} out={out}"), 0.0)


@pytest.mark.parametrize("n", [2, 3])
def test_generator_samples(n):
    """Without samples: jmod.rand(N, C, n) after the same seed gives torch's result, the
    draw is repeatable, and it advances the generator (unbatched input draws N = 1)."""
    shape = (2, 3, 10, 9) if n == 2 else (3, 7, 8, 9)
    x = _x(shape, 8)
    fn, tfn = getattr(F, f"fractional_max_pool{n}d"), getattr(TF, f"fractional_max_pool{n}d")
    kwargs = dict(kernel_size=2, output_size=(4, 5) if n == 2 else (3, 4, 5), return_indices=True)
    batch, channels = (shape[0], shape[1]) if len(shape) == n + 2 else (1, shape[0])
    jmod.manual_seed(11)
    first = fn(x, **kwargs)
    second = fn(x, **kwargs)
    jmod.manual_seed(11)
    again = fn(x, **kwargs)
    jmod.manual_seed(11)
    u = np.asarray(jmod.rand(batch, channels, n))
    assert ((u >= 0) & (u < 1)).all()
    expected = tfn(torch.tensor(x), **kwargs, _random_samples=torch.tensor(u))
    record(f"F.fractional_max_pool{n}d", assert_close(first, expected, atol=0, rtol=0, what="drawn samples"), 0.0)
    np.testing.assert_array_equal(np.asarray(again[1]), np.asarray(first[1]))
    assert not np.array_equal(np.asarray(second[1]), np.asarray(first[1]))


def test_compiled_module_draws_fresh_samples_without_retracing():
    m = nn.FractionalMaxPool2d(2, output_size=(4, 5), return_indices=True)
    traces: list[int] = []
    m.register_forward_pre_hook(lambda mod, args: traces.append(1))  # runs once per trace
    m.compile()
    x = _x((2, 3, 10, 9), 9)
    jmod.manual_seed(3)
    outs = [m(x) for _ in range(3)]
    assert len(traces) == 1
    assert not np.array_equal(np.asarray(outs[0][1]), np.asarray(outs[1][1]))
    # the compiled calls drew what eager calls draw: jmod.rand after the same seed
    jmod.manual_seed(3)
    for out in outs:
        u = torch.tensor(np.asarray(jmod.rand(2, 3, 2)))
        expected = TF.fractional_max_pool2d(torch.tensor(x), 2, (4, 5), return_indices=True, _random_samples=u)
        record("FractionalMaxPool2d", assert_close(out, expected, atol=0, rtol=0, what="compiled draw"), 0.0)


def test_float_output_ratio():
    """torch's functional takes len() of a float output_ratio and fails; jmod accepts it
    (the module always passes a pair, as torch's)."""
    x, u = _x((1, 2, 9, 11), 10), _u((1, 2, 2), 11)
    got = F.fractional_max_pool2d(x, 2, output_ratio=0.5, _random_samples=u)
    expected = TF.fractional_max_pool2d(torch.tensor(x), 2, output_ratio=(0.5, 0.5), _random_samples=torch.tensor(u))
    assert_close(got, expected, atol=0, rtol=0, what="float output_ratio")
    with pytest.raises(TypeError):
        TF.fractional_max_pool2d(torch.tensor(x), 2, output_ratio=0.5, _random_samples=torch.tensor(u))


X4, X5 = _x((2, 3, 9, 9)), _x((2, 3, 7, 7, 7))
U4, U5 = _u((2, 3, 2)), _u((2, 3, 3))

FUNCTIONAL_ERRORS = [
    (2, X4, (3,), dict()),
    (2, X4, (3,), dict(output_ratio=(0.5, 0.5, 0.5))),
    (2, X4, (3,), dict(output_size=8)),
    (2, X4, (3,), dict(output_size=(8, 8, 8))),
    (2, X4, ((3, 3, 3),), dict(output_size=4)),
    (2, X4, (3,), dict(output_size=(4, 8), _random_samples=U4)),
    (2, X4, (3.0,), dict(output_size=4)),
    (2, X4, (3,), dict(output_size=(2.0, 2))),
    (2, _x((9, 9)), (3,), dict(output_size=4)),
    (2, _x((9, 9)), (3,), dict(output_size=4, _random_samples=U4)),
    (2, _x((1, 2, 3, 9, 9)), (3,), dict(output_size=4)),
    (2, _x((2, 0, 9, 9)), (3,), dict(output_size=4)),
    (2, _x((3, 0, 9)), (3,), dict(output_size=4, _random_samples=U4)),
    (2, X4, (3,), dict(output_size=4, _random_samples=_u((2, 3, 3)))),
    (2, X4, (3,), dict(output_size=4, _random_samples=_u((1, 3, 2)))),
    (2, X4, (3,), dict(output_size=4, _random_samples=_u((2, 2, 2)))),
    (2, X4, (3,), dict(output_size=4, _random_samples=_u((6, 2)))),
    (2, X4, (3,), dict(output_size=4, _random_samples=U4.astype(np.float16))),
    (2, X4, (3,), dict(output_size=(-1, 2), _random_samples=U4)),
    (2, X4.astype(np.int32), (3,), dict(output_size=4)),
    (2, X4.astype(np.int32), (3,), dict(output_size=4, _random_samples=U4.astype(np.int32))),
    (3, X5, (3,), dict()),
    (3, X5, (3,), dict(output_ratio=(0.5, 0.5))),
    (3, X5, (3,), dict(output_size=(4, 4))),
    (3, X5, ((3, 3),), dict(output_size=4)),
    (3, X5, (7,), dict(output_size=4)),
    (3, X5, (3,), dict(output_size=5)),
    (3, X5, (3,), dict(output_size=(4, 6, 6), _random_samples=U5)),
    (3, X5, (3,), dict(output_size=(4, 4, 6), _random_samples=U5)),
    (3, _x((3, 7, 7)), (3,), dict(output_size=(4, 6, 4), _random_samples=U5)),
    (3, _x((7, 7, 7)), (3,), dict(output_size=2)),
    (3, _x((2, 3, 0, 7, 7)), (3,), dict(output_size=2, _random_samples=U5)),
    (3, X5, (3,), dict(output_size=4, _random_samples=_u((2, 3, 2)))),
    (3, X5, (3,), dict(output_size=4, _random_samples=_u((2, 2, 3)))),
    (3, X5, (3,), dict(output_size=(-1, 4, 4), _random_samples=U5)),
]


@pytest.mark.parametrize(("n", "x", "args", "kwargs"), FUNCTIONAL_ERRORS, ids=range(len(FUNCTIONAL_ERRORS)))
def test_functional_errors_match_torch(n, x, args, kwargs):
    t_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    assert_same_error(
        lambda: getattr(F, f"fractional_max_pool{n}d")(x, *args, **kwargs),
        lambda: getattr(TF, f"fractional_max_pool{n}d")(torch.tensor(x), *args, **t_kwargs),
    )


MODULE_ERRORS = [
    ("FractionalMaxPool2d", dict(kernel_size=3)),
    ("FractionalMaxPool2d", dict(kernel_size=3, output_size=4, output_ratio=0.5)),
    ("FractionalMaxPool2d", dict(kernel_size=3, output_ratio=1.5)),
    ("FractionalMaxPool2d", dict(kernel_size=3, output_ratio=(0.5, 1.0))),
    ("FractionalMaxPool3d", dict(kernel_size=3)),
    ("FractionalMaxPool3d", dict(kernel_size=3, output_size=4, output_ratio=0.5)),
    ("FractionalMaxPool3d", dict(kernel_size=3, output_ratio=0)),
    ("FractionalMaxPool3d", dict(kernel_size=0, output_size=2)),
    ("FractionalMaxPool3d", dict(kernel_size=(1, 0, 1), output_size=2)),
]


@pytest.mark.parametrize(("cls", "kwargs"), MODULE_ERRORS, ids=range(len(MODULE_ERRORS)))
def test_module_errors_match_torch(cls, kwargs):
    assert_same_error(lambda: getattr(nn, cls)(**kwargs), lambda: getattr(torch.nn, cls)(**kwargs))


def test_empty_kernel_and_output_match_torch():
    """kernel_size 0 (torch gives -inf at each window's start) and an empty output."""
    x, u = _x((1, 1, 5, 5)), _u((1, 1, 2))
    for k, out in ((0, (2, 2)), (2, (0, 0))):
        expected = TF.fractional_max_pool2d(
            torch.tensor(x), k, out, return_indices=True, _random_samples=torch.tensor(u)
        )
        got = F.fractional_max_pool2d(x, k, out, return_indices=True, _random_samples=u)
        assert_close(got, expected, atol=0, rtol=0, what=f"k={k} out={out}")
    assert F.fractional_max_pool2d(_x((0, 3, 9, 9)), 3, 4).shape == (0, 3, 4, 4)
