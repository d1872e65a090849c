"""A small training run with periodic checkpoints, killed and resumed by tests/test_checkpoint.py.

``run()`` trains an MLP with dropout (so the RNG state matters), Adam and a StepLR
schedule for ``steps`` steps, saving model + optimizer + scheduler + RNG + step
with a ``jmod.checkpoint.CheckpointManager`` every ``every`` steps; with
``kill_at`` the process SIGKILLs itself right after step ``kill_at`` (a save may
be in flight); with ``resume`` it starts from the latest committed checkpoint.

As a script (the tests start it in a subprocess) it reads its arguments from
``JMOD_CKPT_*`` environment variables; ``JMOD_COORDINATOR`` etc. select a
two-process ``jax.distributed`` run (the layout of examples/multihost_data_parallel.py).
"""

from __future__ import annotations

import os
import signal

import numpy as np

IN, HIDDEN, OUT, BATCH = 8, 32, 8, 16


def make_model():
    import jax

    import jmod
    from jmod import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(IN, HIDDEN)
            self.drop = nn.Dropout(0.25)
            self.fc2 = nn.Linear(HIDDEN, OUT)

        def forward(self, x):
            return self.fc2(self.drop(jax.nn.relu(self.fc1(x))))

    jmod.manual_seed(0)
    return Net()


def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    """The global batch of ``step`` (a function of the step only, so a resumed run sees the same data)."""
    rng = np.random.default_rng(1000 + step)
    x = rng.standard_normal((BATCH, IN)).astype(np.float32)
    return x, np.tanh(x[:, :OUT] * 2).astype(np.float32)


def setup(layout: str):
    """Model, optimizer, scheduler, mesh for a layout: 'single' (one device), 'fsdp' (all devices)."""
    import jmod

    model = make_model()
    mesh = None
    if layout == "fsdp":
        import jax

        mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
        jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data", min_size=0))
    opt = jmod.optim.Adam(model.parameters(), lr=1e-2)
    sched = jmod.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    return model, opt, sched, mesh


def state(model, opt, sched, step):
    import jmod

    return {
        "model": model.state_dict(),
        "optim": opt.state_dict(),
        "sched": sched.state_dict(),
        "rng": jmod.get_rng_state(),
        "step": step,
        "user": {"note": "checkpoint_worker"},
    }


def final(model, opt, sched) -> dict[str, np.ndarray]:
    """Everything a resumed run must reproduce, as host arrays (gathered in a multi-process run)."""
    import jax

    import jmod

    def host(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    out = {f"model:{k}": host(v) for k, v in model.state_dict().items()}
    out.update({f"optim:{k}": host(v) for k, v in opt.state_dict()["state"].items()})
    out["optim:lr"] = np.asarray([g["lr"] for g in opt.state_dict()["param_groups"]], np.float64)
    out["sched:last_epoch"] = np.asarray(sched.state_dict()["last_epoch"])
    out["sched:last_lr"] = np.asarray(sched.get_last_lr(), np.float64)
    out["rng"] = np.asarray(jmod.get_rng_state())
    return out


_STEP = []


def _train_step():
    """One compiled step shared by every run in a process (a resumed and a reference run reuse it)."""
    import jmod

    if not _STEP:

        @jmod.jit
        def train_step(model, opt, x, y):
            loss, grads = jmod.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
            opt.step(grads)
            return loss

        _STEP.append(train_step)
    return _STEP[0]


def run(
    directory: str | None,
    steps: int,
    every: int,
    *,
    layout: str = "single",
    kill_at: int | None = None,
    resume: bool = False,
    async_save: bool = True,
) -> tuple[dict[str, np.ndarray], int]:
    """Train; return the final state (``final``) and the step training started from."""
    import jax

    import jmod

    model, opt, sched, mesh = setup(layout)
    process, nproc = jax.process_index(), jax.process_count()

    train_step = _train_step()
    mgr = None
    start = 0
    if directory is not None:
        mgr = jmod.checkpoint.CheckpointManager(directory, max_to_keep=2, async_save=async_save)
        if resume and mgr.latest_step() is not None:
            loaded = mgr.restore(None, state(model, opt, sched, 0))
            model.load_state_dict(loaded["model"])
            opt.load_state_dict(loaded["optim"])
            sched.load_state_dict(loaded["sched"])
            jmod.set_rng_state(loaded["rng"])
            start = loaded["step"]
            assert loaded["user"] == {"note": "checkpoint_worker"}
    for step in range(start + 1, steps + 1):
        x, y = batch(step)
        if mesh is not None:
            local = BATCH // nproc
            x, y = x[process * local : (process + 1) * local], y[process * local : (process + 1) * local]
            x, y = jmod.parallel.shard_batch((x, y), mesh)
        train_step(model, opt, x, y)
        sched.step()
        if mgr is not None and step % every == 0:
            mgr.save(step, state(model, opt, sched, step))
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    if mgr is not None:
        mgr.close()
    return final(model, opt, sched), start


def main() -> None:
    env = os.environ
    if "JMOD_COORDINATOR" in env:
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=env["JMOD_COORDINATOR"],
            num_processes=int(env["JMOD_NUM_PROCESSES"]),
            process_id=int(env["JMOD_PROCESS_ID"]),
            initialization_timeout=60,
        )
    kill_at = int(env["JMOD_CKPT_KILL_AT"]) if env.get("JMOD_CKPT_KILL_AT") else None
    steps, every = int(env["JMOD_CKPT_STEPS"]), int(env["JMOD_CKPT_EVERY"])
    layout = env.get("JMOD_CKPT_LAYOUT", "single")
    got, start = run(env["JMOD_CKPT_DIR"], steps, every, layout=layout, kill_at=kill_at, resume=bool(env.get("JMOD_CKPT_RESUME")))
    print(f"resumed from step {start}", flush=True)
    output = env.get("JMOD_CKPT_OUTPUT")
    if output and env.get("JMOD_CKPT_REFERENCE"):
        # The uninterrupted run, in this same process (and process group), for a bitwise comparison.
        ref, _ = run(None, steps, every, layout=layout)
        np.savez(output, **{f"got/{k}": v for k, v in got.items()}, **{f"ref/{k}": v for k, v in ref.items()})
    elif output:
        np.savez(output, **got)
    if "JMOD_COORDINATOR" in env:
        import jax

        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
