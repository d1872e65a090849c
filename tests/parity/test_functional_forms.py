"""Functional forms not called directly by the family suites (their modules are), and
MaxUnpool3d, against torch.

Each case is one ``assert_matches_torch`` of the functional with non-default options;
the wrappers are named ``F.<name>`` in the parity table.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._layers_b import functional_pair

pytestmark = pytest.mark.torch


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# name, positional arguments after the input, keyword arguments, input shape
CASES = [
    ("adaptive_max_pool1d_with_indices", (3,), {}, (2, 3, 8)),
    ("adaptive_max_pool2d_with_indices", ((3, None),), {}, (2, 3, 7, 5)),
    ("adaptive_max_pool3d_with_indices", (2,), {}, (3, 5, 4, 6)),  # unbatched
    ("avg_pool1d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 8)),
    ("avg_pool3d", (2, 1, 1), {"divisor_override": 3}, (1, 2, 4, 3, 5)),
    ("logsigmoid", (), {}, (3, 7)),
    ("softplus", (2.0, 3.0), {}, (3, 7)),
    ("lp_pool1d", (2.0, 3, 2), {"ceil_mode": True}, (2, 3, 8)),
    ("lp_pool3d", (3.0, 2), {}, (1, 2, 4, 4, 6)),
    ("max_pool1d_with_indices", (3, 2, 1, 2, True), {}, (2, 3, 9)),
    ("max_pool3d_with_indices", ((2, 3, 2),), {"stride": 1, "padding": 1}, (1, 2, 4, 3, 4)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", CASES, ids=[c[0] for c in CASES])
def test_functional(name, args, kwargs, shape):
    x = _x(*shape)
    if name.startswith("softplus"):
        x = x * 4  # both sides of the threshold
    j, t = functional_pair(f"F.{name}", getattr(F, name), getattr(TF, name), *args, **kwargs)
    assert_matches_torch(j, t, x)


@pytest.mark.parametrize("n", [1, 3])
def test_max_unpool(n):
    """F.max_unpool1d/3d, and the MaxUnpool3d module, from torch's pooled values and indices."""
    shape = {1: (2, 3, 8), 3: (1, 2, 4, 4, 6)}[n]
    x = _x(*shape, seed=n)
    values, indices = getattr(TF, f"max_pool{n}d")(torch.tensor(x), 2, return_indices=True)
    inputs = (values.numpy(), indices.numpy())
    fns = getattr(F, f"max_unpool{n}d"), getattr(TF, f"max_unpool{n}d")
    j, t = functional_pair(f"F.max_unpool{n}d", *fns, 2, output_size=list(shape[-n:]))
    assert_matches_torch(j, t, *inputs)
    if n == 3:
        t, j = torch.nn.MaxUnpool3d(2), nn.MaxUnpool3d(2)
        assert repr(j) == repr(t)
        assert_matches_torch(j, t, *inputs)
