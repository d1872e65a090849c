"""F.conv_tbc, F.native_channel_shuffle and F.grouped_mm against torch.

torch's CPU ``grouped_mm`` computes the forward (with 16-byte aligned strides: sizes that
are multiples of 4 in float32) but has no CPU backward, so gradients are compared with
torch's autograd through the equivalent per-group matmuls.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod.nn.functional as F
from tests.helpers import assert_close, assert_matches_torch, record
from tests.parity._layers_b import assert_same_error, functional_pair

pytestmark = pytest.mark.torch

TF = torch.nn.functional


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- conv_tbc
@pytest.mark.parametrize(("T", "K", "pad"), [(7, 3, 0), (5, 2, 2), (6, 1, -1), (3, 4, 1)])
def test_conv_tbc_matches_torch(T, K, pad):
    j, t = functional_pair("F.conv_tbc", F.conv_tbc, TF.conv_tbc, pad)
    assert_matches_torch(j, t, _x((T, 2, 3)), _x((K, 3, 4), 1), _x((4,), 2), atol=1e-5, rtol=1e-5)


CONV_TBC_ERRORS = [
    ((5, 2), (3, 3, 4), (4,), 0),
    ((5, 2, 3), (3, 4), (4,), 0),
    ((5, 2, 3), (3, 3, 4), (4, 1), 0),
    ((5, 2, 3), (3, 2, 4), (4,), 0),
    ((5, 2, 3), (3, 3, 4), (5,), 0),
    ((2, 2, 3), (4, 3, 4), (4,), -1),
]


@pytest.mark.parametrize(("xs", "ws", "bs", "pad"), CONV_TBC_ERRORS, ids=range(len(CONV_TBC_ERRORS)))
def test_conv_tbc_errors_match_torch(xs, ws, bs, pad):
    x, w, b = _x(xs), _x(ws), _x(bs)
    assert_same_error(
        lambda: F.conv_tbc(x, w, b, pad),
        lambda: TF.conv_tbc(torch.tensor(x), torch.tensor(w), torch.tensor(b), pad),
    )


def test_conv_tbc_argument_errors_match_torch():
    x, w, b = _x((5, 2, 3)), _x((3, 3, 4)), _x((4,))
    assert_same_error(lambda: F.conv_tbc(x, w, None), lambda: TF.conv_tbc(torch.tensor(x), torch.tensor(w), None))
    assert_same_error(
        lambda: F.conv_tbc(x, w, b, 1.5), lambda: TF.conv_tbc(torch.tensor(x), torch.tensor(w), torch.tensor(b), 1.5)
    )
    assert_same_error(
        lambda: F.conv_tbc(x.astype(np.float16), w, b),
        lambda: TF.conv_tbc(torch.tensor(x).half(), torch.tensor(w), torch.tensor(b)),
    )


# ----------------------------------------------------------------------------- native_channel_shuffle
def test_native_channel_shuffle_matches_torch():
    """Forward only: torch has no derivative for native_channel_shuffle (jmod's is channel_shuffle's)."""
    j, t = functional_pair("F.native_channel_shuffle", F.native_channel_shuffle, TF.native_channel_shuffle, 3)
    assert_matches_torch(j, t, _x((2, 6, 4, 3)), atol=0, rtol=0, check_grad=False)
    for shape, groups in (((2, 4), 2), ((2, 4, 3), 0), ((2, 4, 3), 3)):
        x = _x(shape)
        assert_same_error(
            lambda: F.native_channel_shuffle(x, groups), lambda: TF.native_channel_shuffle(torch.tensor(x), groups)
        )


# ----------------------------------------------------------------------------- grouped_mm
OFFS = np.array([3, 7, 10], np.int32)  # group ends; rows/columns 10 and 11 belong to no group


def _reference(a, b, offs):
    """torch autograd through per-group matmuls (the semantics of torch's grouped_mm)."""
    if offs is None:
        return a @ b
    starts = [0, *offs[:-1]]
    if a.dim() == 2 and b.dim() == 3:
        return torch.cat([a[s:e] @ b[g] for g, (s, e) in enumerate(zip(starts, offs))])
    if a.dim() == 3 and b.dim() == 2:
        return torch.cat([a[g] @ b[:, s:e] for g, (s, e) in enumerate(zip(starts, offs))], dim=1)
    return torch.stack([a[:, s:e] @ b[s:e] for s, e in zip(starts, offs)])


GROUPED_CASES = {
    "2dx3d": ((12, 8), (3, 8, 4), OFFS),
    "3dx2d": ((3, 4, 8), (8, 12), OFFS),
    "2dx2d": ((4, 12), (12, 8), OFFS),
    "3dx3d": ((3, 4, 8), (3, 8, 4), None),
}


@pytest.mark.parametrize("case", list(GROUPED_CASES))
def test_grouped_mm_matches_torch(case):
    ashape, bshape, offs = GROUPED_CASES[case]
    a, b = _x(ashape, 3), _x(bshape, 4)
    t_offs = None if offs is None else torch.tensor(offs)
    j_offs = None if offs is None else jnp.asarray(offs)
    # forward: torch's own grouped_mm on the rows/columns that belong to a group
    t_out = TF.grouped_mm(torch.tensor(a), torch.tensor(b), offs=t_offs)
    j_out = F.grouped_mm(a, b, offs=j_offs)
    assert j_out.shape == tuple(t_out.shape)
    valid = (slice(None),) * j_out.ndim
    if offs is not None and case != "2dx2d":
        end = int(offs[-1])
        valid = (slice(0, end),) if case == "2dx3d" else (slice(None), slice(0, end))
        rest = (slice(end, None),) if case == "2dx3d" else (slice(None), slice(end, None))
        assert not np.asarray(j_out[rest]).any()  # torch leaves them uninitialised; jmod: zeros
    fwd = assert_close(j_out[valid], t_out[valid], atol=1e-5, rtol=1e-5, what=f"grouped_mm {case}")
    # gradients (torch has no CPU backward for grouped_mm): against the per-group reference
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ref = _reference(ta, tb, offs)
    cot = _x(tuple(ref.shape), 5)
    ref.backward(torch.tensor(cot))

    def loss(a, b):
        out = F.grouped_mm(a, b, offs=j_offs)
        return jnp.sum(out[valid] * cot)

    ga, gb = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(a), jnp.asarray(b))
    grad = max(
        assert_close(ga, ta.grad, atol=1e-5, rtol=1e-5, what="grad mat_a"),
        assert_close(gb, tb.grad, atol=1e-5, rtol=1e-5, what="grad mat_b"),
    )
    record("F.grouped_mm", fwd, grad)


