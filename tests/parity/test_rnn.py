"""RNN, LSTM, GRU, their cells and packed sequences against torch."""

import itertools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn

import jmod
import jmod.nn.utils.rnn as jrnn
from jmod import nn
from jmod._src import random as jrandom
from jmod.func import functional_call
from tests.helpers import assert_close, assert_matches_torch

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(0)
INPUT, HIDDEN, SEQ, BATCH = 3, 4, 4, 2

# Gradients flow back through SEQ steps of products of Jacobians; float32 rounding of
# torch's and XLA's (differently ordered) matmuls accumulates a little along the way,
# so the gradient bound is 2e-5 instead of 1e-5. Forward stays at 1e-5.
GRAD_TOL = 2e-5


def _x(shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _pair(cls, *args, **kwargs):
    return getattr(nn, cls)(*args, **kwargs), getattr(torch.nn, cls)(*args, **kwargs)


def _pairwise(n_factors):
    """Rows of a binary covering array of strength 2 for up to 10 factors: every pair of
    factors takes all four value combinations in some row (6 rows instead of 2**n)."""
    subsets = [s for s in itertools.combinations(range(6), 3) if 0 in s][:n_factors]
    return [tuple(r in s for s in subsets) for r in range(6)]


# mode, factors: (two layers, bidirectional, batch_first, bias, with h0[, proj_size]).
# The recurrence, layout and state handling are shared by all modes, so the factors
# are swept pairwise on LSTM (which has them all); every other mode runs with every
# factor on and off (so each (mode, factor value) pair is covered) plus, for the
# modes with their own forward code, one mixed row.
SWEEP = [("LSTM", *row) for row in _pairwise(6)]
for mode, extra in (("RNN_TANH", 1), ("GRU", 1), ("RNN_RELU", 0)):
    rows = [(True,) * 5, (False,) * 5] + _pairwise(5)[2 : 2 + extra]
    SWEEP += [(mode, *row) for row in rows]


def _make(mode, **kw):
    if mode.startswith("RNN"):
        kw["nonlinearity"] = "tanh" if mode == "RNN_TANH" else "relu"
        cls = "RNN"
    else:
        cls = mode
    return _pair(cls, INPUT, HIDDEN, **kw)


class _TorchStateful(torch.nn.Module):
    """``lstm(x, (h0, c0))`` / ``cell(x, (h, c))`` with the state as separate positional inputs, since
    ``assert_matches_torch`` takes arrays, not tuples, as inputs."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, h, c):
        return self.inner(x, (h, c))


class _JmodStateful(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, h, c):
        return self.inner(x, (h, c))


def _with_state(j, t):
    """Wrap a pair whose state is a tuple; the wrappers report under the wrapped class's name."""
    name = type(j).__name__
    jw = type(name, (_JmodStateful,), {})(j)
    tw = type(name, (_TorchStateful,), {})(t)
    return jw, tw


def _check(j, t, *inputs, **kw):
    """assert_matches_torch, unpacking an (h, c) state into two inputs."""
    if len(inputs) == 2 and isinstance(inputs[1], tuple):
        j, t = _with_state(j, t)
        inputs = (inputs[0], *inputs[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "LSTM with projections is not supported with oneDNN"
        return assert_matches_torch(j, t, *inputs, **kw)


def _hidden(mode, num_layers, bidirectional, proj, batch=(BATCH,)):
    d = num_layers * (2 if bidirectional else 1)
    h = _x((d, *batch, 2 if proj else HIDDEN))
    if mode == "LSTM":
        return (h, _x((d, *batch, HIDDEN)))
    return h


def _ids(case):
    mode, two, bi, bf, bias, h0, *proj = case
    return (
        f"{mode}-L{2 if two else 1}-{'bi' if bi else 'uni'}-{'bf' if bf else 'tf'}-{'bias' if bias else 'nobias'}-{'h0' if h0 else 'noh0'}"
        + (f"-proj{2 if proj[0] else 0}" if proj else "")
    )


def test_lstm_sweep_covers_every_pair_of_factor_values():
    rows = [case[1:] for case in SWEEP if case[0] == "LSTM"]
    for i, k in itertools.combinations(range(6), 2):
        assert {(r[i], r[k]) for r in rows} == {(a, b) for a in (False, True) for b in (False, True)}


@pytest.mark.parametrize("case", SWEEP, ids=[_ids(c) for c in SWEEP])
def test_rnn_sweep(case):
    mode, two_layers, bidirectional, batch_first, bias, with_h0, *proj = case
    proj = bool(proj and proj[0])
    num_layers = 2 if two_layers else 1
    kw = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    if proj:
        kw["proj_size"] = 2
    j, t = _make(mode, **kw)
    assert repr(j) == repr(t)
    assert [(n, p.shape) for n, p in j.named_parameters()] == [(n, tuple(p.shape)) for n, p in t.named_parameters()]
    x = _x((BATCH, SEQ, INPUT) if batch_first else (SEQ, BATCH, INPUT))
    inputs = [x]
    if with_h0:
        inputs.append(_hidden(mode, num_layers, bidirectional, proj))
    _check(j, t, *inputs, grad_atol=GRAD_TOL, grad_rtol=GRAD_TOL)


@pytest.mark.parametrize("mode,with_h0", [("RNN_TANH", False), ("GRU", True), ("LSTM", True)])
def test_unbatched(mode, with_h0):
    j, t = _make(mode, bidirectional=True)
    inputs = [_x((SEQ, INPUT))]
    if with_h0:
        h = _hidden(mode, 1, True, False, batch=())
        inputs.append(h)
    # check_jit off: the sweep above covers jax.jit; this test is about the unbatched reshaping.
    _check(j, t, *inputs, grad_atol=GRAD_TOL, grad_rtol=GRAD_TOL, check_jit=False)


def test_lstm_unbatched_proj_batch_first():
    j, t = _pair("LSTM", INPUT, HIDDEN, proj_size=3, batch_first=True)
    _check(j, t, _x((SEQ, INPUT)), (_x((1, 3)), _x((1, HIDDEN))), grad_atol=GRAD_TOL, check_jit=False)


def test_eval_mode_ignores_dropout():
    j, t = _pair("GRU", INPUT, HIDDEN, num_layers=2, dropout=0.5)
    assert repr(j) == repr(t)
    assert_matches_torch(j, t, _x((SEQ, BATCH, INPUT)), train=False, grad_atol=GRAD_TOL, check_jit=False)


def test_dropout_one_zeroes_between_layers():
    """dropout=1 is deterministic: every layer after the first sees zeros, in torch too."""
    j, t = _pair("LSTM", INPUT, HIDDEN, num_layers=2, dropout=1.0)
    assert_matches_torch(j, t, _x((SEQ, BATCH, INPUT)), train=True, grad_atol=GRAD_TOL, check_jit=False)


def test_dropout_between_layers_matches_formula():
    """Layer 2 sees where(bernoulli(1 - p), out1 / (1 - p), 0) with the key drawn from jmod's generator."""
    p = 0.4
    two = nn.RNN(INPUT, HIDDEN, num_layers=2, dropout=p)
    first = nn.RNN(INPUT, HIDDEN)
    second = nn.RNN(HIDDEN, HIDDEN)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(first, name + "_l0", getattr(two, name + "_l0"))
        setattr(second, name + "_l0", getattr(two, name + "_l1"))
    x = jnp.asarray(_x((SEQ, 8, INPUT)))
    jmod.manual_seed(123)
    out, h_n = two(x)
    jmod.manual_seed(123)
    key = jrandom.next_key()
    out1, h1 = first(x)
    keep = jax.random.bernoulli(key, 1 - p, out1.shape)
    out2, h2 = second(jnp.where(keep, out1 / (1 - p), 0))
    assert_close(out, out2, atol=1e-6, rtol=1e-6, what="dropout output")
    assert_close(h_n, jnp.concatenate([h1, h2]), atol=1e-6, rtol=1e-6, what="dropout h_n")


def test_dropout_statistics_and_fresh_masks():
    p = 0.3
    m = nn.RNN(INPUT, HIDDEN, num_layers=2, dropout=p)
    x = jnp.asarray(_x((SEQ, 64, INPUT)))
    a, _ = m(x)
    b, _ = m(x)
    assert not np.allclose(np.asarray(a), np.asarray(b)), "each call must draw a new mask"
    # the keep rate of the mask drawn from such a key, over many draws
    keys = jax.random.split(jrandom.next_key(), 20)
    rate = float(jnp.mean(jax.vmap(lambda k: jax.random.bernoulli(k, 1 - p, (SEQ, 64, HIDDEN)))(keys)))
    assert abs(rate - (1 - p)) < 0.01


def test_dropout_under_jit_with_key():
    m = nn.LSTM(INPUT, HIDDEN, num_layers=2, dropout=0.5)
    params = dict(m.named_parameters())
    x = jnp.asarray(_x((SEQ, BATCH, INPUT)))
    f = jax.jit(lambda p, x, k: functional_call(m, p, (x,), key=k)[0])
    k1, k2 = jax.random.split(jax.random.key(0))
    o1, o1b, o2 = f(params, x, k1), f(params, x, k1), f(params, x, k2)
    np.testing.assert_array_equal(np.asarray(o1), np.asarray(o1b))
    assert not np.allclose(np.asarray(o1), np.asarray(o2))


def test_constructor_warning_and_repr_with_dropout():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        j = nn.RNN(INPUT, HIDDEN, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.RNN(INPUT, HIDDEN, dropout=0.5)
    assert repr(j) == repr(t)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells(cls, bias):
    j, t = _pair(cls, INPUT, HIDDEN, bias=bias)
    assert repr(j) == repr(t)
    assert [n for n, _ in j.named_parameters()] == [n for n, _ in t.named_parameters()]
    x = _x((BATCH, INPUT))
    assert_matches_torch(j, t, x)
    t.zero_grad()
    h = (_x((BATCH, HIDDEN)), _x((BATCH, HIDDEN))) if cls == "LSTMCell" else _x((BATCH, HIDDEN))
    _check(j, t, x, h, check_jit=False)


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_unbatched(cls):
    j, t = _pair(cls, INPUT, HIDDEN)
    h = (_x((HIDDEN,)), _x((HIDDEN,))) if cls == "LSTMCell" else _x((HIDDEN,))
    _check(j, t, _x((INPUT,)), h, check_jit=False)


def test_rnn_cell_relu():
    j, t = _pair("RNNCell", INPUT, HIDDEN, nonlinearity="relu")
    assert repr(j) == repr(t) == "RNNCell(3, 4, nonlinearity=relu)"
    assert_matches_torch(j, t, _x((BATCH, INPUT)), _x((BATCH, HIDDEN)), check_jit=False)


# ----------------------------------------------------------------- structure


REPRS = [
    ("RNN", (3, 4), {}),
    ("RNN", (3, 4, 2), dict(nonlinearity="relu", bias=False, batch_first=True)),
    ("RNN", (3, 4, 1, "relu", False), {}),
    ("GRU", (3, 4), dict(num_layers=3, dropout=0.25, bidirectional=True)),
    ("LSTM", (3, 4), dict(proj_size=2, num_layers=2, bias=False, batch_first=True, dropout=0.1, bidirectional=True)),
    ("RNNCell", (3, 4), dict(bias=False, nonlinearity="relu")),
    ("LSTMCell", (3, 4), dict(bias=False)),
    ("GRUCell", (3, 4), {}),
]


@pytest.mark.parametrize("cls,args,kwargs", REPRS)
def test_structure_matches_torch(cls, args, kwargs):
    j, t = _pair(cls, *args, **kwargs)
    assert repr(j) == repr(t)
    assert [(n, p.shape) for n, p in j.named_parameters()] == [(n, tuple(p.shape)) for n, p in t.named_parameters()]
    if hasattr(t, "_flat_weights_names"):
        assert j._flat_weights_names == t._flat_weights_names
        assert j._all_weights == t._all_weights
        assert [[tuple(w.shape) for w in ws] for ws in j.all_weights] == [
            [tuple(w.shape) for w in ws] for ws in t.all_weights
        ]
        assert [w.shape for w in j._flat_weights] == [tuple(w.shape) for w in t._flat_weights]
        j.flatten_parameters()  # a no-op, as on CPU in torch
    for attr in (
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
        "proj_size",
        "mode",
        "nonlinearity",
    ):
        if hasattr(t, attr):
            assert getattr(j, attr) == getattr(t, attr), attr
    j.load_state_dict(t.state_dict())


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        ("RNN", {}),
        ("LSTM", dict(proj_size=8, bidirectional=True)),
        ("GRU", dict(num_layers=2)),
        ("LSTMCell", {}),
        ("GRUCell", {}),
    ],
)
def test_default_init_distribution(cls, kwargs):
    """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), as torch."""
    hidden = 64
    j = getattr(nn, cls)(16, hidden, **kwargs)
    bound = 1 / math.sqrt(hidden)
    values = np.concatenate([np.asarray(p).ravel() for p in j.parameters()])
    assert values.size > 4000
    assert values.min() >= -bound and values.max() <= bound
    assert values.min() < -0.98 * bound and values.max() > 0.98 * bound
    # mean 0 and variance bound**2 / 3 of the uniform distribution, within 5 standard errors
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * values.size)
    np.testing.assert_allclose(values.var(), bound**2 / 3, rtol=0.05)
    # each parameter is drawn independently (no two identical)
    arrays = [np.asarray(p) for p in j.parameters()]
    assert len({a.tobytes() for a in arrays}) == len(arrays)
    # torch's draws obey the same bounds
    t = getattr(torch.nn, cls)(16, hidden, **kwargs)
    tv = torch.cat([p.detach().ravel() for p in t.parameters()]).numpy()
    assert tv.min() >= -bound and tv.max() <= bound


def test_reset_parameters_redraws():
    m = nn.LSTM(INPUT, HIDDEN)
    before = [np.asarray(p) for p in m.parameters()]
    m.reset_parameters()
    after = [np.asarray(p) for p in m.parameters()]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))


