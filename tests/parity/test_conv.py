"""Conv1d/2d/3d and ConvTranspose1d/2d/3d (and their functionals) against torch."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._layers_b import assert_same_error, case_id, functional_pair, pairwise

pytestmark = pytest.mark.torch

# Conv outputs are sums of C_in/groups * prod(kernel) products of O(1) values (|out| up
# to ~10): float32 summation order (XLA vs oneDNN) differs by a few ulp of the output,
# and gradients w.r.t. the weight sum over every output position (up to ~1000 terms).
# 1e-5 absolute is kept for the forward where |out| is small, with 1e-5 relative; the
# weight gradient gets 1e-4 absolute for that reason.
GRAD_ATOL = 1e-4


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _per_dim(value, n):
    """Options that differ per spatial dimension are written as a string key."""
    if value == "tuple":
        return (2, 1, 0)[:n]
    if value == "k23":
        return (2, 3, 3)[:n]
    return value


CONV_OPTIONS = {
    "n": [1, 2, 3],
    "kernel": [3, "k23"],
    "stride": [1, 2],
    "padding": [1, "tuple", "same", "valid"],  # "valid" is padding 0
    "dilation": [1, 2],
    "groups": [1, 2],
    "bias": [True, False],
    "padding_mode": ["zeros", "reflect", "replicate", "circular"],
}


def _conv_valid(c: dict) -> bool:
    return not (c["padding"] == "same" and c["stride"] != 1)


CONV_CASES = pairwise(CONV_OPTIONS, _conv_valid)


@pytest.mark.parametrize("case", CONV_CASES, ids=[case_id(c) for c in CONV_CASES])
def test_conv_matches_torch(case):
    n = case["n"]
    kwargs = dict(
        kernel_size=_per_dim(case["kernel"], n),
        stride=case["stride"],
        padding=_per_dim(case["padding"], n),
        dilation=case["dilation"],
        groups=case["groups"],
        bias=case["bias"],
        padding_mode=case["padding_mode"],
    )
    cls = f"Conv{n}d"
    t = getattr(torch.nn, cls)(4, 6, **kwargs)
    j = getattr(nn, cls)(4, 6, **kwargs)
    assert repr(j) == repr(t)
    size = (7, 6, 5)[:n]
    x = _rng().standard_normal((2, 4, *size)).astype(np.float32)
    assert_matches_torch(j, t, x, grad_atol=GRAD_ATOL)


TRANSPOSE_OPTIONS = {
    "n": [1, 2, 3],
    "kernel": [3, "k23"],
    "stride": [1, 3],
    "padding": [0, "tuple"],
    "output_padding": [0, 1],
    "dilation": [1, 2],
    "groups": [1, 2],
    "bias": [True, False],
}


def _transpose_valid(c: dict) -> bool:
    return c["output_padding"] < max(c["stride"], c["dilation"])


TRANSPOSE_CASES = pairwise(TRANSPOSE_OPTIONS, _transpose_valid)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[case_id(c) for c in TRANSPOSE_CASES])
def test_conv_transpose_matches_torch(case):
    n = case["n"]
    kwargs = dict(
        kernel_size=_per_dim(case["kernel"], n),
        stride=case["stride"],
        padding=_per_dim(case["padding"], n),
        output_padding=case["output_padding"],
        dilation=case["dilation"],
        groups=case["groups"],
        bias=case["bias"],
    )
    cls = f"ConvTranspose{n}d"
    t = getattr(torch.nn, cls)(4, 6, **kwargs)
    j = getattr(nn, cls)(4, 6, **kwargs)
    assert repr(j) == repr(t)
    size = (5, 4, 3)[:n]
    x = _rng(1).standard_normal((2, 4, *size)).astype(np.float32)
    assert_matches_torch(j, t, x, grad_atol=GRAD_ATOL)


@pytest.mark.parametrize(("n", "transposed"), [(1, True), (2, False)])
def test_unbatched_input(n, transposed):
    cls = f"ConvTranspose{n}d" if transposed else f"Conv{n}d"
    t = getattr(torch.nn, cls)(4, 2, 3, stride=2, padding=1, groups=2)
    j = getattr(nn, cls)(4, 2, 3, stride=2, padding=1, groups=2)
    x = _rng(2).standard_normal((4, *(5, 6, 4)[:n])).astype(np.float32)
    assert_matches_torch(j, t, x, grad_atol=GRAD_ATOL)


@pytest.mark.parametrize(("padding_mode", "kernel"), [("reflect", 2), ("circular", 4)])
def test_same_padding_even_kernel_with_padding_modes(padding_mode, kernel):
    # 'same' with an even kernel pads one more on the right; non-'zeros' modes pad
    # explicitly with F.pad using the module's _reversed_padding_repeated_twice.
    t = torch.nn.Conv2d(3, 4, kernel, padding="same", dilation=(1, 3), padding_mode=padding_mode)
    j = nn.Conv2d(3, 4, kernel, padding="same", dilation=(1, 3), padding_mode=padding_mode)
    assert list(j._reversed_padding_repeated_twice) == list(t._reversed_padding_repeated_twice)
    x = _rng(3).standard_normal((2, 3, 7, 12)).astype(np.float32)
    assert_matches_torch(j, t, x, grad_atol=GRAD_ATOL)


@pytest.mark.parametrize("output_size", [[9, 10], torch.Size([2, 6, 10, 9])], ids=["9x10", "Size-nchw"])
def test_conv_transpose_output_size(output_size):
    t = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
    j = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
    x = _rng(4).standard_normal((2, 4, 5, 5)).astype(np.float32)
    assert_matches_torch(j, t, x, kwargs={"output_size": output_size}, grad_atol=GRAD_ATOL)


@pytest.mark.parametrize("size", [[6, 17]])
def test_conv_transpose_output_size_unbatched(size):
    t = torch.nn.ConvTranspose1d(4, 6, 3, stride=3)
    j = nn.ConvTranspose1d(4, 6, 3, stride=3)
    x = _rng(5).standard_normal((4, 5)).astype(np.float32)
    assert_matches_torch(j, t, x, kwargs={"output_size": size}, grad_atol=GRAD_ATOL)


def test_conv_transpose_output_size_errors():
    t = torch.nn.ConvTranspose2d(4, 6, 3, stride=2)
    j = nn.ConvTranspose2d(4, 6, 3, stride=2)
    j.load_state_dict(t.state_dict())
    x = _rng(6).standard_normal((2, 4, 5, 5)).astype(np.float32)
    for size in ([12, 13], [10, 11], [1, 2, 3]):
        assert_same_error(lambda: j(jnp.asarray(x), output_size=size), lambda: t(torch.tensor(x), output_size=size))


@pytest.mark.parametrize(("n", "transposed"), [(1, False), (2, True), (3, False), (1, True)])
def test_functional_matches_torch(n, transposed):
    rng = _rng(7)
    x = rng.standard_normal((2, 4, *(6, 5, 4)[:n])).astype(np.float32)
    b = rng.standard_normal((6,)).astype(np.float32)
    if transposed:
        name = f"conv_transpose{n}d"
        w = rng.standard_normal((4, 3, *(3,) * n)).astype(np.float32)
        args = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    else:
        name = f"conv{n}d"
        w = rng.standard_normal((6, 2, *(3,) * n)).astype(np.float32)
        args = dict(stride=(2,) if n > 1 else 1, padding=1, dilation=2, groups=2)
    j, t = functional_pair(f"F.{name}", getattr(F, name), getattr(torch.nn.functional, name), **args)
    # x, weight and bias are all inputs here, so all three gradients are compared.
    assert_matches_torch(j, t, x, w, b, grad_atol=GRAD_ATOL)


def test_functional_accepts_keyword_arguments_and_no_bias():
    rng = _rng(8)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    out = F.conv2d(
        input=jnp.asarray(x), weight=jnp.asarray(w), bias=None, stride=1, padding="same", dilation=2, groups=1
    )
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), None, 1, "same", 2, 1)
    np.testing.assert_allclose(np.asarray(out), expected.numpy(), atol=1e-5, rtol=1e-5)


# (4, 6, ...) channels like the sweeps above: constructing a layer draws its initial
# weights, which compiles the random draw once per weight shape.
REPR_CASES = [
    ("Conv1d", (4, 6, 3), {"padding": "same", "padding_mode": "circular"}),
    ("Conv2d", (4, 6, 3), {"stride": 2}),
    ("Conv2d", (4, 6, (2, 3)), {"stride": (2, 1), "padding": (4, 2), "dilation": (3, 1)}),
    ("Conv2d", (4, 6, 3), {"groups": 2, "bias": False, "padding_mode": "reflect", "padding": 1}),
    ("Conv2d", (4, 6, 3), {"padding": "valid"}),
    ("Conv3d", (4, 6, (2, 3, 3)), {"stride": (2, 1, 1), "padding": (4, 2, 0)}),
    ("ConvTranspose1d", (4, 6, 3), {"stride": 2}),
    ("ConvTranspose2d", (4, 6, 3), {"output_padding": 1, "stride": 2, "dilation": 2, "groups": 2, "bias": False}),
]


@pytest.mark.parametrize(("cls", "args", "kwargs"), REPR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(REPR_CASES)])
def test_repr_attributes_and_state_dict_match_torch(cls, args, kwargs):
    t = getattr(torch.nn, cls)(*args, **kwargs)
    j = getattr(nn, cls)(*args, **kwargs)
    assert repr(j) == repr(t)
    for attr in [
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "transposed",
        "output_padding",
        "groups",
        "padding_mode",
        "_reversed_padding_repeated_twice",
    ]:
        assert getattr(j, attr) == getattr(t, attr), attr
        assert type(getattr(j, attr)) is type(getattr(t, attr)), attr
    assert {k: tuple(v.shape) for k, v in j.state_dict().items()} == {
        k: tuple(v.shape) for k, v in t.state_dict().items()
    }
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]


@pytest.mark.parametrize(
    ("cls", "args", "kwargs"),
    [
        ("Conv2d", (4, 6, 3), {"groups": 4}),
        ("Conv2d", (4, 6, 3), {"groups": 3}),
        ("Conv2d", (4, 6, 3), {"groups": 0}),
        ("Conv2d", (4, 6, 3), {"padding_mode": "foo"}),
        ("Conv2d", (4, 6, 3), {"padding": "foo"}),
        ("Conv2d", (4, 6, 3), {"padding": "same", "stride": 2}),
        ("Conv1d", (4, 6, 3), {"padding": "same", "stride": (2,)}),
        ("ConvTranspose2d", (4, 6, 3), {"padding_mode": "reflect"}),
        ("ConvTranspose1d", (4, 6, 3), {"padding_mode": "circular", "groups": 3}),
        ("ConvTranspose3d", (4, 6, 3), {"groups": 3}),
    ],
)
def test_constructor_errors_match_torch(cls, args, kwargs):
    assert_same_error(lambda: getattr(nn, cls)(*args, **kwargs), lambda: getattr(torch.nn, cls)(*args, **kwargs))


def _err_cases():
    x4 = np.zeros((2, 4, 5, 5), np.float32)
    w = np.zeros((6, 4, 3, 3), np.float32)
    wt = np.zeros((4, 3, 3, 3), np.float32)
    return [
        ("conv2d", (np.zeros((2, 3), np.float32), w), {}),
        ("conv2d", (np.zeros((2, 3, 5, 5), np.float32), w), {}),
        ("conv2d", (np.zeros((3, 5, 5), np.float32), w), {}),
        ("conv2d", (x4, w), {"padding": "same", "stride": 2}),
        ("conv2d", (x4, w), {"padding": "foo"}),
        ("conv2d", (x4, np.zeros((6, 2, 3, 3), np.float32)), {"groups": 3}),
        ("conv2d", (x4, w), {"groups": 0}),
        ("conv2d", (x4, w), {"stride": 0}),
        ("conv2d", (x4, w), {"padding": -1}),
        ("conv2d", (x4, w), {"dilation": 0}),
        ("conv2d", (x4, np.zeros((6, 4, 7, 7), np.float32)), {}),
        ("conv2d", (x4, w, np.zeros(5, np.float32)), {}),
        ("conv2d", (x4, w), {"stride": (1, 1, 1)}),
        ("conv2d", (x4, w), {"dilation": [1, 1, 1]}),
        ("conv1d", (np.zeros((2, 4, 5), np.float32), np.zeros((6, 4, 3), np.float32)), {"padding": (1, 1)}),
        ("conv_transpose2d", (x4, wt), {"output_padding": 1}),
        ("conv_transpose2d", (x4, wt), {"output_padding": 2, "stride": 2}),
        ("conv_transpose2d", (x4, np.zeros((5, 3, 3, 3), np.float32)), {}),
        ("conv_transpose2d", (x4, wt), {"groups": 3}),
        ("conv_transpose2d", (x4, wt), {"padding": "same"}),
        (
            "conv_transpose3d",
            (np.zeros((2, 4, 5, 5, 5), np.float32), np.zeros((4, 3, 3, 3, 3), np.float32)),
            {"output_padding": 1},
        ),
    ]


ERR_CASES = _err_cases()


@pytest.mark.parametrize(("fn", "args", "kwargs"), ERR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ERR_CASES)])
def test_functional_errors_match_torch(fn, args, kwargs):
    assert_same_error(
        lambda: getattr(F, fn)(*[jnp.asarray(a) for a in args], **kwargs),
        lambda: getattr(torch.nn.functional, fn)(*[torch.tensor(a) for a in args], **kwargs),
    )


def test_forward_errors_match_torch():
    t = torch.nn.Conv2d(4, 6, 3)
    j = nn.Conv2d(4, 6, 3)
    for shape in [(2, 3, 5, 5), (2, 4), (1, 2, 4, 5, 5)]:
        x = np.zeros(shape, np.float32)
        assert_same_error(lambda: j(jnp.asarray(x)), lambda: t(torch.tensor(x)))
    t = torch.nn.ConvTranspose2d(4, 6, 3)
    j = nn.ConvTranspose2d(4, 6, 3)
    t.padding_mode = j.padding_mode = "reflect"
    x = np.zeros((2, 4, 5, 5), np.float32)
    assert_same_error(lambda: j(jnp.asarray(x)), lambda: t(torch.tensor(x)))


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        ("Conv2d", (16, 32, 3)),
        ("ConvTranspose2d", (8, 32, (3, 5), 1, 0, 0, 4)),
    ],
)
def test_default_init_distribution(cls, args):
    """weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform a=sqrt(5)), bias the same bound.

    fan_in is weight.shape[1] * prod(kernel): in_channels/groups * k for Conv,
    out_channels/groups * k for ConvTranspose (torch computes it from the weight's
    shape, so it is the *output* channels for transposed convolutions).
    """
    jmod.manual_seed(0)
    j = getattr(nn, cls)(*args)
    t = getattr(torch.nn, cls)(*args)
    assert j.weight.shape == tuple(t.weight.shape)
    fan_in = t.weight.shape[1] * math.prod(t.weight.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    w = np.asarray(j.weight)
    b = np.asarray(j.bias)
    assert np.abs(w).max() <= bound
    assert np.abs(b).max() <= bound
    # the extremes approach the bound and the std matches U(-b, b)'s b/sqrt(3)
    assert np.abs(w).max() > 0.98 * bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.05)
    np.testing.assert_allclose(w.mean(), 0.0, atol=0.05 * bound)
    # torch's own draw obeys the same numbers (the formula is torch's, not ours)
    tw = t.weight.detach().numpy()
    np.testing.assert_allclose(tw.std(), bound / math.sqrt(3), rtol=0.05)
    assert np.abs(tw).max() <= bound
    # a second layer draws different values, reset_parameters redraws
    j2 = getattr(nn, cls)(*args)
    assert not np.array_equal(np.asarray(j2.weight), w)
    j2.reset_parameters()
    assert np.abs(np.asarray(j2.weight)).max() <= bound


def test_dtype_and_subclass_conv_forward():
    """``dtype=`` sets the parameter dtype; ``_conv_forward`` is overridable as in torch."""
    m = nn.Conv2d(2, 3, 3, dtype=jnp.bfloat16)
    assert m.weight.dtype == jnp.bfloat16 and m.bias.dtype == jnp.bfloat16

    class WSConv(nn.Conv2d):  # weight standardisation, a common torch idiom
        def forward(self, x):
            w = self.weight
            w = (w - w.mean(axis=(1, 2, 3), keepdims=True)) / (w.std(axis=(1, 2, 3), keepdims=True) + 1e-5)
            return self._conv_forward(x, w, self.bias)

    class TWSConv(torch.nn.Conv2d):
        def forward(self, x):
            w = self.weight
            w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True, unbiased=False) + 1e-5)
            return self._conv_forward(x, w, self.bias)

    x = _rng(9).standard_normal((2, 2, 6, 6)).astype(np.float32)
    # Standardising divides by a std over only 18 weights, which amplifies the
    # float32 rounding differences of mean/std (and their gradients) ~10x.
    assert_matches_torch(
        WSConv(2, 3, 3, padding_mode="reflect", padding=1),
        TWSConv(2, 3, 3, padding_mode="reflect", padding=1),
        x,
        atol=1e-4,
        grad_atol=1e-3,
    )
