"""jmod.autocast and jmod.amp.GradScaler against torch.autocast / torch.amp.GradScaler (CPU)."""

import pickle
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jmod
import jmod.nn.functional as JF
from jmod import nn
from jmod._src import amp as amp_src

torch = pytest.importorskip("torch")
TF = torch.nn.functional

F32, BF16 = np.float32, "bf16"


def _arr(shape, dtype=F32, seed=0, low=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    if low is not None:
        x = np.abs(x) + low
    return x, dtype


def _unit(shape, dtype=F32, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, shape).astype(np.float32), dtype


def _both(spec):
    """(numpy array, dtype) -> (torch tensor, jax array) of that dtype; ints pass through."""
    x, dtype = spec
    if dtype == "long":
        return torch.tensor(x, dtype=torch.long), jnp.asarray(x, jnp.int32)
    t = torch.tensor(x)
    j = jnp.asarray(x)
    if dtype == BF16:
        t, j = t.bfloat16(), j.astype(jnp.bfloat16)
    return t, j


def _idx(x):
    return (np.asarray(x), "long")


# (name, function of (F, *inputs), input specs). Ops on torch's CPU lower_precision_fp
# list get float32 inputs (the cast down shows); fp32-list ops get bfloat16 inputs (the
# cast up shows); unlisted ops get bfloat16 activations with float32 parameters.
CASES = [
    ("linear", lambda F, x, w, b: F.linear(x, w, b), [_arr((2, 4)), _arr((3, 4), seed=1), _arr((3,), seed=2)]),
    ("conv1d", lambda F, x, w: F.conv1d(x, w, padding=1), [_arr((2, 3, 6)), _arr((4, 3, 3), seed=1)]),
    ("conv2d", lambda F, x, w, b: F.conv2d(x, w, b), [_arr((2, 3, 5, 5)), _arr((4, 3, 3, 3), seed=1), _arr((4,))]),
    ("conv3d", lambda F, x, w: F.conv3d(x, w), [_arr((1, 2, 4, 4, 4)), _arr((3, 2, 2, 2, 2), seed=1)]),
    ("conv_transpose1d", lambda F, x, w: F.conv_transpose1d(x, w), [_arr((2, 3, 5)), _arr((3, 2, 3), seed=1)]),
    ("conv_transpose2d", lambda F, x, w: F.conv_transpose2d(x, w), [_arr((1, 3, 4, 4)), _arr((3, 2, 3, 3), seed=1)]),
    ("conv_transpose3d", lambda F, x, w: F.conv_transpose3d(x, w), [_arr((1, 2, 3, 3, 3)), _arr((2, 2, 2, 2, 2))]),
    ("conv_tbc", lambda F, x, w, b: F.conv_tbc(x, w, b), [_arr((5, 2, 3)), _arr((3, 3, 4), seed=1), _arr((4,))]),
    ("prelu", lambda F, x, w: F.prelu(x, w), [_arr((2, 3, 4)), _arr((3,), seed=1)]),
    (
        "scaled_dot_product_attention",
        lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        [_arr((1, 2, 4, 8)), _arr((1, 2, 4, 8), seed=1), _arr((1, 2, 4, 8), seed=2)],
    ),
    ("bilinear (unlisted)", lambda F, a, b, w: F.bilinear(a, b, w), [_arr((2, 3)), _arr((2, 4)), _arr((5, 3, 4))]),
    # fp32 list
    ("mse_loss", lambda F, x, y: F.mse_loss(x, y), [_arr((4, 3), BF16), _arr((4, 3), BF16, 1)]),
    ("l1_loss", lambda F, x, y: F.l1_loss(x, y), [_arr((4, 3), BF16), _arr((4, 3), BF16, 1)]),
    ("smooth_l1_loss", lambda F, x, y: F.smooth_l1_loss(x, y), [_arr((4, 3), BF16), _arr((4, 3), BF16, 1)]),
    ("huber_loss", lambda F, x, y: F.huber_loss(x, y), [_arr((4, 3), BF16), _arr((4, 3), BF16, 1)]),
    ("cross_entropy", lambda F, x, t: F.cross_entropy(x, t), [_arr((4, 5), BF16), _idx([0, 2, 4, 1])]),
    (
        "cross_entropy smoothing",
        lambda F, x, t: F.cross_entropy(x, t, label_smoothing=0.1),
        [_arr((4, 5), BF16), _idx([0, 2, 4, 1])],
    ),
    ("nll_loss", lambda F, x, t: F.nll_loss(x, t), [_arr((4, 5), BF16), _idx([0, 2, 4, 1])]),
    ("nll_loss2d", lambda F, x, t: F.nll_loss(x, t), [_arr((2, 3, 2, 2), BF16), _idx(np.zeros((2, 2, 2), int))]),
    ("kl_div", lambda F, x, y: F.kl_div(x, y, reduction="batchmean"), [_arr((4, 3), BF16), _arr((4, 3), BF16, 1, 0.1)]),
    ("binary_cross_entropy", lambda F, x, y: F.binary_cross_entropy(F.sigmoid(x), y), [_arr((4,), BF16), _unit((4,), BF16, 1)]),
    ("bce_with_logits", lambda F, x, y: F.binary_cross_entropy_with_logits(x, y), [_arr((4,), BF16), _unit((4,), BF16, 1)]),
    ("poisson_nll_loss", lambda F, x, y: F.poisson_nll_loss(x, y), [_arr((4,), BF16), _arr((4,), BF16, 1, 0)]),
    ("margin_ranking_loss", lambda F, a, b, y: F.margin_ranking_loss(a, b, y), [_arr((4,), BF16), _arr((4,), BF16, 1), _arr((4,), BF16, 2)]),
    ("soft_margin_loss", lambda F, x, y: F.soft_margin_loss(x, y), [_arr((4,), BF16), _arr((4,), BF16, 1)]),
    ("hinge_embedding_loss", lambda F, x, y: F.hinge_embedding_loss(x, y), [_arr((4,), BF16), _arr((4,), BF16, 1)]),
    (
        "cosine_embedding_loss",
        lambda F, a, b, y: F.cosine_embedding_loss(a, b, y),
        [_arr((4, 3), BF16), _arr((4, 3), BF16, 1), (np.array([1.0, -1, 1, -1], np.float32), BF16)],
    ),
    ("multi_margin_loss", lambda F, x, t: F.multi_margin_loss(x, t), [_arr((4, 5), BF16), _idx([0, 2, 4, 1])]),
    ("multilabel_margin_loss", lambda F, x, t: F.multilabel_margin_loss(x, t), [_arr((2, 4), BF16), _idx([[3, 0, -1, 1], [1, -1, 0, 0]])]),
    (
        "triplet_margin_loss",
        lambda F, a, p, n: F.triplet_margin_loss(a, p, n),
        [_arr((4, 3), BF16), _arr((4, 3), BF16, 1), _arr((4, 3), BF16, 2)],
    ),
    (
        "ctc_loss",
        lambda F, lp, t, il, tl: F.ctc_loss(F.log_softmax(lp, 2), t, il, tl),
        [_arr((6, 2, 4), BF16), _idx([[1, 2], [3, 1]]), _idx([6, 5]), _idx([2, 2])],
    ),
    ("avg_pool3d", lambda F, x: F.avg_pool3d(x, 2), [_arr((1, 2, 4, 4, 4), BF16)]),
    ("max_pool3d", lambda F, x: F.max_pool3d(x, 2), [_arr((1, 2, 4, 4, 4), BF16)]),
    ("max_pool3d indices", lambda F, x: F.max_pool3d(x, 2, return_indices=True)[0], [_arr((1, 2, 4, 4, 4), BF16)]),
    ("max_pool2d (unlisted)", lambda F, x: F.max_pool2d(x, 2), [_arr((1, 2, 4, 4), BF16)]),
    ("lp_pool3d", lambda F, x: F.lp_pool3d(x, 2, 2), [_arr((1, 2, 4, 4, 4), BF16)]),
    ("lp_pool2d (unlisted)", lambda F, x: F.lp_pool2d(x, 2, 2), [_arr((1, 2, 4, 4), BF16)]),
    ("adaptive_avg_pool3d", lambda F, x: F.adaptive_avg_pool3d(x, 2), [_arr((1, 2, 4, 4, 4), BF16)]),
    ("adaptive_avg_pool2d (unlisted)", lambda F, x: F.adaptive_avg_pool2d(x, 2), [_arr((1, 2, 4, 4), BF16)]),
    ("adaptive_max_pool3d", lambda F, x: F.adaptive_max_pool3d(x, 2), [_arr((1, 2, 4, 4, 4), BF16)]),
    (
        "max_unpool2d",
        lambda F, x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2),
        [_arr((1, 2, 4, 4), BF16)],
    ),
    (
        "max_unpool3d",
        lambda F, x: F.max_unpool3d(*F.max_pool3d(x, 2, return_indices=True), 2),
        [_arr((1, 2, 4, 4, 4), BF16)],
    ),
    ("fractional_max_pool2d", lambda F, x: F.fractional_max_pool2d(x, 2, output_size=2), [_arr((1, 2, 5, 5), BF16)]),
    ("fractional_max_pool3d", lambda F, x: F.fractional_max_pool3d(x, 2, output_size=2), [_arr((1, 1, 4, 4, 4), BF16)]),
    ("grid_sample", lambda F, x, g: F.grid_sample(x, g, align_corners=False), [_arr((1, 2, 4, 4), BF16), _arr((1, 3, 3, 2), BF16)]),
    ("pad reflect 1d", lambda F, x: F.pad(x, (1, 1), mode="reflect"), [_arr((1, 2, 4), BF16)]),
    ("pad reflect 2d", lambda F, x: F.pad(x, (1, 1, 1, 1), mode="reflect"), [_arr((1, 2, 4, 4), BF16)]),
    ("pad reflect 3d (unlisted)", lambda F, x: F.pad(x, (1, 1, 1, 1, 1, 1), mode="reflect"), [_arr((1, 2, 3, 3, 3), BF16)]),
    ("pad replicate 1d", lambda F, x: F.pad(x, (1, 2), mode="replicate"), [_arr((1, 2, 4), BF16)]),
    ("pad replicate 3d", lambda F, x: F.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate"), [_arr((1, 2, 3, 3, 3), BF16)]),
    ("pad constant (unlisted)", lambda F, x: F.pad(x, (1, 1)), [_arr((1, 2, 4), BF16)]),
    ("interpolate nearest (unlisted on CPU)", lambda F, x: F.interpolate(x, scale_factor=2), [_arr((1, 2, 3, 3), BF16)]),
    ("interpolate area 3d", lambda F, x: F.interpolate(x, size=(2, 2, 2), mode="area"), [_arr((1, 2, 4, 4, 4), BF16)]),
    # unlisted on CPU: follow their inputs (bfloat16 activations, float32 parameters)
    ("softmax", lambda F, x: F.softmax(x, -1), [_arr((2, 5), BF16)]),
    ("log_softmax", lambda F, x: F.log_softmax(x, -1), [_arr((2, 5), BF16)]),
    ("layer_norm", lambda F, x, w, b: F.layer_norm(x, (5,), w, b), [_arr((2, 5), BF16), _arr((5,)), _arr((5,), seed=1)]),
    ("group_norm", lambda F, x, w, b: F.group_norm(x, 2, w, b), [_arr((2, 4, 3), BF16), _arr((4,)), _arr((4,), seed=1)]),
    ("gelu", lambda F, x: F.gelu(x), [_arr((2, 5), BF16)]),
    ("softplus", lambda F, x: F.softplus(x), [_arr((2, 5), BF16)]),
    ("cosine_similarity", lambda F, a, b: F.cosine_similarity(a, b), [_arr((2, 5), BF16), _arr((2, 5), BF16, 1)]),
]


def _np(x):
    x = x.detach() if hasattr(x, "detach") else x
    if hasattr(x, "float") and x.dtype == torch.bfloat16:
        x = x.float()
    return np.asarray(x, np.float32)


def _torch_dtype_name(t):
    return str(t.dtype).removeprefix("torch.").replace("float", "float").replace("bfloat16", "bfloat16")


@pytest.mark.torch
@pytest.mark.parametrize("name,fn,specs", CASES, ids=[c[0] for c in CASES])
def test_op_dtype_matches_torch_cpu_autocast(name, fn, specs):
    pairs = [_both(s) for s in specs]
    t_in, j_in = [p[0] for p in pairs], [p[1] for p in pairs]
    torch.manual_seed(0)
    with torch.autocast("cpu"):
        t_out = fn(TF, *t_in)
    with jmod.autocast("cpu"):
        j_out = fn(JF, *j_in)
    assert str(j_out.dtype) == str(t_out.dtype).removeprefix("torch."), name
    if not name.startswith("fractional"):  # random pooling regions: only the dtype is comparable
        # One bfloat16 rounding of the result (2**-8 relative) plus a few in the
        # computation where the op runs in bfloat16.
        np.testing.assert_allclose(_np(j_out), _np(t_out), rtol=3e-2, atol=3e-2)


@pytest.mark.torch
def test_autocast_float16_on_cpu_and_nesting_match_torch():
    x, w = _arr((2, 4)), _arr((3, 4), seed=1)
    (tx, jx), (tw, jw) = _both(x), _both(w)
    with torch.autocast("cpu", dtype=torch.float16), jmod.autocast("cpu", dtype=torch.float16):
        assert str(JF.linear(jx, jw).dtype) == str(TF.linear(tx, tw).dtype).removeprefix("torch.") == "float16"
        assert jmod.get_autocast_dtype("cpu") == jnp.float16
        with torch.autocast("cpu", enabled=False), jmod.autocast("cpu", enabled=False):
            assert JF.linear(jx, jw).dtype == jnp.float32 == np.float32
            assert TF.linear(tx, tw).dtype == torch.float32
            assert not jmod.is_autocast_enabled("cpu")
        assert jmod.is_autocast_enabled("cpu")
    assert not jmod.is_autocast_enabled("cpu") and jmod.get_autocast_dtype("cpu") == jnp.bfloat16


def test_autocast_errors_and_warnings_match_torch():
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        jmod.autocast(0)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        jmod.autocast("tpu")
    with pytest.warns(UserWarning) as rec:
        ac = jmod.autocast("cpu", dtype=jnp.float32)
    with warnings.catch_warnings(record=True) as trec:
        warnings.simplefilter("always")
        torch.autocast("cpu", dtype=torch.float32)
    assert str(rec[0].message) == str(trec[0].message)
    assert not ac._enabled
    with ac:
        assert JF.linear(jnp.ones((1, 2)), jnp.ones((1, 2))).dtype == jnp.float32
    if not amp_src._has_gpu():
        with pytest.warns(UserWarning, match="CUDA is not available or torch_xla is imported. Disabling autocast."):
            assert not jmod.autocast("cuda")._enabled
    with pytest.raises(TypeError, match="requires a callable"):
        jmod.autocast("cpu")(3)


def test_decorator_threads_and_grad_dtypes():
    model = nn.Linear(4, 2)

    @jmod.autocast("cpu")
    def loss_fn(m, x, y):
        out = m(x)
        assert out.dtype == jnp.bfloat16
        return JF.cross_entropy(out, y)

    x, y = jnp.ones((3, 4)), jnp.array([0, 1, 1])
    loss, grads = jmod.value_and_grad(loss_fn)(model, x, y)
    assert loss.dtype == jnp.float32
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}  # gradients in the parameters' dtype
    assert model(x).dtype == jnp.float32  # outside the decorated call

    # The state is per thread (torch's is thread-local): a region in one thread does not
    # reach code running in another.
    seen = []
    entered, done = threading.Event(), threading.Event()

    def other():
        entered.wait()
        seen.append(JF.linear(x, jnp.ones((2, 4))).dtype)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with jmod.autocast("cpu"):
        entered.set()
        done.wait()
    t.join()
    assert seen == [jnp.float32]

    # One decorated function entered by two threads at once: each resets its own state.
    barrier = threading.Barrier(2)

    @jmod.autocast("cpu")
    def both():
        barrier.wait()
        return JF.linear(x, jnp.ones((2, 4))).dtype

    results = []
    threads = [threading.Thread(target=lambda: results.append(both())) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [jnp.bfloat16, jnp.bfloat16] and not jmod.is_autocast_enabled("cpu")


def test_jit_retraces_per_autocast_state():
    model = nn.Linear(4, 3)

    @jmod.jit
    def f(m, x):
        return m(x)

    x = jnp.ones((2, 4))
    assert f(model, x).dtype == jnp.float32
    with jmod.autocast("cpu"):
        assert f(model, x).dtype == jnp.bfloat16
        assert f(model, x).dtype == jnp.bfloat16
        with jmod.autocast("cpu", enabled=False):
            assert f(model, x).dtype == jnp.float32
    assert f(model, x).dtype == jnp.float32
    with jmod.autocast("cpu"):
        assert f(model, x).dtype == jnp.bfloat16
    # three states (off, bf16, nested-disabled), each traced once
    assert f.trace_count == 3
    model.compile()
    with jmod.autocast("cpu"):
        assert model(x).dtype == jnp.bfloat16
    assert model(x).dtype == jnp.float32


def test_cuda_lists_policies(monkeypatch):
    # torch's CPU-only build cannot run CUDA autocast, so this checks jmod's CUDA table
    # and policies (fp32_set_opt_dtype, promote, banned) with the backend faked.
    monkeypatch.setattr(amp_src, "_backend_device_type", lambda: "cuda")
    monkeypatch.setattr(amp_src, "_has_gpu", lambda: True)
    x = jnp.ones((2, 4))
    with jmod.autocast("cuda"):
        assert jmod.get_autocast_dtype("cuda") == jnp.float16
        h = JF.linear(x, jnp.ones((3, 4)))
        assert h.dtype == jnp.float16
        assert JF.softmax(h, -1).dtype == jnp.float32  # fp32_set_opt_dtype
        assert JF.softmax(h, -1, dtype=jnp.float16).dtype == jnp.float16  # an explicit dtype is kept
        assert JF.log_softmax(h, -1, 3, jnp.float16).dtype == jnp.float16
        assert JF.layer_norm(h, (3,)).dtype == jnp.float32  # fp32 on CUDA, follows the input on CPU
        assert JF.relu(h).dtype == jnp.float16
        assert JF.bilinear(h, x, jnp.ones((2, 3, 4))).dtype == jnp.float32  # promote: widest input
        assert JF.bilinear(h, h, jnp.ones((2, 3, 3), jnp.float16)).dtype == jnp.float16
        assert JF.interpolate(h[None], scale_factor=2).dtype == jnp.float32  # upsample_nearest1d
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            JF.binary_cross_entropy(jax.nn.sigmoid(h), jnp.zeros((2, 3)))
        out, h_n = nn.GRU(4, 3)(jnp.ones((5, 2, 4)))  # _cudnn_rnn: the whole layer in float16
        assert out.dtype == h_n.dtype == jnp.float16
    with jmod.autocast("cpu"):  # a CPU region does not apply to the (faked) CUDA backend
        assert JF.linear(x, jnp.ones((3, 4))).dtype == jnp.float32


# ------------------------------------------------------------------- training vs torch
class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(JF.relu(self.fc1(x)))


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        h = JF.max_pool2d(JF.relu(self.bn(self.conv(x))), 2)
        return self.fc(h.reshape(h.shape[0], -1))


class _TMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(TF.relu(self.fc1(x)))


class _TCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.fc = torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(36, 3)

    def forward(self, x):
        h = TF.max_pool2d(TF.relu(self.bn(self.conv(x))), 2)
        return self.fc(h.reshape(h.shape[0], -1))


@pytest.mark.torch
@pytest.mark.parametrize("kind,compiled,steps", [("mlp", True, 4), ("cnn", True, 4)])
def test_training_under_cpu_autocast_matches_torch(kind, compiled, steps):
    torch.manual_seed(0)
    tm = _TMLP() if kind == "mlp" else _TCNN()
    jm = _MLP() if kind == "mlp" else _CNN()
    jm.load_state_dict(tm.state_dict())
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    jopt = jmod.optim.SGD(jm.parameters(), lr=0.1, momentum=0.9)
    shape, n_cls = ((6, 8), 4) if kind == "mlp" else ((6, 2, 8, 8), 3)
    rng = np.random.default_rng(0)

    def step(m, opt, x, y):
        with jmod.autocast("cpu"):
            loss, grads = jmod.value_and_grad(lambda m: JF.cross_entropy(m(x), y))(m)
        opt.step(grads)
        return loss

    step = jmod.jit(step) if compiled else step
    for _ in range(steps):
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, n_cls, shape[0])
        with torch.autocast("cpu"):
            tloss = TF.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        jloss = step(jm, jopt, jnp.asarray(x), jnp.asarray(y, jnp.int32))
        assert jloss.dtype == jnp.float32
        # bfloat16 keeps 8 significant bits (relative rounding 2**-9 ~ 2e-3); torch (oneDNN)
        # and XLA round the bfloat16 matmul/conv outputs at different points, so single
        # activations differ by an ulp or two of bfloat16 (~1e-2 relative). The loss
        # averages those errors; the parameters move by lr * grad, so their error is
        # lr times the gradients' bfloat16 error.
        np.testing.assert_allclose(float(jloss), float(tloss.detach()), rtol=1e-2, atol=1e-2)
    for k, v in tm.state_dict().items():
        got = np.asarray(jm.state_dict()[k])
        if v.is_floating_point():
            assert got.dtype == np.float32  # parameters and buffers stay float32
        np.testing.assert_allclose(got, v.numpy(), rtol=2e-2, atol=5e-3, err_msg=k)
    if compiled:
        assert step.trace_count == 1


