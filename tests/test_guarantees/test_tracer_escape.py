"""Guarantee: a traced value stored outside the participants is reported, never
silent (issue 13, case 6).

The most common hook idiom -- a forward hook writing its output into a dict the
user owns (``activation[name] = output``) or appending to a global list -- stores a
tracer when the model runs under ``jmod.jit`` / ``model.compile()``. jmod must
detect it after the trace and say so at the first call, with an error (a
``jmod.errors.JmodError``) or a warning that names the hook (or function) and the
fixes: ``host=True`` and ``jmod.capture``. Either form passes these tests; silence
fails them. The fixes themselves run silently.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod
from jmod import nn

FEATURES: list = []
LOG: list = []


def _model():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def _first_call_reports(call, name: str, fixes: tuple[str, ...] = ("host=True", "capture")) -> str:
    """Run the first compiled call; return the jmod error's or the warning's message
    naming ``name`` and every fix. Fails if the call is silent."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except jmod.errors.JmodError as e:
            messages = [str(e)]
        else:
            messages = [str(w.message) for w in caught]
    relevant = [m for m in messages if name in m]
    assert relevant, f"a traced value was stored outside the call and nothing named {name!r} reported it: {messages}"
    for fix in fixes:
        assert any(fix in m for m in relevant), f"the report does not mention the fix {fix!r}: {relevant}"
    return relevant[0]


def _compiled(kind, model):
    if kind == "jmod.jit":
        return lambda x: jmod.jit(lambda m, x: m(x))(model, x)
    model.compile()
    return model


@pytest.mark.parametrize("kind", ["jmod.jit", "model.compile"])
def test_hook_storing_into_a_users_dict_is_reported(kind):
    activation = {}

    def get_activation(name):
        def store_activation(module, args, output):
            activation[name] = output

        return store_activation

    model = _model()
    model[0].register_forward_hook(get_activation("fc1"))
    run = _compiled(kind, model)
    _first_call_reports(lambda: run(jnp.ones((2, 4))), "store_activation")


@pytest.mark.parametrize("kind", ["jmod.jit", "model.compile"])
def test_hook_appending_to_a_global_list_is_reported(kind):
    FEATURES.clear()

    def append_feature(module, args, output):
        FEATURES.append(output)

    model = _model()
    model[2].register_forward_hook(append_feature)
    run = _compiled(kind, model)
    try:
        _first_call_reports(lambda: run(jnp.ones((2, 4))), "append_feature")
    finally:
        FEATURES.clear()


def test_compiled_function_appending_to_a_global_list_is_reported():
    LOG.clear()

    @jmod.jit
    def predict_and_log(model, x):
        out = model(x)
        LOG.append(out)
        return out

    try:
        _first_call_reports(lambda: predict_and_log(_model(), jnp.ones((2, 4))), "predict_and_log", fixes=())
    finally:
        LOG.clear()


def test_the_suggested_fixes_run_silently():
    """host=True fills the user's dict with concrete arrays on every call; jmod.capture
    returns the activation. No warning (pytest turns warnings into errors here)."""
    activation = {}

    def store_activation(module, args, output):
        activation["fc1"] = output

    model = _model()
    handle = model[0].register_forward_hook(store_activation, host=True)
    step = jmod.jit(lambda m, x: m(x))
    for i in range(2):
        step(model, jnp.full((2, 4), float(i)))
        jax.effects_barrier()
        np.testing.assert_allclose(
            np.asarray(activation["fc1"]), np.asarray(model[0](jnp.full((2, 4), float(i)))), rtol=1e-6
        )
    handle.remove()
    out, feats = jmod.jit(lambda m, x: jmod.capture(m, ["0"])(x))(model, jnp.ones((2, 4)))
    np.testing.assert_allclose(np.asarray(feats["0"]), np.asarray(model[0](jnp.ones((2, 4)))), rtol=1e-6)
