"""Checkpoint save/restore time and peak host memory for a ~200 MB model, on 8 fake CPU devices.

::

    python benchmarks/checkpoint.py             # ~200 MB model (3 x Linear(4096, 4096)), FSDP over 8 devices
    python benchmarks/checkpoint.py --quick     # ~13 MB model (CI smoke run)

Each measurement runs in a fresh process, which builds the model sharded FSDP over
8 fake CPU devices and then does one thing:

* ``jmod.save`` / ``jmod.load``: one safetensors file (gathers every array on the host),
  restored with ``model.load_state_dict``;
* ``sharded sync``: ``jmod.checkpoint.save`` / ``jmod.checkpoint.load`` into the model's shardings;
* ``async``: ``jmod.checkpoint.async_save``: the *stall* is how long the call blocks the
  training loop (copying the arrays to host memory); *total* is until the commit.

Time is wall-clock; *peak RSS* is the process's resident memory above what it held
just before the operation (sampled every 2 ms), i.e. the host memory the operation
itself needs. On a CPU host the "device" arrays live in host memory too, so the
model's own size is not counted (it is in the baseline).

Then two ``jax.distributed`` processes (4 fake devices each) save the FSDP-sharded
model with ``jmod.checkpoint.save``, and two fresh processes restore it into
``ShapeDtypeStruct`` targets (sharded over both processes): each process's peak RSS
increase is compared with the whole model's size, and with a ``jmod.load`` of the
single file (which every process would need whole).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

LAYERS = 3


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident memory above the level at entry, sampled by a thread."""

    def __enter__(self):
        self.base = _rss()
        self.peak = self.base
        self._stop = False
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self):
        while not self._stop:
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, _rss())
        self.delta = self.peak - self.base
        return False


def build(width: int, mesh):
    import jmod
    from jmod import nn

    jmod.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(LAYERS)])
    if mesh is not None:
        jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data"))
    return model


def model_bytes(width: int) -> int:
    return LAYERS * (width * width + width) * 4


def worker(mode: str, width: int, directory: str) -> dict:
    """One measurement in this process; returns the figures as a dict."""
    import jax

    if os.environ.get("JMOD_COORDINATOR"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=os.environ["JMOD_COORDINATOR"],
            num_processes=int(os.environ["JMOD_NUM_PROCESSES"]),
            process_id=int(os.environ["JMOD_PROCESS_ID"]),
            initialization_timeout=60,
        )
    import jmod  # after jax.distributed.initialize

    mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
    if "sharded" in mode or "async" in mode or "abstract" in mode:
        # Steady state of a run that checkpoints repeatedly: orbax imported, its thread
        # pools started (a first tiny save and load, not measured).
        import jax.numpy as jnp

        warm = os.path.join(directory, f"warm-{mode}")
        jmod.checkpoint.save({"w": jnp.ones(8)}, warm, overwrite=True)
        jmod.checkpoint.load({"w": jnp.ones(8)}, warm)
    file = os.path.join(directory, "model.safetensors")
    sharded = os.path.join(directory, "sharded")
    out: dict = {"mode": mode, "process": jax.process_index()}
    if mode == "restore-abstract":
        # nothing of the model exists before the read: the targets are shapes and shardings
        from jax.sharding import NamedSharding

        target = {
            k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=NamedSharding(mesh, spec))
            for k, (v, spec) in _abstract(width, mesh).items()
        }
        with PeakRSS() as m:
            t0 = time.perf_counter()
            sd = jmod.checkpoint.load(target, sharded)
            jax.block_until_ready(sd)
            out["time"] = time.perf_counter() - t0
        out["rss"] = m.delta
        # on fake CPU devices the restored shards themselves are host memory (on GPU/TPU they are not)
        out["local_bytes"] = sum(s.data.nbytes for v in sd.values() for s in v.addressable_shards)
    else:
        model = build(width, mesh)
        jax.block_until_ready(model.state_dict())
        if mode == "save-file":
            with PeakRSS() as m:
                t0 = time.perf_counter()
                jmod.save(model.state_dict(), file)
                out["time"] = time.perf_counter() - t0
        elif mode == "load-file":
            with PeakRSS() as m:
                t0 = time.perf_counter()
                model.load_state_dict(jmod.load(file))
                jax.block_until_ready(model.state_dict())
                out["time"] = time.perf_counter() - t0
        elif mode == "save-sharded":
            with PeakRSS() as m:
                t0 = time.perf_counter()
                jmod.checkpoint.save(model.state_dict(), sharded, overwrite=True)
                out["time"] = time.perf_counter() - t0
        elif mode == "load-sharded":
            with PeakRSS() as m:
                t0 = time.perf_counter()
                model.load_state_dict(jmod.checkpoint.load(model.state_dict(), sharded))
                jax.block_until_ready(model.state_dict())
                out["time"] = time.perf_counter() - t0
        elif mode == "save-async":
            with PeakRSS() as m:
                t0 = time.perf_counter()
                handle = jmod.checkpoint.async_save(model.state_dict(), os.path.join(directory, "async"), overwrite=True)
                out["stall"] = time.perf_counter() - t0
                handle.result()
                out["time"] = time.perf_counter() - t0
        else:
            raise ValueError(mode)
        out["rss"] = m.delta
    if os.environ.get("JMOD_COORDINATOR"):
        jax.distributed.shutdown()
    return out


