"""F.interpolate and the Upsample layers against torch (every mode, up and down, fractional scales)."""

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


SHAPES = {3: (2, 3, 7), 4: (2, 3, 5, 6), 5: (1, 2, 3, 4, 5)}

# (mode, ndim, constructor kwargs): up and down, sizes and fractional scale factors,
# with and without align_corners / recompute_scale_factor
MODULE_CASES = [
    ("nearest", 4, dict(scale_factor=(1.7, 0.6))),
    ("nearest", 4, dict(scale_factor=1.1)),  # output == input size: torch's 2-d kernel copies
    ("nearest", 5, dict(scale_factor=(2.0, 1.5, 0.5))),
    ("nearest-exact", 4, dict(size=(3, 11))),
    ("nearest-exact", 5, dict(scale_factor=0.7, recompute_scale_factor=True)),
    ("linear", 3, dict(scale_factor=2.3)),
    ("bilinear", 4, dict(size=(3, 13), align_corners=True)),
    ("bilinear", 4, dict(scale_factor=(0.6, 1.5), recompute_scale_factor=True)),
    ("bicubic", 4, dict(size=(8, 11), align_corners=True)),
    ("bicubic", 4, dict(scale_factor=(0.7, 1.3), align_corners=True)),
    ("trilinear", 5, dict(size=(2, 7, 3), align_corners=True)),
    ("area", 4, dict(scale_factor=(0.5, 1.7))),
]


@pytest.mark.parametrize(
    ("mode", "ndim", "kwargs"), MODULE_CASES, ids=[f"{c[0]}-{c[1]}d-{i}" for i, c in enumerate(MODULE_CASES)]
)
def test_upsample_matches_torch(mode, ndim, kwargs):
    t = torch.nn.Upsample(mode=mode, **kwargs)
    j = nn.Upsample(mode=mode, **kwargs)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(SHAPES[ndim]))


@pytest.mark.parametrize(
    ("mode", "kwargs"),
    [
        ("bilinear", dict(scale_factor=(0.4, 2.5), align_corners=True)),
        ("bicubic", dict(scale_factor=0.55, align_corners=True)),
        ("lanczos", dict(scale_factor=(0.6, 1.5))),
    ],
    ids=lambda v: str(v),
)
def test_antialias_matches_torch(mode, kwargs):
    j, t = functional_pair(
        "F.interpolate[aa]", F.interpolate, torch.nn.functional.interpolate, mode=mode, antialias=True, **kwargs
    )
    assert_matches_torch(j, t, _x((1, 2, 9, 7), 1))


def test_forward_sweep_matches_torch():
    """Forward only, many sizes and scale factors (the index/weight tables are float32-exact)."""
    rng = np.random.default_rng(2)
    specs = [dict(size=s) for s in (1, 4, 7)] + [dict(scale_factor=f) for f in (0.75, 1.1, 1.7, 2.3, 1 / 3)]
    cases = [("nearest", 4, insz, spec) for insz in (2, 5) for spec in specs]
    cases += [("nearest", 3, 5, spec) for spec in specs] + [("nearest-exact", 4, 5, spec) for spec in specs]
    cases += [
        (mode, nd, 5, dict(spec, align_corners=ac))
        for mode, nd in (("linear", 3), ("bicubic", 4))
        for spec in specs[::2]
        for ac in (False, True)
    ]
    worst = 0.0
    for mode, ndim, insz, spec in cases:
        if int(insz * spec.get("scale_factor", 1.0)) == 0:
            continue
        x = rng.standard_normal((1, 2) + (insz,) * (ndim - 2)).astype(np.float32)
        expected = torch.nn.functional.interpolate(torch.tensor(x), mode=mode, **spec).numpy()
        out = np.asarray(F.interpolate(jnp.asarray(x), mode=mode, **spec))
        assert out.shape == expected.shape, (mode, insz, spec)
        np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5, err_msg=f"{mode} {insz} {spec}")
        worst = max(worst, float(np.abs(out - expected).max()))
    assert worst < 1e-5


def test_antialias_torch_bug_with_unit_output_width():
    """torch (2.13, CPU) gives every output row the first row's value when antialiasing to width 1.

    jmod computes the separable filter as for any other width; the first row agrees
    with torch, the others are the filter's true output (checked against a direct
    evaluation of the same separable weights).
    """
    x = np.eye(7, dtype=np.float32)[None, None][:, :, :, :4]
    out = np.asarray(F.interpolate(jnp.asarray(x), size=(2, 1), mode="bilinear", antialias=True))
    expected = torch.nn.functional.interpolate(torch.tensor(x), size=(2, 1), mode="bilinear", antialias=True).numpy()
    np.testing.assert_allclose(out[..., 0, :], expected[..., 0, :], atol=1e-6)
    # direct evaluation: rows first (7 -> 2), then columns (4 -> 1), each checked against torch on its own
    rows = torch.nn.functional.interpolate(torch.tensor(x), size=(2, 4), mode="bilinear", antialias=True)
    both = torch.nn.functional.interpolate(rows.permute(0, 1, 3, 2), size=(1, 2), mode="bilinear", antialias=True)
    np.testing.assert_allclose(out[0, 0, :, 0], both.permute(0, 1, 3, 2).numpy()[0, 0, :, 0], atol=1e-6)