# --------------------------------------------------------------------------- GradScaler
def _run_torch_scaler(xs, ys, poison, **kw):
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sc = torch.amp.GradScaler("cpu", **kw)
    hist = []
    for x, y, p in zip(xs, ys, poison):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = TF.mse_loss(m(torch.tensor(x)), torch.tensor(y))
        sc.scale(loss).backward()
        m.weight.grad += float(p)
        sc.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        sc.step(opt)
        sc.update()
        hist.append((sc.get_scale(), sc._get_growth_tracker(), m.weight.detach().numpy().copy()))
    return m, sc, hist


def _scaler_step(m, opt, sc, x, y, p):
    def loss_fn(m):
        with jmod.autocast("cpu", dtype=jnp.float16):
            loss = JF.mse_loss(m(x), y)
        return sc.scale(loss)

    grads = jmod.grad(loss_fn)(m)
    grads = {**grads, "weight": grads["weight"] + p}  # an inf/NaN gradient on chosen steps
    grads = sc.unscale_(opt, grads)
    grads = _clip(grads, 1.0)
    sc.step(opt, grads)
    sc.update()


def _clip(grads, max_norm):
    # torch.nn.utils.clip_grad_norm_ (norm of all gradients, scale 1 when under max_norm)
    total = jnp.sqrt(sum(jnp.sum(g.astype(jnp.float32) ** 2) for g in grads.values()))
    coef = jnp.minimum(max_norm / (total + 1e-6), 1.0)
    return {k: g * coef for k, g in grads.items()}


