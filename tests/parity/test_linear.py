"""Linear, Bilinear, Identity and F.linear / F.bilinear against torch."""

import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._layers_b import functional_pair

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5)], ids=["unbatched", "2d", "3d"])
def test_linear(shape, bias):
    t = torch.nn.Linear(5, 3, bias=bias)
    j = nn.Linear(5, 3, bias=bias)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(*shape))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [(), (4,), (2, 3)], ids=["unbatched", "1d", "2d"])
def test_bilinear(batch, bias):
    t = torch.nn.Bilinear(3, 4, 2, bias=bias)
    j = nn.Bilinear(3, 4, 2, bias=bias)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(*batch, 3), _x(*batch, 4))


def test_identity_ignores_its_arguments():
    t = torch.nn.Identity(3, unused=True)
    j = nn.Identity(3, unused=True)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(2, 3))


def test_functional_forms():
    x, w, b = _x(2, 3, 5), _x(4, 5), _x(4)
    j, t = functional_pair("F.linear", F.linear, torch.nn.functional.linear)
    assert_matches_torch(j, t, x, w, b)
    assert_matches_torch(j, t, x, w)
    j, t = functional_pair("F.bilinear", F.bilinear, torch.nn.functional.bilinear)
    assert_matches_torch(j, t, _x(4, 3), _x(4, 2), _x(5, 3, 2), _x(5))


@pytest.mark.parametrize("shape", [(3,), (5, 3), (2, 5, 3), ()], ids=["1d", "2d", "3d", "0d"])
def test_shape_mismatch_errors_match_torch(shape):
    with pytest.raises(RuntimeError) as t_err:
        torch.nn.functional.linear(torch.ones(shape), torch.ones(8, 4))
    with pytest.raises(RuntimeError) as j_err:
        F.linear(np.ones(shape, np.float32), np.ones((8, 4), np.float32))
    assert str(j_err.value) == str(t_err.value)
    if shape:
        with pytest.raises(RuntimeError) as j_err:
            nn.Linear(4, 8)(np.ones(shape, np.float32))
        assert str(j_err.value) == str(t_err.value)
