"""jmod.nn.utils.scan_blocks: outputs, gradients, buffers, dropout and training steps equal
to the unrolled loop; the blocks stay ordinary modules; structural checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod
from jmod import nn
from jmod.nn.utils import scan_blocks


class Block(nn.Module):
    def __init__(self, width: int = 8, p: float = 0.0, bn: bool = False) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width) if bn else nn.Identity()
        self.drop = nn.Dropout(p)

    def forward(self, x: jax.Array, scale: float = 1.0) -> jax.Array:
        return x + self.drop(self.norm(jnp.tanh(self.fc(self.ln(x))))) * scale


class Stack(nn.Module):
    def __init__(self, n: int, scan: bool, **kw) -> None:
        super().__init__()
        self.h = nn.ModuleList([Block(**kw) for _ in range(n)])
        self.scan = scan

    def forward(self, x: jax.Array) -> jax.Array:
        if self.scan:
            return scan_blocks(self.h, x, scale=0.5)
        for b in self.h:
            x = b(x, scale=0.5)
        return x


def _pair(**kw) -> tuple[Stack, Stack]:
    jmod.manual_seed(0)
    loop = Stack(3, False, **kw)
    scan = Stack(3, True, **kw)
    scan.load_state_dict(loop.state_dict())
    return loop, scan


def _assert_close(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=tol, atol=tol, err_msg=k)


X = jnp.asarray(np.random.default_rng(0).standard_normal((6, 8)), jnp.float32)


def test_forward_and_gradients_equal_loop_eager() -> None:
    loop, scan = _pair()
    np.testing.assert_allclose(np.asarray(scan(X)), np.asarray(loop(X)), rtol=1e-5, atol=1e-6)
    _assert_close(jmod.grad(lambda m: (m(X) ** 2).sum())(scan), jmod.grad(lambda m: (m(X) ** 2).sum())(loop))
    assert [n for n, _ in scan.named_parameters()] == [n for n, _ in loop.named_parameters()]


def test_training_step_with_buffers_dropout_and_optimizer() -> None:
    loop, scan = _pair(p=0.3, bn=True)
    opts = {id(m): jmod.optim.AdamW(m.parameters(), lr=1e-2) for m in (loop, scan)}

    @jmod.jit
    def step(model, opt, x):
        loss, g = jmod.value_and_grad(lambda m: (m(x) ** 2).mean())(model)
        opt.step(g)
        return loss

    for m in (loop, scan):
        jmod.manual_seed(7)
        for _ in range(2):
            step(m, opts[id(m)], X)
    # BatchNorm over 6 samples divides by small variances (gradients up to ~10) and the
    # scanned and unrolled programs sum in different orders: 1e-4.
    _assert_close(scan.state_dict(), loop.state_dict(), 1e-4)
    assert int(scan.h[2].norm.num_batches_tracked) == 2


def test_dropout_masks_and_generator_equal_loop() -> None:
    loop, scan = _pair(p=0.5)
    outs = []
    for m in (loop, scan):
        jmod.manual_seed(3)
        outs.append((m(X), jmod.get_rng_state()))
    np.testing.assert_allclose(np.asarray(outs[1][0]), np.asarray(outs[0][0]), rtol=1e-5, atol=1e-6)
    assert bool((outs[0][1] == outs[1][1]).all())


def test_hooks_of_first_block_run_once_per_trace_for_every_layer() -> None:
    loop, scan = _pair()
    calls = []

    def hook(module, args, output):
        calls.append(1)
        return output * 2

    for m in (loop, scan):
        for b in m.h:
            b.fc.register_forward_hook(hook)
    expected = loop(X)
    assert len(calls) == 3
    calls.clear()
    np.testing.assert_allclose(np.asarray(scan(X)), np.asarray(expected), rtol=1e-5, atol=1e-6)
    assert len(calls) == 1  # traced once, applied to every layer


def test_rejects_different_blocks() -> None:
    blocks = nn.ModuleList([Block(), Block(bn=True)])
    with pytest.raises(ValueError, match="not structurally identical"):
        scan_blocks(blocks, X)
    blocks = nn.ModuleList([Block(), Block()])
    blocks[1].fc.register_forward_hook(lambda m, a, o: o)
    with pytest.raises(ValueError, match="not structurally identical"):
        scan_blocks(blocks, X)
    blocks = nn.ModuleList([nn.Linear(8, 4), nn.Linear(8, 4)])
    with pytest.raises(ValueError, match="input's shape"):
        scan_blocks(blocks, X)


def test_checkpoint_option_and_plain_jax_grad() -> None:
    loop, scan = _pair()
    params = dict(loop.named_parameters())

    def loss(p, model):
        return (jmod.func.functional_call(model, p, (X,)) ** 2).sum()

    g_loop = jax.jit(jax.grad(lambda p: loss(p, loop)))(params)
    scan.forward = lambda x: scan_blocks(scan.h, x, checkpoint=True, policy="dots_saveable", scale=0.5)
    g_scan = jax.jit(jax.grad(lambda p: loss(p, scan)))(params)
    _assert_close(g_scan, g_loop)
