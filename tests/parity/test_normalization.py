"""LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, CrossMapLRN2d, InstanceNorm1d/2d/3d
and their functional forms against torch."""

import collections
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_close, assert_matches_torch

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(0)


def _x(shape, scale=1.5, shift=0.3):
    return (RNG.standard_normal(shape) * scale + shift).astype(np.float32)


def _pair(cls, *args, **kwargs):
    return getattr(nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)


def _randomize(t):
    """Non-trivial affine parameters (the defaults are ones and zeros)."""
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.tensor(RNG.uniform(0.5, 1.5, tuple(p.shape)).astype(np.float32)))
    return t


def _same_error(kind, torch_call, jmod_call):
    with pytest.raises(kind) as te:
        torch_call()
    with pytest.raises(kind) as je:
        jmod_call()
    assert str(je.value) == str(te.value)
    return str(je.value)


# --------------------------------------------------------------------- LayerNorm


@pytest.mark.parametrize("elementwise_affine,bias", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("normalized_shape,input_shape", [(4, (3, 4)), ((3, 4), (2, 3, 4)), ([2, 3, 4], (2, 3, 4))])
def test_layer_norm(normalized_shape, input_shape, elementwise_affine, bias):
    j, t = _pair("LayerNorm", normalized_shape, eps=1e-4, elementwise_affine=elementwise_affine, bias=bias)
    _randomize(t)
    assert_matches_torch(j, t, _x(input_shape))
    assert repr(j) == repr(t)
    assert [(n, p.shape) for n, p in j.named_parameters()] == [(n, tuple(p.shape)) for n, p in t.named_parameters()]


def test_layer_norm_errors():
    j, t = _pair("LayerNorm", 3)
    _same_error(RuntimeError, lambda: t(torch.zeros(2, 4)), lambda: j(jnp.zeros((2, 4))))
    _same_error(
        RuntimeError,
        lambda: torch.nn.functional.layer_norm(torch.zeros(2, 4), [4], torch.ones(3)),
        lambda: F.layer_norm(jnp.zeros((2, 4)), [4], jnp.ones(3)),
    )
    _same_error(
        RuntimeError,
        lambda: torch.nn.functional.layer_norm(torch.zeros(2, 4), [4], None, torch.ones(3)),
        lambda: F.layer_norm(jnp.zeros((2, 4)), [4], None, jnp.ones(3)),
    )
    _same_error(
        RuntimeError,
        lambda: torch.nn.functional.layer_norm(torch.zeros(2, 4), []),
        lambda: F.layer_norm(jnp.zeros((2, 4)), []),
    )
    _same_error(
        TypeError,
        lambda: torch.nn.functional.layer_norm(torch.zeros(2, 4), 4),
        lambda: F.layer_norm(jnp.zeros((2, 4)), 4),
    )


def test_layer_norm_half():
    x = _x((3, 8))
    expected = torch.nn.functional.layer_norm(torch.tensor(x).half(), [8])
    out = F.layer_norm(jnp.asarray(x, jnp.float16), [8])
    assert out.dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(out, np.float32), expected.float().numpy(), atol=2e-3, rtol=2e-3)


# --------------------------------------------------------------------- GroupNorm


# Groups of fewer than 3 values ((3, 4) with 2 or 4 groups) are left out on purpose:
# the normalised output is then (nearly) constant, its exact gradient (nearly) 0, and
# torch returns rounding noise scaled by 1/sqrt(eps) (up to ~1e-5), which is not a
# behaviour to match.
GROUP_CASES = [(s, g) for s in [(3, 4), (2, 4, 5), (2, 4, 3, 2)] for g in (1, 2, 4) if s != (3, 4) or g == 1]


