"""``jmod.nn.grad`` (convolution input/weight gradients) and ``nn.factory_kwargs``
against torch."""

import numpy as np
import pytest
import torch

from jmod import nn
from tests.helpers import assert_close, record

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(0)
CASES = [
    # dims, input shape, weight shape, stride, padding, dilation, groups
    (1, (2, 4, 9), (6, 4, 3), 1, 0, 1, 1),
    (1, (2, 4, 10), (6, 2, 3), 2, 1, 2, 2),
    (2, (2, 3, 7, 8), (4, 3, 3, 2), 1, 1, 1, 1),
    (2, (1, 4, 9, 9), (4, 2, 3, 3), (2, 1), (1, 0), (1, 2), 2),
    (3, (1, 2, 5, 6, 5), (3, 2, 2, 3, 2), 2, 1, 1, 1),
]


@pytest.mark.parametrize("case", CASES, ids=[f"conv{c[0]}d-{i}" for i, c in enumerate(CASES)])
def test_conv_input_and_weight_gradients_match_torch(case):
    d, x_shape, w_shape, stride, padding, dilation, groups = case
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal(w_shape).astype(np.float32)
    conv = getattr(torch.nn.functional, f"conv{d}d")
    y_shape = conv(torch.tensor(x), torch.tensor(w), None, stride, padding, dilation, groups).shape
    gy = RNG.standard_normal(tuple(y_shape)).astype(np.float32)
    args = (stride, padding, dilation, groups)
    t_gx = getattr(torch.nn.grad, f"conv{d}d_input")(x_shape, torch.tensor(w), torch.tensor(gy), *args)
    t_gw = getattr(torch.nn.grad, f"conv{d}d_weight")(torch.tensor(x), w_shape, torch.tensor(gy), *args)
    j_gx = getattr(nn.grad, f"conv{d}d_input")(x_shape, w, gy, *args)
    j_gw = getattr(nn.grad, f"conv{d}d_weight")(x, w_shape, gy, *args)
    err_x = assert_close(j_gx, t_gx, atol=1e-5, rtol=1e-5, what=f"conv{d}d_input")
    err_w = assert_close(j_gw, t_gw, atol=1e-4, rtol=1e-5, what=f"conv{d}d_weight")
    record(f"nn.grad.conv{d}d", 0.0, max(err_x, err_w))


def test_factory_kwargs_like_torch():
    for kwargs in [None, {}, {"dtype": "f"}, {"device": "cpu", "factory_kwargs": {"dtype": "f"}}]:
        assert nn.factory_kwargs(kwargs) == torch.nn.factory_kwargs(kwargs)
    for bad in [{"size": 3}, {"dtype": "f", "factory_kwargs": {"dtype": "g"}}]:
        with pytest.raises(TypeError) as t_err:
            torch.nn.factory_kwargs(bad)
        with pytest.raises(TypeError) as j_err:
            nn.factory_kwargs(bad)
        assert str(j_err.value) == str(t_err.value)
