"""The new core's design points that the guarantee tests do not reach directly:
context-local forked generators in threads, structure signals per object, keys that
name no object, and compiled results held without Python running in between."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jmod
import jmod.nn.functional as F
from jmod import nn
from jmod._src import structure


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))


def _step():
    @jmod.jit
    def step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: F.mse_loss(m(x), y))(model)
        opt.step(grads)
        return loss

    return step


def test_fork_rng_gives_each_thread_its_own_reproducible_stream():
    step = _step()
    x, y = jnp.ones((4, 4)), jnp.zeros((4, 2))

    def run(seed, out, i):
        with jmod.fork_rng(jax.random.key(seed)):
            jmod.manual_seed(seed)  # seeds this thread's forked generator only
            model = _mlp()
            opt = jmod.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(50):
                step(model, opt, x, y)
        out[i] = {k: np.asarray(v) for k, v in model.state_dict().items()}

    sequential = [None, None]
    run(1, sequential, 0)
    run(2, sequential, 1)
    before = np.asarray(jmod.get_rng_state())
    threaded = [None, None]
    threads = [threading.Thread(target=run, args=(s, threaded, i)) for i, s in enumerate((1, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s, t in zip(sequential, threaded):
        for k in s:
            np.testing.assert_array_equal(s[k], t[k])
    # the global generator was not touched by the forked blocks
    np.testing.assert_array_equal(np.asarray(jmod.get_rng_state()), before)


def test_structure_change_invalidates_only_the_bindings_of_that_object():
    step = _step()
    a, b = _mlp(), _mlp()
    oa, ob = jmod.optim.SGD(a.parameters(), lr=0.1), jmod.optim.SGD(b.parameters(), lr=0.1)
    x, y = jnp.ones((4, 4)), jnp.zeros((4, 2))
    step(a, oa, x, y)
    bind_a = step._last
    step(b, ob, x, y)
    bind_b = step._last
    nn.Linear(2, 2)  # an unrelated module
    b.extra_flag = True  # a structural change of b only
    assert bind_a.signal.ok() and not bind_b.signal.ok()
    step(a, oa, x, y)
    assert step._last is bind_a  # found again without describing a


def test_fresh_model_and_optimizer_of_the_same_structure_reuse_the_executable():
    traces = [0]

    @jmod.jit
    def step(model, opt, x, y):
        traces[0] += 1
        loss, grads = jmod.value_and_grad(lambda m: F.mse_loss(m(x), y))(model)
        opt.step(grads)
        return loss

    x, y = jnp.ones((4, 4)), jnp.zeros((4, 2))
    for lr in (0.1, 0.01):  # torch-named optimizers: lr is live state, not compiled in
        m = _mlp()
        step(m, jmod.optim.Adam(m.parameters(), lr=lr), x, y)
    for _ in range(2):  # two equal optax transformations are the same structure
        m = _mlp()
        step(m, jmod.optim.Optimizer(m, optax.adam(1e-3)), x, y)
    assert traces[0] == 2
    m = _mlp()
    step(m, jmod.optim.Optimizer(m, optax.adam(1e-2)), x, y)  # a different compiled-in lr
    assert traces[0] == 3


def test_signal_watch_and_bump():
    m = nn.Linear(2, 2)
    s = structure.Signal()
    structure.watch(m, s)
    m.weight = jnp.zeros((2, 2))  # a value write
    assert s.ok()
    m.train(False)
    assert not s.ok()
    s2 = structure.Signal()
    structure.bump_global()
    assert not s2.ok()


def test_generator_state_is_raw_key_data():
    """Compiled outputs must unflatten without Python code (an interrupt there would
    lose them): the generator threads raw uint32 key data, not a typed key array."""
    g = jmod.Generator().manual_seed(3)
    (c, k), = g._jmod_state_locations()
    assert c[k].dtype == jnp.uint32
    a = jmod.randn(2, generator=g)
    g.manual_seed(3)
    np.testing.assert_array_equal(np.asarray(jmod.randn(2, generator=g)), np.asarray(a))


def test_compiled_step_takes_torch_tensors():
    import torch

    step = _step()
    m = _mlp()
    opt = jmod.optim.SGD(m.parameters(), lr=0.1)
    x, y = torch.ones(4, 4), torch.zeros(4, 2)
    l1 = step(m, opt, x, y)
    l2 = step(m, opt, jnp.ones((4, 4)), jnp.zeros((4, 2)))  # same trace for jax arrays
    assert float(l2) < float(l1)
    assert step.trace_count == 1
