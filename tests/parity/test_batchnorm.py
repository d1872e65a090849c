"""BatchNorm1d/2d/3d and F.batch_norm against torch."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from jmod import nn
from jmod._src.arrays import long_dtype
from jmod.func import functional_call
from tests.helpers import assert_close, assert_matches_torch

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(0)

# (class name, input shape)
SHAPES = {
    "BatchNorm1d-2D": ("BatchNorm1d", (6, 3)),
    "BatchNorm1d-3D": ("BatchNorm1d", (4, 3, 5)),
    "BatchNorm2d": ("BatchNorm2d", (3, 3, 4, 2)),
    "BatchNorm3d": ("BatchNorm3d", (2, 3, 2, 3, 2)),
}


def _x(shape, scale=2.0, shift=0.5):
    return (RNG.standard_normal(shape) * scale + shift).astype(np.float32)


def _pair(cls, *args, **kwargs):
    return getattr(nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)


def _warm_up_torch(t, shape, steps=2):
    """Give torch's module non-trivial running statistics and affine parameters."""
    with torch.no_grad():
        if t.weight is not None:
            t.weight.uniform_(0.5, 1.5)
        if t.bias is not None:
            t.bias.uniform_(-0.5, 0.5)
        was = t.training
        t.train()
        for _ in range(steps):
            t(torch.tensor(_x(shape)))
        t.train(was)


# momentum only matters when tracking statistics in training: every (affine, momentum)
# pair there, and both modes for the rest.
BN_OPTIONS = [
    (True, True, 0.1, True),
    (True, True, None, True),
    (False, True, 0.1, True),
    (False, True, None, True),
    (True, True, None, False),
    (False, True, 0.1, False),
    (True, False, 0.1, True),
    (False, False, None, True),
    (True, False, None, False),
    (False, False, 0.1, False),
]


@pytest.mark.parametrize("affine,track_running_stats,momentum,train", BN_OPTIONS)
def test_batchnorm2d_options(affine, track_running_stats, momentum, train):
    kw = dict(affine=affine, track_running_stats=track_running_stats, momentum=momentum)
    j, t = _pair("BatchNorm2d", 3, **kw)
    _warm_up_torch(t, (3, 3, 4, 2))
    assert_matches_torch(j, t, _x((3, 3, 4, 2)), train=train)


@pytest.mark.parametrize(
    "case,train", [(c, True) for c in SHAPES] + [("BatchNorm1d-3D", False), ("BatchNorm3d", False)]
)
def test_batchnorm_shapes(case, train):
    cls, shape = SHAPES[case]
    j, t = _pair(cls, 3, eps=1e-3, momentum=0.3)
    _warm_up_torch(t, shape)
    assert_matches_torch(j, t, _x(shape), train=train)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_no_bias(train):
    j, t = _pair("BatchNorm1d", 3, bias=False)
    assert j.bias is None and "bias" in j._parameters
    _warm_up_torch(t, (5, 3))
    assert_matches_torch(j, t, _x((5, 3)), train=train)


@pytest.mark.parametrize("momentum", [0.1, None, 0.7])
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (5, 3)), ("BatchNorm2d", (2, 3, 3, 2))])
def test_running_stats_accumulate_over_steps(cls, shape, momentum):
    """Several training steps, then eval: running stats and num_batches_tracked follow torch."""
    j, t = _pair(cls, 3, momentum=momentum)
    j.load_state_dict(t.state_dict())
    for step in range(4):
        x = _x(shape, scale=1.0 + step, shift=step - 1.5)
        out_t = t(torch.tensor(x))
        out_j = j(jnp.asarray(x))
        assert_close(out_j, out_t, atol=1e-5, rtol=1e-5, what=f"step {step} output")
        assert_close(j.running_mean, t.running_mean, atol=1e-5, rtol=1e-5, what=f"step {step} running_mean")
        assert_close(j.running_var, t.running_var, atol=1e-5, rtol=1e-5, what=f"step {step} running_var")
        assert int(j.num_batches_tracked) == int(t.num_batches_tracked) == step + 1
        assert j.num_batches_tracked.dtype == long_dtype()
    t.eval()
    j.eval()
    x = _x(shape)
    assert_close(j(jnp.asarray(x)), t(torch.tensor(x)), atol=1e-5, rtol=1e-5, what="eval after training")
    assert int(j.num_batches_tracked) == 4  # eval does not count


