"""Guarantee: nothing jmod caches keeps a user's objects alive (issue 13, case 2).

Models and optimizers trained through one shared ``@jmod.jit`` step (a sweep,
k-fold, a notebook re-running its setup cell) and then deleted are freed: their
device memory (``jax.live_arrays()``) comes back and weak references to them die,
without ``jax.clear_caches()``. The compiled code is keyed by structure, so a fresh
model and optimizer of the same structure reuse it: one trace in total. The same
holds for ``model.compile()``, and ``step.clear_cache()`` really clears.
"""

from __future__ import annotations

import gc
import weakref

import jax
import pytest

import jmod
from jmod import nn
from tests.test_guarantees._helpers import batch, make_train_step

MB = 1 << 20
N_PAIRS = 20


def live_bytes() -> int:
    gc.collect()
    return sum(a.nbytes for a in jax.live_arrays())


def sweep_model() -> nn.Module:
    # ~25k parameters: a pair with Adam holds ~300 kB, so 20 leaked pairs are ~6 MB,
    # well above the 1 MB allowed.
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 8))


@pytest.fixture(scope="module")
def sweep():
    """20 fresh model+Adam pairs trained 3 steps each through one shared step, then deleted."""
    traces = [0]
    step = make_train_step(traces)
    x, y = batch(16, 64, 8)
    start = live_bytes()
    refs = []
    for _ in range(N_PAIRS):
        model = sweep_model()
        opt = jmod.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(3):
            step(model, opt, x, y)
        refs += [weakref.ref(model), weakref.ref(opt)]
        del model, opt
    leaked = live_bytes() - start
    alive = sum(r() is not None for r in refs)
    return {"traces": traces[0], "leaked": leaked, "alive": alive, "step": step, "x": x, "y": y}


def test_deleted_models_and_optimizers_are_freed(sweep):
    assert sweep["alive"] == 0, f"{sweep['alive']} of {2 * N_PAIRS} deleted models/optimizers are still alive"


def test_deleted_models_return_their_device_memory(sweep):
    assert sweep["leaked"] < MB, f"{sweep['leaked'] / MB:.1f} MB of arrays still live after deleting every model"


def test_fresh_model_and_optimizer_reuse_the_compiled_step(sweep):
    assert sweep["traces"] == 1, (
        f"{N_PAIRS} same-structure model/optimizer pairs traced the step {sweep['traces']} times"
    )


def test_clear_cache_frees_and_recompiles():
    traces = [0]
    step = make_train_step(traces)
    x, y = batch(16, 64, 8)
    start = live_bytes()
    model = sweep_model()
    opt = jmod.optim.Adam(model.parameters(), lr=1e-3)
    step(model, opt, x, y)
    refs = [weakref.ref(model), weakref.ref(opt)]
    del model, opt
    step.clear_cache()
    leaked = live_bytes() - start
    assert [r() is None for r in refs] == [True, True], "clear_cache() left the deleted model/optimizer alive"
    assert leaked < MB, f"{leaked / MB:.1f} MB still live after clear_cache()"
    # the step still works afterwards, and the cache was really cleared (one new trace)
    model = sweep_model()
    opt = jmod.optim.Adam(model.parameters(), lr=1e-3)
    step(model, opt, x, y)
    assert traces[0] == 2


def test_compiled_modules_are_freed():
    x, _ = batch(8, 256, 1)
    start = live_bytes()
    refs = []
    for _ in range(5):
        # two 256x256 layers: ~0.5 MB per model, ~2.6 MB if all five leak
        model = nn.Sequential(nn.Linear(256, 256), nn.BatchNorm1d(256), nn.Linear(256, 256))
        model.compile()
        for _ in range(2):
            model(x)
        refs.append(weakref.ref(model))
        del model
    leaked = live_bytes() - start
    alive = sum(r() is not None for r in refs)
    assert alive == 0, f"{alive} of 5 deleted compiled models are still alive"
    assert leaked < MB, f"{leaked / MB:.1f} MB still live after deleting the compiled models"
