"""Shared pieces of the guarantee tests (issue 13): small models, state snapshots,
bounded waits. Nothing here is a test."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

import jmod
import jmod.nn.functional as F
from jmod import nn

ROOT = Path(__file__).resolve().parents[2]


def mlp(d_in: int = 4, hidden: int = 16, d_out: int = 2, *, batchnorm: bool = True, dropout: float = 0.25) -> nn.Module:
    """A small MLP with the state a training run has: BatchNorm buffers, a dropout draw."""
    layers: list[nn.Module] = [nn.Linear(d_in, hidden)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*layers)


def make_train_step(counter: list | None = None) -> Any:
    """A fresh ``@jmod.jit`` training step, as a user writes it. ``counter[0]`` counts traces."""

    @jmod.jit
    def train_step(model, opt, x, y):
        if counter is not None:
            counter[0] += 1  # Python code in the step runs once per trace
        loss, grads = jmod.value_and_grad(lambda m: F.mse_loss(m(x), y))(model)
        opt.step(grads)
        return loss

    return train_step


def batch(n: int = 8, d_in: int = 4, d_out: int = 2, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    y = rng.standard_normal((n, d_out)).astype(np.float32)
    return jax.numpy.asarray(x), jax.numpy.asarray(y)


def flat_arrays(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Every array leaf of a (nested) checkpoint as a NumPy copy, keyed by its path.

    Reading a deleted array raises here: that is the failure the guarantees rule out.
    """
    out: dict[str, np.ndarray] = {}
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            out.update(flat_arrays(v, f"{prefix}/{k}"))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(flat_arrays(v, f"{prefix}/{i}"))
    elif isinstance(tree, (jax.Array, np.ndarray, np.generic)):
        out[prefix] = np.array(tree)
    return out


def model_state(model: nn.Module, opt: Any = None) -> dict[str, np.ndarray]:
    """The checkpoint a user saves (model, optimizer, global generator) as NumPy copies."""
    ckpt: dict[str, Any] = {"model": model.state_dict(), "rng": jmod.get_rng_state()}
    if opt is not None:
        ckpt["optimizer"] = opt.state_dict()["state"]
    return flat_arrays(ckpt)


def differences(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], rtol: float, atol: float) -> list[str]:
    """Keys where two flat states differ (floats within rtol/atol, everything else exactly)."""
    if a.keys() != b.keys():
        return [f"keys differ: {sorted(set(a) ^ set(b))}"]
    out = []
    for k in a:
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            out.append(f"{k}: {x.shape}/{x.dtype} vs {y.shape}/{y.dtype}")
        elif np.issubdtype(x.dtype, np.floating):
            if not np.allclose(x, y, rtol=rtol, atol=atol):
                out.append(f"{k}: max |diff| {np.max(np.abs(x - y)):.3g}")
        elif not np.array_equal(x, y):
            out.append(f"{k}: {x.ravel()[:4]} vs {y.ravel()[:4]}")
    return out


def same_state(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], rtol: float = 1e-6, atol: float = 1e-7
) -> bool:
    return not differences(a, b, rtol, atol)


def run_threads(targets: list[Callable[[], None]], timeout: float = 60.0) -> list[str]:
    """Run each target in its own thread; return the errors (as text), and fail instead
    of hanging if a thread does not finish within ``timeout`` seconds."""
    errors: list[str] = []
    lock = threading.Lock()

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as e:  # a KeyboardInterrupt in a worker must not end the test run
                with lock:
                    errors.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])

        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    alive = [t.name for t in threads if t.is_alive()]
    if alive:
        pytest.fail(f"threads {alive} still running after {timeout} s (deadlock?); errors so far: {errors}")
    return errors


def run_python(
    code_or_path: str | Path,
    *args: str,
    cwd: str | Path | None = None,
    timeout: float = 60.0,
    extra_path: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run a Python script (a path, or source text) in a fresh interpreter that imports
    this checkout's jmod; fail the test if it runs longer than ``timeout`` seconds."""
    env = dict(os.environ)
    paths = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = (
        [sys.executable, str(code_or_path), *args]
        if isinstance(code_or_path, Path)
        else [sys.executable, "-c", code_or_path, *args]
    )
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"subprocess did not finish within {timeout} s; stderr tail:\n{err[-2000:]}")


@contextlib.contextmanager
def no_escaping_interrupt():
    """A KeyboardInterrupt that a test provokes must never stop the test session."""
    try:
        yield
    except KeyboardInterrupt as e:
        pytest.fail(f"a KeyboardInterrupt escaped where the test did not expect one: {e!r}")
