"""``nn.DataParallel``: torch's wrapper (``module.`` state dict prefix, repr, checkpoint
loading) run as one SPMD program over the (8 fake CPU) devices, eagerly and inside a
compiled training step, with the single-device numbers."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn

pytestmark = pytest.mark.multidevice


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(jax.nn.relu(self.bn(self.fc1(x))))


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n)


def test_state_dict_keys_and_repr_match_torch_and_torch_checkpoints_load():
    t = torch.nn.DataParallel(torch.nn.Linear(6, 3))
    j = nn.DataParallel(nn.Linear(6, 3))
    assert list(j.state_dict()) == list(t.state_dict()) == ["module.weight", "module.bias"]
    assert repr(j) == repr(t)
    j.load_state_dict(t.state_dict())
    x = np.ones((8, 6), np.float32)
    np.testing.assert_allclose(np.asarray(j(x)), t(torch.tensor(x)).detach().numpy(), atol=1e-6)
    # the wrapped module is reachable and saves without the prefix, as in torch
    assert list(j.module.state_dict()) == ["weight", "bias"]


def test_outputs_equal_the_module_and_the_work_is_split():
    assert jax.device_count() == 8
    jmod.manual_seed(0)
    ref = Net()
    model = nn.DataParallel(copy.deepcopy(ref))
    assert model.device_ids == list(range(8)) and model.output_device == 0
    for _, p in model.named_parameters():
        assert len(p.sharding.device_set) == 8  # replicated on every device
    x, _ = _data()
    out = model(x)
    assert len(out.sharding.device_set) == 8
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref(x)), atol=1e-6)
    # BatchNorm's statistics come from the whole batch (torch keeps device 0's replica's)
    np.testing.assert_allclose(np.asarray(model.module.bn.running_mean), np.asarray(ref.bn.running_mean), atol=1e-6)
    # a batch that does not split evenly runs whole
    x6, _ = _data(6)
    np.testing.assert_allclose(np.asarray(model(x6)), np.asarray(ref(x6)), atol=1e-6)


def test_compiled_training_matches_one_device_and_traces_once():
    jmod.manual_seed(0)
    ref = Net()
    model = nn.DataParallel(copy.deepcopy(ref))
    traces = []

    def step(m, opt, x, y):
        traces.append(1)
        loss, grads = jmod.value_and_grad(lambda m: nn.functional.cross_entropy(m(x), y))(m)
        opt.step(grads)
        return loss

    step = jmod.jit(step)
    opt_ref = jmod.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    opt = jmod.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for i in range(5):
        x, y = _data(seed=i)
        loss_ref = float(step(ref, opt_ref, jnp.asarray(x), jnp.asarray(y)))
        loss = float(step(model, opt, x, y))
        assert abs(loss - loss_ref) < 1e-5, (i, loss, loss_ref)
    assert len(traces) == 2, "one trace for the plain model, one for the DataParallel one"
    for (k, a), (_, b) in zip(model.module.state_dict().items(), ref.state_dict().items()):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=k)


def test_device_ids_subset_single_device_and_errors():
    model = nn.DataParallel(nn.Linear(6, 3), device_ids=[2, 5], dim=0)
    out = model(np.ones((4, 6), np.float32))
    assert {d.id for d in out.sharding.device_set} == {jax.devices()[2].id, jax.devices()[5].id}
    single = nn.DataParallel(nn.Linear(6, 3), device_ids=[3])
    assert single.module.weight.devices() == {jax.devices()[3]}
    assert single(np.ones((4, 6), np.float32)).shape == (4, 3)
    with pytest.raises(RuntimeError, match="no available devices"):
        nn.DataParallel(nn.Linear(2, 2), device_ids=[])
    with pytest.raises(RuntimeError, match="out of range"):
        nn.DataParallel(nn.Linear(2, 2), device_ids=[99])