@pytest.mark.parametrize(
    "input_shape,num_groups,affine,bias",
    [
        (s, g, a, b)
        for i, (s, g) in enumerate(GROUP_CASES)
        for a, b in [[(True, True), (True, False), (False, True)][i % 3]]
    ],
)
def test_group_norm(input_shape, num_groups, affine, bias):
    j, t = _pair("GroupNorm", num_groups, 4, eps=1e-4, affine=affine, bias=bias)
    _randomize(t)
    assert_matches_torch(j, t, _x(input_shape))
    assert repr(j) == repr(t)


def test_group_norm_errors():
    _same_error(ValueError, lambda: torch.nn.GroupNorm(3, 4), lambda: nn.GroupNorm(3, 4))
    j, t = _pair("GroupNorm", 2, 4)
    # channels divisible by the groups but not matching the weight
    _same_error(RuntimeError, lambda: t(torch.zeros(2, 6, 3)), lambda: j(jnp.zeros((2, 6, 3))))
    _same_error(RuntimeError, lambda: t(torch.zeros(4)), lambda: j(jnp.zeros(4)))
    # torch's batch-size check counts N * C // G values (and ignores G)
    _same_error(
        ValueError, lambda: torch.nn.GroupNorm(4, 4)(torch.zeros(1, 4)), lambda: nn.GroupNorm(4, 4)(jnp.zeros((1, 4)))
    )
    assert nn.GroupNorm(2, 4)(jnp.ones((1, 4))).shape == (1, 4)
    _same_error(
        RuntimeError,
        lambda: torch.nn.functional.group_norm(torch.zeros(2, 6, 3), 4),
        lambda: F.group_norm(jnp.zeros((2, 6, 3)), 4),
    )
    _same_error(
        RuntimeError,
        lambda: torch.nn.functional.group_norm(torch.zeros(2, 6, 3), 3, torch.ones(6), torch.ones(5)),
        lambda: F.group_norm(jnp.zeros((2, 6, 3)), 3, jnp.ones(6), jnp.ones(5)),
    )
    _same_error(
        RuntimeError,
        lambda: torch.nn.functional.group_norm(torch.zeros(2, 6, 3), 3, None, torch.ones(5)),
        lambda: F.group_norm(jnp.zeros((2, 6, 3)), 3, None, jnp.ones(5)),
    )


# ----------------------------------------------------------------------- RMSNorm


@pytest.mark.parametrize(
    "normalized_shape,input_shape,eps,elementwise_affine",
    [
        (5, (3, 5), None, True),
        (5, (3, 5), 1e-3, False),
        ((2, 5), (3, 2, 5), None, False),
        ((2, 5), (3, 2, 5), 1e-3, True),
    ],
)
def test_rms_norm(normalized_shape, input_shape, eps, elementwise_affine):
    j, t = _pair("RMSNorm", normalized_shape, eps=eps, elementwise_affine=elementwise_affine)
    _randomize(t)
    assert_matches_torch(j, t, _x(input_shape, scale=0.5))
    assert repr(j) == repr(t)


def test_rms_norm_default_eps_is_float_eps():
    # tiny inputs make eps dominate: the default must be finfo(float32).eps exactly
    x = _x((2, 4), scale=1e-4, shift=0.0)
    t = torch.nn.RMSNorm(4)
    j = nn.RMSNorm(4)
    assert_close(j(jnp.asarray(x)), t(torch.tensor(x)), atol=1e-5, rtol=1e-5, what="RMSNorm tiny input")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_rms_norm_half(dtype):
    """Half inputs: float32 compute with float32's epsilon (torch's opmath), output in half."""
    x = _x((3, 6), scale=1e-3, shift=0.0)
    tx = torch.tensor(x).to(getattr(torch, dtype))
    w = _x((6,))
    expected = torch.nn.functional.rms_norm(tx, [6], torch.tensor(w).to(getattr(torch, dtype)))
    out = F.rms_norm(jnp.asarray(x).astype(dtype), [6], jnp.asarray(w).astype(dtype))
    assert out.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(np.asarray(out, np.float32), expected.float().numpy(), atol=1e-2, rtol=1e-2)


