"""jmod.jit and Module.compile: write-back, trace counts, donation, RNG, errors."""

import gc
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jmod
import jmod.nn.functional as F
from jmod import nn
from jmod._src.errors import RetraceWarning, TracerEscapeError, UnthreadedRandomStateError


class MLP(nn.Module):
    def __init__(self, sizes=(4, 8, 3)):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jax.nn.relu(x)
        return x


class RunningMean(nn.Module):
    """A BatchNorm-like module: a buffer and a counter updated by forward."""

    def __init__(self, n):
        super().__init__()
        self.lin = nn.Linear(n, n)
        self.register_buffer("running_mean", jnp.zeros(n))
        self.register_buffer("num_batches_tracked", jnp.zeros((), jnp.int32))

    def forward(self, x):
        y = self.lin(x)
        if self.training:
            self.running_mean = 0.9 * self.running_mean + 0.1 * jax.lax.stop_gradient(y.mean(0))
            self.num_batches_tracked = self.num_batches_tracked + 1
        return y - self.running_mean


def mse(model, x, y):
    return ((model(x) - y) ** 2).mean()


def make_step():
    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(mse)(model, x, y)
        opt.step(grads)
        return loss

    return step


def data(n=8, d_in=4, d_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((n, d_in)), jnp.float32), jnp.asarray(rng.standard_normal((n, d_out)), jnp.float32)


def test_train_step_matches_eager_and_compiles_once():
    x, y = data()
    eager_model, jit_model = MLP(), MLP()
    jit_model.load_state_dict(eager_model.state_dict())
    eager_opt = jmod.optim.Optimizer(eager_model, optax.adam(1e-2))
    jit_opt = jmod.optim.Optimizer(jit_model, optax.adam(1e-2))
    step = make_step()
    for _ in range(5):
        loss_e, grads = jmod.value_and_grad(mse)(eager_model, x, y)
        eager_opt.step(grads)
        loss_j = step(jit_model, jit_opt, x, y)
        np.testing.assert_allclose(loss_j, loss_e, rtol=1e-6, atol=1e-6)
    for (n, a), (_, b) in zip(eager_model.named_parameters(), jit_model.named_parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=n)
    assert step.trace_count == 1


def test_retraces_exactly_when_static_structure_changes():
    x, y = data()
    model = RunningMean(4)
    calls = []

    @jmod.jit
    def fwd(m, x):
        calls.append(1)
        return m(x)

    fwd(model, x)
    fwd(model, x)
    assert len(calls) == 1
    model.eval()
    fwd(model, x)
    assert len(calls) == 2
    model.train()  # back to a structure seen before: cached, no retrace
    fwd(model, x)
    assert len(calls) == 2
    fwd(model, x[:3])  # new input shape
    assert len(calls) == 3
    model.eval()  # (no buffer updates, so outputs can be compared)
    plain = fwd(model, x)
    h = model.register_forward_hook(lambda m, a, o: o * 2)
    out = fwd(model, x)
    assert len(calls) == 4
    h.remove()
    np.testing.assert_allclose(out / 2, fwd(model, x), rtol=1e-6)
    np.testing.assert_allclose(plain, fwd(model, x), rtol=1e-6)
    assert len(calls) == 4  # hook removed: the hook-free version is cached
    model.train()
    model.lin.weight = jnp.zeros((4, 4))  # new value, same shape: no retrace
    fwd(model, x)
    assert len(calls) == 4
    model.scale = 3.0  # a new non-array attribute
    fwd(model, x)
    assert len(calls) == 5
    model.lin.requires_grad_(False)
    fwd(model, x)
    assert len(calls) == 6
    model.extra = nn.Linear(4, 4)  # new submodule
    fwd(model, x)
    assert len(calls) == 7


def test_repeat_call_checks_one_integer():
    x, y = data()
    model = MLP()
    opt = jmod.optim.Optimizer(model, optax.sgd(0.1))
    step = make_step()
    step(model, opt, x, y)
    binding = step._last
    for _ in range(3):
        step(model, opt, x, y)
    assert step._last is binding and binding.signal.valid