def _abstract(width: int, mesh):
    """The model's state dict shapes and FSDP specs, without building it."""
    import jax
    import numpy as np

    import jmod

    rule = jmod.parallel.fsdp(mesh, "data")
    out = {}
    for i in range(LAYERS):
        for name, shape in ((f"{i}.weight", (width, width)), (f"{i}.bias", (width,))):
            x = jax.ShapeDtypeStruct(shape, np.float32)
            out[name] = (x, rule(name, x))
    return out


def _run(mode: str, width: int, directory: str, devices: int = 8, env_extra: dict | None = None, n: int = 1) -> list[dict]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--width", str(width), "--dir", directory]
    procs = []
    for rank in range(n):
        e = dict(env, **(env_extra or {}))
        if n > 1:
            e["JMOD_PROCESS_ID"] = str(rank)
        procs.append(subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        if p.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~13 MB model")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.width, args.dir)))
        return
    width = args.width or (1024 if args.quick else 4096)
    size = model_bytes(width)
    mb = 1 << 20
    tmp = tempfile.mkdtemp(prefix="jmod-ckpt-bench-")
    try:
        r = {mode: _run(mode, width, tmp)[0] for mode in
             ("save-file", "load-file", "save-sharded", "load-sharded", "save-async")}
        print(f"model: {LAYERS} x Linear({width}, {width}), {size / mb:.0f} MB float32, FSDP over 8 fake CPU devices, "
              f"{os.cpu_count()} cores")
        header = f"{'method':24s} {'save s':>8s} {'stall s':>8s} {'save peak RSS MB':>17s} {'restore s':>10s} {'restore peak RSS MB':>20s}"
        print(header)
        print("-" * len(header))
        rows = [
            ("jmod.save / jmod.load", r["save-file"], None, r["load-file"]),
            ("sharded sync", r["save-sharded"], None, r["load-sharded"]),
            ("sharded async", r["save-async"], r["save-async"]["stall"], None),
        ]
        for name, s, stall, lo in rows:
            stall_s = f"{stall:8.2f}" if stall is not None else f"{s['time']:8.2f}"
            load_t = f"{lo['time']:10.2f}" if lo else f"{'(as sync)':>10s}"
            load_m = f"{lo['rss'] / mb:20.0f}" if lo else f"{'':>20s}"
            print(f"{name:24s} {s['time']:8.2f} {stall_s} {s['rss'] / mb:17.0f} {load_t} {load_m}")
        print("(stall: how long the training loop is blocked; for the synchronous methods the whole save.")
        print(" Restore RSS includes the restored arrays: on fake CPU devices the model itself is host memory.)")

        # two processes: save sharded across them, then restore in fresh processes
        def pair_env():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            return {"JMOD_COORDINATOR": f"127.0.0.1:{port}", "JMOD_NUM_PROCESSES": "2"}

        shutil.rmtree(os.path.join(tmp, "sharded"), ignore_errors=True)
        saved = _run("save-sharded", width, tmp, devices=4, env_extra=pair_env(), n=2)
        restored = _run("restore-abstract", width, tmp, devices=4, env_extra=pair_env(), n=2)
        print()
        print(f"two jax.distributed processes x 4 fake devices, the {size / mb:.0f} MB model FSDP-sharded across both:")
        for s, lo in zip(saved, restored):
            print(
                f"  process {lo['process']}: save {s['time']:.2f} s (peak +{s['rss'] / mb:.0f} MB); restore {lo['time']:.2f} s, "
                f"peak RSS +{lo['rss'] / mb:.0f} MB = {lo['rss'] / size:.0%} of the whole model, of which "
                f"{lo['local_bytes'] / mb:.0f} MB are the restored shards (device memory on GPU/TPU); "
                f"transient {(lo['rss'] - lo['local_bytes']) / mb:.0f} MB"
            )
        print(f"  (a jmod.load of the single file needs the whole {size / mb:.0f} MB in every process)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
