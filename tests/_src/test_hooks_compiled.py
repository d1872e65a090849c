"""Hooks under compilation: same order eagerly and under jmod.jit, host=True hooks,
HookTracerError, backward hooks in compiled training steps, jmod.capture."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod
from jmod import nn
from jmod._src.errors import HookTracerError
from jmod.nn.modules import module as module_mod


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return jnp.tanh(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Block()
        self.b = Block()

    def forward(self, x):
        return self.b(self.a(x)).sum()


def _torch_hook_order():
    torch = pytest.importorskip("torch")

    class TBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x):
            return torch.tanh(self.fc(x))

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = TBlock()
            self.b = TBlock()

        def forward(self, x):
            return self.b(self.a(x)).sum()

    model, log = TNet(), []
    for name, m in model.named_modules():
        if name:
            m.register_forward_pre_hook(lambda mod, args, n=name: log.append(("pre", n)))
            m.register_forward_hook(lambda mod, args, out, n=name: log.append(("fwd", n)))
            m.register_full_backward_pre_hook(lambda mod, go, n=name: log.append(("bwd_pre", n)))
            m.register_full_backward_hook(lambda mod, gi, go, n=name: log.append(("bwd", n)))
    model(torch.ones(2, 3)).backward()
    return log


def _register_tracing_hooks(model, log):
    handles = []
    for name, m in model.named_modules():
        if not name:
            continue
        handles.append(m.register_forward_pre_hook(lambda mod, args, n=name: log.append(("pre", n)), host=True))
        handles.append(m.register_forward_hook(lambda mod, args, out, n=name: log.append(("fwd", n)), host=True))
        handles.append(m.register_full_backward_pre_hook(lambda mod, go, n=name: log.append(("bwd_pre", n)), host=True))
        handles.append(m.register_full_backward_hook(lambda mod, gi, go, n=name: log.append(("bwd", n)), host=True))
    return handles


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_hook_order_is_the_same_eagerly_and_under_jmod_jit():
    model = Net()
    x = jnp.ones((2, 3))
    eager_log, jit_log = [], []
    handles = _register_tracing_hooks(model, eager_log)
    jmod.grad(lambda m: m(x))(model)
    for h in handles:
        h.remove()
    _register_tracing_hooks(model, jit_log)
    step = jmod.jit(lambda m: jmod.grad(lambda m: m(x))(m))
    step(model)
    jax.effects_barrier()
    assert jit_log == eager_log
    assert eager_log == _torch_hook_order()
    jit_log.clear()
    step(model)  # host hooks run on every compiled call, not just at trace time
    jax.effects_barrier()
    assert jit_log == eager_log and step.trace_count == 1


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_host_hooks_see_concrete_values_on_every_call():
    model = Block()
    norms = []
    model.register_full_backward_hook(lambda m, gi, go: norms.append(float(jnp.linalg.norm(go[0]))), host=True)
    acts = []
    model.register_forward_hook(lambda m, args, out: acts.append(np.asarray(out)), host=True)
    step = jmod.jit(lambda m, x: jmod.grad(lambda m: (m(x) ** 2).sum())(m))
    for i in range(3):
        step(model, jnp.full((1, 3), float(i)))
    jax.effects_barrier()
    assert len(norms) == 3 and len(acts) == 3 and all(isinstance(a, np.ndarray) for a in acts)


def test_hook_reading_a_tracer_gets_a_clear_error():
    model = Block()

    def log_norm(m, args, out):
        print(float(out.sum()))

    model.register_forward_hook(log_norm)
    with pytest.raises(HookTracerError, match="log_norm.*host=True"):
        jmod.jit(lambda m, x: m(x))(model, jnp.ones((1, 3)))
    model(jnp.ones((1, 3)))  # eagerly it is fine


def test_backward_hook_replacing_grad_input_inside_compiled_training():
    x = jnp.ones((1, 3))
    plain, hooked = Net(), Net()
    hooked.load_state_dict(plain.state_dict())
    hooked.b.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    g_plain = jmod.jit(lambda m: jmod.grad(lambda m: m(x))(m))(plain)
    g_hooked = jmod.jit(lambda m: jmod.grad(lambda m: m(x))(m))(hooked)
    # Zeroing b's input gradient stops everything before b from getting a gradient...
    assert float(jnp.abs(g_hooked["a.fc.weight"]).sum()) == 0.0
    # ...but b's own parameters are unaffected.
    np.testing.assert_allclose(g_hooked["b.fc.weight"], g_plain["b.fc.weight"], rtol=1e-6)


def test_global_hooks_under_jit_and_vmap():
    calls = []
    h = module_mod.register_module_forward_hook(lambda m, a, o: calls.append(type(m).__name__))
    try:
        model = Block()
        jmod.jit(lambda m, x: m(x))(model, jnp.ones((2, 3)))
        assert calls == ["Linear", "Block"]
    finally:
        h.remove()
    grads = []
    model = Block()
    model.register_full_backward_hook(lambda m, gi, go: grads.append(gi[0].shape))
    f = lambda x: model(x).sum()  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jax.vmap(jax.grad(f))(jnp.ones((4, 1, 3)))
    assert grads == [(1, 3)]  # per-example shape inside vmap


def test_capture_returns_activations_from_compiled_calls():
    model = Net()
    feats_model = jmod.capture(model, ["a", "b.fc"])
    x = jnp.ones((2, 3))
    out, feats = feats_model(x)
    np.testing.assert_allclose(out, model(x), rtol=1e-6)
    np.testing.assert_allclose(feats["a"], model.a(x), rtol=1e-6)
    with jax.check_tracer_leaks():
        out_j, feats_j = jmod.jit(lambda m, x: m(x))(feats_model, x)
    np.testing.assert_allclose(feats_j["b.fc"], feats["b.fc"], rtol=1e-6)
    assert not isinstance(feats_j["a"], jax.core.Tracer)
    shared = nn.Linear(3, 3)
    seq = nn.Sequential(shared, shared)
    _, f_all = jmod.capture(seq, ["0"], all_calls=True)(x)
    assert len(f_all["0"]) == 2
    with pytest.raises(KeyError, match="no submodule 'nope'"):
        jmod.capture(model, ["nope"])
    assert feats_model.remove() is model
    assert not model.a._forward_hooks
