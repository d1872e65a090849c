"""Guarantee: compiled calls are thread-safe (issue 13, case 3).

* Compiled calls on different objects from different threads are independent and
  give the sequential results: two threads each training its own dropout model
  (its own ``jmod.Generator``) through one shared compiled step end bitwise where
  running them one after the other ends.
* Dropout on the global generator from two threads works and loses no draw (the
  generator locks like torch's).
* Eight threads calling one compiled model (inference, first calls and new batch
  sizes included) get what one thread gets.
* Eager random draws (``jmod.randn``, dropout) in one thread while another thread
  traces both work, and no trace leaves a tracer in the global generator.
* Two threads using the same model in compiled training steps are serialized: the
  result is a sequential interleaving, nothing is lost or deleted.

Every thread is joined with a timeout, so a deadlock fails instead of hanging.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np

import jmod
import jmod.nn.functional as F
from jmod import nn
from tests.test_guarantees._helpers import batch, flat_arrays, make_train_step, mlp, run_threads


def _state(model, opt, gen=None):
    ckpt = {"model": model.state_dict(), "opt": opt.state_dict()["state"]}
    if gen is not None:
        ckpt["gen"] = gen.get_state()
    return flat_arrays(ckpt)


def _assert_bitwise_equal(a, b, what):
    assert a.keys() == b.keys()
    bad = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not bad, f"{what}: {bad[:5]} differ from the sequential run"


# ------------------------------------------------- independent objects, own generators
class GenDropoutMLP(nn.Module):
    """Dropout drawing from a generator passed in, as torch code does with
    ``torch.bernoulli(p, generator=g)`` when each run needs its own stream."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x, generator):
        h = jax.nn.relu(self.fc1(x))
        keep = jmod.bernoulli(jnp.full(h.shape, 0.75), generator=generator)
        return self.fc2(h * keep / 0.75)


N_STEPS = 500


def test_two_threads_training_own_dropout_models_match_sequential_run():
    @jmod.jit
    def step(model, opt, gen, x, y):
        loss, grads = jmod.value_and_grad(lambda m: F.mse_loss(m(x, gen), y))(model)
        opt.step(grads)
        return loss

    def make(seed):
        jmod.manual_seed(seed)
        model = GenDropoutMLP()
        return model, jmod.optim.Adam(model.parameters(), lr=1e-2), jmod.Generator().manual_seed(seed)

    data = [batch(seed=1), batch(seed=2)]

    def train(objs, xy):
        def run():
            for _ in range(N_STEPS):
                step(*objs, *xy)

        return run

    sequential = [make(1), make(2)]
    for objs, xy in zip(sequential, data):
        train(objs, xy)()
    threaded = [make(1), make(2)]
    errors = run_threads([train(objs, xy) for objs, xy in zip(threaded, data)])
    assert not errors, errors
    for i, (s, t) in enumerate(zip(sequential, threaded)):
        _assert_bitwise_equal(_state(*t), _state(*s), f"model {i}")


def test_two_threads_with_dropout_on_the_global_generator_lose_no_draw():
    """nn.Dropout draws once per step from the global generator: after 2 x N compiled
    steps from two threads, the generator has advanced exactly 2N times."""
    n = 100
    step = make_train_step()
    jmod.manual_seed(0)
    ref_models = [mlp(batchnorm=False), mlp(batchnorm=False)]
    jmod.manual_seed(0)
    models = [mlp(batchnorm=False), mlp(batchnorm=False)]
    data = [batch(seed=1), batch(seed=2)]

    jmod.manual_seed(123)
    for m, xy in zip(ref_models, data):
        opt = jmod.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(n):
            step(m, opt, *xy)
    expected_rng = np.asarray(jmod.get_rng_state())

    jmod.manual_seed(123)
    opts = [jmod.optim.SGD(m.parameters(), lr=0.1) for m in models]

    def train(i):
        def run():
            for _ in range(n):
                step(models[i], opts[i], *data[i])

        return run

    errors = run_threads([train(0), train(1)])
    assert not errors, errors
    np.testing.assert_array_equal(np.asarray(jmod.get_rng_state()), expected_rng)
    for m, o in zip(models, opts):
        assert all(np.isfinite(v).all() for v in _state(m, o).values())


