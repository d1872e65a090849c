"""Train-step speed of jmod against hand-written JAX, Flax NNX, Equinox and PyTorch.

One command, one process, everything measured side by side::

    python benchmarks/run.py                 # all workloads
    python benchmarks/run.py --quick         # a few seconds: mlp-tiny, tiny blocks (CI's smoke run)
    python benchmarks/run.py --workload mlp-tiny

Workloads (float32, same shapes everywhere):

* ``mlp-tiny``: 64-128-128-10 MLP, batch 32, SGD. Overhead-bound: measures what
  each framework adds around the compiled step.
* ``lenet``: LeNet-5 on 3x32x32 images, batch 128, Adam.
* ``mlp-bn``: 512-1024-1024-10 MLP with BatchNorm1d after each hidden layer,
  batch 256, Adam (running statistics updated every step).

Implementations: hand-written pure JAX + optax under ``jax.jit`` with donation (the
limit), jmod (``jmod.jit`` step; same optax transformation), Flax NNX (``nnx.jit``
and the documented split/merge fast path), Equinox (``eqx.filter_jit``) and PyTorch
eager.

How the timing is kept fair:

* The JAX-based implementations are timed in interleaved rounds (each runs a block of
  steps per round, rounds repeat) so that machine noise hits all alike, and the order
  is rotated every round (round ``r`` starts with implementation ``r mod n``): no
  implementation always runs first, or always right after another one.
* PyTorch eager runs in its own phase after the JAX rounds, never between them: its
  intra-op thread pool keeps spinning for a while after each op and would slow
  whichever implementation runs next. It uses ``torch.get_num_threads()`` threads
  (printed), its default.
* Each row shows the median per-step time over rounds, its spread (the
  interquartile range p25-p75 and min-max over rounds) and the median's ratio to
  pure JAX's median. The header names the git commit, the CPU, the core count, the
  load average at start and the library versions, so a table says where it came from.

It also measures the per-call Python overhead of a compiled forward: ``jmod``'s
``model.compile()`` and ``jmod.jit`` call versus a bare ``jax.jit`` call on the same
100-leaf parameter pytree.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jmod
from jmod import nn

# ----------------------------------------------------------------------------- data


def make_data(workload: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if workload == "mlp-tiny":
        x = rng.standard_normal((32, 64)).astype(np.float32)
        y = rng.integers(0, 10, 32).astype(np.int32)
    elif workload == "lenet":
        x = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 128).astype(np.int32)
    elif workload == "mlp-bn":
        x = rng.standard_normal((256, 512)).astype(np.float32)
        y = rng.integers(0, 10, 256).astype(np.int32)
    else:
        raise ValueError(workload)
    return x, y


def make_tx(workload: str) -> optax.GradientTransformation:
    return optax.sgd(0.01) if workload == "mlp-tiny" else optax.adam(1e-3)


def xent(logits: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# ------------------------------------------------------------------------- pure JAX


def _dense_init(key: jax.Array, n_in: int, n_out: int) -> dict:
    k1, k2 = jax.random.split(key)
    bound = 1 / math.sqrt(n_in)
    return {
        "w": jax.random.uniform(k1, (n_in, n_out), minval=-bound, maxval=bound),
        "b": jax.random.uniform(k2, (n_out,), minval=-bound, maxval=bound),
    }


def _conv_init(key: jax.Array, c_in: int, c_out: int, k: int) -> dict:
    k1, k2 = jax.random.split(key)
    bound = 1 / math.sqrt(c_in * k * k)
    return {
        "w": jax.random.uniform(k1, (c_out, c_in, k, k), minval=-bound, maxval=bound),
        "b": jax.random.uniform(k2, (c_out,), minval=-bound, maxval=bound),
    }


def _conv(p: dict, x: jax.Array) -> jax.Array:
    y = jax.lax.conv_general_dilated(x, p["w"], (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + p["b"][None, :, None, None]


def _maxpool2(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def pure_jax(workload: str) -> Callable[[], jax.Array]:
    x, y = map(jnp.asarray, make_data(workload))
    keys = jax.random.split(jax.random.key(0), 8)
    tx = make_tx(workload)
    if workload == "mlp-tiny":
        params = [_dense_init(keys[i], a, b) for i, (a, b) in enumerate([(64, 128), (128, 128), (128, 10)])]
        state = {}

        def forward(params, state, x):
            h = x
            for i, p in enumerate(params):
                h = h @ p["w"] + p["b"]
                if i < 2:
                    h = jax.nn.relu(h)
            return h, state

    elif workload == "lenet":
        params = {
            "c1": _conv_init(keys[0], 3, 6, 5),
            "c2": _conv_init(keys[1], 6, 16, 5),
            "f1": _dense_init(keys[2], 400, 120),
            "f2": _dense_init(keys[3], 120, 84),
            "f3": _dense_init(keys[4], 84, 10),
        }
        state = {}

        def forward(params, state, x):
            h = _maxpool2(jax.nn.relu(_conv(params["c1"], x)))
            h = _maxpool2(jax.nn.relu(_conv(params["c2"], h)))
            h = h.reshape(h.shape[0], -1)
            h = jax.nn.relu(h @ params["f1"]["w"] + params["f1"]["b"])
            h = jax.nn.relu(h @ params["f2"]["w"] + params["f2"]["b"])
            return h @ params["f3"]["w"] + params["f3"]["b"], state

    else:
        dims = [(512, 1024), (1024, 1024), (1024, 10)]
        params = {f"l{i}": _dense_init(keys[i], a, b) for i, (a, b) in enumerate(dims)}
        for i in range(2):
            params[f"bn{i}"] = {"g": jnp.ones(1024), "b": jnp.zeros(1024)}
        state = {f"bn{i}": {"mean": jnp.zeros(1024), "var": jnp.ones(1024)} for i in range(2)}

        def forward(params, state, x):
            h = x
            new_state = {}
            for i in range(3):
                h = h @ params[f"l{i}"]["w"] + params[f"l{i}"]["b"]
                if i < 2:
                    mean = h.mean(0)
                    var = h.var(0)
                    n = h.shape[0]
                    s = state[f"bn{i}"]
                    new_state[f"bn{i}"] = {
                        "mean": 0.9 * s["mean"] + 0.1 * mean,
                        "var": 0.9 * s["var"] + 0.1 * var * n / (n - 1),
                    }
                    h = (h - mean) / jnp.sqrt(var + 1e-5) * params[f"bn{i}"]["g"] + params[f"bn{i}"]["b"]
                    h = jax.nn.relu(h)
            return h, new_state

    opt_state = tx.init(params)

    def step(params, opt_state, state, x, y):
        def loss_fn(p):
            logits, new_state = forward(p, state, x)
            return xent(logits, y), new_state

        (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, new_state, loss

    step = jax.jit(step, donate_argnums=(0, 1, 2))
    box = [params, opt_state, state]

    def run() -> jax.Array:
        box[0], box[1], box[2], loss = step(box[0], box[1], box[2], x, y)
        return loss

    return run


# ----------------------------------------------------------------------------- jmod


class JLeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 5)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.f1 = nn.Linear(400, 120)
        self.f2 = nn.Linear(120, 84)
        self.f3 = nn.Linear(84, 10)

    def forward(self, x: jax.Array) -> jax.Array:
        x = self.pool(jax.nn.relu(self.c1(x)))
        x = self.pool(jax.nn.relu(self.c2(x)))
        x = x.reshape(x.shape[0], -1)
        x = jax.nn.relu(self.f1(x))
        x = jax.nn.relu(self.f2(x))
        return self.f3(x)


def jmod_model(workload: str) -> nn.Module:
    if workload == "mlp-tiny":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    if workload == "lenet":
        return JLeNet()
    return nn.Sequential(
        nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 10),
    )


def jmod_impl(workload: str) -> Callable[[], jax.Array]:
    x, y = map(jnp.asarray, make_data(workload))
    jmod.manual_seed(0)
    model = jmod_model(workload)
    opt = jmod.optim.Optimizer(model, make_tx(workload))

    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: xent(m(x), y))(model)
        opt.step(grads)
        return loss

    return lambda: step(model, opt, x, y)


# ------------------------------------------------------------------------ Flax NNX


def nnx_model(workload: str):
    from flax import nnx

    rngs = nnx.Rngs(0)
    if workload == "mlp-tiny":
        return nnx.Sequential(
            nnx.Linear(64, 128, rngs=rngs), nnx.relu, nnx.Linear(128, 128, rngs=rngs), nnx.relu,
            nnx.Linear(128, 10, rngs=rngs),
        )
    if workload == "lenet":

        class LeNet(nnx.Module):
            def __init__(self, rngs):
                self.c1 = nnx.Conv(3, 6, (5, 5), padding="VALID", rngs=rngs)
                self.c2 = nnx.Conv(6, 16, (5, 5), padding="VALID", rngs=rngs)
                self.f1 = nnx.Linear(400, 120, rngs=rngs)
                self.f2 = nnx.Linear(120, 84, rngs=rngs)
                self.f3 = nnx.Linear(84, 10, rngs=rngs)

            def __call__(self, x):
                x = x.transpose(0, 2, 3, 1)  # NNX convolutions are NHWC
                x = nnx.max_pool(nnx.relu(self.c1(x)), (2, 2), (2, 2))
                x = nnx.max_pool(nnx.relu(self.c2(x)), (2, 2), (2, 2))
                x = x.reshape(x.shape[0], -1)
                return self.f3(nnx.relu(self.f2(nnx.relu(self.f1(x)))))

        return LeNet(rngs)
    return nnx.Sequential(
        nnx.Linear(512, 1024, rngs=rngs), nnx.BatchNorm(1024, momentum=0.9, rngs=rngs), nnx.relu,
        nnx.Linear(1024, 1024, rngs=rngs), nnx.BatchNorm(1024, momentum=0.9, rngs=rngs), nnx.relu,
        nnx.Linear(1024, 10, rngs=rngs),
    )


def nnx_jit(workload: str) -> Callable[[], jax.Array]:
    from flax import nnx

    x, y = map(jnp.asarray, make_data(workload))
    model = nnx_model(workload)
    optimizer = nnx.Optimizer(model, make_tx(workload), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: xent(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    return lambda: step(model, optimizer, x, y)


def nnx_fast(workload: str) -> Callable[[], jax.Array]:
    """The split-once / merge-inside loop of Flax's performance guide."""
    from flax import nnx

    x, y = map(jnp.asarray, make_data(workload))
    model = nnx_model(workload)
    optimizer = nnx.Optimizer(model, make_tx(workload), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))

    def step(state, x, y):
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: xent(m(x), y))(model)
        optimizer.update(model, grads)
        return loss, nnx.state((model, optimizer))

    step = jax.jit(step, donate_argnums=0)
    box = [state]

    def run() -> jax.Array:
        loss, box[0] = step(box[0], x, y)
        return loss

    return run