@pytest.mark.torch
@pytest.mark.parametrize("compiled", [False, True])
def test_grad_scaler_step_for_step_matches_torch(compiled):
    rng = np.random.default_rng(0)
    n = 10 if compiled else 5  # eager steps cost more; 5 still cover backoff, an inf skip and growth
    xs = rng.standard_normal((10, 5, 4)).astype(np.float32)
    ys = rng.standard_normal((10, 5, 3)).astype(np.float32)
    # init_scale 2**18 overflows the float16 backward (max 65504) for the first steps, as
    # in torch; poisoned steps add inf/NaN to one gradient; growth_interval=2 grows often.
    # (A natural overflow depends on float16 roundings; this data has no gradient within
    # an ulp of the float16 limit, so torch and XLA agree on which steps overflow.)
    poison = [0, 0, 0, np.inf, 0, 0, np.nan, 0, 0, 0]
    kw = dict(init_scale=2.0**18, growth_interval=2)
    xs, ys, poison = xs[:n], ys[:n], poison[:n]
    tm, tsc, thist = _run_torch_scaler(xs, ys, poison, **kw)
    torch.manual_seed(0)
    jm = nn.Linear(4, 3)
    jm.load_state_dict(torch.nn.Linear(4, 3).state_dict())
    opt = jmod.optim.SGD(jm.parameters(), lr=0.1)
    sc = jmod.amp.GradScaler("cpu", **kw)
    step = jmod.jit(_scaler_step) if compiled else _scaler_step
    scales = []
    for i in range(n):
        step(jm, opt, sc, jnp.asarray(xs[i]), jnp.asarray(ys[i]), jnp.float32(poison[i]))
        t_scale, t_tracker, t_w = thist[i]
        scales.append(sc.get_scale())
        assert (sc.get_scale(), sc._get_growth_tracker()) == (t_scale, t_tracker), i
        # float16 forward (11 significant bits, 2**-11 ~ 5e-4 relative) in both
        np.testing.assert_allclose(np.asarray(jm.weight), t_w, atol=2e-4, err_msg=str(i))
    assert len(set(scales)) > 2  # backoffs and growth both happened
    assert sc.state_dict() == tsc.state_dict()
    if compiled:
        assert step.trace_count == 1


