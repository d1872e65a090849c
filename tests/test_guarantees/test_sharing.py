"""Guarantee: state written into a module never shares a buffer with an array the
user holds (issue 13, case 5).

``jmod.jit`` donates the state arrays a step replaces, so a module that shared a
buffer with a user's array would delete (or overwrite) that array on the next
compiled step. ``jax.device_put`` returns an array sharing the input's buffer when
it is already in place (and a shard of a replicated array may be the source's own
buffer), so sharing can hide behind a different array object. Checked:

* ``load_state_dict`` into a model sharded with ``jmod.parallel``, then compiled
  steps: the user's source state dict (and the pretrained model it came from) stays
  alive and unchanged;
* an alias of a held parameter made with ``jax.device_put`` survives the next step;
* after ``load_state_dict`` / ``jmod.func.set_state`` the module's arrays share no
  device buffer with the user's (checked with ``unsafe_buffer_pointer``), except
  with ``load_state_dict(..., assign=True)``, which takes the user's arrays as
  torch's ``assign=True`` does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod
from jmod import nn
from tests.test_guarantees._helpers import make_train_step


def _mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))


def _data():
    return jnp.ones((8, 8)), jnp.zeros((8, 8))


def _buffers(x: jax.Array) -> set[int]:
    return {s.data.unsafe_buffer_pointer() for s in x.addressable_shards}


def _check_alive_and_unchanged(held: dict, expected: dict, what: str) -> None:
    deleted = [k for k, v in held.items() if v.is_deleted()]
    assert not deleted, f"{what}: {deleted} were deleted by a compiled step"
    changed = [k for k, v in held.items() if not np.array_equal(np.asarray(v), expected[k])]
    assert not changed, f"{what}: {changed} changed"


@pytest.fixture(scope="module")
def mesh():
    assert jax.device_count() == 8, "tests/conftest.py sets XLA_FLAGS for 8 CPU devices"
    return jmod.parallel.make_mesh((8,), ("data",))


@pytest.mark.multidevice
@pytest.mark.parametrize("layout", ["replicated", "fsdp_min_size"])
def test_load_state_dict_into_sharded_model_keeps_the_source_alive(mesh, layout):
    model = _mlp()
    if layout == "replicated":
        jmod.parallel.shard_module(model, mesh)
    else:  # FSDP with small arrays replicated, as usually configured
        jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data", min_size=100))
    pretrained = _mlp()
    source = pretrained.state_dict()
    expected = {k: np.array(v) for k, v in source.items()}
    model.load_state_dict(source)
    step = make_train_step()
    opt = jmod.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        step(model, opt, *_data())
    _check_alive_and_unchanged(source, expected, "the source state dict")
    assert np.isfinite(np.asarray(pretrained(jnp.ones((2, 8))))).all()


@pytest.mark.parametrize("layout", ["single_device", pytest.param("replicated", marks=pytest.mark.multidevice)])
def test_device_put_alias_of_a_held_parameter_survives_the_next_step(mesh, layout):
    model = _mlp()
    if layout == "replicated":
        jmod.parallel.shard_module(model, mesh)
    step = make_train_step()
    opt = jmod.optim.SGD(model.parameters(), lr=0.1)
    step(model, opt, *_data())
    w = model[0].weight
    # "my own copy on the device" -- jax may hand back the same buffer
    held = jax.device_put(w, w.sharding if layout == "single_device" else jax.devices()[0])
    expected = np.array(w)
    del w
    step(model, opt, *_data())
    _check_alive_and_unchanged({"copy of 0.weight": held}, {"copy of 0.weight": expected}, "the user's copy")


def _load(model, sd):
    model.load_state_dict(sd)


def _set_state(model, sd):
    jmod.func.set_state(model, sd)


def _load_replicated(model, sd):
    mesh = jmod.parallel.make_mesh((8,), ("data",))
    jmod.parallel.shard_module(model, mesh)
    model.load_state_dict(sd)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(_load, id="load_state_dict"),
        pytest.param(_set_state, id="set_state"),
        pytest.param(_load_replicated, id="load_state_dict_sharded", marks=pytest.mark.multidevice),
    ],
)
def test_written_state_shares_no_buffer_with_the_users_arrays(write):
    model = _mlp()
    user = {
        k: jnp.asarray(np.random.default_rng(0).standard_normal(v.shape), v.dtype)
        for k, v in _mlp().state_dict().items()
    }
    expected = {k: np.array(v) for k, v in user.items()}
    write(model, user)
    state = model.state_dict()
    shared = [k for k in user if _buffers(user[k]) & _buffers(state[k])]
    assert not shared, f"the module shares the device buffers of the user's {shared}"
    # the values were written, and a compiled step leaves the user's arrays alone
    for k in user:
        np.testing.assert_array_equal(np.asarray(state[k]), expected[k])
    del state
    step = make_train_step()
    opt = jmod.optim.SGD(model.parameters(), lr=0.1)
    step(model, opt, *_data())
    _check_alive_and_unchanged(user, expected, "the user's arrays")


def test_load_state_dict_assign_takes_the_users_arrays():
    """The exception the user asks for: torch's assign=True keeps the given tensors."""
    model = _mlp()
    user = {k: jnp.full(v.shape, 0.5, v.dtype) for k, v in model.state_dict().items()}
    model.load_state_dict(user, assign=True)
    state = model.state_dict()
    assert all(_buffers(user[k]) == _buffers(state[k]) for k in user)
