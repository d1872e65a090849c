"""Guarantee: ``donate_argnums`` / ``donate_argnames`` donate exactly what they name
(issue 13, case 4).

As with ``jax.jit``: the named array arguments may be deleted by the call (on CPU
XLA reuses a donated buffer whose shape and dtype match an output), every other
array the user passed stays alive and unchanged.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import jmod
from jmod import nn

pytestmark = pytest.mark.filterwarnings("ignore:Some donated buffers were not usable")


def add3(a, b, c):
    return a + b + c


def _args():
    return jnp.full(3, 1.0), jnp.full(3, 2.0), jnp.full(3, 3.0)


@pytest.mark.parametrize(
    "kwargs,call",
    [
        ({"donate_argnums": (1,)}, lambda f, a, b, c: f(a, b, c)),
        ({"donate_argnums": 1}, lambda f, a, b, c: f(a, b, c)),
        ({"donate_argnames": ("b",)}, lambda f, a, b, c: f(a, b=b, c=c)),
        ({"donate_argnames": "b"}, lambda f, a, b, c: f(a, b=b, c=c)),
    ],
    ids=["argnums-tuple", "argnums-int", "argnames-tuple", "argnames-str"],
)
def test_only_the_named_argument_is_donated(kwargs, call):
    f = jmod.jit(add3, **kwargs)
    a, b, c = _args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = call(f, a, b, c)
    np.testing.assert_array_equal(np.asarray(out), np.full(3, 6.0))
    assert not a.is_deleted(), "a was not named in donate_*, but the call deleted it"
    assert not c.is_deleted(), "c was not named in donate_*, but the call deleted it"
    np.testing.assert_array_equal(np.asarray(a), np.full(3, 1.0))
    np.testing.assert_array_equal(np.asarray(c), np.full(3, 3.0))
    # b was named and matches the output's shape and dtype: XLA on CPU reuses it
    assert b.is_deleted(), "the argument named in donate_* was not donated"


def test_donating_one_argument_of_a_training_step_keeps_the_others():
    """The common use: donate a running accumulator, keep the batch (the step also
    returns its predictions, an output the batch's buffers could be reused for)."""

    @jmod.jit(donate_argnames=("total",))
    def step(model, opt, x, y, total):
        def loss_fn(m):
            pred = m(x)
            return ((pred - y) ** 2).mean(), pred

        (loss, pred), grads = jmod.value_and_grad(loss_fn, has_aux=True)(model)
        opt.step(grads)
        return total + loss, pred

    model = nn.Linear(3, 3)
    opt = jmod.optim.SGD(model.parameters(), lr=0.1)
    x, y = jnp.ones((3, 3)), jnp.zeros((3, 3))
    total = jnp.zeros(())
    for _ in range(3):
        new_total, _ = step(model, opt, x, y, total=total)
        assert total.is_deleted()
        total = new_total
    assert not x.is_deleted() and not y.is_deleted(), "the batch was donated though only `total` was named"
    np.testing.assert_array_equal(np.asarray(x), np.ones((3, 3)))
    np.testing.assert_array_equal(np.asarray(y), np.zeros((3, 3)))
