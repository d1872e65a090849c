"""Flatten, Unflatten, PixelShuffle and PixelUnshuffle against torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._helpers_layers_a import assert_same_signature, same_error

pytestmark = pytest.mark.torch

X4 = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)


@pytest.mark.parametrize("start_dim,end_dim", [(1, -1), (0, -1), (0, 2), (2, 3), (1, 1), (-3, -2)])
def test_flatten_matches_torch(start_dim, end_dim):
    j, t = nn.Flatten(start_dim, end_dim), torch.nn.Flatten(start_dim, end_dim)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, X4, check_jit=(start_dim, end_dim) == (1, -1))


@pytest.mark.parametrize(
    "dim,sizes", [(1, (3, 1)), (-1, (5, 1)), (2, [2, -1]), (0, (1, 2)), (3, (-1,)), (1, torch.Size([1, 3]))]
)
def test_unflatten_matches_torch(dim, sizes):
    j, t = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    if not isinstance(sizes, torch.Size):  # torch prints its own Size type
        assert repr(j) == repr(t)
    assert_matches_torch(j, t, X4, check_jit=dim == 1 and sizes == (3, 1))


def test_flatten_unflatten_errors_match_torch():
    same_error(lambda: nn.Flatten()(jnp.ones(3)), lambda: torch.nn.Flatten()(torch.ones(3)))
    same_error(lambda: nn.Flatten()(jnp.ones(())), lambda: torch.nn.Flatten()(torch.ones(())))
    same_error(lambda: nn.Flatten(2, 1)(jnp.ones((2, 3, 4))), lambda: torch.nn.Flatten(2, 1)(torch.ones(2, 3, 4)))
    same_error(lambda: nn.Flatten(1, 5)(jnp.ones((2, 3, 4))), lambda: torch.nn.Flatten(1, 5)(torch.ones(2, 3, 4)))
    np.testing.assert_array_equal(np.asarray(nn.Flatten(0)(jnp.asarray(3.0))), [3.0])  # 0-d -> 1-d, as torch
    same_error(
        lambda: nn.Unflatten(1, (2, 3))(jnp.ones((2, 7))), lambda: torch.nn.Unflatten(1, (2, 3))(torch.ones(2, 7))
    )
    same_error(
        lambda: nn.Unflatten(1, (3, -1))(jnp.ones((2, 8))), lambda: torch.nn.Unflatten(1, (3, -1))(torch.ones(2, 8))
    )
    same_error(lambda: nn.Unflatten(1, ())(jnp.ones((2, 8))), lambda: torch.nn.Unflatten(1, ())(torch.ones(2, 8)))
    same_error(
        lambda: nn.Unflatten(2, (2, 4))(jnp.ones((2, 8))), lambda: torch.nn.Unflatten(2, (2, 4))(torch.ones(2, 8))
    )
    same_error(lambda: nn.Unflatten(1, 8), lambda: torch.nn.Unflatten(1, 8))
    same_error(lambda: nn.Unflatten(1, (2, 4.0)), lambda: torch.nn.Unflatten(1, (2, 4.0)))
    # torch appends a C++ stack trace to these two; the first line matches
    for sizes, shape in [((-1, -1), (2, 8)), ((0, -1), (2, 0))]:
        with pytest.raises(RuntimeError) as exc:
            torch.nn.Unflatten(1, sizes)(torch.ones(shape))
        with pytest.raises(RuntimeError) as jexc:
            nn.Unflatten(1, sizes)(jnp.ones(shape))
        assert str(jexc.value).split("\n")[:2] == str(exc.value).split("\n")[:2]


@pytest.mark.parametrize(
    "r,shape", [(2, (2, 8, 3, 2)), (3, (1, 9, 2, 2)), (1, (2, 3, 2, 2)), (2, (4, 2, 2)), (2, (2, 1, 4, 2, 3))]
)
def test_pixel_shuffle_matches_torch(r, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    j, t = nn.PixelShuffle(r), torch.nn.PixelShuffle(r)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, x, check_jit=r == 2 and len(shape) == 4)
    y = np.asarray(j(jnp.asarray(x)))
    np.testing.assert_array_equal(np.asarray(nn.PixelUnshuffle(r)(jnp.asarray(y))), x)  # inverse


@pytest.mark.parametrize("r,shape", [(2, (2, 2, 6, 4)), (3, (1, 1, 6, 9)), (2, (3, 4, 2)), (2, (2, 1, 2, 4, 2))])
def test_pixel_unshuffle_matches_torch(r, shape):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    j, t = nn.PixelUnshuffle(r), torch.nn.PixelUnshuffle(r)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, x, check_jit=r == 2 and len(shape) == 4)


def test_pixel_shuffle_errors_match_torch():
    for jf, tf, arg in [(F.pixel_shuffle, TF.pixel_shuffle, 2), (F.pixel_unshuffle, TF.pixel_unshuffle, 2)]:
        for shape in [(1, 3, 3, 2), (1, 3, 2, 3), (4, 2)]:
            same_error(lambda: jf(jnp.ones(shape), arg), lambda: tf(torch.ones(shape), arg))
        for bad in [0, -1, 2.0]:
            same_error(lambda: jf(jnp.ones((1, 4, 2, 2)), bad), lambda: tf(torch.ones(1, 4, 2, 2), bad))


@pytest.mark.parametrize("name", ["Flatten", "Unflatten", "PixelShuffle", "PixelUnshuffle"])
def test_signature_matches_torch(name):
    assert_same_signature(getattr(nn, name), getattr(torch.nn, name))