# ------------------------------------------------------------------------- Equinox


def equinox_impl(workload: str) -> Callable[[], jax.Array]:
    import equinox as eqx

    x, y = map(jnp.asarray, make_data(workload))
    keys = jax.random.split(jax.random.key(0), 8)
    tx = make_tx(workload)
    if workload == "mlp-tiny":
        model = eqx.nn.MLP(64, 10, 128, 2, activation=jax.nn.relu, key=keys[0])
        state = None

        def apply(model, state, x):
            return jax.vmap(model)(x), state

    elif workload == "lenet":

        class LeNet(eqx.Module):
            c1: eqx.nn.Conv2d
            c2: eqx.nn.Conv2d
            f1: eqx.nn.Linear
            f2: eqx.nn.Linear
            f3: eqx.nn.Linear

            def __init__(self, keys):
                self.c1 = eqx.nn.Conv2d(3, 6, 5, key=keys[0])
                self.c2 = eqx.nn.Conv2d(6, 16, 5, key=keys[1])
                self.f1 = eqx.nn.Linear(400, 120, key=keys[2])
                self.f2 = eqx.nn.Linear(120, 84, key=keys[3])
                self.f3 = eqx.nn.Linear(84, 10, key=keys[4])

            def __call__(self, x):
                pool = eqx.nn.MaxPool2d(2, 2)
                x = pool(jax.nn.relu(self.c1(x)))
                x = pool(jax.nn.relu(self.c2(x)))
                x = x.reshape(-1)
                return self.f3(jax.nn.relu(self.f2(jax.nn.relu(self.f1(x)))))

        model = LeNet(keys)
        state = None

        def apply(model, state, x):
            return jax.vmap(model)(x), state

    else:

        class MLPBN(eqx.Module):
            layers: list
            bns: list

            def __init__(self, keys):
                self.layers = [
                    eqx.nn.Linear(512, 1024, key=keys[0]),
                    eqx.nn.Linear(1024, 1024, key=keys[1]),
                    eqx.nn.Linear(1024, 10, key=keys[2]),
                ]
                self.bns = [eqx.nn.BatchNorm(1024, axis_name="batch", momentum=0.9, mode="ema") for _ in range(2)]

            def __call__(self, x, state):
                for i in range(2):
                    x = self.layers[i](x)
                    x, state = self.bns[i](x, state)
                    x = jax.nn.relu(x)
                return self.layers[2](x), state

        model, state = eqx.nn.make_with_state(MLPBN)(keys)

        def apply(model, state, x):
            out, states = jax.vmap(model, in_axes=(0, None), out_axes=(0, None), axis_name="batch")(x, state)
            return out, states

    opt_state = tx.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit(donate="all-except-first")
    def step(x, model, opt_state, state, y):
        def loss_fn(model):
            logits, new_state = apply(model, state, x)
            return xent(logits, y), new_state

        (loss, new_state), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, new_state, loss

    box = [model, opt_state, state]

    def run() -> jax.Array:
        box[0], box[1], box[2], loss = step(x, box[0], box[1], box[2], y)
        return loss

    return run


