"""jmod.checkpoint: sharded/async checkpoints on orbax, the manager, atomic commit, exact resume after SIGKILL."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import jmod
from jmod import nn
from jmod.checkpoint import CheckpointError, CheckpointManager
from tests import checkpoint_worker as worker

pytest.importorskip("orbax.checkpoint")

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "checkpoint_worker.py"
STEPS, EVERY = 8, 2


def _env(**extra):
    env = dict(os.environ)
    env.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _assert_bitwise_equal(got, ref):
    assert sorted(got) == sorted(ref)
    for k in ref:
        assert got[k].dtype == ref[k].dtype, k
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def _full_state(model, opt, sched, step=0):
    return worker.state(model, opt, sched, step)


# ------------------------------------------------------------------ round trips
@pytest.mark.multidevice
def test_save_load_every_kind_of_state_onto_other_meshes(tmp_path):
    """FSDP over 8 devices -> 4-device FSDP, replicated, one device; non-array values come back."""
    model, opt, sched, mesh = worker.setup("fsdp")
    train = jmod.jit(lambda m, o, x, y: o.step(jmod.grad(lambda m: ((m(x) - y) ** 2).mean())(m)))
    train(model, opt, *jmod.parallel.shard_batch(worker.batch(1), mesh))
    sched.step()
    assert len(model.fc1.weight.sharding.device_set) == 8 and not model.fc1.weight.sharding.is_fully_replicated
    saved = _full_state(model, opt, sched, step=1)
    want = {k: np.asarray(v) for k, v in saved["model"].items()}
    want_opt = {k: np.asarray(v) for k, v in saved["optim"]["state"].items()}
    jmod.checkpoint.save(saved, tmp_path / "c")
    assert sorted(os.listdir(tmp_path)) == ["c"]

    mesh4 = jax.sharding.Mesh(np.array(jax.devices()[:4]), ("data",))
    layouts = {
        "fsdp4": lambda m: jmod.parallel.shard_module(m, mesh4, jmod.parallel.fsdp(mesh4, "data")),
        "replicated": lambda m: jmod.parallel.shard_module(m, mesh, lambda name, x: P()),
        "one device": lambda m: m,
    }
    for name, place in layouts.items():
        m2, o2, s2, _ = worker.setup("single")
        place(m2)
        o2 = jmod.optim.Adam(m2.parameters(), lr=1e-2)
        s2 = jmod.optim.lr_scheduler.StepLR(o2, step_size=3, gamma=0.5)
        target = _full_state(m2, o2, s2)
        layout = {k: v.sharding for k, v in target["model"].items()}
        out = jmod.checkpoint.load(target, tmp_path / "c")
        assert out["step"] == 1 and out["user"] == {"note": "checkpoint_worker"}, name
        assert out["sched"] == dict(saved["sched"]), name
        assert out["optim"]["param_groups"] == saved["optim"]["param_groups"], name
        np.testing.assert_array_equal(out["rng"], saved["rng"])
        for k, v in out["model"].items():
            assert v.sharding == layout[k], (name, k)
            np.testing.assert_array_equal(v, want[k], err_msg=f"{name} {k}")
        m2.load_state_dict(out["model"])
        o2.load_state_dict(out["optim"])
        s2.load_state_dict(out["sched"])
        for k, v in o2.state_dict()["state"].items():
            np.testing.assert_array_equal(v, want_opt[k], err_msg=f"{name} {k}")
        assert s2.get_last_lr() == sched.get_last_lr()
    # an abstract target: nothing allocated before the read
    abstract = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=NamedSharding(mesh4, P())) for k, v in want.items()}
    out = jmod.checkpoint.load({**_full_state(*worker.setup("single")[:3]), "model": abstract}, tmp_path / "c")
    assert all(len(v.sharding.device_set) == 4 for v in out["model"].values())


def test_load_errors_and_untargeted_load(tmp_path):
    m = nn.Linear(3, 2)
    jmod.checkpoint.save({"model": m.state_dict(), "epoch": 2, "t": (1, "a")}, tmp_path / "c")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        jmod.checkpoint.save({"model": m.state_dict()}, tmp_path / "c")
    jmod.checkpoint.save({"model": m.state_dict(), "epoch": 2, "t": (1, "a")}, tmp_path / "c", overwrite=True)
    whole = jmod.checkpoint.load(None, tmp_path / "c")
    assert whole["epoch"] == 2 and whole["t"] == (1, "a")
    np.testing.assert_array_equal(whole["model"]["weight"], m.weight)
    with pytest.raises(CheckpointError, match="size mismatch for '/model/weight'"):
        jmod.checkpoint.load({"model": nn.Linear(4, 2).state_dict(), "epoch": 0, "t": None}, tmp_path / "c")
    with pytest.raises(CheckpointError, match=r"missing in the checkpoint \['/model/extra'\]"):
        jmod.checkpoint.load({"model": {**m.state_dict(), "extra": jnp.zeros(1)}}, tmp_path / "c")
    with pytest.raises(FileNotFoundError):
        jmod.checkpoint.load(None, tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError, match="not a committed jmod checkpoint"):
        jmod.checkpoint.load(None, tmp_path / "plain")
    # 64-bit NumPy values are kept; without a target they are not narrowed silently
    wide = np.array([2**40 + 7], np.int64)
    jmod.checkpoint.save({"n": wide}, tmp_path / "wide")
    with pytest.raises(CheckpointError, match="'/n' was saved as int64"):
        jmod.checkpoint.load(None, tmp_path / "wide")
    with jax.enable_x64(True):
        np.testing.assert_array_equal(np.asarray(jmod.checkpoint.load(None, tmp_path / "wide")["n"]), wide)
    with pytest.raises(TypeError, match="jmod.checkpoint.save can store"):
        jmod.checkpoint.save({"f": print}, tmp_path / "d")


def test_async_save_while_compiled_steps_update_the_model(tmp_path):
    """Training steps (jmod.jit, which donates the state it replaces) run while the write is in
    flight: the checkpoint holds the values at the time of the call."""
    m = nn.Linear(4, 4)
    opt = jmod.optim.SGD(m.parameters(), lr=0.1)
    step = jmod.jit(lambda m, o, x: o.step(jmod.grad(lambda m: (m(x) ** 2).sum())(m)))
    x = jnp.ones((2, 4))
    step(m, opt, x)
    before = {k: np.asarray(v) for k, v in m.state_dict().items()}
    handle = jmod.checkpoint.async_save({"model": m.state_dict()}, tmp_path / "a")
    for _ in range(3):
        step(m, opt, x)
    handle.result(timeout=60)
    assert handle.done()
    assert not np.array_equal(np.asarray(m.weight), before["weight"])
    out = jmod.checkpoint.load({"model": m.state_dict()}, tmp_path / "a")
    for k, v in before.items():
        np.testing.assert_array_equal(out["model"][k], v)


def test_manager_keeps_last_n_and_best(tmp_path):
    m = nn.Linear(2, 2)
    losses = {1: 0.5, 2: 0.1, 3: 0.7, 4: 0.6, 5: 0.9}
    with CheckpointManager(tmp_path, max_to_keep=2, keep_best=1, best_metric="loss", mode="min") as mgr:
        for step, loss in losses.items():
            assert mgr.save(step, {"model": m.state_dict(), "step": step}, metrics={"loss": loss})
        mgr.wait()
        assert mgr.all_steps() == [2, 4, 5] and mgr.latest_step() == 5 and mgr.best_step() == 2
        assert mgr.restore(mgr.best_step(), {"model": m.state_dict(), "step": 0})["step"] == 2
        with pytest.raises(ValueError, match="pass metrics"):
            mgr.save(6, {"model": m.state_dict()})
    with CheckpointManager(tmp_path / "max", keep_best=2, best_metric="acc", mode="max", async_save=True) as mgr:
        for step, acc in losses.items():
            mgr.save(step, {"step": step}, metrics={"acc": acc})
        mgr.wait()
        assert mgr.all_steps() == [3, 5] and mgr.best_step() == 5
    with CheckpointManager(tmp_path / "interval", save_interval_steps=2) as mgr:
        assert [mgr.save(s, {"step": s}) for s in range(1, 5)] == [False, True, False, True]
    with pytest.raises(ValueError, match="go together"):
        CheckpointManager(tmp_path / "bad", keep_best=1)


# ------------------------------------------------------------- crash and resume
def _run_killed(tmp_path, layout, kill_at, **extra):
    proc = subprocess.run(
        [sys.executable, str(WORKER)],
        env=_env(
            JMOD_CKPT_DIR=tmp_path / "ckpts",
            JMOD_CKPT_STEPS=STEPS,
            JMOD_CKPT_EVERY=EVERY,
            JMOD_CKPT_LAYOUT=layout,
            JMOD_CKPT_KILL_AT=kill_at,
            **extra,
        ),
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout.decode() + proc.stderr.decode()[-3000:]


@pytest.mark.multidevice
@pytest.mark.parametrize("layout", ["single", "fsdp"])
def test_sigkill_at_a_random_step_then_resume_is_bitwise_exact(tmp_path, layout):
    """Killed at a random step (an async save may be in flight), resumed from the latest committed
    checkpoint in this process: parameters, Adam moments, scheduler and RNG equal an uninterrupted run."""
    # after at least two saves: a save still in flight when the kill comes leaves the one before it
    kill_at = random.Random().randint(2 * EVERY + 1, STEPS - 1)
    _run_killed(tmp_path, layout, kill_at)
    got, start = worker.run(str(tmp_path / "ckpts"), STEPS, EVERY, layout=layout, resume=True)
    assert start > 0 and start % EVERY == 0 and kill_at - 2 * EVERY < start <= kill_at, (kill_at, start)
    # no unfinished write survives the resuming manager
    assert all(name.isdigit() for name in os.listdir(tmp_path / "ckpts")), os.listdir(tmp_path / "ckpts")
    ref, _ = worker.run(None, STEPS, EVERY, layout=layout)
    _assert_bitwise_equal(got, ref)


def test_killed_writer_never_harms_the_latest_good_checkpoint(tmp_path):
    """A writer killed (SIGKILL) while checkpoint 2 is being committed (its files written, the
    rename not done: the last moment a crash can hit): checkpoint 1 stays the latest and loads,
    and the next manager removes the unfinished directory."""
    script = f"""