# ----------------------------------------------------------- one model, many threads
class DeepTanh(nn.Module):
    """Long enough to trace (a Python loop of 60 layers) that threads interleave."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)
        self.register_buffer("scale", jnp.full(4, 0.9))

    def forward(self, x):
        for _ in range(60):
            x = jnp.tanh(self.fc(x)) * self.scale
        return self.drop(x)


def test_eight_threads_of_inference_match_single_thread():
    jmod.manual_seed(0)
    model = DeepTanh().eval()
    jmod.manual_seed(0)
    single = DeepTanh().eval()
    model.compile()
    single.compile()
    # four batch sizes among the eight threads: first calls and new shapes happen concurrently
    xs = [jnp.asarray(np.random.default_rng(i).standard_normal((i % 4 + 1, 4)), jnp.float32) for i in range(8)]
    expected = [np.asarray(single(x)) for x in xs]
    mismatches = []

    def infer(i):
        def run():
            for _ in range(3):
                if not np.array_equal(np.asarray(model(xs[i])), expected[i]):
                    mismatches.append(i)

        return run

    errors = run_threads([infer(i) for i in range(8)])
    assert not errors, errors
    assert not mismatches, f"threads {sorted(set(mismatches))} got outputs different from a single thread's"


# ------------------------------------------------------ random draws during a trace
def test_eager_random_draws_while_another_thread_traces():
    in_trace = threading.Event()
    eager_done = threading.Event()

    @jmod.jit
    def sample(x):
        a = jmod.randn(4)  # the global generator's key is traced from here on
        in_trace.set()
        eager_done.wait(2.0)  # give the other thread time to draw (no deadlock if it cannot)
        for _ in range(200):
            x = jnp.sin(x) + 0.01
        return x + a + jmod.randn(4)

    eager_values = []
    drop = nn.Dropout(0.5)

    def trace():
        sample(jnp.zeros(4))

    def draw_eagerly():
        assert in_trace.wait(10.0), "the trace did not start"
        try:
            x = jnp.ones((4, 8))
            for _ in range(10):
                eager_values.append(np.asarray(jmod.randn(3)))
                eager_values.append(np.asarray(F.dropout(x, 0.5, training=True)))
                eager_values.append(np.asarray(drop(x)))
        finally:
            eager_done.set()

    errors = run_threads([trace, draw_eagerly])
    assert not errors, errors
    assert len(eager_values) == 30 and all(np.isfinite(v).all() for v in eager_values)
    # the global generator holds a concrete key, and both eager and compiled draws work
    state = np.asarray(jmod.get_rng_state())
    assert state.dtype == np.uint32
    assert np.isfinite(np.asarray(jmod.randn(2))).all()
    assert np.isfinite(np.asarray(sample(jnp.zeros(4)))).all()


def test_overlapping_traces_leave_no_tracer_in_the_global_generator():
    first_in = threading.Event()
    second_done = threading.Event()

    @jmod.jit
    def first(x):
        a = jmod.randn(4)
        first_in.set()
        second_done.wait(2.0)
        return x + a + jmod.rand(4)

    @jmod.jit
    def second(x):
        return x * jmod.randn(4)

    def run_first():
        first(jnp.zeros(4))

    def run_second():
        try:
            assert first_in.wait(10.0), "the first trace did not start"
            second(jnp.ones(4))
        finally:
            second_done.set()

    errors = run_threads([run_first, run_second])
    assert not errors, errors
    # every later draw works: eager, and both compiled functions
    assert np.asarray(jmod.get_rng_state()).dtype == np.uint32
    assert np.isfinite(np.asarray(jmod.randn(2))).all()
    assert np.isfinite(np.asarray(first(jnp.zeros(4)))).all()
    assert np.isfinite(np.asarray(second(jnp.ones(4)))).all()


# ------------------------------------------------------- one model, two trainers
def test_two_threads_training_the_same_model_are_serialized():
    """Constant gradients (d sum(Wx+b) / dW = sum of x): SGD gives the same result for
    every interleaving of the 2 x N steps, and a lost or torn update shows."""
    n = 200

    @jmod.jit
    def step(model, opt, x):
        _, grads = jmod.value_and_grad(lambda m: m(x).sum())(model)
        opt.step(grads)

    x = jnp.full((2, 4), 0.5)
    jmod.manual_seed(0)
    model = nn.Linear(4, 2)
    jmod.manual_seed(0)
    reference = nn.Linear(4, 2)
    opt = jmod.optim.SGD(model.parameters(), lr=0.125)
    ref_opt = jmod.optim.SGD(reference.parameters(), lr=0.125)
    for _ in range(2 * n):
        step(reference, ref_opt, x)

    def train():
        for _ in range(n):
            step(model, opt, x)

    errors = run_threads([train, train])
    assert not errors, errors
    _assert_bitwise_equal(_state(model, opt), _state(reference, ref_opt), "the shared model")
