"""Devices and scale-out: placement, Module.device, sharding rules, optimizer state
layout, jmod.jit under shardings, data parallel (one and two processes), checkpoints."""

import importlib.util
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P, SingleDeviceSharding

import jmod
from jmod import nn

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("multihost_data_parallel", ROOT / "examples" / "multihost_data_parallel.py")
multihost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(multihost)


class MLP(nn.Module):
    def __init__(self, sizes=(8, 32, 16)):
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.fc2 = nn.Linear(sizes[1], sizes[2])

    def forward(self, x):
        return self.fc2(jax.nn.relu(self.fc1(x)))


class Stats(nn.Module):
    """A parameter, a running-mean buffer updated by forward, a plain array attribute."""

    def __init__(self, n=8):
        super().__init__()
        self.lin = nn.Linear(n, n)
        self.register_buffer("running_mean", jnp.zeros(n))
        self.scale = jnp.ones(())

    def forward(self, x):
        y = self.lin(x) * self.scale
        self.running_mean = 0.9 * self.running_mean + 0.1 * jax.lax.stop_gradient(y.mean(0))
        return y


def mse(model, x, y):
    return ((model(x) - y) ** 2).mean()


def make_step(**jit_kwargs):
    @jmod.jit(**jit_kwargs)
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(mse)(model, x, y)
        opt.step(grads)
        return loss

    return step


def batch(n=16, d_in=8, d_out=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d_in)).astype(np.float32), rng.standard_normal((n, d_out)).astype(np.float32)


def all_arrays(module, opt=None):
    arrays = dict(jmod.parallel.shardings(module))
    if opt is not None:
        arrays.update({"opt" + k: s for k, s in jmod.parallel.shardings(opt).items()})
    return arrays


@pytest.fixture(scope="module")
def mesh():
    assert jax.device_count() == 8, "tests/conftest.py sets XLA_FLAGS for 8 CPU devices"
    return jmod.parallel.make_mesh((8,), ("data",))


@pytest.fixture(scope="module")
def mesh2d():
    return jmod.parallel.make_mesh((2, 4), ("data", "model"))


# ----------------------------------------------------------------- placement
@pytest.mark.multidevice
def test_to_device_moves_every_parameter_buffer_and_keeps_slots():
    m = Stats()
    slot = m.lin._parameters["weight"]
    m.lin._parameters["bias"].requires_grad = False
    dev = jax.devices()[3]
    assert m.to(dev) is m
    for name, s in jmod.parallel.shardings(m).items():
        if name != "scale":  # plain attributes are not module state for .to(), as in torch
            assert s == SingleDeviceSharding(dev), name
    assert m.device == dev
    assert m.lin._parameters["weight"] is slot and not m.lin._parameters["bias"].requires_grad
    m.to("cpu:5")
    assert m.device == jax.devices("cpu")[5]
    m.to(device=2, dtype=jnp.bfloat16)
    assert m.device == jax.devices()[2] and m.lin.weight.dtype == jnp.bfloat16
    m.cpu()
    assert m.device == jax.devices("cpu")[0] and m.lin.weight.committed


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.to("cuda"), "no 'cuda' device is available to JAX on this machine (platforms present: cpu)"),
        (lambda m: m.cuda(), "no 'cuda' device is available"),
        (lambda m: m.to("tpu:0"), "no 'tpu' device is available"),
        (lambda m: m.to("cpu:99"), "device 'cpu:99' does not exist: JAX sees 8 cpu device(s)"),
        (lambda m: m.to("npu"), "Expected one of cpu, cuda, gpu, tpu device type at start of device string: npu"),
    ],
)
def test_missing_platform_or_device_errors(call, message):
    m = nn.Linear(2, 2)
    before = m.weight
    with pytest.raises(RuntimeError, match=re.escape(message)):
        call(m)
    assert m.weight is before