def test_rms_norm_errors():
    j, t = _pair("RMSNorm", 3)
    _same_error(RuntimeError, lambda: t(torch.zeros(2, 4)), lambda: j(jnp.zeros((2, 4))))
    _same_error(
        TypeError,
        lambda: torch.nn.functional.rms_norm(torch.zeros(2, 4), 4),
        lambda: F.rms_norm(jnp.zeros((2, 4)), 4),
    )


# ------------------------------------------------------------- LocalResponseNorm


@pytest.mark.parametrize(
    "input_shape,size", [((2, 6, 4), 1), ((2, 6, 4), 2), ((2, 6, 3, 2), 3), ((2, 6, 3, 2), 5), ((1, 6, 2, 2, 2), 2)]
)
def test_local_response_norm(input_shape, size):
    j, t = _pair("LocalResponseNorm", size, alpha=0.5, beta=0.6, k=2.0)
    assert_matches_torch(j, t, _x(input_shape))


def test_local_response_norm_defaults_and_errors():
    j, t = _pair("LocalResponseNorm", 3)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((2, 4, 3)))
    _same_error(ValueError, lambda: t(torch.zeros(2, 3)), lambda: j(jnp.zeros((2, 3))))
    assert j(jnp.zeros((0, 3, 4))).shape == (0, 3, 4)


@pytest.mark.parametrize("size,channels", [(2, 3), (3, 7), (5, 7)])
def test_cross_map_lrn2d(size, channels):
    j, t = _pair("CrossMapLRN2d", size, alpha=0.3, beta=0.8, k=1.5)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((2, channels, 3, 2)))


def test_cross_map_lrn2d_error():
    j, t = _pair("CrossMapLRN2d", 3)
    _same_error(ValueError, lambda: t(torch.zeros(2, 3, 4)), lambda: j(jnp.zeros((2, 3, 4))))


# ------------------------------------------------------------------ InstanceNorm

INSTANCE = {
    "InstanceNorm1d": (3, 5),
    "InstanceNorm2d": (3, 4, 3),
    "InstanceNorm3d": (3, 2, 3, 2),
}


# (class, affine, track_running_stats, train), a pairwise cover; eval mode differs from
# train mode only when tracking running statistics.
INSTANCE_OPTIONS = [
    ("InstanceNorm1d", False, False, True),
    ("InstanceNorm1d", True, True, True),
    ("InstanceNorm1d", True, True, False),
    ("InstanceNorm2d", True, False, True),
    ("InstanceNorm2d", False, True, True),
    ("InstanceNorm2d", False, True, False),
    ("InstanceNorm3d", False, True, True),
    ("InstanceNorm3d", True, True, False),
    ("InstanceNorm3d", True, False, True),
]


@pytest.mark.parametrize("cls,affine,track_running_stats,train", INSTANCE_OPTIONS)
def test_instance_norm(cls, affine, track_running_stats, train):
    j, t = _pair(cls, 3, affine=affine, track_running_stats=track_running_stats, momentum=0.3)
    _randomize(t)
    if track_running_stats:
        t.train()
        with torch.no_grad():
            t(torch.tensor(_x((2, *INSTANCE[cls]))))
    assert_matches_torch(j, t, _x((2, *INSTANCE[cls])), train=train)
    assert repr(j) == repr(t)


@pytest.mark.parametrize("cls,momentum", [("InstanceNorm1d", 0.1), ("InstanceNorm2d", None), ("InstanceNorm3d", 0.3)])
def test_instance_norm_unbatched(cls, momentum):
    j, t = _pair(cls, 3, affine=True, track_running_stats=True, momentum=momentum)
    _randomize(t)
    assert_matches_torch(j, t, _x(INSTANCE[cls]), train=True)
    t.zero_grad()  # torch accumulates .grad across the two checks
    assert_matches_torch(j, t, _x(INSTANCE[cls]), train=False)


