"""F.pad and the padding layers (Zero/Constant/Reflection/Replication/CircularPad{1,2,3}d) against torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._layers_b import assert_same_error, functional_pair

pytestmark = pytest.mark.torch


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


MODULE_CASES = [
    # (class, constructor args, input shape)
    ("ZeroPad1d", (2,), (2, 3, 5)),
    ("ZeroPad2d", ((1, -1, 2, 0),), (2, 3, 4, 5)),
    ("ZeroPad3d", (1,), (3, 2, 3, 4)),
    ("ConstantPad1d", ((3, -2), 1.5), (3, 5)),
    ("ConstantPad2d", (2, -0.5), (1, 2, 3, 4)),
    ("ConstantPad3d", ((1, 0, 2, 1, 0, 1), 3), (1, 2, 2, 3, 4)),
    ("ReflectionPad1d", ((3, 1),), (2, 3, 5)),
    ("ReflectionPad2d", ((1, 2, 3, 0),), (3, 4, 5)),
    ("ReflectionPad3d", (2,), (1, 2, 3, 4, 5)),
    ("ReplicationPad1d", ((4, 0),), (3, 5)),
    ("ReplicationPad2d", ((1, 3, 2, -1),), (2, 3, 4, 5)),
    ("ReplicationPad3d", ((1, 0, 2, 1, 0, 3),), (2, 3, 3, 4)),
    ("CircularPad1d", ((3, 1),), (2, 3, 5)),
    ("CircularPad2d", ((1, -2, 4, 0),), (3, 4, 5)),
    ("CircularPad3d", (1,), (1, 2, 3, 4, 5)),
]


@pytest.mark.parametrize(("cls", "args", "shape"), MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_padding_modules_match_torch(cls, args, shape):
    t = getattr(torch.nn, cls)(*args)
    j = getattr(nn, cls)(*args)
    assert repr(j) == repr(t)
    assert j.padding == t.padding and type(j.padding) is type(t.padding)
    assert_matches_torch(j, t, _x(shape))


PAD_CASES = [
    # (mode, pad, input shape) -- negative entries crop; non-constant modes on 1-3 trailing dims
    ("constant", (1, 2), (2, 3)),
    ("constant", (-1, 2, 0, -1, 2, 2), (2, 3, 4, 5)),
    ("reflect", (4, -1), (2, 3, 5)),
    ("reflect", (1, 1, 2, 2, 1, 0), (2, 3, 4, 5)),
    ("replicate", (-1, 7), (1, 2, 5)),
    ("replicate", (1, 2, -1, 0, 3, 1), (2, 2, 3, 4)),
    ("circular", (3, -2, 4, 4), (3, 4, 5)),
    ("circular", (1, 2, 2, 1, 3, 0), (1, 2, 3, 4, 5)),
]


@pytest.mark.parametrize(("mode", "pad", "shape"), PAD_CASES, ids=[f"{c[0]}-{c[1]}" for c in PAD_CASES])
def test_functional_pad_matches_torch(mode, pad, shape):
    j, t = functional_pair("F.pad", F.pad, torch.nn.functional.pad, pad, mode)
    assert_matches_torch(j, t, _x(shape, 1))


@pytest.mark.parametrize("value", [2.5, -1e30])
def test_constant_value(value):
    j, t = functional_pair("F.pad", F.pad, torch.nn.functional.pad, (1, 2, 0, 1), "constant", value)
    assert_matches_torch(j, t, _x((2, 3, 4), 2), check_grad=value is None)


def test_constant_infinite_value():
    x = _x((2, 3))
    out = F.pad(jnp.asarray(x), (1, 1, 1, 0), value=float("-inf"))
    np.testing.assert_array_equal(
        np.asarray(out), torch.nn.functional.pad(torch.tensor(x), (1, 1, 1, 0), value=float("-inf")).numpy()
    )


def test_circular_wrap_longer_than_the_cropped_centre():
    """Right padding wider than what is left after cropping the left side repeats the centre.

    Forward matches torch. torch's *gradient* here is not the derivative of its own
    forward: its implementation copies from an overlapping, partly unwritten slice and
    autograd drops the contribution of the third copy. jmod returns the true gradient
    (each input element collects the cotangent of every copy), which is checked below.
    """
    x = _x((1, 2, 5), 3)
    out = F.pad(jnp.asarray(x), (-3, 4), mode="circular")
    expected = torch.nn.functional.pad(torch.tensor(x), (-3, 4), mode="circular").numpy()
    np.testing.assert_array_equal(np.asarray(out), expected)
    cot = np.random.default_rng(4).standard_normal(expected.shape).astype(np.float32)
    grad = jax.grad(lambda a: (F.pad(a, (-3, 4), mode="circular") * cot).sum())(jnp.asarray(x))
    true_grad = np.zeros_like(x)
    true_grad[..., 3] = cot[..., 0::2].sum(-1)
    true_grad[..., 4] = cot[..., 1::2].sum(-1)
    np.testing.assert_allclose(np.asarray(grad), true_grad, atol=1e-6)


def test_integer_and_bool_inputs_cast_the_value_like_torch():
    x = np.arange(10).reshape(2, 5)
    for dtype, value in [(np.int32, 2.7), (np.int32, -3), (bool, 1)]:
        arr = x.astype(dtype)
        out = F.pad(jnp.asarray(arr), (1, 1), value=value)
        expected = torch.nn.functional.pad(torch.tensor(arr), (1, 1), value=value)
        assert out.dtype == jnp.asarray(arr).dtype
        np.testing.assert_array_equal(np.asarray(out), expected.numpy())
    for mode in ("reflect", "replicate", "circular"):
        arr = x.astype(np.int32)[None]
        out = F.pad(jnp.asarray(arr), (2, 1), mode=mode)
        np.testing.assert_array_equal(
            np.asarray(out), torch.nn.functional.pad(torch.tensor(arr), (2, 1), mode=mode).numpy()
        )


def test_empty_pad_and_zero_size_outputs():
    x = _x((2, 3, 4))
    for pad, mode in [((), "constant"), ((-2, -2), "constant"), ((0, 0), "reflect"), ((-2, -2), "circular")]:
        out = F.pad(jnp.asarray(x), pad, mode=mode)
        expected = torch.nn.functional.pad(torch.tensor(x), pad, mode=mode)
        assert out.shape == tuple(expected.shape)
        np.testing.assert_array_equal(np.asarray(out), expected.numpy())
    # an empty batch is fine for every mode
    for mode in ("reflect", "replicate", "circular"):
        assert F.pad(jnp.zeros((0, 2, 5)), (1, 1), mode=mode).shape == (0, 2, 7)


ERROR_CASES = [
    ((2, 3, 4, 5), (1,), "constant", None),
    ((2, 3, 4, 5), (1,) * 10, "constant", None),
    ((2, 3, 4, 5), (-3, -3), "constant", None),
    ((1, 2, 5), (1, 1), "reflect", 2.0),
    ((1, 2, 5), (1, 1), "foo", None),
    ((2, 3, 4, 5), (1, 1), "reflect", None),
    ((2, 3, 4, 5), (1, 1, 1, 1, 1, 1, 1, 1), "replicate", None),
    ((5,), (1, 1), "reflect", None),
    ((4, 5), (1, 1, 1, 1), "circular", None),
    ((1, 2, 5), (5, 1), "reflect", None),
    ((1, 2, 5), (-1, 5), "reflect", None),
    ((1, 2, 3, 3), (1, 1, 3, 1), "reflect", None),
    ((1, 2, 3, 3, 3), (1, 1, 1, 1, 3, 1), "reflect", None),
    ((1, 2, 5), (6, 0), "circular", None),
    ((1, 2, 5), (-3, -3), "circular", None),
    ((1, 2, 0), (1, 1), "reflect", None),
    ((1, 2, 0, 3), (1, 1, 1, 1), "replicate", None),
    ((1, 2, 5), (-6, 1), "replicate", None),
]


@pytest.mark.parametrize(("shape", "pad", "mode", "value"), ERROR_CASES, ids=[str(i) for i in range(len(ERROR_CASES))])
def test_pad_errors_match_torch(shape, pad, mode, value):
    x = np.zeros(shape, np.float32)
    assert_same_error(
        lambda: F.pad(jnp.asarray(x), pad, mode, value),
        lambda: torch.nn.functional.pad(torch.tensor(x), pad, mode, value),
    )


def test_pad_argument_type_errors_match_torch():
    x = np.zeros((1, 2, 5), np.float32)
    assert_same_error(
        lambda: F.pad(jnp.asarray(x), [1.5, 1]), lambda: torch.nn.functional.pad(torch.tensor(x), [1.5, 1])
    )


@pytest.mark.parametrize("n", [1, 2, 3])
def test_circular_module_checks_rank(n):
    shape = (3,) * n
    x = np.zeros(shape, np.float32)
    t = getattr(torch.nn, f"CircularPad{n}d")(1)
    j = getattr(nn, f"CircularPad{n}d")(1)
    assert_same_error(lambda: j(jnp.asarray(x)), lambda: t(torch.tensor(x)))


REPR_CASES = [
    ("ZeroPad2d", ((1, 2, 3, 4),)),
    ("ZeroPad2d", (1,)),
    ("ZeroPad1d", ((1, 2),)),
    ("ConstantPad1d", (2, 3.5)),
    ("ConstantPad3d", (2, 3)),
    ("ConstantPad2d", ((1, 2, 3, 4), -1)),
    ("ReflectionPad2d", (2,)),
    ("ReflectionPad1d", ([1, 2],)),
    ("ReplicationPad3d", ((1, 2, 3, 4, 5, 6),)),
    ("CircularPad2d", (2,)),
    ("CircularPad1d", ((1, 2, 3),)),
]


@pytest.mark.parametrize(("cls", "args"), REPR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(REPR_CASES)])
def test_repr_matches_torch(cls, args):
    t = getattr(torch.nn, cls)(*args)
    j = getattr(nn, cls)(*args)
    assert repr(j) == repr(t)
    assert j.padding == t.padding
