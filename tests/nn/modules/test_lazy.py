"""Lazy modules in jmod's own terms: the first call eagerly, inside jmod.jit /
model.compile / jmod.value_and_grad, reproducible initial values, optimizers after a
dry run, copies, failed loads. (Parity with torch: tests/parity/test_lazy.py.)"""

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jmod
from jmod import nn
from jmod.nn.parameter import is_lazy


def _no_tracers(module):
    for v in module.state_dict().values():
        assert isinstance(v, jax.Array) and not isinstance(v, jax.core.Tracer)


def _mlp():
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))


@pytest.mark.parametrize(
    "lazy, eager, x",
    [
        (lambda: nn.LazyLinear(3), lambda: nn.Linear(4, 3), (2, 4)),
        (lambda: nn.LazyConv2d(3, 2), lambda: nn.Conv2d(4, 3, 2), (1, 4, 5, 5)),
        (lambda: nn.LazyConvTranspose1d(3, 2), lambda: nn.ConvTranspose1d(4, 3, 2), (1, 4, 5)),
    ],
    ids=["linear", "conv2d", "conv_transpose1d"],
)
@pytest.mark.parametrize("where", ["eager", "compile"])
def test_initial_values_are_the_eager_layers_after_the_same_seed(lazy, eager, x, where):
    """As in torch: the lazy module's draws (reset_parameters after materialize) are the
    eager layer's, from the same generator state; also when the first call is compiled."""
    jmod.manual_seed(7)
    ref = eager()
    m = lazy()
    if where == "compile":
        m.compile()
    jmod.manual_seed(7)
    m(jnp.ones(x))
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v)


def test_generator_advances_as_eagerly():
    """The compiled first call leaves the generator where an eager first call does."""
    states = []
    for compiled in (False, True):
        m = _mlp()
        if compiled:
            m.compile()
        jmod.manual_seed(3)
        m(jnp.ones((2, 5)))
        states.append(np.asarray(jmod.get_rng_state()))
    np.testing.assert_array_equal(*states)


def test_first_call_inside_compile_retraces_once_then_never():
    m = _mlp()
    m.compile()
    x = jnp.ones((3, 5))
    y0 = m(x)
    _no_tracers(m)
    assert [type(c).__name__ for c in m] == ["Linear", "ReLU", "Linear"]
    fn = m._compiled_call_impl.func
    assert fn.trace_count == 1
    y1 = m(x)
    assert fn.trace_count == 2  # the new structure, once
    for _ in range(3):
        m(x)
    assert fn.trace_count == 2
    np.testing.assert_allclose(y0, y1, rtol=1e-6)


def test_first_call_inside_jit_with_batchnorm_buffers():
    m = nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d())
    step = jmod.jit(lambda m, x: m(x))
    x = jax.random.normal(jax.random.key(0), (6, 3))
    step(m, x)
    _no_tracers(m)
    bn = m[1]
    assert type(bn) is nn.BatchNorm1d and bn.num_features == 4
    ref = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ref.load_state_dict({k: v for k, v in m.state_dict().items() if k.startswith("0.")}, strict=False)
    ref(x)  # one step of running statistics from the initial ones
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(bn, k), getattr(ref[1], k), rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked) == 1


@pytest.mark.parametrize("jitted", [False, True])
def test_first_call_inside_value_and_grad(jitted):
    """A dry run initializes the modules, then the gradient covers the new parameters
    (and buffers are updated once, not twice)."""

    # (eagerly, a BatchNorm's op-by-op gradient is slow to compile: only under jit)
    def build():
        return nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d() if jitted else nn.Tanh(), nn.LazyLinear(1))

    m = build()
    x = jax.random.normal(jax.random.key(1), (5, 3))

    def loss(model, x):
        return (model(x) ** 2).mean()

    vg = jmod.value_and_grad(loss)
    if jitted:
        vg = jmod.jit(vg)
    jmod.manual_seed(0)
    value, grads = vg(m, x)
    _no_tracers(m)
    assert {k: v.shape for k, v in grads.items()} == {k: v.shape for k, v in m.named_parameters()}
    if jitted:
        assert int(m[1].num_batches_tracked) == 1
    # the same as an eagerly initialized copy (same seed) differentiated normally
    ref = build()
    jmod.manual_seed(0)
    jmod.jit(lambda r, x: r(x))(ref.eval(), x)  # initialized in eval mode: statistics untouched
    ref.train()
    for k, v in ref.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            np.testing.assert_array_equal(m.state_dict()[k], v)
    rvalue, rgrads = jmod.jit(jmod.value_and_grad(loss))(ref, x)
    np.testing.assert_allclose(value, rvalue, rtol=1e-6)
    for k in rgrads:
        np.testing.assert_allclose(grads[k], rgrads[k], rtol=1e-5, atol=1e-7)