@pytest.mark.multidevice
def test_module_device_reports_device_sharding_or_explains(mesh):
    m = MLP()
    assert m.device == jax.devices()[0]  # uncommitted arrays live on the default device
    assert nn.Module().device == jax.devices()[0]  # no state: the default device
    m.fc2.to(jax.devices()[1])
    with pytest.raises(RuntimeError, match="do not live in one place") as err:
        m.device
    assert str(jax.devices()[0]) in str(err.value) and str(jax.devices()[1]) in str(err.value)
    jmod.parallel.replicate(m, mesh)
    assert m.device == NamedSharding(mesh, P())  # one multi-device sharding, as jax.Array.device
    jmod.parallel.shard_module(m, mesh, jmod.parallel.fsdp(mesh, "data"))
    with pytest.raises(RuntimeError, match=r"jmod\.parallel\.shardings\(module\)"):
        m.device

    class UsesDeviceAttribute(nn.Module):  # common torch code: self.device = device
        def __init__(self, device):
            super().__init__()
            self.device = device
            self.lin = nn.Linear(2, 2)

    u = UsesDeviceAttribute("cpu")
    assert u.device == "cpu"
    holder = nn.Module()
    holder.device = nn.Linear(2, 2)  # a submodule named "device" wins too
    assert isinstance(holder.device, nn.Linear)


@pytest.mark.multidevice
def test_jit_computes_where_the_model_is():
    dev = jax.devices()[3]
    model = Stats().to(dev)
    model.scale = jax.device_put(model.scale, dev)
    opt = jmod.optim.Adam(model.parameters(), lr=1e-2)
    assert {s for s in jmod.parallel.shardings(opt).values()} == {SingleDeviceSharding(dev)}
    step = make_step()
    x, _ = batch(8, 8, 8)
    y = np.zeros((8, 8), np.float32)
    for _ in range(2):
        loss = step(model, opt, jnp.asarray(x), y)  # uncommitted inputs follow the state
    assert loss.sharding == SingleDeviceSharding(dev)
    assert set(all_arrays(model, opt).values()) == {SingleDeviceSharding(dev)}
    assert all(a.committed for a in jax.tree_util.tree_leaves(opt.opt_state))
    out = model(jnp.asarray(x))
    assert out.sharding == SingleDeviceSharding(dev) and model.running_mean.sharding == SingleDeviceSharding(dev)


# ------------------------------------------------------------------- sharding
@pytest.mark.multidevice
def test_to_named_sharding_replicates(mesh):
    m = Stats()
    replicated = NamedSharding(mesh, P())
    m.to(replicated)
    assert m.lin.weight.sharding == replicated and m.running_mean.sharding == replicated
    assert m.device == replicated


@pytest.mark.multidevice
def test_placed_arrays_never_alias_the_originals(mesh):
    """A replicated copy could reuse the source buffer as its device-0 shard; donating it
    to a step would then delete arrays the user still holds (torch's .to() copies)."""
    for place in (lambda m: jmod.parallel.replicate(m, mesh), lambda m: m.to(jax.devices()[0]), lambda m: m.cpu()):
        model = MLP()
        held = dict(model.state_dict())
        values = {k: np.asarray(v) for k, v in held.items()}
        place(model)
        opt = jmod.optim.SGD(model.parameters(), lr=0.1)
        x, y = batch(16)
        make_step()(model, opt, x, y)
        for k, v in held.items():
            np.testing.assert_array_equal(v, values[k], err_msg=k)  # raises if v was deleted
        assert not np.array_equal(model.fc1.weight, values["fc1.weight"])


def test_partition_specs_rules_first_match_wins(mesh2d):
    m = nn.Sequential(MLP((8, 32, 16)), nn.Linear(16, 4))
    m.register_buffer("steps", jnp.zeros(()))
    rules = [
        ("0.fc1.bias", P()),  # before the glob below: first match wins
        ("0.fc1.*", P("model")),
        (re.compile(r"0\.fc2\.(weight|bias)"), P("data")),
        lambda name, x: P(None, "model") if name == "1.weight" else None,
    ]
    specs = jmod.parallel.partition_specs(m, mesh2d, rules)
    assert specs == {
        "0.fc1.weight": P("model"),
        "0.fc1.bias": P(),
        "0.fc2.weight": P("data"),
        "0.fc2.bias": P("data"),
        "1.weight": P(None, "model"),
        "1.bias": P(),
        "steps": P(),
    }
    as_dict = jmod.parallel.partition_specs(m, mesh2d, {"*.weight": P("data")}, default=P())
    assert as_dict["0.fc1.weight"] == P("data") and as_dict["0.fc1.bias"] == P()
    # a ready Sharding is used as is
    s = NamedSharding(mesh2d, P("model", "data"))
    jmod.parallel.shard_module(m, mesh2d, {"0.fc1.weight": s})
    assert m[0].fc1.weight.sharding == s and m[1].bias.sharding == NamedSharding(mesh2d, P())