def test_buffers_written_back_and_equal_eager():
    x, _ = data()
    eager, compiled = RunningMean(4), RunningMean(4)
    compiled.load_state_dict(eager.state_dict())
    fwd = jmod.jit(lambda m, x: m(x))
    for _ in range(3):
        ye = eager(x)
        yj = fwd(compiled, x)
        np.testing.assert_allclose(yj, ye, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(compiled.running_mean, eager.running_mean, rtol=1e-6)
    assert int(compiled.num_batches_tracked) == 3


def test_buffers_move_in_a_compiled_training_step():
    x, y = data()
    model = RunningMean(4)
    opt = jmod.optim.SGD(model, lr=0.1)

    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: ((m(x)[:, :3] - y) ** 2).mean())(model)
        opt.step(grads)
        return loss

    before = np.asarray(model.running_mean)
    for _ in range(3):
        step(model, opt, x, y)
    assert int(model.num_batches_tracked) == 3
    assert not np.allclose(model.running_mean, before)


class D2LBatchNorm(nn.Module):
    """The from-scratch BatchNorm PyTorch users write (d2l.ai): plain array attributes."""

    def __init__(self, n):
        super().__init__()
        self.gamma = nn.Parameter(jnp.ones(n))
        self.beta = nn.Parameter(jnp.zeros(n))
        self.moving_mean = jnp.zeros(n)
        self.moving_var = jnp.ones(n)

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0)
            self.moving_mean = 0.9 * self.moving_mean + 0.1 * mean
            self.moving_var = 0.9 * self.moving_var + 0.1 * var
        else:
            mean, var = self.moving_mean, self.moving_var
        return self.gamma * (x - mean) / jnp.sqrt(var + 1e-5) + self.beta


def test_plain_array_attributes_are_carried_like_buffers():
    x, _ = data()
    eager, compiled = D2LBatchNorm(4), D2LBatchNorm(4)
    fwd = jmod.jit(lambda m, x: m(x))
    for _ in range(3):
        eager(x)
        fwd(compiled, x)
    np.testing.assert_allclose(compiled.moving_mean, eager.moving_mean, rtol=1e-6)
    np.testing.assert_allclose(compiled.moving_var, eager.moving_var, rtol=1e-6)
    assert "moving_mean" not in compiled.state_dict()


def test_attribute_created_in_forward_is_written_back_concrete():
    class Lazy(nn.Module):
        def __init__(self):
            super().__init__()
            self.cache = None

        def forward(self, x):
            if self.cache is None:
                self.cache = x * 2
            return x + self.cache

    m = Lazy()
    fwd = jmod.jit(lambda m, x: m(x))
    out = fwd(m, jnp.ones(3))
    np.testing.assert_allclose(out, 3 * np.ones(3))
    assert isinstance(m.cache, jax.Array) and not isinstance(m.cache, jax.core.Tracer)
    np.testing.assert_allclose(fwd(m, jnp.zeros(3)), 2 * np.ones(3))


def test_tracer_appended_to_list_raises_naming_the_attribute():
    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
            self.activations = []

        def forward(self, x):
            y = self.lin(x)
            self.activations.append(y)
            return y

    m = Recorder()
    with pytest.raises(TracerEscapeError, match="Recorder.activations"):
        jmod.jit(lambda m, x: m(x))(m, jnp.ones((1, 3)))
    m.activations.clear()
    m(jnp.ones((1, 3)))  # eagerly it works as in torch
    assert len(m.activations) == 1


def test_failed_call_leaves_module_unchanged_and_no_tracers():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
            self.register_buffer("count", jnp.zeros(()))

        def forward(self, x):
            self.count = self.count + 1
            self.lin.weight = self.lin.weight * 0
            raise ValueError("boom")

    m = Boom()
    before = {k: np.asarray(v) for k, v in m.state_dict().items()}
    with jax.check_tracer_leaks():
        with pytest.raises(ValueError, match="boom"):
            jmod.jit(lambda m, x: m(x))(m, jnp.ones((1, 3)))
    for k, v in m.state_dict().items():
        assert not isinstance(v, jax.core.Tracer)
        np.testing.assert_array_equal(v, before[k])