def test_optimizer_after_a_dry_run_trains():
    m = _mlp()
    x = jax.random.normal(jax.random.key(2), (16, 5))
    y = x[:, :2] * 2.0
    with pytest.raises(ValueError, match="dry run"):
        jmod.optim.Optimizer(m, optax.sgd(0.1))
    with pytest.raises(ValueError, match="dry run"):
        jmod.optim.SGD(m.parameters(), lr=0.1)
    m(x)  # dry run
    opt = jmod.optim.Adam(m.parameters(), lr=1e-2)

    @jmod.jit
    def step(m, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(m)
        opt.step(grads)
        return loss

    losses = [float(step(m, opt, x, y)) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_uninitialized_module_surface():
    m = nn.LazyLinear(3, bias=False)
    assert repr(m) == "LazyLinear(in_features=0, out_features=3, bias=False)"
    assert m.has_uninitialized_params()
    assert m.bias is None
    assert repr(m.weight) == "<UninitializedParameter>"
    assert [type(p).__name__ for p in m.parameters()] == ["UninitializedParameter"]
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        m.weight.shape
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        m.weight.T
    assert m.weight.dtype == jnp.float32
    # dtype and placement set before the dry run are kept
    m.to(jnp.bfloat16)
    m(jnp.ones((2, 4), jnp.bfloat16))
    assert m.weight.dtype == jnp.bfloat16 and m.weight.shape == (3, 4)


def test_initialize_parameters_explicitly_keeps_the_class_until_called():
    m = nn.LazyConv1d(4, 3)
    m.initialize_parameters(jnp.ones((2, 5, 9)))
    assert type(m) is nn.LazyConv1d and not m.has_uninitialized_params()
    assert m.weight.shape == (4, 5, 3) and m.in_channels == 5
    w = m.weight
    m(jnp.ones((2, 5, 9)))
    assert type(m) is nn.Conv1d and m.weight is w  # the values are not drawn again


def test_incomplete_initialization_raises():
    class Broken(nn.modules.lazy.LazyModuleMixin, nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.UninitializedParameter()

        def initialize_parameters(self, x):
            pass

        def forward(self, x):
            return x

    with pytest.raises(RuntimeError, match="module Broken has not been fully initialized"):
        Broken()(jnp.ones(2))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_stay_lazy_and_independent(how):
    m = nn.Sequential(nn.LazyLinear(3), nn.LazyBatchNorm1d())
    c = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))
    assert all(type(a) is type(b) for a, b in zip(m, c))
    c(jnp.ones((4, 2)))
    assert [type(x).__name__ for x in c] == ["Linear", "BatchNorm1d"]
    assert c[1].running_mean.shape == (3,)
    assert m[0].has_uninitialized_params() and m[1].has_uninitialized_params()
    assert is_lazy(m[1].running_mean)
    m(jnp.ones((4, 5)))
    assert m[0].weight.shape == (3, 5) and c[0].weight.shape == (3, 2)


def test_failed_load_leaves_the_module_uninitialized():
    m = nn.LazyLinear(3)
    sd = nn.Linear(4, 3).state_dict()
    del sd["bias"]  # the load fails after weight was materialized
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        m.load_state_dict(sd)
    assert m.has_uninitialized_params() and is_lazy(m._parameters["weight"])
    m(jnp.ones((2, 4)))
    assert m.weight.shape == (3, 4)


def test_assigning_a_value_to_an_uninitialized_parameter_materializes_it():
    m = nn.LazyLinear(3, bias=False)
    m.weight = jnp.ones((3, 2))
    assert not m.has_uninitialized_params()
    out = m(jnp.ones((1, 2)))
    np.testing.assert_array_equal(out, [[2.0, 2.0, 2.0]])