def test_grouped_mm_bfloat16_and_out_dtype():
    a, b = _x((12, 8), 6), _x((3, 8, 8), 7)
    ta, tb = torch.tensor(a).bfloat16(), torch.tensor(b).bfloat16()
    expected = TF.grouped_mm(ta, tb, offs=torch.tensor(OFFS))[:10].float().numpy()
    out = F.grouped_mm(jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16), offs=jnp.asarray(OFFS))
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out[:10], np.float32), expected, atol=0.1, rtol=0.02)
    # torch's documented float32 accumulation for 16-bit inputs (its CPU kernel refuses it)
    out32 = F.grouped_mm(
        jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16), offs=jnp.asarray(OFFS), out_dtype=jnp.float32
    )
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out32[:10]), expected, atol=0.1, rtol=0.02)


A, B, A3 = _x((12, 8)), _x((3, 8, 8)), _x((3, 4, 8))
GROUPED_ERRORS = [
    (A.astype(np.int32), B, dict(offs=OFFS)),
    (_x((2, 3, 4, 8)), B, dict(offs=OFFS)),
    (A, _x((8,)), dict(offs=OFFS)),
    (A, _x((3, 4, 8)), dict(offs=OFFS)),
    (A, B, dict()),
    (A3, B, dict(offs=OFFS)),
    (A, B, dict(offs=OFFS.astype(np.float32))),
    (A, B, dict(offs=OFFS[None])),
    (A, _x((3, 8, 8)), dict(offs=OFFS, bias=_x((3, 8)))),
    (A3, _x((2, 8, 8)), dict()),
    (A3, _x((8, 12)), dict(offs=OFFS[:2])),
    (A, B.astype(np.float16), dict(offs=OFFS)),
]


@pytest.mark.parametrize(("a", "b", "kwargs"), GROUPED_ERRORS, ids=range(len(GROUPED_ERRORS)))
def test_grouped_mm_errors_match_torch(a, b, kwargs):
    t_kwargs = {k: torch.tensor(v) for k, v in kwargs.items()}
    assert_same_error(
        lambda: F.grouped_mm(a, b, **kwargs), lambda: TF.grouped_mm(torch.tensor(a), torch.tensor(b), **t_kwargs)
    )
