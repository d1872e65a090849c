"""Data-parallel training throughput: one device vs 8 (fake CPU) devices, same global batch.

::

    python benchmarks/data_parallel.py            # 8 CPU devices (set here unless XLA_FLAGS says otherwise)
    python benchmarks/data_parallel.py --quick    # fewer rounds (CI smoke run)

The same model, optimizer and global batch run as

* ``1 device``: the plain ``jmod.jit`` training step on one device;
* ``data parallel``: ``jmod.parallel.data_parallel`` (replicated parameters, batch
  split over the devices by ``shard_batch``), the same step function;
* ``data parallel + fsdp``: parameters and optimizer state sharded as well.

Each configuration runs a block of steps per round, rounds are interleaved so that
machine noise hits all alike, and the table shows the median over rounds. On a CPU
host the "devices" share the same cores, so expect little or no speed-up: the point
is that the scaled-out step runs, and gives the same parameters (checked below).
"""

from __future__ import annotations

import os
import re

_N = 8
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_N}").strip()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jmod  # noqa: E402
from jmod import nn  # noqa: E402

SIZES = (256, 1024, 1024, 10)
GLOBAL_BATCH = 512


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jax.nn.relu(x)
        return x


def cross_entropy(logits, y):
    return -jax.numpy.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1).mean()


def make_step():
    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: cross_entropy(m(x), y))(model)
        opt.step(grads)
        return loss

    return step


class Config:
    def __init__(self, name: str, mode: str, x: np.ndarray, y: np.ndarray) -> None:
        self.name = name
        jmod.manual_seed(0)
        self.model = MLP()
        # SGD: Adam divides by the root of tiny second moments late in training, which
        # magnifies the last-bit differences of a different summation order (the
        # cross-device all-reduce) into visible parameter differences.
        self.opt = jmod.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.step = make_step()
        if mode == "single":
            dev = jax.devices()[0]
            self.model.to(dev)
            jmod.parallel.shard_optimizer(self.opt)
            self.devices = 1
            self.x, self.y = jax.device_put(x, dev), jax.device_put(y, dev)
        else:
            mesh = jmod.parallel.data_parallel(self.model, self.opt, fsdp=mode == "fsdp")
            self.devices = mesh.size
            self.x, self.y = jmod.parallel.shard_batch((x, y), mesh)
        self.times: list[float] = []
        self.losses: list[jax.Array] = []

    def run(self, steps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = self.step(self.model, self.opt, self.x, self.y)
            self.losses.append(loss)
        loss.block_until_ready()
        return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds, steps = (3, 5) if args.quick else (7, 20)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((GLOBAL_BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], GLOBAL_BATCH).astype(np.int32)
    configs = [
        Config("1 device", "single", x, y),
        Config("data parallel", "dp", x, y),
        Config("data parallel + fsdp", "fsdp", x, y),
    ]
    for c in configs:  # compile and warm up
        c.run(2)
    for _ in range(rounds):
        for c in configs:
            c.times.append(c.run(steps))

    flags = re.findall(r"device_count=(\d+)", os.environ.get("XLA_FLAGS", ""))
    print(
        f"jax {jax.__version__}, {jax.device_count()} {jax.devices()[0].platform} devices "
        f"(forced: {flags[0] if flags else 'no'}), {os.cpu_count()} cores; MLP {SIZES}, SGD, "
        f"global batch {GLOBAL_BATCH}, median of {rounds} rounds x {steps} steps"
    )
    base = statistics.median(configs[0].times)
    header = f"{'configuration':24s} {'devices':>7s} {'ms/step':>9s} {'examples/s':>11s} {'vs 1 device':>11s}"
    print(header)
    print("-" * len(header))
    for c in configs:
        t = statistics.median(c.times)
        print(f"{c.name:24s} {c.devices:7d} {t * 1e3:9.2f} {GLOBAL_BATCH / t:11.0f} {base / t:10.2f}x")

    # Same numbers: the configurations took the same steps from the same start.
    ref = dict(configs[0].model.named_parameters())
    worst = max(
        float(np.max(np.abs(np.asarray(p) - np.asarray(ref[n])))) for c in configs[1:] for n, p in c.model.named_parameters()
    )
    ref_losses = np.asarray(configs[0].losses)
    worst_loss = max(float(np.max(np.abs(np.asarray(c.losses) - ref_losses))) for c in configs[1:])
    print(
        f"vs 1 device after {len(ref_losses)} steps: max |loss difference| {worst_loss:.2e}, "
        f"max |parameter difference| {worst:.2e}"
    )


if __name__ == "__main__":
    main()