def test_shard_module_rejects_bad_rules_before_moving(mesh2d):
    m = MLP((8, 30, 16))
    before = m.fc1.weight
    with pytest.raises(ValueError, match=r"'fc1.weight' has shape \(30, 8\): dim 0 \(30\) is not divisible by the 4"):
        jmod.parallel.shard_module(m, mesh2d, {"fc1.weight": P("model")})
    assert m.fc1.weight is before
    with pytest.raises(ValueError, match=r"names mesh axes \['tensor'\]"):
        jmod.parallel.shard_module(m, mesh2d, {"*": P("tensor")})
    with pytest.raises(ValueError, match="more entries than the array has dims"):
        jmod.parallel.shard_module(m, mesh2d, {"fc2.bias": P("data", None)})
    with pytest.raises(TypeError, match="a sharding rule is a"):
        jmod.parallel.shard_module(m, mesh2d, ["fc1.weight"])
    with pytest.raises(TypeError, match="expected a PartitionSpec or a jax.sharding.Sharding"):
        jmod.parallel.shard_module(m, mesh2d, {"fc1.weight": ("data",)})
    explicit = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    with pytest.raises(ValueError, match=r"Explicit .*jmod\.parallel\.make_mesh"):
        jmod.parallel.shard_module(m, explicit)
    assert m.fc1.weight is before


def test_fsdp_rule_picks_largest_divisible_dim(mesh):
    rule = jmod.parallel.fsdp(mesh, "data", min_size=64)
    assert rule("w", jnp.zeros((16, 64))) == P(None, "data")
    assert rule("w", jnp.zeros((64, 64))) == P("data")  # tie: the first dim
    assert rule("w", jnp.zeros((12, 40))) == P(None, "data")  # 40 divisible, 12 not
    assert rule("w", jnp.zeros((12, 36))) == P()  # nothing divisible by 8
    assert rule("b", jnp.zeros((32,))) == P()  # below min_size
    assert rule("s", jnp.zeros(())) == P()
    with pytest.raises(ValueError, match="mesh has no axis 'fsdp'"):
        jmod.parallel.fsdp(mesh, "fsdp")


def test_tensor_parallel_rule_helpers():
    assert jmod.parallel.column_parallel("*.mlp.fc1") == [("*.mlp.fc1.weight", P("model")), ("*.mlp.fc1.bias", P("model"))]
    assert jmod.parallel.row_parallel("*.mlp.fc2", "tp") == [("*.mlp.fc2.weight", P(None, "tp")), ("*.mlp.fc2.bias", P())]
    (w, _), (b, _) = jmod.parallel.column_parallel(re.compile(r"layers\.\d+\.attn\.[qkv]_proj"))
    assert w.fullmatch("layers.3.attn.k_proj.weight") and not w.fullmatch("layers.3.attn.o_proj.weight")
    assert b.fullmatch("layers.0.attn.q_proj.bias")


@pytest.mark.multidevice
@pytest.mark.parametrize(
    "make_opt",
    [
        lambda m: jmod.optim.Adam(m.parameters(), lr=1e-2),
        lambda m: jmod.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1),
        lambda m: jmod.optim.SGD(m.parameters(), lr=1e-2, momentum=0.9),
    ],
    ids=["Adam", "AdamW", "SGD-momentum"],
)
def test_optimizer_state_follows_parameter_shardings(mesh, make_opt):
    model = MLP()
    early = make_opt(model)  # built before the model was placed
    jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data"))
    opt = make_opt(model)
    params = dict(model.named_parameters())
    replicated = NamedSharding(mesh, P())
    state = jmod.parallel.shardings(opt)
    for path, s in state.items():
        name = next((n for n in params if f"['{n}']" in path), None)
        leaf_shape = next(leaf.shape for p, leaf in jax.tree_util.tree_flatten_with_path(opt.opt_state)[0]
                          if jax.tree_util.keystr(p) == path)
        if name is not None and leaf_shape == params[name].shape:
            assert s == params[name].sharding, path  # moments: the parameter's sharding
        else:
            assert s == replicated, path  # step counts, hyperparameters: replicated on the mesh
    assert any(s.spec == P("data") for s in state.values())
    assert all(leaf.committed for leaf in jax.tree_util.tree_leaves(opt.opt_state))
    # an optimizer built before placing the model is re-placed on request
    assert any(s.device_set == {jax.devices()[0]} for s in jmod.parallel.shardings(early).values())
    jmod.parallel.shard_optimizer(early)
    assert jmod.parallel.shardings(early) == state