# ------------------------------------------------------------------------- PyTorch


def torch_impl(workload: str) -> Callable[[], object]:
    import torch

    torch.manual_seed(0)
    x, y = make_data(workload)
    x, y = torch.tensor(x), torch.tensor(y, dtype=torch.long)
    if workload == "mlp-tiny":
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
    elif workload == "lenet":
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 6, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10),
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        model = torch.nn.Sequential(
            torch.nn.Linear(512, 1024), torch.nn.BatchNorm1d(1024), torch.nn.ReLU(),
            torch.nn.Linear(1024, 1024), torch.nn.BatchNorm1d(1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10),
        )
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return run


IMPLEMENTATIONS: dict[str, Callable[[str], Callable]] = {
    "pure JAX (jax.jit + donation)": pure_jax,
    "jmod (jmod.jit)": jmod_impl,
    "Flax NNX (nnx.jit)": nnx_jit,
    "Flax NNX (split/merge fast path)": nnx_fast,
    "Equinox (filter_jit)": equinox_impl,
    "PyTorch eager": torch_impl,
}


def _block(result: object) -> None:
    if isinstance(result, jax.Array):
        result.block_until_ready()


def _is_torch(name: str) -> bool:
    return name.startswith("PyTorch")


def _time_block(run: Callable, steps: int) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = None
    for _ in range(steps):
        out = run()
    _block(out)
    return (time.perf_counter() - t0) / steps, out


