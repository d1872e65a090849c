import numpy as np
import pytest
import torch

from jmod import nn
from tests.helpers import assert_matches_torch


@pytest.mark.torch
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    t = torch.nn.Linear(5, 3, bias=bias)
    j = nn.Linear(5, 3, bias=bias)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    assert_matches_torch(j, t, x)