@pytest.mark.multidevice
def test_fsdp_training_keeps_every_layout_and_matches_one_device(mesh):
    x, y = batch(16)
    ref = MLP()
    model = MLP()
    model.load_state_dict(ref.state_dict())
    ref_opt = jmod.optim.AdamW(ref.parameters(), lr=1e-2)
    jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data"))
    opt = jmod.optim.AdamW(model.parameters(), lr=1e-2)
    layout = all_arrays(model, opt)
    assert model.fc1.weight.sharding.spec == P("data") and model.fc2.bias.sharding.spec == P("data")
    step, ref_step = make_step(), make_step()
    xs, ys = jmod.parallel.shard_batch((x, y), mesh)
    for _ in range(4):
        loss = step(model, opt, xs, ys)
        ref_loss = ref_step(ref, ref_opt, x, y)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-6)
    assert all_arrays(model, opt) == layout
    assert step.trace_count == 1
    for (n, a), (_, b) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=n)


@pytest.mark.multidevice
def test_keep_shardings_pins_layout_that_the_step_would_change(mesh):
    """A step that reshards a parameter (a with_sharding_constraint in user code) writes
    it back in its original layout; keep_shardings=False lets the layout change."""
    replicated = NamedSharding(mesh, P())

    def run(keep):
        # Without keep the output layout differs from the donated input's, so XLA could
        # not reuse the buffer (and would warn): donate only when keeping.
        model = MLP()
        jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data"))
        original = model.fc1.weight.sharding

        @jmod.jit(keep_shardings=keep, donate=keep)
        def relayout(model):
            model.fc1.weight = jax.lax.with_sharding_constraint(model.fc1.weight * 2, replicated)

        relayout(model)
        return original, model.fc1.weight.sharding

    original, kept = run(True)
    assert kept == original and original.spec == P("data")
    _, changed = run(False)
    assert changed.is_equivalent_to(replicated, 2)


@pytest.mark.multidevice
def test_resharding_recompiles_instead_of_reverting(mesh):
    model = MLP()
    jmod.parallel.replicate(model, mesh)
    opt = jmod.optim.SGD(model.parameters(), lr=0.1)
    step = make_step()
    x, y = jmod.parallel.shard_batch(batch(16), mesh)
    step(model, opt, x, y)
    jmod.parallel.shard_module(model, mesh, jmod.parallel.fsdp(mesh, "data"))
    jmod.parallel.shard_optimizer(opt)
    layout = all_arrays(model, opt)
    step(model, opt, x, y)
    assert step.trace_count == 2
    assert all_arrays(model, opt) == layout and model.fc1.weight.sharding.spec == P("data")


@pytest.mark.multidevice
def test_tensor_parallel_mlp_matches_one_device(mesh2d):
    rules = [*jmod.parallel.column_parallel("fc1"), *jmod.parallel.row_parallel("fc2")]
    x, y = batch(16)
    ref = MLP()
    model = MLP()
    model.load_state_dict(ref.state_dict())
    jmod.parallel.shard_module(model, mesh2d, rules)
    assert model.fc1.weight.sharding.spec == P("model") and model.fc2.weight.sharding.spec == P(None, "model")
    opt, ref_opt = jmod.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), jmod.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    layout = all_arrays(model, opt)
    step, ref_step = make_step(), make_step()
    xs, ys = jmod.parallel.shard_batch((x, y), mesh2d, "data")  # data parallel over the other axis
    for _ in range(3):
        np.testing.assert_allclose(step(model, opt, xs, ys), ref_step(ref, ref_opt, x, y), rtol=1e-5, atol=1e-6)
    assert all_arrays(model, opt) == layout
    for (n, a), (_, b) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=n)