def test_running_stats_under_jit_via_functional_call():
    """A compiled training loop threading the buffers gives torch's statistics."""
    j, t = _pair("BatchNorm1d", 3, momentum=None)
    j.load_state_dict(t.state_dict())
    params = dict(j.named_parameters())
    buffers = dict(j.named_buffers())

    @jax.jit
    def step(buffers, x):
        out, new = functional_call(j, (params, buffers), (x,), return_buffers=True)
        return out, {**buffers, **new}

    for i in range(3):
        x = _x((4, 3), shift=float(i))
        out, buffers = step(buffers, jnp.asarray(x))
        assert_close(out, t(torch.tensor(x)), atol=1e-5, rtol=1e-5, what="jit step output")
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        assert_close(buffers[k], getattr(t, k), atol=1e-5, rtol=1e-5, what=k)
    # functional_call left the module itself untouched
    assert int(j.num_batches_tracked) == 0


def test_track_running_stats_flag_flipped_after_construction():
    """torch's quirk: buffers exist but track_running_stats=False -> no update in train, buffers used in eval."""
    for train in (True, False):
        j, t = _pair("BatchNorm1d", 3)
        _warm_up_torch(t, (4, 3))
        t.track_running_stats = False
        j.load_state_dict(t.state_dict())
        j.track_running_stats = False
        assert_matches_torch(j, t, _x((4, 3)), train=train)


def test_buffers_none_without_tracking():
    j, t = _pair("BatchNorm2d", 4, track_running_stats=False)
    assert list(j._buffers) == list(t._buffers) == ["running_mean", "running_var", "num_batches_tracked"]
    assert j.running_mean is None and j.running_var is None and j.num_batches_tracked is None
    assert list(j.state_dict()) == list(t.state_dict()) == ["weight", "bias"]
    assert list(dict(j.named_buffers())) == []
    j.reset_running_stats()  # no-op, as torch


def test_state_dict_keys_shapes_and_dtypes():
    j, t = _pair("BatchNorm1d", 4)
    js, ts = j.state_dict(), t.state_dict()
    assert list(js) == list(ts)
    for k in ts:
        assert tuple(js[k].shape) == tuple(ts[k].shape), k
    assert js["num_batches_tracked"].dtype == long_dtype()
    assert js["running_var"].dtype == jnp.float32
    assert js._metadata[""]["version"] == ts._metadata[""]["version"] == 2
    # and the other way: torch loads jmod's state_dict
    t2 = torch.nn.BatchNorm1d(4)
    t2.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in js.items()})
    assert t2.num_batches_tracked.dtype == torch.int64


def test_load_torch_state_dict_with_counts():
    t = torch.nn.BatchNorm1d(3)
    _warm_up_torch(t, (4, 3), steps=5)
    j = nn.BatchNorm1d(3)
    j.load_state_dict(t.state_dict())
    assert int(j.num_batches_tracked) == 5
    assert j.num_batches_tracked.dtype == long_dtype()
    np.testing.assert_allclose(np.asarray(j.running_mean), t.running_mean.numpy())