def test_instance_norm_running_stats_over_steps():
    j, t = _pair("InstanceNorm1d", 3, track_running_stats=True)
    j.load_state_dict(t.state_dict())
    for step in range(3):
        x = _x((4, 3, 5), shift=step)
        assert_close(j(jnp.asarray(x)), t(torch.tensor(x)), atol=1e-5, rtol=1e-5, what="output")
        assert_close(j.running_mean, t.running_mean, atol=1e-6, rtol=1e-5, what="running_mean")
        assert_close(j.running_var, t.running_var, atol=1e-6, rtol=1e-5, what="running_var")
    assert int(j.num_batches_tracked) == int(t.num_batches_tracked) == 0  # instance norm never counts


def test_instance_norm_num_features_mismatch():
    j, t = _pair("InstanceNorm1d", 3)
    with pytest.warns(UserWarning) as jw:
        out = j(jnp.asarray(_x((2, 4, 5))))
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        expected = t(torch.tensor(np.asarray(_x((2, 4, 5)))))
    assert [str(w.message) for w in jw] == [str(w.message) for w in tw]
    assert out.shape == tuple(expected.shape)
    with pytest.warns(UserWarning, match="input's size at dim=0 does not match num_features"):
        j(jnp.zeros((4, 5)))
    ja, ta = _pair("InstanceNorm2d", 3, affine=True)
    _same_error(ValueError, lambda: ta(torch.zeros(2, 4, 3, 3)), lambda: ja(jnp.zeros((2, 4, 3, 3))))


@pytest.mark.parametrize(
    "cls,shape", [("InstanceNorm1d", (2, 3, 4, 5)), ("InstanceNorm2d", (3, 4)), ("InstanceNorm3d", (2, 3, 4, 5, 6, 7))]
)
def test_instance_norm_input_dim(cls, shape):
    j, t = _pair(cls, 3)
    _same_error(ValueError, lambda: t(torch.zeros(shape)), lambda: j(jnp.zeros(shape)))


def test_instance_norm_single_spatial_element():
    j, t = _pair("InstanceNorm2d", 3)
    _same_error(ValueError, lambda: t(torch.zeros(3, 1, 1)), lambda: j(jnp.zeros((3, 1, 1))))
    _same_error(
        RuntimeError,
        lambda: torch.nn.functional.instance_norm(torch.zeros(2, 4, 3), use_input_stats=False),
        lambda: F.instance_norm(jnp.zeros((2, 4, 3)), use_input_stats=False),
    )


def test_instance_norm_old_checkpoint_with_running_stats():
    """torch rejects running stats from a pre-0.4 checkpoint when not tracking them."""
    sd = collections.OrderedDict(
        weight=torch.ones(3), bias=torch.zeros(3), running_mean=torch.zeros(3), running_var=torch.ones(3)
    )
    j, t = _pair("InstanceNorm1d", 3, affine=True)
    msg = _same_error(RuntimeError, lambda: t.load_state_dict(sd), lambda: j.load_state_dict(sd))
    assert 'Unexpected running stats buffer(s) "running_mean" and "running_var" for InstanceNorm1d' in msg


def test_instance_norm_state_dict():
    j, t = _pair("InstanceNorm2d", 3, affine=True, track_running_stats=True)
    assert list(j.state_dict()) == list(t.state_dict())
    j.load_state_dict(t.state_dict())


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_functional_instance_norm(use_input_stats):
    x = _x((2, 3, 5))
    rm, rv = RNG.standard_normal(3).astype(np.float32), RNG.uniform(0.5, 2, 3).astype(np.float32)
    w, b = _x((3,)), _x((3,))
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    expected = torch.nn.functional.instance_norm(
        torch.tensor(x), trm, trv, torch.tensor(w), torch.tensor(b), use_input_stats, 0.4, 1e-3
    )
    args = (
        jnp.asarray(x),
        jnp.asarray(rm),
        jnp.asarray(rv),
        jnp.asarray(w),
        jnp.asarray(b),
        use_input_stats,
        0.4,
        1e-3,
    )
    assert_close(F.instance_norm(*args), expected, atol=1e-5, rtol=1e-5, what="F.instance_norm")
    out, new_rm, new_rv = F.instance_norm_with_stats(*args)
    assert_close(out, expected, atol=1e-5, rtol=1e-5, what="F.instance_norm_with_stats")
    assert_close(new_rm, trm, atol=1e-6, rtol=1e-5, what="running_mean")
    assert_close(new_rv, trv, atol=1e-6, rtol=1e-5, what="running_var")


