"""What the Recipes cost per step: an EMA of the weights, gradient accumulation.

    PYTHONPATH=. python benchmarks/recipes.py            # 512-1024-1024-10 MLP, batch 256, AdamW
    PYTHONPATH=. python benchmarks/recipes.py --quick

Rows (median ms per optimizer update over interleaved rounds):

* ``plain step``: forward, backward, AdamW update, one ``jmod.jit`` call.
* ``+ EMA in the step``: the same with ``AveragedModel(get_ema_multi_avg_fn)``'s
  ``update_parameters`` inside the compiled step.
* ``4 micro-batches in one step``: four forward/backward passes of a quarter batch and
  one update (gradient accumulation inside one call).
* ``MultiSteps(k=4), 4 calls``: ``jmod.optim.MultiSteps``, one call per quarter batch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jmod
import jmod.nn.functional as F
from jmod import nn
from jmod.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def loss_fn(m: nn.Module, x: jax.Array, y: jax.Array) -> jax.Array:
    return F.cross_entropy(m(x), y)


def runners(x: jax.Array, y: jax.Array) -> dict:
    out = {}

    m = model()
    opt = jmod.optim.AdamW(m.parameters(), lr=1e-3)

    @jmod.jit
    def plain(m, opt, x, y):
        loss, grads = jmod.value_and_grad(loss_fn)(m, x, y)
        opt.step(grads)
        return loss

    out["plain step"] = lambda: plain(m, opt, x, y)

    m2 = model()
    opt2 = jmod.optim.AdamW(m2.parameters(), lr=1e-3)
    ema = AveragedModel(m2, multi_avg_fn=get_ema_multi_avg_fn(0.999))

    @jmod.jit
    def with_ema(m, opt, ema, x, y):
        loss, grads = jmod.value_and_grad(loss_fn)(m, x, y)
        opt.step(grads)
        ema.update_parameters(m)
        return loss

    out["+ EMA in the step"] = lambda: with_ema(m2, opt2, ema, x, y)

    m3 = model()
    opt3 = jmod.optim.AdamW(m3.parameters(), lr=1e-3)
    xs, ys = x.reshape(4, -1, x.shape[1]), y.reshape(4, -1)

    @jmod.jit
    def micro(m, opt, xs, ys):
        grads = None
        for i in range(xs.shape[0]):
            g = jmod.grad(lambda m: loss_fn(m, xs[i], ys[i]) / xs.shape[0])(m)
            grads = g if grads is None else jax.tree.map(jnp.add, grads, g)
        opt.step(grads)
        return grads["0.bias"]

    out["4 micro-batches in one step"] = lambda: micro(m3, opt3, xs, ys)

    m4 = model()
    opt4 = jmod.optim.MultiSteps(jmod.optim.AdamW(m4.parameters(), lr=1e-3), every_k_schedule=4)

    def four_calls():
        for i in range(4):
            out = plain(m4, opt4, xs[i], ys[i])
        return out

    out["MultiSteps(k=4), 4 calls"] = four_calls
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    steps, rounds = (5, 3) if args.quick else (20, 7)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((256, 512)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, 256).astype(np.int32))
    run = runners(x, y)
    for f in run.values():  # compile
        jax.block_until_ready(f())
    times: dict[str, list[float]] = {k: [] for k in run}
    for _ in range(rounds):
        for name, f in run.items():
            start = time.perf_counter()
            for _ in range(steps):
                out = f()
            jax.block_until_ready(out)
            times[name].append((time.perf_counter() - start) / steps)
    base = statistics.median(times["plain step"])
    print(f"{'per optimizer update':32s} {'ms':>8s} {'vs plain':>9s}")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:32s} {1e3 * t:8.2f} {t / base:9.2f}")


if __name__ == "__main__":
    main()