def test_training_loop_donates_without_copies(monkeypatch):
    import jmod._src.jit as jit_module

    x, y = data()
    model = MLP()
    opt = jmod.optim.Optimizer(model, optax.adam(1e-3))
    step = make_step()
    step(model, opt, x, y)
    copies = []
    real_copy = jnp.copy
    monkeypatch.setattr(jit_module.jnp, "copy", lambda a: copies.append(1) or real_copy(a))
    for _ in range(5):
        step(model, opt, x, y)
    assert copies == []
    # The replaced arrays were donated: the previous weight buffer is gone.
    w = model.layers[0].weight
    w_copy = np.asarray(w).copy()
    step(model, opt, x, y)
    # ...unless someone holds it: then jmod donates a copy and the user's array stays valid.
    assert len(copies) >= 1
    np.testing.assert_array_equal(np.asarray(w), w_copy)
    assert not np.array_equal(np.asarray(model.layers[0].weight), w_copy)


def test_state_dict_snapshot_survives_training():
    x, y = data()
    model = MLP()
    opt = jmod.optim.Optimizer(model, optax.sgd(0.1))
    step = make_step()
    step(model, opt, x, y)
    snapshot = model.state_dict()
    saved = {k: np.asarray(v).copy() for k, v in snapshot.items()}
    for _ in range(3):
        step(model, opt, x, y)
    for k, v in snapshot.items():
        np.testing.assert_array_equal(np.asarray(v), saved[k])
    model.load_state_dict(snapshot)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(v), saved[k])


def test_non_array_attribute_changes_replay_on_cache_hits():
    class Toggle(nn.Module):
        def __init__(self):
            super().__init__()
            self.flag = False

        def forward(self, x):
            self.flag = not self.flag
            return x + 1 if self.flag else x - 1

    eager, compiled = Toggle(), Toggle()
    fwd = jmod.jit(lambda m, x: m(x))
    for _ in range(5):
        np.testing.assert_allclose(fwd(compiled, jnp.zeros(())), eager(jnp.zeros(())))
        assert compiled.flag == eager.flag
    assert fwd.trace_count == 2


def test_static_and_non_array_outputs_and_arguments():
    model = MLP()

    @jmod.jit
    def f(m, x, scale, name, *, bias=0.0):
        return {"out": m(x) * scale + bias, "name": name, "n": x.shape[0]}

    x, _ = data()
    r = f(model, x, 2.0, "a", bias=1.0)
    assert r["name"] == "a" and r["n"] == 8
    np.testing.assert_allclose(r["out"], model(x) * 2.0 + 1.0, rtol=1e-6)
    f(model, x, 2.0, "a", bias=1.0)
    assert f.trace_count == 1
    f(model, x, 3.0, "a", bias=1.0)  # Python scalars are compiled in
    assert f.trace_count == 2


def test_modules_inside_containers_and_generators_as_arguments():
    a, b = MLP(), MLP()
    g = jmod.Generator().manual_seed(3)

    @jmod.jit
    def f(models, x, gen):
        return models["a"](x) + models["b"](x) + jmod.rand(1, generator=gen)

    x, _ = data()
    out1 = f({"a": a, "b": b}, x, g)
    out2 = f({"a": a, "b": b}, x, g)
    assert not np.allclose(out1, out2)  # the generator's state advanced and was written back
    g2 = jmod.Generator().manual_seed(3)
    np.testing.assert_allclose(out1 - (a(x) + b(x)), jmod.rand(1, generator=g2) + 0 * x[:, :3], rtol=1e-5, atol=1e-6)


class Noisy(nn.Module):
    def forward(self, x):
        return x + jmod.rand(*x.shape)


def test_random_draws_fresh_each_call_and_reproducible_per_seed():
    m = Noisy()
    fwd = jmod.jit(lambda m, x: m(x))
    jmod.manual_seed(0)
    a1, a2 = fwd(m, jnp.zeros(4)), fwd(m, jnp.zeros(4))
    assert not np.allclose(a1, a2)
    jmod.manual_seed(0)
    b1, b2 = fwd(m, jnp.zeros(4)), fwd(m, jnp.zeros(4))
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    jmod.manual_seed(0)
    np.testing.assert_array_equal(m(jnp.zeros(4)), a1)  # eager draws the same stream
    assert fwd.trace_count == 1