def test_functional_forms_match_torch():
    x = _x((2, 4, 3))
    w, b = _x((4,)), _x((4,))
    tf = torch.nn.functional
    cases = [
        (tf.group_norm(torch.tensor(x), 2, torch.tensor(w), torch.tensor(b), 1e-3), F.group_norm(x, 2, w, b, 1e-3)),
        (tf.layer_norm(torch.tensor(x), (4, 3)), F.layer_norm(x, (4, 3))),
        (tf.rms_norm(torch.tensor(x), [3], torch.tensor(w[:3]), 1e-2), F.rms_norm(x, [3], w[:3], 1e-2)),
        (tf.local_response_norm(torch.tensor(x), 3, 1e-2, 0.5, 2.0), F.local_response_norm(x, 3, 1e-2, 0.5, 2.0)),
        (tf.instance_norm(torch.tensor(x)), F.instance_norm(x)),
    ]
    for i, (expected, out) in enumerate(cases):
        assert_close(out, expected, atol=1e-5, rtol=1e-5, what=f"functional case {i}")


REPRS = [
    ("LayerNorm", ((2, 3),), dict(eps=1e-6, elementwise_affine=False)),
    ("LayerNorm", (7,), dict(bias=False)),
    ("GroupNorm", (1, 3), dict(affine=False)),
    ("GroupNorm", (2, 4), dict(bias=False, eps=0.1)),
    ("RMSNorm", (3,), dict(eps=1e-6, elementwise_affine=False)),
    ("LocalResponseNorm", (4,), dict(alpha=0.1, beta=1, k=2)),
    ("InstanceNorm1d", (3,), dict(affine=True)),
    ("InstanceNorm2d", (3,), dict(track_running_stats=True, momentum=None)),
    ("InstanceNorm3d", (3,), dict(affine=True, bias=False, eps=1e-3)),
]


@pytest.mark.parametrize("cls,args,kwargs", REPRS)
def test_reprs(cls, args, kwargs):
    j, t = _pair(cls, *args, **kwargs)
    assert repr(j) == repr(t)
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in j.named_buffers()] == [n for n, _ in t.named_buffers()]


@pytest.mark.parametrize(
    "cls,args,kwargs",
    [
        ("LayerNorm", ((2, 3),), {}),
        ("GroupNorm", (2, 4), {}),
        ("RMSNorm", (5,), {}),
        ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True)),
        ("BatchNorm1d", (3,), {}),
    ],
)
def test_default_parameters_and_buffers_match_torch(cls, args, kwargs):
    """Deterministic init (weight 1, bias 0, running stats 0/1/0), same names, shapes and values."""
    j, t = _pair(cls, *args, **kwargs)
    js, ts = j.state_dict(), t.state_dict()
    assert list(js) == list(ts)
    for k in ts:
        np.testing.assert_array_equal(np.asarray(js[k]), ts[k].numpy(), err_msg=k)
    j.reset_parameters()
    for k, v in j.state_dict().items():
        np.testing.assert_array_equal(np.asarray(v), ts[k].numpy(), err_msg=k)


def test_functional_namespace():
    for name in ("batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm", "local_response_norm"):
        assert callable(getattr(F, name)) and hasattr(torch.nn.functional, name)
    assert callable(F.batch_norm_with_stats) and callable(F.instance_norm_with_stats)  # jmod extras