# -------------------------------------------------------------------- errors


def _jzeros(*shape):
    return jnp.zeros(shape)


def _same_error(kind, torch_call, jmod_call):
    with pytest.raises(kind) as te:
        torch_call()
    with pytest.raises(kind) as je:
        jmod_call()
    assert str(je.value) == str(te.value)


CTOR_ERRORS = [
    (ValueError, "RNN", (3, 4), dict(proj_size=2)),
    (ValueError, "GRU", (3, 4), dict(proj_size=2)),
    (ValueError, "LSTM", (3, 4), dict(proj_size=4)),
    (ValueError, "LSTM", (3, 4), dict(proj_size=-1)),
    (ValueError, "RNN", (3, 4), dict(nonlinearity="sigmoid")),
    (ValueError, "RNN", (3, 4), dict(dropout=1.5)),
    (ValueError, "RNN", (3, 4), dict(dropout=True)),
    (TypeError, "RNN", (3, 4), dict(bias=1)),
    (TypeError, "GRU", (3, 4), dict(batch_first=1)),
    (TypeError, "LSTM", (3.0, 4), {}),
    (ValueError, "LSTM", (0, 4), {}),
    (TypeError, "GRU", (3, 4.0), {}),
    (ValueError, "GRU", (3, 0), {}),
    (ValueError, "RNN", (3, 4, 0), {}),
    (TypeError, "RNN", (3, 4, 2.0), {}),
]


