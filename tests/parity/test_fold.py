"""Fold/Unfold (im2col/col2im) and ChannelShuffle against torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._layers_b import assert_same_error

pytestmark = pytest.mark.torch


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


BLOCK_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=(2, 3), stride=2, padding=1),
    dict(kernel_size=3, dilation=(2, 1), padding=(2, 0), stride=(1, 2)),
]


@pytest.mark.parametrize(("kwargs", "batched"), list(zip(BLOCK_CASES, [True, False, True])), ids=str)
def test_unfold_matches_torch(kwargs, batched):
    t = torch.nn.Unfold(**kwargs)
    j = nn.Unfold(**kwargs)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((2, 3, 7, 8) if batched else (3, 7, 8)))


@pytest.mark.parametrize(("kwargs", "batched"), list(zip(BLOCK_CASES, [False, True, True])), ids=str)
def test_fold_matches_torch(kwargs, batched):
    size = (7, 8)
    cols = torch.nn.functional.unfold(torch.zeros(1, 3, *size), **kwargs).shape[1:]
    t = torch.nn.Fold(size, **kwargs)
    j = nn.Fold(size, **kwargs)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((2, *cols) if batched else tuple(cols), 1))


@pytest.mark.parametrize("groups", [2, 3])
def test_channel_shuffle_matches_torch(groups):
    t = torch.nn.ChannelShuffle(groups)
    j = nn.ChannelShuffle(groups)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((2, 6, 3, 2), 2))
    x = _x((1, 6, 2, 2, 2), 3)
    np.testing.assert_array_equal(
        np.asarray(F.channel_shuffle(jnp.asarray(x), groups)),
        torch.nn.functional.channel_shuffle(torch.tensor(x), groups),
    )


ERROR_CASES = [
    ("unfold", (1, 2, 3, 5, 6), (2,), {}),
    ("unfold", (5, 6), (2,), {}),
    ("unfold", (2, 3, 5, 6), (7,), {}),
    ("unfold", (2, 3, 5, 6), (0,), {}),
    ("unfold", (2, 3, 5, 6), (2,), dict(stride=0)),
    ("unfold", (2, 3, 5, 6), (2,), dict(dilation=0)),
    ("unfold", (2, 3, 5, 6), (2,), dict(padding=-1)),
    ("unfold", (2, 3, 5, 6), ((2, 2, 2),), {}),
    ("unfold", (2, 0, 5, 6), (2,), {}),
    ("fold", (1, 2, 12, 20), ((5, 6), 2), {}),
    ("fold", (2, 13, 20), ((5, 6), 2), {}),
    ("fold", (2, 12, 21), ((5, 6), 2), {}),
    ("fold", (2, 12, 20), ((5, 6), 0), {}),
    ("fold", (2, 12, 20), ((5, 6), 2), dict(stride=0)),
    ("fold", (2, 12, 20), ((0, 6), 2), {}),
    ("fold", (2, 12, 20), ((5, 6, 7), 2), {}),
    ("channel_shuffle", (2, 3, 5, 6), (2,), {}),
    ("channel_shuffle", (2, 3, 5, 6), (0,), {}),
    ("channel_shuffle", (4, 6), (2,), {}),
]


@pytest.mark.parametrize(
    ("fn", "shape", "args", "kwargs"), ERROR_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)]
)
def test_errors_match_torch(fn, shape, args, kwargs):
    x = np.zeros(shape, np.float32)
    assert_same_error(
        lambda: getattr(F, fn)(jnp.asarray(x), *args, **kwargs),
        lambda: getattr(torch.nn.functional, fn)(torch.tensor(x), *args, **kwargs),
    )
