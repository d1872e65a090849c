"""PairwiseDistance, CosineSimilarity and F.pairwise_distance / F.cosine_similarity /
F.pdist against torch: outputs and gradients, broadcasting, the zero-vector edge cases
where torch's backward conventions matter, and torch's errors."""

import math

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


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, math.inf, -1.0])
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance(p, keepdim):
    t = torch.nn.PairwiseDistance(p=p, keepdim=keepdim)
    j = nn.PairwiseDistance(p=p, keepdim=keepdim)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(4, 5), _x(4, 5))


@pytest.mark.parametrize(
    "shapes", [((4, 5), (5,)), ((5,), (5,)), ((1, 5), (3, 5)), ((2, 3, 5), (3, 5))], ids=["row", "1d", "bcast", "3d"]
)
def test_pairwise_distance_broadcasting(shapes):
    j, t = nn.PairwiseDistance(), torch.nn.PairwiseDistance()
    assert_matches_torch(j, t, *(_x(*s) for s in shapes))


def test_pairwise_distance_equal_rows_and_zero_eps():
    # x1 - x2 + eps == 0: the norm's gradient is 0 there in torch (not NaN).
    x = _x(3, 4)
    j, t = nn.PairwiseDistance(eps=0.0), torch.nn.PairwiseDistance(eps=0.0)
    assert_matches_torch(j, t, x, x.copy())
    j, t = nn.PairwiseDistance(p=1.0, eps=0.0), torch.nn.PairwiseDistance(p=1.0, eps=0.0)
    assert_matches_torch(j, t, x, x.copy())


def test_pairwise_distance_integer_inputs_promote():
    a, b = np.array([[1, 2], [3, 4]]), np.array([[0, 0], [3, 5]])
    expected = torch.nn.functional.pairwise_distance(torch.tensor(a), torch.tensor(b)).numpy()
    out = F.pairwise_distance(a, b)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-6)


@pytest.mark.parametrize("dim", [1, 0, -1])
def test_cosine_similarity(dim):
    t = torch.nn.CosineSimilarity(dim=dim)
    j = nn.CosineSimilarity(dim=dim)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x(3, 4, 5), _x(3, 4, 5))


def test_cosine_similarity_broadcasting_and_zero_vectors():
    j, t = nn.CosineSimilarity(dim=-1), torch.nn.CosineSimilarity(dim=-1)
    assert_matches_torch(j, t, _x(3, 1, 5), _x(4, 5))
    # A zero vector: the norm is clamped to eps for the value, and the gradient flows
    # as if unclamped (torch clamps in-place under no_grad); tiny vectors below eps too.
    a, b = _x(4, 6), _x(4, 6)
    a[0] = 0.0
    a[1] *= 1e-10
    b[2] = 0.0
    j, t = nn.CosineSimilarity(), torch.nn.CosineSimilarity()
    assert_matches_torch(j, t, a, b, atol=1e-5, grad_atol=1e-3, grad_rtol=1e-5)
    j, t = nn.CosineSimilarity(eps=0.5), torch.nn.CosineSimilarity(eps=0.5)
    assert_matches_torch(j, t, a * 0.1, b)


def test_cosine_similarity_errors():
    with pytest.raises(RuntimeError) as t_err:
        torch.nn.functional.cosine_similarity(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(RuntimeError) as j_err:
        F.cosine_similarity(np.ones((2, 3), np.int64), np.ones((2, 3), np.int64))
    assert str(j_err.value) == str(t_err.value)
    with pytest.raises(IndexError):
        F.cosine_similarity(np.ones((2, 3), np.float32), np.ones((2, 3), np.float32), dim=2)


@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 0.5, 3.0, math.inf])
def test_pdist(p):
    x = _x(5, 3)
    x[3] = x[1]  # a zero distance: torch's gradient is 0 there
    j, t = functional_pair("F.pdist", F.pdist, torch.nn.functional.pdist)
    assert_matches_torch(j, t, x, p)


def test_pdist_small_and_empty():
    for shape in [(1, 3), (2, 3), (4, 0)]:
        expected = torch.nn.functional.pdist(torch.zeros(shape)).numpy()
        out = np.asarray(F.pdist(np.zeros(shape, np.float32)))
        assert out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "args",
    [
        (np.ones((2, 3, 4), np.float32), 2.0),
        (np.ones((3,), np.float32), 2.0),
        (np.ones((3, 2), np.int64), 2.0),
        (np.ones((3, 2), np.float32), -1.0),
    ],
    ids=["3d", "1d", "int", "negative-p"],
)
def test_pdist_errors(args):
    x, p = args
    with pytest.raises(RuntimeError) as t_err:
        torch.nn.functional.pdist(torch.tensor(x), p)
    with pytest.raises(RuntimeError) as j_err:
        F.pdist(x, p)
    assert str(j_err.value) == str(t_err.value)


def test_in_place_functions_explain_themselves():
    assert not hasattr(F, "relu_")
    with pytest.raises(AttributeError, match=r"no attribute 'relu_'.*x = F\.relu\(x\)"):
        F.relu_  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'no_such_function'"):
        F.no_such_function  # noqa: B018