@pytest.mark.parametrize("kind,cls,args,kwargs", CTOR_ERRORS)
def test_constructor_errors(kind, cls, args, kwargs):
    _same_error(kind, lambda: getattr(torch.nn, cls)(*args, **kwargs), lambda: getattr(nn, cls)(*args, **kwargs))


FORWARD_ERRORS = [
    (RuntimeError, "RNN", lambda z: (z(2, 2, 5),)),
    (ValueError, "RNN", lambda z: (z(5),)),
    (ValueError, "LSTM", lambda z: (z(2, 2, 2, 3),)),
    (ValueError, "GRU", lambda z: (z(5),)),
    (RuntimeError, "RNN", lambda z: (z(2, 2, 3), z(1, 3, 4))),
    (RuntimeError, "GRU", lambda z: (z(2, 2, 3), z(3, 4))),
    (RuntimeError, "RNN", lambda z: (z(2, 3), z(1, 1, 4))),
    (RuntimeError, "GRU", lambda z: (z(2, 3), z(1, 1, 4))),
    (RuntimeError, "LSTM", lambda z: (z(2, 2, 3), (z(1, 3, 4), z(1, 2, 4)))),
    (RuntimeError, "LSTM", lambda z: (z(2, 2, 3), (z(1, 2, 4), z(1, 3, 4)))),
    (RuntimeError, "LSTM", lambda z: (z(2, 2, 3), (z(2, 4), z(1, 3, 4)))),
    (RuntimeError, "LSTM", lambda z: (z(2, 3), (z(1, 2, 4), z(1, 3, 4)))),
    (IndexError, "LSTM", lambda z: (z(2, 2, 3), z(1, 2, 4))),
    (RuntimeError, "GRU", lambda z: (z(0, 2, 3),)),
]