@pytest.mark.parametrize("metadata", ["version1", "none"])
def test_load_state_dict_version_migration(metadata):
    """Checkpoints from before version 2 have no num_batches_tracked: torch fills it in."""
    t = torch.nn.BatchNorm1d(3)
    sd = t.state_dict()
    del sd["num_batches_tracked"]
    if metadata == "none":
        sd = collections.OrderedDict(sd)  # a plain dict: no _metadata at all
    else:
        sd._metadata[""]["version"] = 1
    j = nn.BatchNorm1d(3)
    j.num_batches_tracked = jnp.asarray(7, long_dtype())
    result = j.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(j.num_batches_tracked) == 7  # the module's own value is kept, as torch
    t.num_batches_tracked.fill_(7)
    t.load_state_dict(sd)
    assert int(t.num_batches_tracked) == 7
    # version 2 without the key is an error in both
    sd2 = t.state_dict()
    del sd2["num_batches_tracked"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "num_batches_tracked"'):
        j.load_state_dict(sd2)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "num_batches_tracked"'):
        t.load_state_dict(sd2)


def test_reset_running_stats_and_parameters():
    j = nn.BatchNorm1d(3)
    j.weight = jnp.full(3, 2.0)
    j.bias = jnp.full(3, -1.0)
    j(jnp.asarray(_x((4, 3))))
    assert int(j.num_batches_tracked) == 1
    j.reset_running_stats()
    np.testing.assert_array_equal(np.asarray(j.running_mean), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(j.running_var), np.ones(3))
    assert int(j.num_batches_tracked) == 0 and j.num_batches_tracked.dtype == long_dtype()
    np.testing.assert_array_equal(np.asarray(j.weight), np.full(3, 2.0))
    j(jnp.asarray(_x((4, 3))))
    j.reset_parameters()
    np.testing.assert_array_equal(np.asarray(j.weight), np.ones(3))
    np.testing.assert_array_equal(np.asarray(j.bias), np.zeros(3))
    assert int(j.num_batches_tracked) == 0


REPR_CASES = [
    ("BatchNorm1d", (3,), {}),
    ("BatchNorm2d", (8,), dict(eps=1e-3, momentum=None)),
    ("BatchNorm3d", (2,), dict(affine=False, track_running_stats=False)),
    ("BatchNorm1d", (5,), dict(bias=False, momentum=0.5)),
    ("BatchNorm2d", (1,), dict(eps=0.1, affine=False)),
]


@pytest.mark.parametrize("cls,args,kwargs", REPR_CASES)
def test_repr_matches_torch(cls, args, kwargs):
    j, t = _pair(cls, *args, **kwargs)
    assert repr(j) == repr(t)
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]


@pytest.mark.parametrize(
    "cls,bad_shape,msg",
    [
        ("BatchNorm1d", (2, 3, 4, 5), "expected 2D or 3D input (got 4D input)"),
        ("BatchNorm1d", (3,), "expected 2D or 3D input (got 1D input)"),
        ("BatchNorm2d", (2, 3, 4), "expected 4D input (got 3D input)"),
        ("BatchNorm3d", (2, 3, 4, 4), "expected 5D input (got 4D input)"),
    ],
)
def test_check_input_dim(cls, bad_shape, msg):
    j, t = _pair(cls, 3)
    with pytest.raises(ValueError) as te:
        t(torch.zeros(bad_shape))
    with pytest.raises(ValueError) as je:
        j(jnp.zeros(bad_shape))
    assert str(je.value) == str(te.value) == msg


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_one_value_per_channel_in_training(shape):
    cls = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d"}[len(shape)]
    j, t = _pair(cls, 3)
    with pytest.raises(ValueError) as te:
        t(torch.zeros(shape))
    with pytest.raises(ValueError) as je:
        j(jnp.zeros(shape))
    assert str(je.value) == str(te.value)
    assert str(je.value).startswith("Expected more than 1 value per channel when training, got input size")
    # fine in eval mode
    j.eval()
    assert j(jnp.zeros(shape)).shape == shape


def test_wrong_channel_count():
    j, t = _pair("BatchNorm1d", 3)
    for mod in (j, t):
        mod.eval()
    with pytest.raises(RuntimeError) as te:
        t(torch.zeros(2, 4))
    with pytest.raises(RuntimeError) as je:
        j(jnp.zeros((2, 4)))
    assert str(je.value) == str(te.value) == "running_mean should contain 4 elements not 3"


def test_empty_batch():
    j, t = _pair("BatchNorm1d", 3)
    assert_matches_torch(j, t, np.zeros((0, 3), np.float32), train=True, check_grad=False)


# ------------------------------------------------------------------ functional


def _stats():
    return RNG.standard_normal(3).astype(np.float32), RNG.uniform(0.5, 2.0, 3).astype(np.float32)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4)])
