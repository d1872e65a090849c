"""Data-parallel training over several processes with ``jax.distributed`` (CPU: gloo).

Each process runs this same script (SPMD). After ``jax.distributed.initialize``
every process sees the devices of all processes (``jax.devices()``) and its own
(``jax.local_devices()``); ``jmod.parallel.data_parallel`` replicates the model
over all of them, each process feeds its own part of every batch
(``jmod.parallel.shard_batch``), and the unchanged ``jmod.jit`` training step
averages gradients across processes with XLA's collectives (gloo over TCP on CPU,
NCCL on GPUs, ICI on TPUs). Every process ends with the same parameters.

Two processes with four CPU devices each, on one machine (two shells)::

    export XLA_FLAGS=--xla_force_host_platform_device_count=4
    JMOD_COORDINATOR=127.0.0.1:12355 JMOD_NUM_PROCESSES=2 JMOD_PROCESS_ID=0 python examples/multihost_data_parallel.py
    JMOD_COORDINATOR=127.0.0.1:12355 JMOD_NUM_PROCESSES=2 JMOD_PROCESS_ID=1 python examples/multihost_data_parallel.py

On a cluster, use the first host's address as the coordinator and one process per
host (``jax.distributed.initialize()`` without arguments also reads SLURM, Open MPI
and TPU pod environments).

Environment:

* ``JMOD_COORDINATOR``: ``host:port`` of process 0 (required).
* ``JMOD_NUM_PROCESSES``, ``JMOD_PROCESS_ID``: world size and this process's rank.
* ``JMOD_STEPS``: training steps (default 10).
* ``JMOD_OUTPUT``: if set, write this process's losses and final parameters there
  (``.npz``), and test checkpoints of a model sharded across the processes (used by
  ``tests/test_parallel.py``).
"""

from __future__ import annotations

import os

import numpy as np

GLOBAL_BATCH = 32
IN, HIDDEN, OUT = 8, 32, 4
LR = 1e-2


def make_model():
    """The model, identical in every process (same seed)."""
    import jax

    import jmod
    from jmod import nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(IN, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, OUT)

        def forward(self, x):
            return self.fc2(jax.nn.relu(self.fc1(x)))

    jmod.manual_seed(0)
    model = MLP()
    return model


def global_batches(steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The global batches (every process builds all of them and keeps its part)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((IN, OUT)).astype(np.float32)
    out = []
    for _ in range(steps):
        x = rng.standard_normal((GLOBAL_BATCH, IN)).astype(np.float32)
        out.append((x, np.tanh(x @ w)))
    return out


def make_step():
    import jmod

    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
        opt.step(grads)
        return loss

    return step


def train(model, steps: int, *, mesh=None, process_id: int = 0, num_processes: int = 1) -> list[float]:
    """Train ``model`` for ``steps`` steps; data parallel over ``mesh`` if given.

    With several processes each one passes its contiguous slice of the global batch,
    so the global batch is the same in every configuration.
    """
    import jmod

    opt = jmod.optim.AdamW(model.parameters(), lr=LR)
    if mesh is not None:
        jmod.parallel.data_parallel(model, opt, mesh=mesh)
    step = make_step()
    local = GLOBAL_BATCH // num_processes
    losses = []
    for x, y in global_batches(steps):
        x, y = x[process_id * local : (process_id + 1) * local], y[process_id * local : (process_id + 1) * local]
        if mesh is not None:
            x, y = jmod.parallel.shard_batch((x, y), mesh)
        loss = step(model, opt, x, y)
        # The loss is replicated: every process holds a copy on its own devices.
        losses.append(float(np.asarray(loss.addressable_data(0))))
    return losses


def local_value(x) -> np.ndarray:
    """A replicated array's value from this process's copy."""
    return np.asarray(x.addressable_data(0))


def check_sharded_checkpoint(model, mesh, path: str) -> dict[str, bool]:
    """Save a model sharded across the processes (FSDP rules), load it back sharded."""
    from jax.experimental import multihost_utils

    import jmod

    expected = {k: local_value(v) for k, v in model.state_dict().items()}
    jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data"))
    sharded = {
        k: len({d.process_index for d in v.sharding.device_set})
        for k, v in model.state_dict().items()
        if not v.sharding.is_fully_replicated
    }
    # The gather inside save is a collective: every process calls it.
    jmod.save(model.state_dict(), path)
    saved = jmod.load(path)
    fresh = make_model()  # the initial weights, not the trained ones
    jmod.parallel.shard_module(fresh, mesh, jmod.parallel.fsdp(mesh, "data"))
    before = jmod.parallel.shardings(fresh)
    fresh.load_state_dict(jmod.load(path))
    return {
        "sharded_across_processes": sorted(sharded) == ["fc1.bias", "fc1.weight", "fc2.weight"]
        and set(sharded.values()) == {jax_process_count()},
        "file_matches": all(np.array_equal(saved[k], expected[k]) for k in expected),
        "load_keeps_sharding": jmod.parallel.shardings(fresh) == before,
        "load_matches": all(
            np.array_equal(multihost_utils.process_allgather(v, tiled=True), expected[k])
            for k, v in fresh.state_dict().items()
        ),
    }


def jax_process_count() -> int:
    import jax

    return jax.process_count()


def main() -> None:
    coordinator = os.environ["JMOD_COORDINATOR"]
    num_processes = int(os.environ.get("JMOD_NUM_PROCESSES", "1"))
    process_id = int(os.environ.get("JMOD_PROCESS_ID", "0"))
    steps = int(os.environ.get("JMOD_STEPS", "10"))
    output = os.environ.get("JMOD_OUTPUT")

    import jax

    # Cross-process collectives on CPU go through gloo (TCP); this is JAX's default
    # since 0.4.3x, set here so the requirement is visible. GPUs use NCCL, TPUs ICI.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=60,
    )
    import jmod

    print(
        f"process {jax.process_index()}/{jax.process_count()}: {jax.local_device_count()} local devices, "
        f"{jax.device_count()} in all",
        flush=True,
    )
    mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
    model = make_model()
    losses = train(model, steps, mesh=mesh, process_id=process_id, num_processes=num_processes)
    print(f"process {process_id}: losses {[round(x, 5) for x in losses]}", flush=True)
    if output:
        params = {f"param:{k}": local_value(v) for k, v in model.state_dict().items()}
        ckpt = check_sharded_checkpoint(model, mesh, f"{output}.ckpt{process_id}.safetensors")
        np.savez(output, losses=np.asarray(losses), **params, **{f"check:{k}": v for k, v in ckpt.items()})
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