@pytest.mark.parametrize("kind,cls,make", FORWARD_ERRORS)
def test_forward_errors(kind, cls, make):
    j, t = _pair(cls, 3, 4)
    _same_error(kind, lambda: t(*make(torch.zeros)), lambda: j(*make(_jzeros)))


def test_dtype_mismatch():
    j = nn.RNN(3, 4)
    with pytest.raises(ValueError, match=r"RNN input dtype \(float16\) does not match weight dtype \(float32\)"):
        j(jnp.zeros((2, 2, 3), jnp.float16))


def test_zero_batch():
    j, t = _pair("LSTM", 3, 4)
    out_t, (h_t, _) = t(torch.zeros(2, 0, 3))
    out_j, (h_j, _) = j(jnp.zeros((2, 0, 3)))
    assert out_j.shape == tuple(out_t.shape) and h_j.shape == tuple(h_t.shape)


CELL_ERRORS = [
    (RuntimeError, "RNNCell", {}, lambda z: (z(2, 5),)),
    (RuntimeError, "RNNCell", {}, lambda z: (z(2, 3), z(3, 4))),
    (RuntimeError, "RNNCell", {}, lambda z: (z(2, 3), z(2, 5))),
    (ValueError, "RNNCell", {}, lambda z: (z(2, 2, 3),)),
    (ValueError, "RNNCell", {}, lambda z: (z(2, 3), z(2, 2, 4))),
    (RuntimeError, "RNNCell", {}, lambda z: (z(3), z(2, 4))),
    (RuntimeError, "RNNCell", dict(nonlinearity="foo"), lambda z: (z(3),)),
    (RuntimeError, "LSTMCell", {}, lambda z: (z(2, 3), (z(2, 4), z(3, 4)))),
    (RuntimeError, "LSTMCell", {}, lambda z: (z(2, 3), (z(2, 4), z(2, 5)))),
    (ValueError, "LSTMCell", {}, lambda z: (z(2, 3), (z(2, 2, 4), z(2, 5)))),
    (ValueError, "LSTMCell", {}, lambda z: (z(2, 2, 3),)),
    (RuntimeError, "GRUCell", {}, lambda z: (z(2, 3), z(3, 4))),
    (ValueError, "GRUCell", {}, lambda z: (z(2, 2, 3),)),
    (ValueError, "GRUCell", {}, lambda z: (z(3), z(1, 1, 4))),
]


