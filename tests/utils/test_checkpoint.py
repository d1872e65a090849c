"""jmod.utils.checkpoint: gradients against torch's checkpoint and the plain call; buffer
updates once; dropout masks of the recomputation; hooks; torch's argument checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod
from jmod import nn
from jmod.utils.checkpoint import checkpoint, checkpoint_sequential


def _block(width: int = 8) -> nn.Module:
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))


def _close(a: dict, b: dict, tol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=tol, atol=tol, err_msg=k)


class Stack(nn.Module):
    def __init__(self, blocks: list[nn.Module], mode: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.mode = mode

    def forward(self, x: jax.Array) -> jax.Array:
        if self.mode == "sequential":
            return checkpoint_sequential(list(self.blocks), 2, x, use_reentrant=False)
        for b in self.blocks:
            x = checkpoint(b, x, use_reentrant=False) if self.mode == "checkpoint" else b(x)
        return x


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["checkpoint", "sequential"])
def test_gradients_match_torch_checkpoint(mode: str) -> None:
    import torch
    import torch.utils.checkpoint as tc

    torch.manual_seed(0)
    tblocks = [
        torch.nn.Sequential(
            torch.nn.LayerNorm(8), torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 8)
        )
        for _ in range(3)
    ]
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    if mode == "sequential":
        out = tc.checkpoint_sequential(tblocks, 2, tx, use_reentrant=False)
    else:
        out = tx
        for b in tblocks:
            out = tc.checkpoint(b, out, use_reentrant=False)
    (out**2).sum().backward()
    model = Stack([_block() for _ in range(3)], mode)
    for b, tb in zip(model.blocks, tblocks):
        b.load_state_dict({k: v.detach().numpy() for k, v in tb.state_dict().items()})

    @jmod.jit
    def step(model, x):
        return jmod.value_and_grad(lambda m, x: (m(x) ** 2).sum(), argnums=(0, 1))(model, x)

    loss, (g, gx) = step(model, jnp.asarray(x))
    np.testing.assert_allclose(float(loss), float((out**2).sum().detach()), rtol=1e-5)
    expected = {f"blocks.{i}.{k}": p.grad.numpy() for i, b in enumerate(tblocks) for k, p in b.named_parameters()}
    _close(g, expected, 1e-5)
    np.testing.assert_allclose(np.asarray(gx), tx.grad.numpy(), rtol=1e-5, atol=1e-5)


class BNDrop(nn.Module):
    def __init__(self, ck: bool) -> None:
        super().__init__()
        self.ck = ck
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 4)) for _ in range(2)]
        )

    def forward(self, x: jax.Array) -> jax.Array:
        for b in self.blocks:
            x = checkpoint(b, x, use_reentrant=False) if self.ck else b(x)
        return x


def test_buffers_written_once_and_dropout_masks_equal() -> None:
    jmod.manual_seed(0)
    plain = BNDrop(False)
    ck = BNDrop(True)
    ck.load_state_dict(plain.state_dict())
    x = jnp.asarray(np.random.default_rng(1).standard_normal((6, 4)), jnp.float32)

    @jmod.jit
    def step(model, x):
        return jmod.value_and_grad(lambda m: m(x).sum())(model)

    results = []
    for m in (plain, ck):
        jmod.manual_seed(5)
        loss, g = step(m, x)
        results.append((loss, g, m.state_dict(), jmod.get_rng_state()))
    (l0, g0, s0, k0), (l1, g1, s1, k1) = results
    np.testing.assert_allclose(float(l0), float(l1), rtol=1e-5)
    # BatchNorm over a batch of 6 divides by a small variance: gradients reach ~15 and
    # the summation order of the two compiled programs differs, so 1e-4 relative.
    _close(g0, g1, 1e-4)
    for k in s0:  # running statistics updated once (num_batches_tracked == 1), same values
        np.testing.assert_allclose(np.asarray(s0[k]), np.asarray(s1[k]), rtol=1e-5, atol=1e-6, err_msg=k)
    assert int(s1["blocks.0.1.num_batches_tracked"]) == 1
    assert bool((k0 == k1).all())  # the generator advanced exactly as without checkpointing


def test_dropout_mask_of_recomputation_equals_forward() -> None:
    # d/dx sum(dropout(x) * w) is the mask / (1 - p): the gradient shows the mask the
    # backward pass used, which must be the one the forward output shows.
    drop = nn.Dropout(0.5)
    x = jnp.ones((64,))

    @jmod.jit
    def step(x):
        return jmod.value_and_grad(lambda x: checkpoint(drop, x, use_reentrant=False).sum(), has_aux=False)(x)

    jmod.manual_seed(0)
    out = jmod.jit(lambda x: checkpoint(drop, x, use_reentrant=False))(x)
    jmod.manual_seed(0)
    _, gx = step(x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(gx))
    assert 0 < int((out == 0).sum()) < 64


def test_hooks_run_and_eager_call() -> None:
    block = _block()
    calls = []
    block[1].register_forward_hook(lambda m, i, o: calls.append(o.shape) or o * 2)
    x = jnp.ones((2, 8))
    expected = block(x)
    calls.clear()
    out = checkpoint(block, x, use_reentrant=False)  # eagerly, outside any jit
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-5, atol=1e-6)
    assert calls == [(2, 16)]
    g = jmod.grad(lambda m: checkpoint(lambda x: m(x), x, use_reentrant=False).sum())(block)
    g_ref = jmod.grad(lambda m: m(x).sum())(block)
    _close(g, g_ref, 1e-5)


def test_policy_and_kwargs() -> None:
    block = _block()
    x = jnp.ones((2, 8))
    g_ref = jmod.grad(lambda m: m(x).sum())(block)
    for policy in ("dots_saveable", jax.checkpoint_policies.nothing_saveable):
        g = jmod.grad(lambda m, policy=policy: checkpoint(m, x, use_reentrant=False, policy=policy).sum())(block)
        _close(g, g_ref, 1e-5)
    out = checkpoint(lambda a, scale: block(a) * scale, x, use_reentrant=False, scale=3.0)
    np.testing.assert_allclose(np.asarray(out), np.asarray(block(x) * 3.0), rtol=1e-5, atol=1e-6)


def test_torch_argument_checks() -> None:
    block = _block()
    x = jnp.ones((2, 8))
    with pytest.warns(UserWarning, match="use_reentrant parameter should be passed explicitly"):
        checkpoint(block, x)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(block, x, use_reentrant=True, scale=2.0)
    with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
        checkpoint(block, x, use_reentrant=True, debug=True)
    with pytest.raises(ValueError, match="determinism_check should be one of"):
        checkpoint(block, x, use_reentrant=False, determinism_check="bogus")
    with pytest.raises(ValueError, match="policy should be None"):
        checkpoint(block, x, use_reentrant=False, policy="bogus")
    with pytest.raises(ValueError, match="Unexpected keyword arguments: bogus"):
        checkpoint_sequential(nn.Sequential(block), 1, x, use_reentrant=False, bogus=1)


class _Scanned(nn.Module):
    def __init__(self, ck: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([_block(32) for _ in range(6)])
        self.ck = ck

    def forward(self, x: jax.Array) -> jax.Array:
        from jmod.nn.utils import scan_blocks

        return scan_blocks(self.blocks, x, checkpoint=self.ck)


def test_saves_memory_in_a_scan() -> None:
    # XLA's memory analysis: per-layer checkpointing of a scanned stack keeps only the
    # layer inputs (benchmarks/big_model.py measures the 12-layer GPT).
    x = jnp.ones((64, 32))

    def temp(ck: bool) -> int:
        model = _Scanned(ck)
        params = dict(model.named_parameters())
        loss = lambda p: jmod.func.functional_call(model, p, (x,)).sum()  # noqa: E731
        return jax.jit(jax.grad(loss)).lower(params).compile().memory_analysis().temp_size_in_bytes

    assert temp(True) < temp(False) / 2
