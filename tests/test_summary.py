"""jmod.summary: layer output shapes and parameter counts as torch's model gives them,
computed abstractly (no FLOPs, no weights read, nothing of the model changed), also for a
model far larger than the machine's memory; XLA's cost and memory analysis on request."""

import resource

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn


class JNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Sequential(nn.Linear(4 * 6 * 6, 10), nn.ReLU(), nn.Linear(10, 2))

    def forward(self, x):
        x = self.drop(self.bn(self.conv(x)))
        return self.head(x.reshape(x.shape[0], -1))


class TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.5)
        self.head = torch.nn.Sequential(torch.nn.Linear(4 * 6 * 6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 2))

    def forward(self, x):
        x = self.drop(self.bn(self.conv(x)))
        return self.head(x.reshape(x.shape[0], -1))


@pytest.mark.torch
def test_rows_and_numbers_match_torch():
    j, t = JNet(), TNet()
    j.conv.requires_grad_(False)
    t.conv.requires_grad_(False)
    seen = []
    names = {m: n for n, m in t.named_modules()}
    for m in t.modules():
        m.register_forward_hook(
            lambda m, a, o: seen.append((names[m], type(m).__name__.replace("TNet", "JNet"), list(o.shape)))
        )
    t(torch.ones(5, 3, 8, 8))
    before = {k: np.asarray(v) for k, v in j.state_dict().items()}
    rng = jmod.get_rng_state()

    s = jmod.summary(j, torch.ones(5, 3, 8, 8))  # torch tensors are accepted

    # torch's forward hooks fire children-first; jmod's rows are in call order (parents first)
    got = sorted((r.name, r.type, r.output_shapes[0]) for r in s.layers)
    assert got == sorted(seen)
    assert s.total_params == sum(p.numel() for p in t.parameters())
    assert s.trainable_params == sum(p.numel() for p in t.parameters() if p.requires_grad)
    assert s.non_trainable_params == sum(p.numel() for p in t.parameters() if not p.requires_grad)
    assert s.param_bytes == 4 * s.total_params
    assert s.buffer_bytes == sum(b.numel() * b.element_size() for b in t.buffers()) - 8 + 4  # int32 counter
    assert s.output_shapes == [[5, 2]]
    assert s.flops is None
    # nothing of the model changed: BatchNorm in train mode did not update, no hooks left
    after = j.state_dict()
    assert all(np.array_equal(before[k], np.asarray(after[k])) for k in before)
    assert (jmod.get_rng_state() == rng).all()
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in j.modules())
    table = str(s)
    assert "│    ├─Linear (0)" in table and "Total params: 1,592" in table and "Non-trainable params: 112" in table
    assert [r.trainable for r in s.layers if r.name == "conv"] == [False]


def test_depth_hides_rows_not_numbers():
    j = JNet()
    s = jmod.summary(j, jax.ShapeDtypeStruct((2, 3, 8, 8), jnp.float32), depth=1)
    assert "Linear" not in str(s) and "Sequential (head)" in str(s)
    assert s.total_params == 1592


def test_cost_analysis_of_forward_and_train_step():
    model = nn.Linear(64, 32)
    x = jax.ShapeDtypeStruct((128, 64), jnp.float32)
    fwd = jmod.summary(model, x, cost="forward")
    train = jmod.summary(model, x, cost="train")
    matmul = 2 * 128 * 64 * 32
    assert matmul <= fwd.flops < 1.2 * matmul  # the matmul plus the bias add
    assert train.flops >= 2 * matmul  # the backward's matmul (dW) as well
    assert fwd.memory["argument"] >= fwd.param_bytes + fwd.input_bytes
    assert fwd.memory["output"] == 128 * 32 * 4
    assert "GFLOPs" in str(fwd)
    with pytest.raises(ValueError, match="cost must be"):
        jmod.summary(model, x, cost="backward")


def test_a_model_far_larger_than_memory_is_summarized_without_allocating():
    # 4 x 200k x 200k float32 = 640 GB of parameters: built abstractly inside the trace
    class Huge(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(*[nn.Linear(200_000, 200_000) for _ in range(4)])

        def forward(self, x):
            return self.layers(x)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rng = jmod.get_rng_state()
    s = jmod.summary(lambda: Huge(), jax.ShapeDtypeStruct((8, 200_000), jnp.float32), cost="forward")
    assert s.total_params == 4 * (200_000 * 200_000 + 200_000)
    assert s.param_bytes > 600e9
    assert [r.output_shapes for r in s.layers][-1] == [[8, 200_000]]
    assert s.flops >= 4 * 2 * 8 * 200_000 * 200_000
    assert s.memory["argument"] >= s.param_bytes
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1e3
    assert grown_mb < 500
    assert (jmod.get_rng_state() == rng).all()  # no random draws were made


def test_containers_the_forward_never_calls_get_a_row_before_their_children():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    s = jmod.summary(Stack(), jax.ShapeDtypeStruct((3, 4), jnp.float32))
    assert [(r.name, r.type, r.depth, r.output_shapes) for r in s.layers] == [
        ("", "Stack", 0, [[3, 4]]),
        ("blocks", "ModuleList", 1, []),
        ("blocks.0", "Linear", 2, [[3, 4]]),
        ("blocks.1", "Linear", 2, [[3, 4]]),
    ]
    assert "├─ModuleList (blocks)" in str(s)