@pytest.mark.multidevice
def test_jit_in_and_out_shardings(mesh):
    model = jmod.parallel.replicate(MLP(), mesh)
    data = NamedSharding(mesh, P("data"))
    replicated = NamedSharding(mesh, P())

    @jmod.jit(in_shardings=(None, data), out_shardings={"out": data, "mean": None, "tag": None})
    def forward(model, x, scale=2.0):
        out = model(x) * scale
        return {"out": out, "mean": out.mean(), "tag": "static"}

    x, _ = batch(16)
    res = forward(model, x)  # an uncommitted batch is placed by in_shardings
    assert res["out"].sharding == data and res["mean"].sharding == replicated and res["tag"] == "static"
    np.testing.assert_allclose(res["out"], MLP.forward(model, jnp.asarray(x)) * 2.0, rtol=1e-5, atol=1e-6)
    assert model.fc1.weight.sharding == replicated  # state is not covered by out_shardings

    @jmod.jit(out_shardings=data)
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(mse)(model, x, y)
        opt.step(grads)
        return model(x)

    opt = jmod.optim.SGD(model.parameters(), lr=0.1)
    out = step(model, opt, *jmod.parallel.shard_batch(batch(16), mesh))
    assert out.sharding == data and model.fc1.weight.sharding == replicated

    @jmod.jit(out_shardings=(data, data))
    def wrong(model, x):
        return model(x)

    with pytest.raises(ValueError, match="out_shardings must be a pytree prefix of the function's return value"):
        wrong(model, x)


# -------------------------------------------------------------- data parallel
@pytest.mark.multidevice
def test_shard_batch(mesh):
    x, y = jmod.parallel.shard_batch({"x": np.ones((16, 3), np.float32), "y": jnp.zeros(16)}, mesh).values()
    assert x.sharding == NamedSharding(mesh, P("data")) and y.sharding == NamedSharding(mesh, P("data"))
    (t,) = jmod.parallel.shard_batch((np.float32(3.0),), mesh)
    assert t.sharding == NamedSharding(mesh, P())
    with pytest.raises(ValueError, match="batch size 12 is not divisible by the 8 devices of mesh axis 'data'"):
        jmod.parallel.shard_batch(np.ones((12, 3)), mesh)


@pytest.mark.multidevice
@pytest.mark.parametrize("fsdp", [False, True], ids=["replicated", "fsdp"])
def test_data_parallel_over_8_devices_matches_one_device(fsdp):
    steps = 10
    ref = multihost.make_model()
    ref_losses = multihost.train(ref, steps)
    model = multihost.make_model()
    opt = jmod.optim.AdamW(model.parameters(), lr=multihost.LR)
    mesh = jmod.parallel.data_parallel(model, opt, fsdp=fsdp)
    assert mesh.shape == {"data": 8}
    layout = all_arrays(model, opt)
    step = multihost.make_step()
    losses = []
    for x, y in multihost.global_batches(steps):
        losses.append(float(step(model, opt, *jmod.parallel.shard_batch((x, y), mesh))))
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-5)
    assert losses[-1] < losses[0]
    assert all_arrays(model, opt) == layout
    for (n, a), (_, b) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=n)


class Noisy(Stats):
    """Stats plus a random mask drawn from the global generator (as dropout does)."""

    def forward(self, x):
        y = super().forward(x)
        return y * (jmod.rand_like(y) > 0.5) * 2.0