def test_grad_scaler_api():
    m = nn.Linear(2, 1)
    opt = jmod.optim.SGD(m.parameters(), lr=0.1)
    sc = jmod.amp.GradScaler("cpu", init_scale=8.0, growth_interval=3)
    with pytest.raises(AssertionError, match="Attempted update but _scale is None"):
        sc.update()
    loss = sc.scale(jnp.float16(2.0))
    assert loss.dtype == jnp.float32 and float(loss) == 16.0  # 0-d: torch promotes with the float32 scale
    out = sc.scale([jnp.ones(2, jnp.float16), (jnp.ones(3),)])
    assert out[0].dtype == jnp.float16 and float(out[1][0][0]) == 8.0
    with pytest.raises(ValueError, match="outputs must be a Tensor"):
        sc.scale(3)
    grads = jmod.grad(lambda m: sc.scale(m(jnp.ones((1, 2))).sum()))(m)
    un = sc.unscale_(opt, grads)
    np.testing.assert_allclose(np.asarray(un["bias"]), np.ones(1))
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        sc.unscale_(opt, grads)
    sc.step(opt, un)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called since the last update"):
        sc.step(opt, un)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) is being called after step"):
        sc.unscale_(opt, grads)
    sc.update()
    with pytest.raises(AssertionError, match="No inf checks were recorded prior to update"):
        sc.update()
    sc.update(4.0)
    assert sc.get_scale() == 4.0
    sc.update(jnp.array([2.0]))
    assert sc.get_scale() == 2.0
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        sc.unscale_(opt, {"weight": jnp.ones((1, 2), jnp.float16)})
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        sc.step(opt, un, closure=lambda: None)
    state = sc.state_dict()
    sc2 = jmod.amp.GradScaler("cpu")
    sc2.load_state_dict(state)
    assert sc2.state_dict() == state
    sc3 = pickle.loads(pickle.dumps(sc2))
    assert sc3.state_dict() == state
    with pytest.raises(RuntimeError, match="saved from a disabled instance"):
        sc2.load_state_dict({})
    off = jmod.amp.GradScaler("cpu", enabled=False)
    assert off.scale(jnp.float32(3.0)) == 3.0 and off.get_scale() == 1.0 and off.state_dict() == {}
    assert off.unscale_(opt, un) is un
    with pytest.raises(AssertionError, match="growth factor must be > 1.0"):
        jmod.amp.GradScaler("cpu", growth_factor=1.0)
    if not amp_src._has_gpu():
        with pytest.warns(UserWarning, match="GradScaler is enabled, but CUDA is not available.  Disabling."):
            assert not jmod.amp.GradScaler().is_enabled()
    assert jmod.amp.autocast is jmod.autocast