def measure(runners: dict[str, Callable], steps: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per step of every round, per implementation.

    The JAX-based implementations are interleaved round by round in an order rotated
    every round; PyTorch runs afterwards, alone (see the module docstring).
    """
    names = [n for n in runners if not _is_torch(n)]
    last: dict[str, object] = {}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for name in names:  # compile and warm up
        _, last[name] = _time_block(runners[name], 3)
    for r in range(rounds):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            t, last[name] = _time_block(runners[name], steps)
            samples[name].append(t)
    for name in runners:  # PyTorch: warm up and time alone, after every JAX round
        if _is_torch(name):
            _, last[name] = _time_block(runners[name], 3)
            for _ in range(rounds):
                t, last[name] = _time_block(runners[name], steps)
                samples[name].append(t)
    for name, out in last.items():  # a smoke check that every step computed something finite
        value = np.asarray(out.detach().numpy() if hasattr(out, "detach") else out)
        if not np.isfinite(value).all():
            raise RuntimeError(f"{name}: the last result is not finite: {value}")
    return samples


def summary(v: list[float]) -> tuple[float, float, float, float, float]:
    """``(median, p25, p75, min, max)`` of a list of timings."""
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else [v[0]] * 3
    return statistics.median(v), q[0], q[2], min(v), max(v)


def header(rounds: int) -> str:
    """Where the numbers come from: commit, machine, versions, load."""
    import importlib.metadata
    import os
    import platform
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short=10", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for dist in ("jax", "jaxlib", "optax", "flax", "equinox", "torch"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    try:
        import torch

        torch_threads = f"; torch threads {torch.get_num_threads()}"
    except ImportError:
        torch_threads = ""
    return "\n".join([
        f"commit {commit}",
        f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}; load average at start {load}",
        f"{', '.join(versions)}; {jax.devices()[0].platform}, {len(jax.devices())} device(s){torch_threads}",
        f"median over {rounds} rounds (JAX rows interleaved, order rotated every round; PyTorch timed alone after them)",
    ])


def print_table(times: dict[str, list[float]], base_name: str, base_label: str, unit: str, scale: float) -> None:
    base = statistics.median(times[base_name]) if base_name in times else None
    print(f"  {'implementation':36s} {unit:>10s} {'p25-p75':>17s} {'min-max':>17s} {'vs ' + base_label:>12s}")
    for name, v in times.items():
        med, p25, p75, lo, hi = (x * scale for x in summary(v))
        ratio = f"{med / (base * scale):.2f}x" if base else "-"
        print(f"  {name:36s} {med:10.3f} {p25:8.3f}-{p75:<8.3f} {lo:8.3f}-{hi:<8.3f} {ratio:>12s}")


def call_overhead(rounds: int, steps: int = 2000) -> dict[str, list[float]]:
    """Seconds per call of a compiled forward on a 100-leaf model, cache hit, per round."""

    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(50)])  # 100 leaves

        def forward(self, x: jax.Array) -> jax.Array:
            return x * 2.0  # no real work: only the call overhead is measured

    model = Wide()
    x = jnp.ones((1, 4))
    params = {n: p for n, p in model.named_parameters()}
    bare = jax.jit(lambda p, x: x * 2.0)
    fwd = jmod.jit(lambda m, x: m(x))
    compiled = Wide()
    compiled.compile()
    runners = {
        "bare jax.jit(params, x)": lambda: bare(params, x),
        "jmod.jit(model, x)": lambda: fwd(model, x),
        "model.compile(); model(x)": lambda: compiled(x),
    }
    return measure(runners, steps=steps, rounds=rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", action="append", choices=["mlp-tiny", "lenet", "mlp-bn"])
    parser.add_argument("--impl", action="append", help="substring of an implementation name to run")
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 15; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: small blocks, few rounds (smoke test)")
    args = parser.parse_args(argv)
    # --quick is CI's smoke run: it checks that every implementation compiles, steps and
    # gives a finite loss on the overhead-bound workload, in a few seconds; its numbers
    # (one step per block) are not for quoting.
    workloads = args.workload or (["mlp-tiny"] if args.quick else ["mlp-tiny", "lenet", "mlp-bn"])
    steps = {"mlp-tiny": 300, "lenet": 20, "mlp-bn": 10}
    rounds = args.rounds or (3 if args.quick else 15)
    print(header(rounds))
    base_name = "pure JAX (jax.jit + donation)"
    for workload in workloads:
        runners = {}
        for name, make in IMPLEMENTATIONS.items():
            if args.impl and not any(s.lower() in name.lower() for s in args.impl) and name != base_name:
                continue
            try:
                runners[name] = make(workload)
            except ImportError as e:  # an optional framework is not installed
                print(f"  (skipping {name}: {e})")
        n = 1 if args.quick else steps[workload]
        times = measure(runners, n, rounds)
        print(f"\n{workload}: milliseconds per step")
        print_table(times, base_name, "pure JAX", "median", 1e3)
    print("\ncompiled forward, 100-leaf model, cache hit: microseconds per call")
    overhead = call_overhead(rounds, steps=20 if args.quick else 2000)
    print_table(overhead, "bare jax.jit(params, x)", "bare jit", "median", 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