import os, signal, numpy as np, jax.numpy as jnp, jmod
from orbax.checkpoint._src.path import atomicity
mgr = jmod.checkpoint.CheckpointManager({str(tmp_path)!r}, async_save=True)
mgr.save(1, {{"w": jnp.ones((4, 4)), "step": 1}}); mgr.wait()
async def killed(self, *a, **k):
    print("killed while committing", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
atomicity.AtomicRenameTemporaryPath.finalize = killed
mgr.save(2, {{"w": jnp.zeros((256, 256)), "step": 2}})
mgr.wait()
"""
    proc = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL and b"killed while committing" in proc.stdout, proc.stderr.decode()[-3000:]
    leftovers = [n for n in os.listdir(tmp_path) if not n.isdigit()]
    assert any(n.startswith("2") for n in leftovers), leftovers  # the unfinished write of step 2
    with CheckpointManager(tmp_path) as mgr:
        assert mgr.latest_step() == 1 and mgr.all_steps() == [1]
        out = mgr.restore(None, {"w": jnp.zeros((4, 4)), "step": 0})
        assert out["step"] == 1
        np.testing.assert_array_equal(out["w"], np.ones((4, 4)))
        mgr.save(2, {"w": jnp.zeros((4, 4)), "step": 2})
        assert mgr.all_steps() == [1, 2]
    assert sorted(os.listdir(tmp_path)) == ["1", "2"], leftovers


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(tmp_path, **extra):
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER)],
            env=_env(
                XLA_FLAGS="--xla_force_host_platform_device_count=4",
                JMOD_COORDINATOR=f"127.0.0.1:{port}",
                JMOD_NUM_PROCESSES=2,
                JMOD_PROCESS_ID=rank,
                JMOD_CKPT_DIR=tmp_path / "ckpts",
                JMOD_CKPT_STEPS=STEPS,
                JMOD_CKPT_EVERY=EVERY,
                JMOD_CKPT_LAYOUT="fsdp",
                **{k: (v.format(rank=rank) if isinstance(v, str) else v) for k, v in extra.items()},
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(2)
    ]
    logs = []
    deadline = time.monotonic() + 120
    try:
        for p in procs:
            if "JMOD_CKPT_KILL_AT" in extra and p is procs[1]:
                # the peer of a killed process may wait in a collective: it dies with it
                try:
                    out, _ = p.communicate(timeout=max(1, min(20, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, _ = p.communicate()
            else:
                out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
            logs.append(out.decode(errors="replace"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return procs, logs


@pytest.mark.multidevice
def test_two_process_fsdp_sigkill_resume_is_bitwise_exact_and_restores_in_one_process(tmp_path):
    """Two jax.distributed processes x 4 devices, FSDP across both: killed at a random step,
    restarted, resumed; equal bitwise to an uninterrupted two-process run. The checkpoint
    then restores in this single process, on 8 devices and on one."""
    kill_at = random.Random().randint(2 * EVERY + 1, STEPS - 1)
    procs, logs = _two_processes(tmp_path, JMOD_CKPT_KILL_AT=kill_at)
    assert procs[0].returncode == -signal.SIGKILL, logs[0][-3000:]
    procs, logs = _two_processes(
        tmp_path, JMOD_CKPT_RESUME=1, JMOD_CKPT_REFERENCE=1, JMOD_CKPT_OUTPUT=str(tmp_path / "rank{rank}.npz")
    )
    for rank, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"process {rank}:\n{log[-3000:]}"
    start = int(logs[0].split("resumed from step ")[1].split()[0])
    assert start > 0 and start % EVERY == 0 and kill_at - 2 * EVERY < start <= kill_at, (kill_at, start)
    r0, r1 = (np.load(tmp_path / f"rank{rank}.npz") for rank in range(2))
    got = {k[4:]: r0[k] for k in r0.files if k.startswith("got/")}
    ref = {k[4:]: r0[k] for k in r0.files if k.startswith("ref/")}
    _assert_bitwise_equal(got, ref)
    _assert_bitwise_equal({k: r1[k] for k in r1.files}, {k: r0[k] for k in r0.files})

    # 2 processes -> 1: the final checkpoint (step STEPS) read by this process onto its own meshes
    for layout in ("fsdp", "single"):
        model, opt, sched, _ = worker.setup(layout)
        out = jmod.checkpoint.load(_full_state(model, opt, sched), tmp_path / "ckpts" / str(STEPS))
        for k, v in out["model"].items():
            np.testing.assert_array_equal(v, got[f"model:{k}"], err_msg=k)
        for k, v in out["optim"]["state"].items():
            np.testing.assert_array_equal(v, got[f"optim:{k}"], err_msg=k)
        np.testing.assert_array_equal(out["rng"], got["rng"])
        assert out["step"] == STEPS