def test_float64_uses_double_index_math():
    x = np.random.default_rng(3).standard_normal((1, 2, 5, 7))
    with jax.enable_x64(True):
        for kwargs in [dict(scale_factor=1.7, mode="bilinear"), dict(size=(9, 3), mode="bicubic", align_corners=True)]:
            out = F.interpolate(jnp.asarray(x, jnp.float64), **kwargs)
            assert out.dtype == jnp.float64
            expected = torch.nn.functional.interpolate(torch.tensor(x), **kwargs).numpy()
            np.testing.assert_allclose(np.asarray(out), expected, atol=1e-12, rtol=1e-12)


def test_integer_input_nearest():
    x = np.arange(2 * 3 * 4).reshape(1, 2, 3, 4).astype(np.uint8)
    out = F.interpolate(jnp.asarray(x), scale_factor=1.5)
    expected = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=1.5)
    assert out.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(out), expected.numpy())


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        ("UpsamplingNearest2d", dict(scale_factor=2)),
        ("UpsamplingNearest2d", dict(size=(7, 3))),
        ("UpsamplingBilinear2d", dict(scale_factor=1.5)),
        ("UpsamplingBilinear2d", dict(size=4)),
    ],
    ids=lambda v: str(v),
)
def test_upsampling_2d_layers_match_torch(cls, kwargs):
    t = getattr(torch.nn, cls)(**kwargs)
    j = getattr(nn, cls)(**kwargs)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((2, 3, 5, 6), 4))


def test_deprecated_functionals_warn_and_match():
    x = _x((1, 2, 3, 4), 5)
    for name, kwargs in [
        ("upsample", dict(scale_factor=2, mode="bilinear")),
        ("upsample_nearest", dict(size=5)),
        ("upsample_bilinear", dict(scale_factor=2)),
    ]:
        with pytest.warns(UserWarning, match="is deprecated"):
            out = getattr(F, name)(jnp.asarray(x), **kwargs)
        with pytest.warns(UserWarning):
            expected = getattr(torch.nn.functional, name)(torch.tensor(x), **kwargs)
        np.testing.assert_allclose(np.asarray(out), expected.numpy(), atol=1e-6)


REPR_CASES = [
    dict(scale_factor=2),
    dict(scale_factor=(2, 3)),
    dict(size=5, mode="linear"),
    dict(size=(3, 4), mode="bilinear", align_corners=True),
    dict(scale_factor=0, size=3),
    dict(scale_factor=2.5, mode="bicubic", recompute_scale_factor=True),
]


@pytest.mark.parametrize("kwargs", REPR_CASES, ids=lambda v: str(v))
def test_repr_and_attributes_match_torch(kwargs):
    t = torch.nn.Upsample(**kwargs)
    j = nn.Upsample(**kwargs)
    assert repr(j) == repr(t)
    for attr in ("name", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"):
        assert getattr(j, attr) == getattr(t, attr), attr


ERROR_CASES = [
    ((1, 2, 5), dict(size=3, align_corners=True)),
    ((1, 2, 5), dict(size=3, scale_factor=2)),
    ((1, 2, 5), dict()),
    ((1, 2, 5), dict(size=(3, 4))),
    ((1, 2, 5), dict(size=[3.0])),
    ((1, 2, 5, 5), dict(scale_factor=(2, 2, 2))),
    ((1, 2, 5), dict(size=3, recompute_scale_factor=True)),
    ((1, 2, 5), dict(size=3, mode="bilinear", antialias=True)),
    ((1, 2, 5, 5), dict(size=3, mode="nearest", antialias=True)),
    ((1, 2, 5), dict(size=3, mode="bilinear")),
    ((1, 2, 5, 5), dict(size=3, mode="linear")),
    ((1, 2, 5, 5), dict(size=3, mode="trilinear")),
    ((1, 2, 5, 5, 5), dict(size=3, mode="bicubic")),
    ((2, 5), dict(size=3)),
    ((1, 2, 5), dict(size=3, mode="foo")),
    ((1, 2, 5, 5), dict(size=3, mode="lanczos")),
    ((1, 2, 5, 5), dict(size=3, mode="lanczos", antialias=True, align_corners=True)),
    ((1, 2, 5), dict(size=0)),
    ((1, 2, 5, 5), dict(size=(0, 2), mode="bilinear")),
    ((1, 2, 5, 5, 5), dict(scale_factor=0.1, mode="trilinear")),
]


@pytest.mark.parametrize(("shape", "kwargs"), ERROR_CASES, ids=[str(i) for i in range(len(ERROR_CASES))])
def test_errors_match_torch(shape, kwargs):
    x = np.zeros(shape, np.float32)
    assert_same_error(
        lambda: F.interpolate(jnp.asarray(x), **kwargs),
        lambda: torch.nn.functional.interpolate(torch.tensor(x), **kwargs),
    )