def test_functional_batch_norm_and_stats(shape, training, affine):
    x = _x(shape)
    rm, rv = _stats()
    w, b = (
        (RNG.standard_normal(3).astype(np.float32), RNG.standard_normal(3).astype(np.float32))
        if affine
        else (None, None)
    )
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)

    def tt(a):
        return None if a is None else torch.tensor(a)

    expected = torch.nn.functional.batch_norm(torch.tensor(x), t_rm, t_rv, tt(w), tt(b), training, 0.2, 1e-4)

    def jj(a):
        return None if a is None else jnp.asarray(a)

    out = F.batch_norm(jnp.asarray(x), jnp.asarray(rm), jnp.asarray(rv), jj(w), jj(b), training, 0.2, 1e-4)
    assert_close(out, expected, atol=1e-5, rtol=1e-5, what="F.batch_norm")
    out2, new_rm, new_rv = F.batch_norm_with_stats(
        jnp.asarray(x), jnp.asarray(rm), jnp.asarray(rv), jj(w), jj(b), training=training, momentum=0.2, eps=1e-4
    )
    assert_close(out2, expected, atol=1e-5, rtol=1e-5, what="F.batch_norm_with_stats")
    assert_close(new_rm, t_rm, atol=1e-6, rtol=1e-6, what="running_mean")  # torch updated its copy in place
    assert_close(new_rv, t_rv, atol=1e-6, rtol=1e-6, what="running_var")


def test_functional_batch_norm_without_running_stats():
    x = _x((4, 3))
    expected = torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True)
    out, m, v = F.batch_norm_with_stats(jnp.asarray(x), None, None, training=True)
    assert m is None and v is None
    assert_close(out, expected, atol=1e-5, rtol=1e-5, what="no stats")


def test_functional_batch_norm_grad_matches_torch():
    x, w, b = _x((4, 3, 2)), RNG.standard_normal(3).astype(np.float32), RNG.standard_normal(3).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    cot = RNG.standard_normal((4, 3, 2)).astype(np.float32)
    torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True).backward(torch.tensor(cot))
    grads = jax.grad(lambda x, w, b: (F.batch_norm(x, None, None, w, b, training=True) * cot).sum(), argnums=(0, 1, 2))(
        jnp.asarray(x), jnp.asarray(w), jnp.asarray(b)
    )
    assert_close(grads, (tx.grad, tw.grad, tb.grad), atol=1e-5, rtol=1e-5, what="F.batch_norm grads")


@pytest.mark.parametrize(
    "call",
    [
        lambda f, t: f.batch_norm(t.zeros((2, 4)), None, None, training=False),
        lambda f, t: f.batch_norm(t.zeros((2, 4)), t.zeros(4), None, training=False),
        lambda f, t: f.batch_norm(t.zeros((2, 4)), None, None, weight=t.ones(3), training=True),
        lambda f, t: f.batch_norm(t.zeros((2, 4)), None, None, bias=t.ones(3), training=True),
        lambda f, t: f.batch_norm(t.zeros((2, 4)), t.zeros(4), t.ones(3), training=True),
    ],
)
def test_functional_errors_runtime(call):
    with pytest.raises(RuntimeError) as te:
        call(torch.nn.functional, torch)
    with pytest.raises(RuntimeError) as je:
        call(F, jnp)
    assert str(je.value) == str(te.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda f, t: f.batch_norm(t.zeros((2, 4)), t.zeros(4), t.ones(4), training=True, eps=0.0),
        lambda f, t: f.batch_norm(t.zeros((2, 4)), t.zeros(4), t.ones(4), training=False, eps=-1.0),
        lambda f, t: f.batch_norm(t.zeros((1, 4)), None, None, training=True),
    ],
)
def test_functional_errors_value(call):
    with pytest.raises(ValueError) as te:
        call(torch.nn.functional, torch)
    with pytest.raises(ValueError) as je:
        call(F, jnp)
    assert str(je.value) == str(te.value)


