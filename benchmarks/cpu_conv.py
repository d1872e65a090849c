"""XLA:CPU convolutions against torch: what flags and layouts change (issue 18, item 5).

Each configuration runs in its own process (XLA flags are read once per process),
configurations alternate order between rounds, and the table shows the median
time of a compiled forward+backward of LeNet's two convolutions (batch 128, 3x32x32)
and the largest difference of its output and gradients from the default build::

    python benchmarks/cpu_conv.py            # all configurations, 3 rounds
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "XLA default (NCHW)": ("", "NCHW"),
    "XLA NHWC layout": ("", "NHWC"),
    "XLA --xla_cpu_use_xnnpack": ("--xla_cpu_use_xnnpack=true", "NCHW"),
    "XLA --xla_cpu_use_onednn": ("--xla_cpu_use_onednn=true", "NCHW"),
    "XLA --xla_cpu_multi_thread_eigen=false": ("--xla_cpu_multi_thread_eigen=false", "NCHW"),
}


def child(layout: str) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((128, 3, 32, 32)), jnp.float32)
    w1 = jnp.asarray(rng.standard_normal((6, 3, 5, 5)) * 0.1, jnp.float32)
    w2 = jnp.asarray(rng.standard_normal((16, 6, 5, 5)) * 0.1, jnp.float32)

    def conv(x, w):
        if layout == "NHWC":
            y = jax.lax.conv_general_dilated(
                x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), (1, 1), "VALID",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )  # fmt: skip
            return y.transpose(0, 3, 1, 2)
        return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def loss(ws, x):
        h = jax.nn.relu(conv(x, ws[0]))
        h = jax.nn.relu(conv(h, ws[1]))
        return (h**2).mean()

    step = jax.jit(jax.value_and_grad(loss))
    out = step((w1, w2), x)
    jax.block_until_ready(out)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(5):
            out = step((w1, w2), x)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / 5)
    loss_v, (g1, g2) = out
    print(json.dumps({"time": statistics.median(times), "loss": float(loss_v), "g1": np.asarray(g1).ravel().tolist(),
                      "g2": np.asarray(g2).ravel().tolist()}))  # fmt: skip


def torch_time() -> float:
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((128, 3, 32, 32)), dtype=torch.float32)
    w1 = torch.tensor(rng.standard_normal((6, 3, 5, 5)) * 0.1, dtype=torch.float32, requires_grad=True)
    w2 = torch.tensor(rng.standard_normal((16, 6, 5, 5)) * 0.1, dtype=torch.float32, requires_grad=True)
    F = torch.nn.functional

    def step():
        w1.grad = w2.grad = None
        h = F.relu(F.conv2d(F.relu(F.conv2d(x, w1)), w2))
        (h**2).mean().backward()

    step()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(5):
            step()
        times.append((time.perf_counter() - t0) / 5)
    return statistics.median(times)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return 0
    import numpy as np

    rounds = 3
    results: dict[str, list] = {}
    names = list(CONFIGS)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            flags, layout = CONFIGS[name]
            env = dict(os.environ, XLA_FLAGS=flags)
            out = subprocess.run(
                [sys.executable, __file__, "--child", layout], env=env, capture_output=True, text=True, check=True
            )
            results.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
        results.setdefault("torch eager", []).append({"time": torch_time()})
    ref = results[names[0]][0]
    print("LeNet convolutions, forward+backward, batch 128, float32, median ms per step")
    for name, runs in results.items():
        t = statistics.median(r["time"] for r in runs) * 1e3
        diff = ""
        if "g1" in runs[0]:
            d = max(
                float(np.max(np.abs(np.asarray(runs[0][g]) - np.asarray(ref[g])))) for g in ("g1", "g2")
            )
            diff = f"   max |grad - default| {d:.1e}"
        print(f"  {name:40s} {t:8.2f} ms{diff}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