@pytest.mark.parametrize("kind,cls,kwargs,make", CELL_ERRORS)
def test_cell_errors(kind, cls, kwargs, make):
    j, t = _pair(cls, 3, 4, **kwargs)
    _same_error(kind, lambda: t(*make(torch.zeros)), lambda: j(*make(_jzeros)))


# ---------------------------------------------------------- packed sequences


def _packed_pair(x, lengths, enforce_sorted):
    return (
        trnn.pack_padded_sequence(torch.tensor(x, requires_grad=True), lengths, enforce_sorted=enforce_sorted),
        jrnn.pack_padded_sequence(jnp.asarray(x), lengths, enforce_sorted=enforce_sorted),
    )


@pytest.mark.parametrize(
    "mode,kwargs,lengths,with_h0",
    [
        ("LSTM", dict(proj_size=2, bidirectional=True), [4, 3, 1], True),
        ("GRU", dict(num_layers=2, bidirectional=True), [1, 4, 2], True),
        ("RNN_RELU", dict(bidirectional=True, bias=False), [3, 3, 2], False),
    ],
)
def test_packed_sequence_forward_and_grad(mode, kwargs, lengths, with_h0):
    enforce_sorted = lengths == sorted(lengths, reverse=True)
    j, t = _make(mode, **kwargs)
    j.load_state_dict(t.state_dict())
    x = _x((SEQ, 3, INPUT))
    tp, jp = _packed_pair(x, lengths, enforce_sorted)
    np.testing.assert_array_equal(jp.batch_sizes, tp.batch_sizes.numpy())
    assert_close(jp.data, tp.data, atol=0, rtol=0, what="packed data")
    args_t, args_j = [tp], [jp]
    if with_h0:
        h = _hidden(
            mode, kwargs.get("num_layers", 1), kwargs.get("bidirectional", False), "proj_size" in kwargs, batch=(3,)
        )
        args_t.append(tuple(torch.tensor(a) for a in h) if isinstance(h, tuple) else torch.tensor(h))
        args_j.append(tuple(jnp.asarray(a) for a in h) if isinstance(h, tuple) else jnp.asarray(h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_t, h_t = t(*args_t)
    out_j, h_j = j(*args_j)
    assert isinstance(out_j, jrnn.PackedSequence)
    assert_close(out_j.data, out_t.data, atol=1e-5, rtol=1e-5, what="packed output")
    assert_close(h_j, h_t, atol=1e-5, rtol=1e-5, what="packed h_n")
    pad_t, len_t = trnn.pad_packed_sequence(out_t, batch_first=True, total_length=SEQ + 1)
    pad_j, len_j = jrnn.pad_packed_sequence(out_j, batch_first=True, total_length=SEQ + 1)
    assert_close(pad_j, pad_t, atol=1e-5, rtol=1e-5, what="padded output")
    np.testing.assert_array_equal(np.asarray(len_j), len_t.numpy())
    # gradient of a loss on the padded output w.r.t. the padded input and the weights
    cot = _x(tuple(pad_t.shape))
    (pad_t * torch.tensor(cot)).sum().backward()
    params = dict(j.named_parameters())

    def loss(p, xx):
        packed = jrnn.pack_padded_sequence(xx, lengths, enforce_sorted=enforce_sorted)
        out, _ = functional_call(j, p, (packed, *args_j[1:]))
        return (jrnn.pad_packed_sequence(out, batch_first=True, total_length=SEQ + 1)[0] * cot).sum()

    g_p, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(x))
    assert_close(g_x, _input_grad(tp), atol=GRAD_TOL, rtol=GRAD_TOL, what="grad input")
    for name, p in t.named_parameters():
        assert_close(g_p[name], p.grad, atol=GRAD_TOL, rtol=GRAD_TOL, what=f"grad {name}")


def _input_grad(tp):
    # the leaf tensor given to pack_padded_sequence
    leaf = tp.data.grad_fn
    while leaf is not None and not hasattr(leaf, "variable"):
        leaf = leaf.next_functions[0][0]
    return leaf.variable.grad


def test_packed_sequence_through_jit():
    j = nn.GRU(INPUT, HIDDEN, bidirectional=True)
    params = dict(j.named_parameters())
    packed = jrnn.pack_sequence([jnp.asarray(_x((4, INPUT))), jnp.asarray(_x((2, INPUT)))])
    eager_out, eager_h = j(packed)
    jit_out, jit_h = jax.jit(lambda p, s: functional_call(j, p, (s,)))(params, packed)
    assert isinstance(jit_out, jrnn.PackedSequence)
    np.testing.assert_array_equal(jit_out.batch_sizes, eager_out.batch_sizes)
    assert_close(jit_out.data, eager_out.data, atol=1e-6, rtol=1e-6, what="jit packed")
    assert_close(jit_h, eager_h, atol=1e-6, rtol=1e-6, what="jit h_n")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence(batch_first, padding_side):
    seqs = [_x((2, 3)), _x((4, 3)), _x((1, 3))]
    expected = trnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first, -1.0, padding_side)
    out = jrnn.pad_sequence([jnp.asarray(s) for s in seqs], batch_first, -1.0, padding_side)
    assert_close(out, expected, atol=0, rtol=0, what="pad_sequence")