def test_half_precision_module():
    """bfloat16 parameters and input: computed in float32, output in bfloat16, like torch."""
    j = nn.BatchNorm2d(3, dtype=jnp.bfloat16)
    assert j.weight.dtype == jnp.bfloat16 and j.running_var.dtype == jnp.bfloat16
    assert j.num_batches_tracked.dtype == long_dtype()
    t = torch.nn.BatchNorm2d(3, dtype=torch.bfloat16)
    x = _x((2, 3, 3, 3))
    out_t = t(torch.tensor(x).bfloat16())
    out_j = j(jnp.asarray(x, jnp.bfloat16))
    assert out_j.dtype == jnp.bfloat16
    # bfloat16 has an 8-bit mantissa: compare at its resolution.
    np.testing.assert_allclose(np.asarray(out_j, np.float32), out_t.detach().float().numpy(), atol=3e-2, rtol=1e-2)
    np.testing.assert_allclose(
        np.asarray(j.running_var, np.float32), t.running_var.float().numpy(), atol=3e-2, rtol=1e-2
    )


def test_torch_dtype_and_device_arguments():
    j = nn.BatchNorm1d(2, dtype=torch.float16, device="cpu")
    assert j.weight.dtype == jnp.float16 and j.running_mean.dtype == jnp.float16
    assert j.num_batches_tracked.dtype == long_dtype()
    assert all(d.platform == "cpu" for d in j.running_var.devices())


# ----------------------------------------------------------------- SyncBatchNorm


@pytest.mark.parametrize("train", [True, False])
def test_sync_batchnorm_matches_torch(train):
    """Without a process group torch's SyncBatchNorm is batch norm over inputs of any rank >= 2."""
    j, t = _pair("SyncBatchNorm", 3, momentum=None)
    _warm_up_torch(t, (4, 3, 2, 2))
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((4, 3, 2, 2)), train=train)
    with pytest.raises(ValueError) as te:
        t(torch.zeros(3))
    with pytest.raises(ValueError) as je:
        j(jnp.zeros(3))
    assert str(je.value) == str(te.value)


def test_convert_sync_batchnorm():
    tnet = torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3, bias=False), torch.nn.Sequential(torch.nn.BatchNorm2d(2))
    )
    jnet = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, bias=False), nn.Sequential(nn.BatchNorm2d(2)))
    jnet.load_state_dict(tnet.state_dict())
    jnet[1].eval()
    tnet[1].eval()
    tconv = torch.nn.SyncBatchNorm.convert_sync_batchnorm(tnet)
    jconv = nn.SyncBatchNorm.convert_sync_batchnorm(jnet)
    assert repr(jconv) == repr(tconv)
    assert type(jconv[1]) is nn.SyncBatchNorm and type(jconv[2][0]) is nn.SyncBatchNorm
    assert jconv[1].training is False and jconv[2][0].training is True
    assert list(jconv.state_dict()) == list(tconv.state_dict())
    # the converted layer shares the original's parameter (torch shares the Parameter object)
    assert jconv[1]._parameters["weight"] is jnet[1]._parameters["weight"]


@pytest.mark.multidevice
def test_batch_statistics_over_a_sharded_batch_are_global():
    """What SyncBatchNorm syncs, jax.jit computes over a batch sharded across devices."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = np.array(jax.devices()[:4])
    if devices.size < 4:
        pytest.skip("needs 4 devices")
    mesh = Mesh(devices, ("batch",))
    m = nn.SyncBatchNorm(3)
    params, buffers = dict(m.named_parameters()), dict(m.named_buffers())
    x = jnp.asarray(_x((8, 3, 2)))
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec("batch")))
    step = jax.jit(lambda x: functional_call(m, (params, buffers), (x,), return_buffers=True))
    out_sharded, new_sharded = step(xs)
    out, new = step(x)
    assert_close(out_sharded, out, atol=1e-6, rtol=1e-6, what="sharded output")
    assert_close(new_sharded["running_var"], new["running_var"], atol=1e-6, rtol=1e-6, what="sharded running_var")
    t = torch.nn.BatchNorm1d(3)
    assert_close(out, t(torch.tensor(np.asarray(x))), atol=1e-5, rtol=1e-5, what="global statistics")
