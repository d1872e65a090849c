"""F.affine_grid and F.grid_sample against torch: every mode x padding mode x align_corners,
2-D and 3-D, grids reaching outside [-1, 1] and grids exactly on the borders; outputs and
gradients with respect to the input, the grid and theta."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from tests.helpers import assert_close, assert_matches_torch, record
from tests.parity._layers_b import assert_same_error, functional_pair

pytestmark = pytest.mark.torch

TF = torch.nn.functional


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _grid(shape, seed=1, reach=1.6):
    """Random sampling locations, a good part of them outside [-1, 1]."""
    return np.random.default_rng(seed).uniform(-reach, reach, shape).astype(np.float32)


def _compare_grid_sample(x, g, *, atol, grad_atol, **kwargs):
    """Output and gradients (input and grid) of one grid_sample call against torch, from a
    single compiled forward-and-backward (cheaper than assert_matches_torch's two)."""
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(g, requires_grad=True)
    t_out = TF.grid_sample(tx, tg, **kwargs)
    cot = np.random.default_rng(7).standard_normal(tuple(t_out.shape)).astype(np.float32)
    t_out.backward(torch.tensor(cot))

    @jax.jit
    def fwd_bwd(a, b, c):
        out, vjp = jax.vjp(lambda a, b: F.grid_sample(a, b, **kwargs), a, b)
        return out, vjp(c)

    j_out, (gx, gg) = fwd_bwd(jnp.asarray(x), jnp.asarray(g), jnp.asarray(cot))
    rel_f: list[float] = []
    rel_g: list[float] = []
    fwd = assert_close(j_out, t_out, atol=atol, rtol=atol, what=f"grid_sample {kwargs}", rel_out=rel_f)
    grad = max(
        assert_close(gx, tx.grad, atol=grad_atol, rtol=grad_atol, what=f"grad input {kwargs}", rel_out=rel_g),
        assert_close(gg, tg.grad, atol=grad_atol, rtol=grad_atol, what=f"grad grid {kwargs}", rel_out=rel_g),
    )
    record("F.grid_sample", fwd, grad, max(rel_f), max(rel_g))


def _tol(mode):
    # bicubic sums 16 products in an order that differs a little from torch's vectorised kernel
    return (1e-5, 5e-5) if mode == "bicubic" else (2e-6, 1e-5)


MODES = [(2, "bilinear"), (2, "nearest"), (2, "bicubic"), (3, "bilinear"), (3, "nearest")]


@pytest.mark.parametrize("ac", [False, True], ids=["ac0", "ac1"])
@pytest.mark.parametrize(("nd", "mode"), MODES, ids=[f"{nd}d-{mode}" for nd, mode in MODES])
def test_grid_sample_matches_torch(nd, mode, ac):
    """Every mode x padding mode x align_corners, with a grid reaching well outside [-1, 1]."""
    if nd == 2:
        x, g = _x((2, 3, 4, 5)), _grid((2, 3, 4, 2))
    else:
        x, g = _x((2, 2, 3, 4, 5)), _grid((2, 2, 3, 4, 3))
    atol, grad_atol = _tol(mode)
    for pad in ("zeros", "border", "reflection"):
        _compare_grid_sample(x, g, atol=atol, grad_atol=grad_atol, mode=mode, padding_mode=pad, align_corners=ac)


@pytest.mark.parametrize(
    ("nd", "mode", "pad", "ac"),
    [(2, "bilinear", "zeros", False), (2, "bicubic", "reflection", True), (3, "bilinear", "border", False)],
)
def test_grid_sample_compiled_matches_torch(nd, mode, pad, ac):
    """Through assert_matches_torch: eager, jax.jit and jmod.jit, gradients for a random cotangent."""
    if nd == 2:
        x, g = _x((2, 3, 4, 5)), _grid((2, 3, 4, 2))
    else:
        x, g = _x((2, 2, 3, 4, 5)), _grid((2, 2, 3, 4, 3))
    j, t = functional_pair(
        "F.grid_sample", F.grid_sample, TF.grid_sample, mode=mode, padding_mode=pad, align_corners=ac
    )
    atol, grad_atol = _tol(mode)
    assert_matches_torch(j, t, x, g, atol=atol, rtol=atol, grad_atol=grad_atol, grad_rtol=grad_atol)


BORDER_CASES = {
    2: [("bilinear", "border"), ("bilinear", "reflection"), ("nearest", "zeros")],
    3: [("bilinear", "border"), ("bilinear", "reflection"), ("nearest", "reflection")],
}


@pytest.mark.parametrize("ac", [False, True], ids=["ac0", "ac1"])
@pytest.mark.parametrize("nd", [2, 3])
def test_grid_sample_on_the_borders_matches_torch(nd, ac):
    """A scaled identity grid from affine_grid: points exactly on the borders and on pixel
    centres, where torch's clamp derivative is 0 and nearest rounds half to even."""
    size = (2, 2, 4, 5) if nd == 2 else (2, 2, 3, 4, 5)
    theta = np.zeros((2, nd, nd + 1), np.float32)
    for i in range(nd):
        theta[:, i, i] = (1.0, 1.5)
    g = TF.affine_grid(torch.tensor(theta), size, align_corners=ac).numpy()
    for mode, pad in BORDER_CASES[nd]:
        atol, grad_atol = _tol(mode)
        _compare_grid_sample(
            _x(size, 3), g, atol=atol, grad_atol=grad_atol, mode=mode, padding_mode=pad, align_corners=ac
        )


@pytest.mark.parametrize(("size", "ac"), [((2, 3, 4, 6), False), ((2, 3, 5, 1), True), ((1, 2, 3, 4, 5), False)])
def test_affine_grid_matches_torch(size, ac):
    nd = len(size) - 2
    theta = _x((size[0], nd, nd + 1), 4)
    j, t = functional_pair("F.affine_grid", F.affine_grid, TF.affine_grid, list(size), align_corners=ac)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the unit-size warning, checked below
        assert_matches_torch(j, t, theta, atol=1e-6, rtol=1e-6)


def test_spatial_transformer_matches_torch():
    """affine_grid -> grid_sample, differentiated with respect to theta and the image."""

    def j_stn(x, theta):
        return F.grid_sample(x, F.affine_grid(theta, [2, 3, 5, 4], align_corners=False), align_corners=False)

    def t_stn(x, theta):
        return TF.grid_sample(x, TF.affine_grid(theta, [2, 3, 5, 4], align_corners=False), align_corners=False)

    j, t = functional_pair("F.grid_sample", j_stn, t_stn)
    assert_matches_torch(j, t, _x((2, 3, 6, 7)), _x((2, 2, 3), 5), atol=2e-6, rtol=2e-6, grad_atol=1e-5)


def test_half_precision_and_dtype():
    x, g = _x((1, 2, 4, 5)), _grid((1, 3, 3, 2))
    out = F.grid_sample(jnp.asarray(x, jnp.float16), jnp.asarray(g, jnp.float16), align_corners=False)
    assert out.dtype == jnp.float16
    expected = TF.grid_sample(torch.tensor(x).half(), torch.tensor(g).half(), align_corners=False)
    np.testing.assert_allclose(np.asarray(out, np.float32), expected.float().numpy(), atol=1e-2)
    theta = np.eye(2, 3, dtype=np.float32)[None]
    assert F.affine_grid(jnp.asarray(theta, jnp.float16), [1, 1, 3, 3], align_corners=True).dtype == jnp.float16


def test_align_corners_default_warns_like_torch():
    x, g = _x((1, 1, 3, 3)), _grid((1, 2, 2, 2))
    theta = np.eye(2, 3, dtype=np.float32)[None]
    for j_call, t_call in (
        (lambda: F.grid_sample(x, g), lambda: TF.grid_sample(torch.tensor(x), torch.tensor(g))),
        (lambda: F.affine_grid(theta, [1, 1, 3, 3]), lambda: TF.affine_grid(torch.tensor(theta), [1, 1, 3, 3])),
        (
            lambda: F.affine_grid(theta, [1, 1, 1, 3], align_corners=True),
            lambda: TF.affine_grid(torch.tensor(theta), [1, 1, 1, 3], align_corners=True),
        ),
    ):
        with warnings.catch_warnings(record=True) as tw:
            warnings.simplefilter("always")
            expected = t_call().numpy()
        with pytest.warns(UserWarning) as jw:
            out = j_call()
        assert [str(w.message) for w in jw] == [str(w.message) for w in tw]
        np.testing.assert_allclose(np.asarray(out), expected, atol=1e-6)


def test_empty_channels_and_batch():
    x, g = _x((2, 0, 3, 4)), _grid((2, 2, 3, 2))
    assert F.grid_sample(x, g, align_corners=False).shape == (2, 0, 2, 3)
    assert F.grid_sample(_x((0, 2, 3, 4)), _grid((0, 2, 3, 2)), align_corners=False).shape == (0, 2, 2, 3)


X4, G4 = _x((2, 3, 5, 6)), _grid((2, 4, 7, 2))
X5, G5 = _x((2, 3, 4, 5, 6)), _grid((2, 3, 4, 5, 3))
TH = _x((2, 2, 3))

GRID_SAMPLE_ERRORS = [
    (X4, G4, dict(mode="area", align_corners=False)),
    (X4, G4, dict(padding_mode="circular", align_corners=False)),
    (X4, G4.astype(np.float16), dict(align_corners=False)),
    (X4.astype(np.float16), G4, dict(align_corners=False)),
    (X4.astype(np.int32), G4.astype(np.int32), dict(align_corners=False)),
    (X5.astype(np.int32), G5, dict(align_corners=False)),
    (X4, G4[:1], dict(align_corners=False)),
    (X4, G4[..., :1], dict(align_corners=False)),
    (X4, _grid((2, 4, 7, 1, 3)), dict(align_corners=False)),
    (X4[0], G4[0], dict(align_corners=False)),
    (X4[:, :, :0], G4, dict(align_corners=False)),
    (X5, G5, dict(mode="bicubic", align_corners=False)),
    (X5, G5[..., :2], dict(align_corners=False)),
    (X5[:, :, :0], G5, dict(align_corners=False)),
    (_x((2, 3, 4, 5, 6, 7)), _grid((2, 3, 4, 5, 6, 4)), dict(align_corners=False)),
    (_x((2, 3, 4)), _grid((2, 3, 1)), dict(align_corners=False)),
]


@pytest.mark.parametrize(("x", "g", "kwargs"), GRID_SAMPLE_ERRORS, ids=range(len(GRID_SAMPLE_ERRORS)))
def test_grid_sample_errors_match_torch(x, g, kwargs):
    assert_same_error(
        lambda: F.grid_sample(x, g, **kwargs), lambda: TF.grid_sample(torch.tensor(x), torch.tensor(g), **kwargs)
    )


AFFINE_ERRORS = [
    (TH.astype(np.int32), [2, 3, 4, 5]),
    (TH, [2, 3, 4, 5, 6]),
    (_x((2, 3, 4)), [2, 3, 4, 5]),
    (TH, [2, 3, 4]),
    (TH, [2, 3, 0, 5]),
    (TH, (2, 3, 0, 5)),
    (TH, [3, 3, 4, 5]),
    (_x((2, 3, 4)), [3, 3, 4, 5, 6]),
]


@pytest.mark.parametrize(("theta", "size"), AFFINE_ERRORS, ids=range(len(AFFINE_ERRORS)))
def test_affine_grid_errors_match_torch(theta, size):
    assert_same_error(
        lambda: F.affine_grid(theta, size, align_corners=False),
        lambda: TF.affine_grid(torch.tensor(theta), size, align_corners=False),
    )
