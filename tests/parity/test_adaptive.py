"""AdaptiveLogSoftmaxWithLoss against torch: forward (output, loss) and gradients with
respect to the input and every parameter, with and without head bias, batches that
leave clusters empty, unbatched input, ``log_prob`` and ``predict``, compiled calls with
traced targets, parameter names (``load_state_dict(torch.state_dict())``) and errors.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from tests.helpers import assert_close, assert_matches_torch, record
from tests.parity._helpers_layers_a import same_error

pytestmark = pytest.mark.torch

IN, N_CLASSES, CUTOFFS = 16, 12, [4, 8]


def _pair(head_bias=False, div_value=2.0, method=None):
    torch.manual_seed(0)
    t = torch.nn.AdaptiveLogSoftmaxWithLoss(IN, N_CLASSES, CUTOFFS, div_value=div_value, head_bias=head_bias)
    j = nn.AdaptiveLogSoftmaxWithLoss(IN, N_CLASSES, CUTOFFS, div_value=div_value, head_bias=head_bias)
    assert repr(j) == repr(t)
    assert list(j.state_dict()) == list(t.state_dict())
    if method is None:
        return j, t
    name = f"AdaptiveLogSoftmaxWithLoss.{method}"

    def wrap(base, inner):
        def init(self):
            base.__init__(self)
            self.asm = inner

        return type(name, (base,), {"__init__": init, "forward": lambda self, x: getattr(self.asm, method)(x)})()

    return wrap(nn.Module, j), wrap(torch.nn.Module, t)


def _x(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, IN)).astype(np.float32)


@pytest.mark.parametrize("head_bias", [False, True])
def test_forward_all_clusters(head_bias):
    target = np.array([0, 3, 4, 7, 8, 11, 2, 9], np.int64)
    j, t = _pair(head_bias)
    assert_matches_torch(j, t, _x(8), target, check_jit=head_bias)


def test_forward_empty_clusters_and_unbatched():
    j, t = _pair(div_value=4.0)
    assert_matches_torch(j, t, _x(3, 2), np.array([9, 11, 10], np.int64), check_jit=False)  # last cluster only
    assert_matches_torch(j, t, _x(1, 3)[0], np.array(6, np.int64), check_jit=False)  # unbatched


def test_log_prob_and_predict():
    j, t = _pair(True, method="log_prob")
    assert_matches_torch(j, t, _x(6, 5), check_jit=True)
    j, t = _pair(True, method="predict")
    x = _x(64, 6) * 3  # head argmax both in and out of the shortlist
    assert_matches_torch(j, t, x, check_grad=False, check_jit=True)
    assert (np.asarray(j(jnp.asarray(x))) >= CUTOFFS[0]).any() and (np.asarray(j(jnp.asarray(x))) < CUTOFFS[0]).any()
    # log_prob is normalized
    lp = np.asarray(j.asm.log_prob(jnp.asarray(x)))
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-5)


def test_jmod_jit_traced_targets():
    j, t = _pair(True)
    j.load_state_dict(t.state_dict())
    x, target = _x(8, 7), np.array([11, 0, 5, 9, 4, 3, 8, 1], np.int64)
    out = jmod.jit(lambda m, x, y: m(x, y))(j, jnp.asarray(x), jnp.asarray(target))
    expected = t(torch.tensor(x), torch.tensor(target))
    fe = assert_close(tuple(out), tuple(expected), atol=1e-5, rtol=1e-5, what="AdaptiveLogSoftmaxWithLoss jmod.jit")
    record("AdaptiveLogSoftmaxWithLoss", fe, 0.0)
    assert type(out).__name__ == "_ASMoutput" and out._fields == ("output", "loss")


def test_errors_match_torch():
    for cutoffs, n in [([], 10), ([5, 3], 10), ([0, 3], 10), ([3, 10], 10), ([3, 3], 10), ([2.5], 10)]:
        same_error(
            lambda: nn.AdaptiveLogSoftmaxWithLoss(8, n, cutoffs),
            lambda: torch.nn.AdaptiveLogSoftmaxWithLoss(8, n, cutoffs),
        )
    j, t = _pair()
    j.load_state_dict(t.state_dict())
    x = _x(4)
    for xi, ti in [
        (x, np.array([1, 2, 3], np.int64)),
        (x[None], np.array([1, 2, 3, 4], np.int64)[None]),
        (x[:, None], np.array([1, 2, 3, 4], np.int64)),
        (x, np.array(1, np.int64)),
        (x, np.array([1, 2, 12, 3], np.int64)),
        (x, np.array([-1, 2, 5, 3], np.int64)),
    ]:
        same_error(lambda: j(jnp.asarray(xi), jnp.asarray(ti)), lambda: t(torch.tensor(xi), torch.tensor(ti)))
