"""The familiar training loop, eager and then compiled with ``jmod.jit``.

    python examples/training_loop.py [--steps N] [--quick]

A PyTorch training step is ``model.train()``, forward, loss, ``loss.backward()``,
``optimizer.step()``. In jmod the gradients are a value instead of ``.grad``
fields: ``jmod.value_and_grad(loss_fn)(model)`` returns the loss and a dict keyed
like ``named_parameters()``, and ``optimizer.step(grads)`` updates the model in
place. Written that way the loop runs eagerly, operation by operation, like torch.

Putting the same step in a function decorated with ``@jmod.jit`` compiles it into
one XLA computation; the model, its BatchNorm statistics, the optimizer state and
the dropout random state go in and are written back after each call. Both loops
start from the same weights and the same seed, so they compute the same losses;
the compiled one is much faster.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn.datasets import load_digits

import jmod
import jmod.nn.functional as F
from jmod import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(256, 10),
        )

    def forward(self, x):
        return self.net(x)


def loss_fn(model, x, y):
    return F.cross_entropy(model(x), y)


def eager_step(model, optimizer, x, y):
    loss, grads = jmod.value_and_grad(loss_fn)(model, x, y)  # torch: loss.backward()
    optimizer.step(grads)  # torch: optimizer.step()
    return loss


# The same function, compiled: one XLA computation per call, traced once.
compiled_step = jmod.jit(eager_step)


def train(step_fn, steps: int, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[list, list]:
    """Train a freshly initialised model (seed 0) with ``step_fn``: losses and step times."""
    jmod.manual_seed(0)  # same initial weights and dropout masks for both runs
    model = MLP()
    optimizer = jmod.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    rng = np.random.default_rng(0)  # same batches for both runs
    losses, times = [], []
    for _ in range(steps):
        idx = rng.choice(len(x), batch_size, replace=False)
        start = time.perf_counter()
        loss = step_fn(model, optimizer, x[idx], y[idx])
        loss.block_until_ready()  # JAX runs asynchronously: wait before reading the clock
        times.append(time.perf_counter() - start)
        losses.append(float(loss))
    return losses, times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="10 steps (CI)")
    args = parser.parse_args(argv)
    steps = 10 if args.quick else args.steps

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # (1797, 64): flattened 8x8 images
    y = digits.target.astype(np.int32)

    eager_losses, eager_times = train(eager_step, steps, x, y, args.batch_size)
    jit_losses, jit_times = train(compiled_step, steps, x, y, args.batch_size)

    print("step   eager loss   jmod.jit loss")
    for i in sorted({0, 1, 2, steps // 2, steps - 1}):
        print(f"{i:4d}   {eager_losses[i]:10.6f}   {jit_losses[i]:13.6f}")
    diff = max(abs(a - b) for a, b in zip(eager_losses, jit_losses))
    print(f"max |eager - compiled| over {steps} losses: {diff:.1e}")

    # The first call of each includes one-off work (compiling, for jmod.jit): skip it.
    eager = statistics.median(eager_times[1:])
    jit = statistics.median(jit_times[1:])
    print(
        f"\nfirst step (one-off): eager {eager_times[0]:.1f} s (JAX compiles each operation on first use), "
        f"jmod.jit {jit_times[0]:.1f} s (trace and compile the whole step)"
    )
    print(
        f"median step: eager {1e3 * eager:.2f} ms ({1 / eager:,.0f} steps/s), jmod.jit {1e3 * jit:.2f} ms ({1 / jit:,.0f} steps/s)"
    )
    print(f"jmod.jit is {eager / jit:.0f}x faster; compiled {compiled_step.trace_count} time(s) for {steps} steps")


if __name__ == "__main__":
    main()