def test_random_inside_plain_jax_jit_is_an_error_with_the_fix():
    m = Noisy()
    with pytest.raises(UnthreadedRandomStateError, match="jmod.jit"):
        jax.jit(lambda x: m(x))(jnp.zeros(3))


    @jax.jit
    def f(x, key):
        with jmod.fork_rng(key):  # the key is a traced argument: draws are fresh per key
            return m(x)

    a, b = f(jnp.zeros(3), jax.random.key(1)), f(jnp.zeros(3), jax.random.key(2))
    assert not np.allclose(a, b)


def test_module_compile_runs_hooks_and_writes_buffers_back():
    model = RunningMean(4)
    seen = []
    model.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    model.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    reference = RunningMean(4)
    reference.load_state_dict(model.state_dict())
    reference.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    model.compile()
    x, _ = data()
    for _ in range(3):
        np.testing.assert_allclose(model(x), reference(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.running_mean, reference.running_mean, rtol=1e-5, atol=1e-6)
    assert seen == [(8, 4)]  # the hook ran once, while tracing
    assert jmod.compile(MLP()) is not None


def test_compiled_submodule_inside_jitted_step():
    x, y = data()
    model = MLP()
    model.layers[0].compile()
    opt = jmod.optim.SGD(model, lr=0.1)
    ref = MLP()
    ref.load_state_dict(model.state_dict())
    ref_opt = jmod.optim.SGD(ref, lr=0.1)
    step = make_step()
    for _ in range(3):
        step(model, opt, x, y)
        _, g = jmod.value_and_grad(mse)(ref, x, y)
        ref_opt.step(g)
    for (n, a), (_, b) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=n)


def test_jit_decorated_method():
    class Model(MLP):
        @jmod.jit
        def predict(self, x):
            return self(x).argmax(-1)

    m = Model()
    x, _ = data()
    np.testing.assert_array_equal(m.predict(x), m(x).argmax(-1))


def test_retrace_warning_names_the_cause():
    f = jmod.jit(lambda x, k: x * k)
    with pytest.warns(RetraceWarning, match="compiled for 8 different"):
        for k in range(9):
            f(jnp.ones(()), k)


def _rss_mb():
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read memory use")
def test_two_thousand_steps_compile_once_and_memory_stays_flat():
    x, y = data(32, 16, 4)
    model = MLP((16, 32, 4))
    opt = jmod.optim.Adam(model.parameters(), lr=1e-3)
    step = make_step()
    for _ in range(200):
        step(model, opt, x, y)
    gc.collect()
    start = _rss_mb()
    for _ in range(2000):
        loss = step(model, opt, x, y)
    loss.block_until_ready()
    gc.collect()
    assert step.trace_count == 1
    assert _rss_mb() - start < 20, f"memory grew by {_rss_mb() - start:.1f} MB over 2000 steps"


def test_grad_only_jit_and_functional_dropout_consistency():
    """F.* layers with randomness still draw fresh per call inside jit (regression)."""
    x = jnp.ones((2, 3))
    f = jmod.jit(lambda x: x + jmod.randn(2, 3))
    assert not np.allclose(f(x), f(x))
    assert F is not None


def test_assigning_a_tracer_outside_jmod_transformations_is_an_error():
    model = D2LBatchNorm(4)
    with pytest.raises(TracerEscapeError, match="D2LBatchNorm.moving_mean.*jmod.jit"):
        jax.grad(lambda x: model(x).sum())(jnp.ones((3, 4)))
    assert not isinstance(model.moving_mean, jax.core.Tracer)
    # the same code through jmod's transformations carries the update out
    jmod.grad(lambda m, x: m(x).sum(), argnums=1)(model, jnp.ones((3, 4)))
    np.testing.assert_allclose(model.moving_mean, 0.1 * np.ones(4), rtol=1e-6)