def test_pack_unpack_round_trips():
    seqs = [_x((2, 3)), _x((4, 3)), _x((1, 3))]
    tp = trnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    jp = jrnn.pack_sequence([jnp.asarray(s) for s in seqs], enforce_sorted=False)
    assert_close(jp.data, tp.data, atol=0, rtol=0, what="pack_sequence")
    np.testing.assert_array_equal(np.asarray(jp.sorted_indices), tp.sorted_indices.numpy())
    np.testing.assert_array_equal(np.asarray(jp.unsorted_indices), tp.unsorted_indices.numpy())
    for a, b in zip(jrnn.unpack_sequence(jp), trnn.unpack_sequence(tp)):
        assert_close(a, b, atol=0, rtol=0, what="unpack_sequence")
    padded, lengths = jrnn.pad_packed_sequence(jp)
    for a, s in zip(jrnn.unpad_sequence(padded, lengths), seqs):
        assert_close(a, s, atol=0, rtol=0, what="unpad_sequence")
    data, batch_sizes, sorted_indices, unsorted_indices = jp  # unpacks like torch's named tuple
    assert batch_sizes.dtype == np.int64 and list(batch_sizes) == [3, 2, 1, 1]
    assert jrnn.invert_permutation(None) is None
    # conversions keep the layout and the integer indices
    half = jp.half()
    assert half.data.dtype == jnp.float16 and half.float().data.dtype == jnp.float32
    np.testing.assert_array_equal(half.batch_sizes, jp.batch_sizes)
    assert half.sorted_indices is jp.sorted_indices and not jp.is_cuda


def test_packing_errors():
    x = torch.zeros(4, 3, 2)
    for lengths in ([2, 3, 1], [3, 2, 0], [3, 2]):
        _same_error(
            RuntimeError,
            lambda: trnn.pack_padded_sequence(x, lengths),
            lambda: jrnn.pack_padded_sequence(jnp.zeros((4, 3, 2)), lengths),
        )
    _same_error(
        ValueError,
        lambda: trnn.pad_packed_sequence(trnn.pack_padded_sequence(x, [3, 2, 1]), total_length=2),
        lambda: jrnn.pad_packed_sequence(jrnn.pack_padded_sequence(jnp.zeros((4, 3, 2)), [3, 2, 1]), total_length=2),
    )
    with pytest.raises(TypeError, match="must be concrete"):
        jax.jit(lambda n: jrnn.pack_padded_sequence(jnp.zeros((4, 1, 2)), n))(jnp.array([3]))