def test_grad_scaler_eager_skip_and_update_outside_jit():
    # An eager inf step is skipped on the host, as in torch: optimizer state untouched.
    m = nn.Linear(2, 1)
    opt = jmod.optim.Adam(m.parameters(), lr=0.1)
    sc = jmod.amp.GradScaler("cpu", init_scale=4.0)
    w0 = m.weight
    sc.scale(jnp.float32(1.0))
    sc.step(opt, {"weight": jnp.full((1, 2), jnp.inf), "bias": jnp.ones(1)})
    sc.update()
    assert m.weight is w0 and sc.get_scale() == 2.0

    # update() may also run eagerly after a compiled step: the inf flag is threaded state.
    @jmod.jit
    def step(m, opt, sc, p):
        grads = jmod.grad(lambda m: sc.scale(m(jnp.ones((1, 2))).sum()))(m)
        sc.step(opt, {k: g + p for k, g in grads.items()})

    before = np.asarray(m.weight)
    for p, expect in [(0.0, 2.0), (np.inf, 1.0), (0.0, 1.0)]:
        step(m, opt, sc, jnp.float32(p))
        sc.update()
        assert sc.get_scale() == expect
    assert step.trace_count == 1
    assert not np.allclose(np.asarray(m.weight), before)


@pytest.mark.torch
@pytest.mark.parametrize("need_weights", [False, True])
def test_attention_modules_match_torch_under_cpu_autocast(need_weights):
    # torch's multi_head_attention_forward is Python over listed ops (linear, bmm/baddbmm or
    # scaled_dot_product_attention, softmax): its result is bfloat16, the layer's residual
    # sum promotes back to float32.
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    jm = nn.MultiheadAttention(8, 2, batch_first=True)
    jm.load_state_dict(tm.state_dict())
    tl = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    jl = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    jl.load_state_dict(tl.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    mask = torch.triu(torch.full((5, 5), float("-inf")), 1)
    tx, jx = torch.tensor(x), jnp.asarray(x)
    with torch.autocast("cpu"):
        to, tw = tm(tx, tx, tx, need_weights=need_weights, attn_mask=mask)
        tlo = tl(tx)
    with jmod.autocast("cpu"):
        jo, jw = jm(jx, jx, jx, need_weights=need_weights, attn_mask=jnp.asarray(mask.numpy()))
        jlo = jl(jx)
    for t, j in [(to, jo), (tlo, jlo)] + ([(tw, jw)] if need_weights else []):
        assert str(j.dtype) == str(t.dtype).removeprefix("torch.")
        np.testing.assert_allclose(_np(j), _np(t), rtol=3e-2, atol=3e-2)  # bfloat16 compute, as above


@pytest.mark.torch
def test_grad_scaler_two_optimizers_match_torch():
    # Each optimizer's step is skipped on its own inf/NaN; update() backs off if any had one.
    torch.manual_seed(0)
    ta, tb = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    ja, jb = nn.Linear(2, 1), nn.Linear(2, 1)
    ja.load_state_dict(ta.state_dict())
    jb.load_state_dict(tb.state_dict())
    topts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (ta, tb)]
    jopts = [jmod.optim.SGD(m.parameters(), lr=0.1) for m in (ja, jb)]
    tsc, jsc = torch.amp.GradScaler("cpu", init_scale=4.0), jmod.amp.GradScaler("cpu", init_scale=4.0)
    x = np.ones((3, 2), np.float32)
    tsc.scale(ta(torch.tensor(x)).sum() + tb(torch.tensor(x)).sum()).backward()
    ta.weight.grad[0, 0] = float("inf")
    for o in topts:
        tsc.step(o)
    tsc.update()
    ga = jmod.grad(lambda m: jsc.scale(m(jnp.asarray(x)).sum()))(ja)
    gb = jmod.grad(lambda m: jsc.scale(m(jnp.asarray(x)).sum()))(jb)
    ga = {**ga, "weight": ga["weight"].at[0, 0].set(jnp.inf)}
    jsc.step(jopts[0], ga)
    jsc.step(jopts[1], gb)
    jsc.update()
    assert jsc.get_scale() == tsc.get_scale() == 2.0
    for t, j in [(ta, ja), (tb, jb)]:
        np.testing.assert_allclose(np.asarray(j.weight), t.weight.detach().numpy(), atol=1e-6)
        np.testing.assert_allclose(np.asarray(j.bias), t.bias.detach().numpy(), atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell", "LSTM", "GRU", "RNN"])
def test_recurrent_layers_match_torch_under_cpu_autocast(name):
    # torch: the cells are composite over linear (cast); nn.LSTM runs mkldnn_rnn_layer (cast),
    # nn.RNN's state is bfloat16 from the first step, nn.GRU's stays float32.
    torch.manual_seed(0)
    t, j = getattr(torch.nn, name)(4, 8), getattr(nn, name)(4, 8)
    j.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 4) if "Cell" in name else (3, 2, 4)).astype(np.float32)
    with torch.autocast("cpu"):
        to = torch.utils._pytree.tree_leaves(t(torch.tensor(x)))
    with jmod.autocast("cpu"):
        jo = jax.tree_util.tree_leaves(j(jnp.asarray(x)))
    assert [str(a.dtype) for a in jo] == [str(a.dtype).removeprefix("torch.") for a in to]
    for a, b in zip(to, jo):
        np.testing.assert_allclose(_np(b), _np(a), rtol=3e-2, atol=3e-2)  # bfloat16 compute


def test_functions_with_jitted_cores_alternate_states():
    # lp_pool3d and the attention core are jax.jit functions inside: casts are settled
    # before them, so their cache never serves a trace made under another autocast state.
    x = jnp.ones((1, 1, 4, 4, 4), jnp.bfloat16)
    q, mask = jnp.ones((1, 2, 4, 8)), jnp.zeros((4, 4))
    got = []
    for on in (False, True, False, True):
        with jmod.autocast("cpu", enabled=on):
            got.append((JF.lp_pool3d(x, 2, 2).dtype, JF.scaled_dot_product_attention(q, q, q, mask).dtype))
    f32, bf16 = np.dtype(np.float32), np.dtype(jnp.bfloat16)
    assert got == [(bf16, f32), (f32, bf16), (bf16, f32), (f32, bf16)]