@pytest.mark.multidevice
def test_data_parallel_batch_statistics_and_random_masks_are_global():
    """Buffers computed from the batch (BatchNorm-style running statistics) use the global
    batch, like torch's SyncBatchNorm; random masks equal the single-device ones."""
    x, y = batch(16, 8, 8)
    runs = []
    for parallel in (False, True):
        jmod.manual_seed(1)
        model = Noisy()
        opt = jmod.optim.SGD(model.parameters(), lr=0.1)
        args = (x, y)
        if parallel:
            dp_mesh = jmod.parallel.data_parallel(model, opt)
            args = jmod.parallel.shard_batch(args, dp_mesh)
        step = make_step()
        losses = [float(step(model, opt, *args)) for _ in range(3)]
        runs.append((losses, np.asarray(model.running_mean), np.asarray(model.lin.weight)))
    (l1, m1, w1), (l8, m8, w8) = runs
    np.testing.assert_allclose(l8, l1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m8, m1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w8, w1, rtol=1e-5, atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.multidevice
def test_multihost_data_parallel_two_processes(tmp_path):
    """Two processes x 4 CPU devices, jax.distributed on 127.0.0.1, gloo collectives:
    identical parameters in both, equal to this process's 8-device run."""
    port = _free_port()
    script = ROOT / "examples" / "multihost_data_parallel.py"
    procs = []
    for rank in range(2):
        env = dict(os.environ)
        env.update(
            XLA_FLAGS="--xla_force_host_platform_device_count=4",
            JAX_PLATFORMS="cpu",
            PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
            JMOD_COORDINATOR=f"127.0.0.1:{port}",
            JMOD_NUM_PROCESSES="2",
            JMOD_PROCESS_ID=str(rank),
            JMOD_STEPS="10",
            JMOD_OUTPUT=str(tmp_path / f"rank{rank}.npz"),
        )
        procs.append(
            subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    logs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=120)
            logs.append(out.decode(errors="replace"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for rank, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"process {rank} failed:\n{log[-3000:]}"
        assert f"process {rank}/2: 4 local devices, 8 in all" in log
    r0, r1 = (np.load(tmp_path / f"rank{rank}.npz") for rank in range(2))
    for key in r0.files:
        np.testing.assert_array_equal(r0[key], r1[key], err_msg=key)  # bit-identical across processes
    for check in [k for k in r0.files if k.startswith("check:")]:
        assert bool(r0[check]), check  # sharded checkpoint save/load across processes
    # the same training in this process over its 8 devices
    model = multihost.make_model()
    mesh = jmod.parallel.make_mesh((8,), ("data",))
    losses = multihost.train(model, 10, mesh=mesh)
    np.testing.assert_allclose(r0["losses"], losses, rtol=1e-5, atol=1e-6)
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(r0[f"param:{name}"], value, rtol=1e-5, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------- checkpoints
@pytest.mark.multidevice
def test_save_gathers_sharded_model_and_load_keeps_shardings(mesh2d, tmp_path):
    rules = [*jmod.parallel.column_parallel("fc1"), *jmod.parallel.row_parallel("fc2"), jmod.parallel.fsdp(mesh2d, "data")]
    model = MLP()
    plain = {k: np.asarray(v) for k, v in model.state_dict().items()}
    jmod.parallel.shard_module(model, mesh2d, rules)
    opt = jmod.optim.Adam(model.parameters(), lr=1e-2)
    make_step()(model, opt, *jmod.parallel.shard_batch(batch(16), mesh2d))
    sd = model.state_dict()
    assert not sd["fc1.weight"].is_fully_replicated and len(sd["fc1.weight"].addressable_shards) == 8
    trained = {k: np.asarray(v) for k, v in sd.items()}
    assert not np.array_equal(trained["fc1.weight"], plain["fc1.weight"])
    opt_values = {k: np.asarray(v) for k, v in opt.state_dict()["state"].items()}

    path = tmp_path / "sharded.safetensors"
    jmod.save({"model": sd, "optimizer": opt.state_dict()}, path)
    loaded = jmod.load(path)
    for k, v in trained.items():
        np.testing.assert_array_equal(loaded["model"][k], v, err_msg=k)
    for k, v in opt_values.items():
        np.testing.assert_array_equal(loaded["optimizer"]["state"][k], v, err_msg=k)
    # a flat state dict of the sharded model reads back as the unsharded model's file
    # (safetensors' header JSON order varies between writes, so files are compared loaded)
    buf = io.BytesIO()
    jmod.save(sd, buf)
    unsharded = MLP()
    unsharded.load_state_dict(trained)
    ref_buf = io.BytesIO()
    jmod.save(unsharded.state_dict(), ref_buf)
    got, want = jmod.load(io.BytesIO(buf.getvalue())), jmod.load(io.BytesIO(ref_buf.getvalue()))
    assert list(got) == list(want) and got._metadata == want._metadata
    for k in want:
        assert got[k].dtype == want[k].dtype
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)

    fresh = MLP()
    jmod.parallel.shard_module(fresh, mesh2d, rules)
    fresh_opt = jmod.optim.Adam(fresh.parameters(), lr=1e-2)
    layout = all_arrays(fresh, fresh_opt)
    fresh.load_state_dict(loaded["model"])
    fresh_opt.load_state_dict(loaded["optimizer"])
    assert all_arrays(fresh, fresh_opt) == layout
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, trained[k], err_msg=k)
