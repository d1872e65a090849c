"""Autocast's effect on a training step: step time and XLA's memory analysis, float32 vs bf16.

::

    python benchmarks/autocast.py            # full run
    python benchmarks/autocast.py --quick    # fewer rounds, smaller models (CI smoke run)

Two models, each trained with SGD (momentum) in one ``jmod.jit`` step, run with and
without ``jmod.autocast("cpu")`` (bfloat16):

* ``mlp``: 4 Linear layers (1024 wide), batch 256;
* ``gpt block``: a pre-norm transformer block (``nn.MultiheadAttention`` + MLP,
  width 256, 4 heads, sequence 128, batch 16), causal mask.

Step time is the median over interleaved rounds. Memory is XLA's
``memory_analysis()`` of the same step compiled as a pure function
(``jmod.func.functional_call`` + ``jax.value_and_grad`` + the optax update):
``temp`` is the scratch memory (activations kept for the backward pass, casts),
``args`` the parameters, optimizer state and batch (the same in both: parameters
stay float32). On a CPU the speed effect depends on the CPU's bf16 support: XLA's
CPU backend may upcast bf16 dots to float32 internally, in which case autocast only
adds cast work; on GPUs/TPUs the lower-precision matmuls are the point.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jmod
import jmod.nn.functional as F
from jmod import nn


class MLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(3)] + [nn.Linear(width, 10)])

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, vocab: int = 10) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)
        self.head = nn.Linear(width, vocab)

    def forward(self, x):
        t = x.shape[1]
        mask = jnp.triu(jnp.full((t, t), -jnp.inf), 1)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return self.head(x).reshape(-1, self.head.out_features)


def make(kind: str, quick: bool):
    rng = np.random.default_rng(0)
    if kind == "mlp":
        width, batch = (256, 64) if quick else (1024, 256)
        model = MLP(width)
        x = jnp.asarray(rng.standard_normal((batch, width)), jnp.float32)
        y = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
    else:
        width, heads, seq, batch = (64, 4, 32, 4) if quick else (256, 4, 128, 16)
        model = Block(width, heads)
        x = jnp.asarray(rng.standard_normal((batch, seq, width)), jnp.float32)
        y = jnp.asarray(rng.integers(0, 10, batch * seq), jnp.int32)
    return model, x, y


def loss_of(model, x, y, amp: bool):
    if amp:
        with jmod.autocast("cpu"):
            return F.cross_entropy(model(x), y)
    return F.cross_entropy(model(x), y)


def time_step(kind: str, amp: bool, quick: bool, steps: int):
    jmod.manual_seed(0)
    model, x, y = make(kind, quick)
    opt = jmod.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: loss_of(m, x, y, amp))(model)
        opt.step(grads)
        return loss

    step(model, opt, x, y).block_until_ready()  # compile

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step(model, opt, x, y)
        loss.block_until_ready()
        return (time.perf_counter() - t0) / steps

    return run, float(step(model, opt, x, y))


def memory(kind: str, amp: bool, quick: bool) -> dict[str, float]:
    jmod.manual_seed(0)
    model, x, y = make(kind, quick)
    params = {k: v for k, v in model.named_parameters()}
    tx = optax.sgd(0.01, momentum=0.9)
    state = tx.init(params)

    def step(params, state, x, y):
        def loss_fn(p):
            if amp:
                with jmod.autocast("cpu"):
                    return F.cross_entropy(jmod.func.functional_call(model, p, (x,)), y)
            return F.cross_entropy(jmod.func.functional_call(model, p, (x,)), y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    m = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, x, y).compile().memory_analysis()
    mib = 1 / 2**20
    return {
        "temp": m.temp_size_in_bytes * mib,
        "args": m.argument_size_in_bytes * mib,
        "out": m.output_size_in_bytes * mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, steps = (3, 3) if args.quick else (7, 10)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.devices()[0].device_kind}")
    print(f"{'model':<10} {'autocast':<9} {'step ms':>9} {'temp MiB':>9} {'args MiB':>9} {'loss':>8}")
    for kind in ("mlp", "gpt block"):
        runs = {amp: time_step(kind, amp, args.quick, steps) for amp in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):  # interleaved, so machine noise hits both alike
            for amp, (run, _) in runs.items():
                times[amp].append(run())
        for amp in (False, True):
            mem = memory(kind, amp, args.quick)
            print(
                f"{kind:<10} {'bf16' if amp else 'off':<9} {statistics.median(times[amp]) * 1e3:>9.2f} "
                f"{mem['temp']:>9.2f} {mem['args']:>9.2f} {runs[amp][1]:>8.4f}"
            )


if __name__ == "__main__":
    main()
