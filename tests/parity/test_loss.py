"""Loss layers and functionals against torch: every reduction, class weights, ignored
targets, label smoothing, K-dimensional inputs, probability targets, extreme inputs,
the legacy size_average/reduce arguments, reprs/buffers and error messages.

Gradients are compared with respect to the input *and* floating targets (torch
differentiates both). To keep the suite fast, one check covers the three reductions
(``all_reductions`` returns them as one tuple), sweeps of numeric options run eagerly and
one representative per code path also runs under ``jax.jit`` (``check_jit``).
"""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._helpers_layers_a import all_reductions, assert_same_signature, jmod_fn, same_error, torch_fn

pytestmark = pytest.mark.torch

REDUCTIONS = ["none", "mean", "sum"]
C = 5


def _rng(seed=0):
    return np.random.default_rng(seed)


def _pair(name, **kwargs):
    """The jmod and torch loss modules; class weights given as NumPy become buffers."""
    tk = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    jk = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    j, t = getattr(nn, name)(**jk), getattr(torch.nn, name)(**tk)
    assert repr(j) == repr(t)
    assert sorted(j.state_dict()) == sorted(t.state_dict())
    return j, t


# --------------------------------------------------------------- cross entropy / NLL
CLASS_SHAPES = [(C,), (4, C), (2, C, 3), (2, C, 3, 2), (2, C, 2, 1, 2)]
CE_CONFIGS = {
    "plain": {},
    "weight": {"weight": True},
    "ignore+weight": {"weight": True, "ignore_index": 1},
    "smoothing": {"label_smoothing": 0.2},
    "smoothing+weight+ignore": {"weight": True, "ignore_index": 2, "label_smoothing": 0.3},
}
WEIGHT = np.array([0.5, 2.0, 1.0, 0.25, 3.0], np.float32)


def _class_target(shape, seed, ignore_index=None):
    rng = _rng(seed)
    tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = rng.integers(0, C, size=tshape).astype(np.int64)
    if ignore_index is not None and t.ndim:
        t.reshape(-1)[::3] = ignore_index  # some targets ignored, not all
    return t


# Every config on unbatched, 2-d and 4-d inputs; the most general config also on the
# 3-d input (the path torch takes for every K-dim input other than 4-d).
CE_CASES = [(shape, config) for shape in (CLASS_SHAPES[0], CLASS_SHAPES[1], CLASS_SHAPES[3]) for config in CE_CONFIGS]
CE_CASES += [(CLASS_SHAPES[2], "smoothing+weight+ignore")]


@pytest.mark.parametrize("shape,config", CE_CASES, ids=[f"{'x'.join(map(str, s))}-{c}" for s, c in CE_CASES])
def test_cross_entropy_class_indices(shape, config):
    cfg = dict(CE_CONFIGS[config])
    if cfg.pop("weight", False):
        cfg["weight"] = WEIGHT
    x = _rng(1).standard_normal(shape).astype(np.float32) * 2
    t = _class_target(shape, 2, cfg.get("ignore_index"))
    j, tm = all_reductions("CrossEntropyLoss", **cfg)
    jit = (len(shape) == 2 and config == "smoothing+weight+ignore") or (len(shape) == 4 and config == "ignore+weight")
    assert_matches_torch(j, tm, x, t, check_jit=jit)


@pytest.mark.parametrize("config", ["plain", "weight", "ignore+weight"])
@pytest.mark.parametrize("shape", [CLASS_SHAPES[1], CLASS_SHAPES[2]], ids=lambda s: "x".join(map(str, s)))
def test_nll_loss(shape, config):
    cfg = dict(CE_CONFIGS[config])
    if cfg.pop("weight", False):
        cfg["weight"] = WEIGHT
    x = np.log(_rng(3).dirichlet(np.ones(C), size=int(np.prod(shape)) // C)).astype(np.float32)
    x = np.moveaxis(x.reshape((shape[0], *shape[2:], C) if len(shape) > 1 else (C,)), -1, 1 if len(shape) > 1 else 0)
    t = _class_target(shape, 4, cfg.get("ignore_index"))
    j, tm = all_reductions("NLLLoss", **cfg)
    jit = len(shape) == 3 and config == "ignore+weight"
    assert_matches_torch(j, tm, np.ascontiguousarray(x), t, check_jit=jit)


@pytest.mark.parametrize("config", ["plain", "smoothing+weight"])
@pytest.mark.parametrize(
    "shape", [CLASS_SHAPES[0], CLASS_SHAPES[1], CLASS_SHAPES[3]], ids=lambda s: "x".join(map(str, s))
)
def test_cross_entropy_probability_targets(shape, config):
    kw = {}
    if "weight" in config:
        kw["weight"] = WEIGHT
    if "smoothing" in config:
        kw["label_smoothing"] = 0.15
    x = _rng(5).standard_normal(shape).astype(np.float32)
    p = _rng(6).dirichlet(np.ones(C), size=int(np.prod(shape)) // C).astype(np.float32)
    p = np.moveaxis(p.reshape((shape[0], *shape[2:], C) if len(shape) > 1 else (C,)), -1, 1 if len(shape) > 1 else 0)
    j, tm = all_reductions("CrossEntropyLoss", **kw)
    jit = len(shape) == 2 and config == "smoothing+weight"
    assert_matches_torch(j, tm, x, np.ascontiguousarray(p), check_jit=jit)


@pytest.mark.parametrize(
    "kw", [{"weight": WEIGHT}, {"label_smoothing": 0.5}, {"weight": WEIGHT, "label_smoothing": 0.1}]
)
def test_cross_entropy_all_targets_ignored(kw):
    # torch: NaN for 'mean' (0 / 0), 0 for 'sum', zeros for 'none'; zero gradients.
    x = _rng(7).standard_normal((3, C)).astype(np.float32)
    t = np.full((3,), -100, np.int64)
    j, tm = all_reductions("CrossEntropyLoss", **kw)
    assert_matches_torch(j, tm, x, t, check_jit=False)
    assert math.isnan(float(j.mean(jnp.asarray(x), jnp.asarray(t))))


def test_cross_entropy_zero_weight_targets_and_extreme_logits():
    x = np.array([[1e4, -1e4, 0.0, 0.0, 50.0], [-1e4, 1e4, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    t = np.array([1, 0, 4], np.int64)
    for kw in [{}, {"label_smoothing": 0.1}, {"weight": np.array([1, 1, 1, 1, 0], np.float32)}]:
        j, tm = _pair("CrossEntropyLoss", **kw)
        assert_matches_torch(j, tm, x, t, check_jit=False)


def test_cross_entropy_empty_batch_mean_is_nan():
    for target in [np.zeros((0,), np.int64), np.zeros((0, C), np.float32)]:
        for kw in [{}, {"label_smoothing": 0.1}]:
            if target.ndim == 2 and kw:
                continue
            got = F.cross_entropy(jnp.zeros((0, C)), jnp.asarray(target), **kw)
            exp = TF.cross_entropy(torch.zeros(0, C), torch.tensor(target), **kw)
            assert math.isnan(float(got)) and math.isnan(float(exp))


def test_cross_entropy_and_nll_errors_match_torch():
    x = np.random.default_rng(8).standard_normal((3, 4)).astype(np.float32)
    jx, tx = jnp.asarray(x), torch.tensor(x)

    def both(jt, tt, **kw):
        same_error(
            lambda: F.cross_entropy(jx if jt is None else jt[0], jt[1], **kw), lambda: TF.cross_entropy(*tt, **kw)
        )

    def case(xin, tin, **kw):
        jxin = jnp.asarray(xin.numpy())
        jtin = jnp.asarray(tin.numpy())
        same_error(lambda: F.cross_entropy(jxin, jtin, **kw), lambda: TF.cross_entropy(xin, tin, **kw))

    case(tx, torch.tensor([0, 1, 5]))  # out of bounds
    case(tx, torch.tensor([0, -1, 1]))
    case(tx, torch.tensor([0.0, 1.0, 2.0]))  # float class targets
    case(tx, torch.zeros(3, 4, dtype=torch.long))  # integer probabilities
    case(tx, torch.zeros(3, 4), ignore_index=1)
    case(tx, torch.tensor([0, 1, 2]), label_smoothing=1.5)
    case(tx, torch.rand(3, 4), label_smoothing=1.5)
    case(tx, torch.tensor([0, 1]))  # batch mismatch
    case(tx, torch.zeros(3, 2, dtype=torch.long))
    case(torch.randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.long))
    case(torch.randn(2, 3, 4), torch.zeros(2, dtype=torch.long))
    case(torch.randn(2, 3, 4, 5), torch.zeros(2, 4, 6, dtype=torch.long))
    case(torch.randn(2, 3, 4, 5), torch.zeros(2, 4, 5, 1, dtype=torch.long))
    case(torch.randn(2, 3, 4, 5, 6), torch.zeros(2, 4, 6, 6, dtype=torch.long))
    case(tx, torch.tensor([0, 1, 2]), weight=torch.ones(3))
    case(tx, torch.rand(3, 4), weight=torch.ones(3))
    case(tx, torch.tensor([0, 1, 2]), reduction="foo")
    case(torch.randn(4), torch.tensor([1, 2]))
    same_error(
        lambda: F.nll_loss(jnp.asarray(1.0), jnp.asarray(0)), lambda: TF.nll_loss(torch.tensor(1.0), torch.tensor(0))
    )
    same_error(lambda: F.nll_loss(jx, jnp.asarray(0)), lambda: TF.nll_loss(tx, torch.tensor(0)))
    same_error(lambda: nn.NLLLoss()(jx, jnp.array([0, 9, 1])), lambda: torch.nn.NLLLoss()(tx, torch.tensor([0, 9, 1])))
    del both
    # a 1-D input with a (1,) target is a batch of one, as in torch
    out = F.cross_entropy(jnp.asarray(x[0]), jnp.array([2]), reduction="none")
    exp = TF.cross_entropy(tx[0], torch.tensor([2]), reduction="none")
    np.testing.assert_allclose(np.asarray(out), exp.numpy(), rtol=1e-6)


def test_cross_entropy_negative_label_smoothing_is_ignored_like_torch():
    x = np.random.default_rng(9).standard_normal((3, 4)).astype(np.float32)
    t = np.array([0, 1, 2], np.int64)
    assert_matches_torch(
        jmod_fn(F.cross_entropy, label_smoothing=-0.5),
        torch_fn(TF.cross_entropy, label_smoothing=-0.5),
        x,
        t,
        check_jit=False,
    )


# ------------------------------------------------------------------------ BCE
BCE_X = np.array([[0.0, 1.0, 0.0, 1.0, 0.5], [0.3, 0.9, 1e-8, 1 - 1e-7, 0.01]], np.float32)
BCE_T = np.array([[0.0, 1.0, 1.0, 0.0, 0.3], [1.0, 0.0, 0.5, 1.0, 0.0]], np.float32)


@pytest.mark.parametrize("weight", [None, (5,), (2, 5), (2, 1)], ids=str)
def test_bce_loss(weight):
    # Inputs of exactly 0 and 1: torch clamps the logs at -100 and its input gradient's
    # denominator at 1e-12 (finite values); the target gradient -logit(x) is ±inf there.
    kw = {} if weight is None else {"weight": _rng(10).uniform(0.5, 2, weight).astype(np.float32)}
    j, t = all_reductions("BCELoss", **kw)
    with np.errstate(invalid="ignore"):  # the helper subtracts inf from inf when measuring errors
        assert_matches_torch(j, t, BCE_X, BCE_T, check_jit=weight == (2, 1))


def test_bce_errors_match_torch():
    same_error(
        lambda: F.binary_cross_entropy(jnp.array([1.5]), jnp.array([1.0])),
        lambda: TF.binary_cross_entropy(torch.tensor([1.5]), torch.tensor([1.0])),
    )
    same_error(
        lambda: F.binary_cross_entropy(jnp.array([0.5]), jnp.array([1.5])),
        lambda: TF.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([1.5])),
    )
    same_error(
        lambda: F.binary_cross_entropy(jnp.array([float("nan")]), jnp.array([1.0])),
        lambda: TF.binary_cross_entropy(torch.tensor([float("nan")]), torch.tensor([1.0])),
    )
    same_error(
        lambda: F.binary_cross_entropy(jnp.ones(3) / 2, jnp.ones((3, 1))),
        lambda: TF.binary_cross_entropy(torch.ones(3) / 2, torch.ones(3, 1)),
    )
    same_error(
        lambda: F.binary_cross_entropy_with_logits(jnp.ones(3), jnp.ones((3, 1))),
        lambda: TF.binary_cross_entropy_with_logits(torch.ones(3), torch.ones(3, 1)),
    )


LOGITS = np.array([[100.0, -100.0, 1e4, -1e4, 0.0], [2.0, -3.0, 20.0, -20.0, 0.5]], np.float32)


@pytest.mark.parametrize("pos_weight,weight", [(None, None), ((5,), None), (None, (5,)), ((2, 5), (2, 1))], ids=str)
def test_bce_with_logits_loss(pos_weight, weight):
    rng = _rng(11)
    kw = {}
    if weight is not None:
        kw["weight"] = rng.uniform(0.5, 2, weight).astype(np.float32)
    if pos_weight is not None:
        kw["pos_weight"] = rng.uniform(0.5, 3, pos_weight).astype(np.float32)
    j, t = all_reductions("BCEWithLogitsLoss", **kw)
    assert_matches_torch(j, t, LOGITS, BCE_T, check_jit=weight is not None and pos_weight is not None)


# ------------------------------------------------------------------ regression
REG_X = np.array([[0.0, 1.0, -2.0, 3.0, 0.5, 10.0], [1.5, -0.25, 2.0, -3.0, 0.0, 0.7]], np.float32)
REG_T = np.array([[0.0, 0.0, -1.0, 1.0, 0.5, -10.0], [0.0, 0.25, 2.5, -1.0, 1.0, 0.7]], np.float32)
# Ties (x == t) check torch's zero subgradient of |x - t|; |x - t| of exactly 0.5, 1 and 2
# sit on the smooth-L1/Huber switch points.


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("MSELoss", {}),
        ("L1Loss", {}),
        ("SmoothL1Loss", {}),
        ("SmoothL1Loss", {"beta": 0.5}),
        ("SmoothL1Loss", {"beta": 2.0}),
        ("SmoothL1Loss", {"beta": 0.0}),
        ("HuberLoss", {}),
        ("HuberLoss", {"delta": 0.5}),
        ("HuberLoss", {"delta": 2.0}),
    ],
)
def test_regression_losses(name, kwargs):
    j, t = all_reductions(name, **kwargs)
    assert_matches_torch(j, t, REG_X, REG_T, check_jit=name == "HuberLoss" and not kwargs)


class _FixedTarget:
    """Call a loss with a constant target (torch refuses a target that requires grad)."""

    @staticmethod
    def wrap(j, t, target):
        jt, tt = jnp.asarray(target), torch.tensor(target)
        jm = type(f"{type(j).__name__}", (nn.Module,), {"forward": lambda self, x: j(x, jt)})()
        tm = type(f"{type(t).__name__}", (torch.nn.Module,), {"forward": lambda self, x: t(x, tt)})()
        return jm, tm


def test_soft_margin_loss():
    j, t = all_reductions("SoftMarginLoss")
    y = np.array([[1, -1, 1, -1, 1, 1], [-1, -1, 1, 1, -1, 1]], np.float32)
    x = REG_X * np.array([[1, 1, 1, 1, 1, 100]], np.float32)  # exp(-x y) overflows for |x| = 1000
    jm, tm = _FixedTarget.wrap(j, t, y)
    assert_matches_torch(jm, tm, x)


@pytest.mark.parametrize("fn", ["l1_loss", "mse_loss", "huber_loss"])
def test_functional_weighted_regression(fn):
    w = _rng(12).uniform(0.1, 2, REG_X.shape).astype(np.float32)
    jw, tw = jnp.asarray(w), torch.tensor(w)
    jf = jmod_fn(lambda x, y: tuple(getattr(F, fn)(x, y, reduction=r, weight=jw) for r in REDUCTIONS), name=fn)
    tf = torch_fn(lambda x, y: tuple(getattr(TF, fn)(x, y, reduction=r, weight=tw) for r in REDUCTIONS), name=fn)
    assert_matches_torch(jf, tf, REG_X, REG_T, check_jit=False)


def test_regression_broadcasting_warns_and_errors():
    x, t = np.ones((3, 1), np.float32), np.arange(4, dtype=np.float32)
    for fn in ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = getattr(TF, fn)(torch.tensor(x), torch.tensor(t), reduction="none")
        with pytest.warns(UserWarning, match=r"Using a target size \(torch.Size\(\[4\]\)\) that is different"):
            got = getattr(F, fn)(jnp.asarray(x), jnp.asarray(t), reduction="none")
        np.testing.assert_allclose(np.asarray(got), exp.numpy(), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_error(lambda: F.mse_loss(jnp.ones(3), jnp.ones(4)), lambda: TF.mse_loss(torch.ones(3), torch.ones(4)))
    same_error(
        lambda: F.l1_loss(jnp.ones(3), jnp.ones(3), weight=jnp.ones(2)),
        lambda: TF.l1_loss(torch.ones(3), torch.ones(3), weight=torch.ones(2)),
    )
    same_error(
        lambda: F.mse_loss(jnp.ones(3), jnp.ones(3), reduction="foo", weight=jnp.ones(3)),
        lambda: TF.mse_loss(torch.ones(3), torch.ones(3), reduction="foo", weight=torch.ones(3)),
    )
    same_error(
        lambda: F.smooth_l1_loss(jnp.ones(3), jnp.ones(3), beta=-1.0),
        lambda: TF.smooth_l1_loss(torch.ones(3), torch.ones(3), beta=-1.0),
    )
    for delta in [0.0, -1.0]:
        same_error(
            lambda: F.huber_loss(jnp.ones(3), jnp.ones(3), delta=delta),
            lambda: TF.huber_loss(torch.ones(3), torch.ones(3), delta=delta),
        )
    same_error(lambda: nn.HuberLoss(delta="1"), lambda: torch.nn.HuberLoss(delta="1"))
    same_error(
        lambda: nn.MSELoss(reduction="avg")(jnp.ones(2), jnp.ones(2)),
        lambda: torch.nn.MSELoss(reduction="avg")(torch.ones(2), torch.ones(2)),
    )


# ------------------------------------------------------------------ KL divergence
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", ["other", "mean"])
def test_kl_div_loss(reduction, log_target):
    rng = _rng(13)
    x = np.log(rng.dirichlet(np.ones(4), size=3)).astype(np.float32)
    p = rng.dirichlet(np.ones(4), size=3).astype(np.float32)
    p[0, 1] = 0.0  # xlogy(0, 0) = 0; torch's target gradient there is NaN, as ours
    with np.errstate(divide="ignore"):
        target = np.log(p) if log_target else p
    if reduction == "mean":
        j, t = _pair("KLDivLoss", reduction=reduction, log_target=log_target)
        with pytest.warns(UserWarning, match="reduction: 'mean' divides the total loss by both"):
            assert_matches_torch(j, t, x, target, check_jit=False)
    else:
        j, t = all_reductions("KLDivLoss", reductions=("none", "sum", "batchmean"), log_target=log_target)
        assert_matches_torch(j, t, x, target, check_jit=log_target)


def test_kl_div_batchmean_zero_dim_and_bad_reduction():
    got = F.kl_div(jnp.asarray(-1.0), jnp.asarray(0.5), reduction="batchmean")
    np.testing.assert_allclose(
        float(got), float(TF.kl_div(torch.tensor(-1.0), torch.tensor(0.5), reduction="batchmean")), rtol=1e-6
    )
    same_error(
        lambda: F.kl_div(jnp.ones(2), jnp.ones(2), reduction="foo"),
        lambda: TF.kl_div(torch.ones(2), torch.ones(2), reduction="foo"),
    )


# ------------------------------------------------------------------ the others
@pytest.mark.parametrize("batched,margin", [(True, 0.0), (True, -0.2), (False, 0.1)])
def test_cosine_embedding_loss(batched, margin):
    rng = _rng(14)
    if batched:
        x1 = rng.standard_normal((6, 4)).astype(np.float32)
        x2 = rng.standard_normal((6, 4)).astype(np.float32)
        x2[0] = x1[0]  # cos = 1
        x2[1] = 0.0  # zero vector (EPSILON in the norms)
        y = np.array([1, -1, 1, -1, -1, 1], np.float32)
    else:
        x1, x2 = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
        y = np.array(-1.0, np.float32)
    j, t = all_reductions("CosineEmbeddingLoss", margin=margin)
    assert_matches_torch(j, t, x1, x2, y, check_jit=(margin == 0.0 and batched))


def test_cosine_embedding_loss_errors():
    def case(a, b, y):
        same_error(
            lambda: F.cosine_embedding_loss(jnp.asarray(a.numpy()), jnp.asarray(b.numpy()), jnp.asarray(y.numpy())),
            lambda: TF.cosine_embedding_loss(a, b, y),
        )

    case(torch.randn(3, 4, 5), torch.randn(3, 4, 5), torch.ones(3))
    case(torch.randn(4), torch.randn(4), torch.ones(1))
    case(torch.randn(3, 4), torch.randn(3, 4), torch.ones(3, 1))
    case(torch.randn(3, 4), torch.randn(3, 4), torch.ones(2))
    case(torch.randn(3, 4), torch.randn(3, 5), torch.ones(3))
    case(torch.randn(3, 4), torch.randn(3, 4), torch.tensor(1.0))


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss(margin):
    x1 = np.array([1.0, 0.0, 2.0, -1.0, 0.5], np.float32)
    x2 = np.array([0.0, 1.0, 2.0, 1.0, 0.0], np.float32)
    y = np.array([1.0, 1.0, -1.0, -1.0, 1.0], np.float32)
    j, t = all_reductions("MarginRankingLoss", margin=margin)
    assert_matches_torch(j, t, x1, x2, y, check_jit=False)
    same_error(
        lambda: F.margin_ranking_loss(jnp.ones(3), jnp.ones(3), jnp.ones((3, 1))),
        lambda: TF.margin_ranking_loss(torch.ones(3), torch.ones(3), torch.ones(3, 1)),
    )


@pytest.mark.parametrize("margin", [1.0, 2.0])
def test_hinge_embedding_loss(margin):
    x = np.array([[0.3, -0.5, 2.0, 1.0], [0.0, 1.5, -2.0, 3.0]], np.float32)
    y = np.array([[1.0, -1.0, -1.0, -1.0], [-1.0, 1.0, 1.0, -1.0]], np.float32)
    j, t = all_reductions("HingeEmbeddingLoss", margin=margin)
    assert_matches_torch(j, t, x, y, check_jit=False)


@pytest.mark.parametrize("weight", [False, True])
def test_multilabel_soft_margin_loss(weight):
    x = _rng(15).standard_normal((3, 4)).astype(np.float32) * 3
    y = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]], np.float32)
    kw = {"weight": np.array([1.0, 2.0, 0.5, 1.5], np.float32)} if weight else {}
    j, t = all_reductions("MultiLabelSoftMarginLoss", **kw)
    assert_matches_torch(j, t, x, y, check_jit=False)


@pytest.mark.parametrize("p,margin,weight", [(1, 1.0, False), (2, 0.5, True)])
def test_multi_margin_loss(p, margin, weight):
    x = np.array([[0.1, 0.2, 0.4, 0.8], [0.5, 0.5, -1.0, 2.0], [1.0, 0.0, 0.0, 0.0]], np.float32)
    y = np.array([3, 0, 2], np.int64)
    kw = {"weight": np.array([1.0, 2.0, 0.5, 1.5], np.float32)} if weight else {}
    j, t = all_reductions("MultiMarginLoss", p=p, margin=margin, **kw)
    assert_matches_torch(j, t, x, y, check_jit=p == 1)
    if p == 2:
        assert_matches_torch(j, t, x[0], y[:1], check_jit=False)  # unbatched


def test_multi_margin_and_multilabel_margin_errors():
    same_error(lambda: nn.MultiMarginLoss(p=3), lambda: torch.nn.MultiMarginLoss(p=3))
    same_error(
        lambda: nn.MultiMarginLoss(weight=jnp.ones((2, 2))), lambda: torch.nn.MultiMarginLoss(weight=torch.ones(2, 2))
    )
    x = torch.randn(2, 4)
    jx = jnp.asarray(x.numpy())
    for tgt, kw in [
        (torch.tensor([1, 4]), {}),
        (torch.tensor([1]), {}),
        (torch.tensor([1, 2]), {"weight": torch.ones(3)}),
    ]:
        jkw = {k: jnp.asarray(v.numpy()) for k, v in kw.items()}
        same_error(
            lambda: F.multi_margin_loss(jx, jnp.asarray(tgt.numpy()), **jkw), lambda: TF.multi_margin_loss(x, tgt, **kw)
        )
    same_error(
        lambda: F.multi_margin_loss(jnp.ones((2, 0)), jnp.array([1, 2])),
        lambda: TF.multi_margin_loss(torch.ones(2, 0), torch.tensor([1, 2])),
    )
    for tgt in [torch.tensor([[1, -1, 0, 0]]), torch.tensor([[5, -1, 0, 0], [0, 1, 2, 3]])]:
        same_error(
            lambda: F.multilabel_margin_loss(jx, jnp.asarray(tgt.numpy())), lambda: TF.multilabel_margin_loss(x, tgt)
        )


def test_multilabel_margin_loss():
    x = np.array([[0.1, 0.2, 0.4, 0.8], [0.5, 0.5, -1.0, 2.0], [1.0, 0.0, 0.0, 0.0]], np.float32)
    y = np.array([[3, 0, -1, 1], [1, 2, 3, 0], [-1, 0, 0, 0]], np.int64)
    j, t = all_reductions("MultiLabelMarginLoss")
    assert_matches_torch(j, t, x, y)
    unbatched = j(jnp.asarray(x[0]), jnp.asarray(y[0]))
    expected = t(torch.tensor(x[0]), torch.tensor(y[0]))
    for got, exp in zip(unbatched, expected):
        np.testing.assert_allclose(np.asarray(got), exp.numpy(), rtol=1e-6)


@pytest.mark.parametrize("p,swap,margin", [(2.0, False, 1.0), (1.0, True, 0.5), (3.0, False, 2.0)])
def test_triplet_margin_loss(p, swap, margin):
    rng = _rng(16)
    a, pos, neg = (rng.standard_normal((5, 3)).astype(np.float32) for _ in range(3))
    pos[0] = a[0]  # d(a, p) = ||eps||
    j, t = all_reductions("TripletMarginLoss", p=p, swap=swap, margin=margin)
    assert_matches_torch(j, t, a, pos, neg, check_jit=p == 2 and not swap)
    if p == 1.0:
        assert_matches_torch(j, t, a[1], pos[1], neg[1], check_jit=False)  # unbatched


def test_triplet_margin_loss_errors():
    same_error(lambda: nn.TripletMarginLoss(margin=0.0), lambda: torch.nn.TripletMarginLoss(margin=0.0))
    same_error(
        lambda: F.triplet_margin_loss(jnp.ones((3, 4)), jnp.ones((3, 4)), jnp.ones(3)),
        lambda: TF.triplet_margin_loss(torch.ones(3, 4), torch.ones(3, 4), torch.ones(3)),
    )
    same_error(
        lambda: F.triplet_margin_loss(jnp.ones((3, 4)), jnp.ones((3, 4)), jnp.ones((3, 4)), margin=-1.0),
        lambda: TF.triplet_margin_loss(torch.ones(3, 4), torch.ones(3, 4), torch.ones(3, 4), margin=-1.0),
    )


def _l1_distance(x, y):
    return abs(x - y).sum(-1)  # torch tensors and jax arrays alike


@pytest.mark.parametrize(
    "distance,swap,margin",
    [(None, False, 1.0), (None, True, 0.5), (_l1_distance, True, 2.0)],
    ids=["pairwise", "pairwise-swap", "l1-swap"],
)
def test_triplet_margin_with_distance_loss(distance, swap, margin):
    rng = _rng(17)
    a, pos, neg = (rng.standard_normal((5, 3)).astype(np.float32) for _ in range(3))
    pos[0] = a[0]  # pairwise distance ||eps||
    kw = {"swap": swap, "margin": margin}
    if distance is not None:
        kw["distance_function"] = distance
    j, t = all_reductions("TripletMarginWithDistanceLoss", **kw)
    assert_matches_torch(j, t, a, pos, neg, check_jit=distance is None and not swap)
    if swap:
        assert_matches_torch(j, t, a[1], pos[1], neg[1], check_jit=False)  # unbatched
    jf = jmod_fn(F.triplet_margin_with_distance_loss, **kw)
    tf = torch_fn(TF.triplet_margin_with_distance_loss, **kw)
    assert_matches_torch(jf, tf, a, pos, neg, check_jit=False)


def test_triplet_margin_with_distance_loss_errors_and_repr():
    same_error(
        lambda: nn.TripletMarginWithDistanceLoss(margin=0.0), lambda: torch.nn.TripletMarginWithDistanceLoss(margin=0.0)
    )
    j, t = jnp.ones((3, 4)), torch.ones(3, 4)
    same_error(
        lambda: F.triplet_margin_with_distance_loss(j, j, jnp.ones(3)),
        lambda: TF.triplet_margin_with_distance_loss(t, t, torch.ones(3)),
    )
    same_error(
        lambda: F.triplet_margin_with_distance_loss(j, j, j, margin=-1.0),
        lambda: TF.triplet_margin_with_distance_loss(t, t, t, margin=-1.0),
    )
    same_error(
        lambda: F.triplet_margin_with_distance_loss(j, j, j, reduction="avg"),
        lambda: TF.triplet_margin_with_distance_loss(t, t, t, reduction="avg"),
    )
    assert repr(nn.TripletMarginWithDistanceLoss()) == repr(torch.nn.TripletMarginWithDistanceLoss())
    d = nn.TripletMarginWithDistanceLoss(distance_function=_l1_distance)
    assert repr(d) == "TripletMarginWithDistanceLoss()" and d.distance_function is _l1_distance
    assert list(nn.TripletMarginWithDistanceLoss().state_dict()) == []


@pytest.mark.parametrize(
    "var_shape,full", [("same", False), ("one_short", True), ("broadcast", False), ("float", False)]
)
def test_gaussian_nll_loss(var_shape, full):
    rng = _rng(17)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = rng.standard_normal((3, 4)).astype(np.float32)
    var = {
        "same": rng.uniform(0.1, 2, (3, 4)).astype(np.float32),
        "one_short": rng.uniform(0.1, 2, (3,)).astype(np.float32),
        "broadcast": rng.uniform(0.1, 2, (3, 1)).astype(np.float32),
        "float": 0.7,
    }[var_shape]
    if var_shape == "same":
        var[0, 0] = 0.0  # clamped to eps; the gradient still reaches var, as in torch
    j, t = all_reductions("GaussianNLLLoss", full=full)
    # (a Python float ``var`` would become a 0-d array under the helper's jax.jit check)
    assert_matches_torch(j, t, x, y, var, check_jit=full)


def test_gaussian_nll_loss_errors():
    def case(var, **kw):
        same_error(
            lambda: F.gaussian_nll_loss(
                jnp.ones((3, 4)), jnp.ones((3, 4)), jnp.asarray(var) if not isinstance(var, float) else var, **kw
            ),
            lambda: TF.gaussian_nll_loss(
                torch.ones(3, 4), torch.ones(3, 4), torch.tensor(var) if not isinstance(var, float) else var, **kw
            ),
        )

    case(np.array([1.0, -1.0, 1.0], np.float32))
    case(-1.0)
    case(np.ones(2, np.float32))
    case(np.ones((3, 4), np.float32), reduction="x")


@pytest.mark.parametrize("log_input,full", [(True, False), (False, False), (True, True), (False, True)])
def test_poisson_nll_loss(log_input, full):
    x = np.array([[0.5, 0.1, 2.0, 1.0], [0.3, 1.5, 0.2, 3.0]], np.float32)
    y = np.array([[0.0, 1.0, 2.0, 5.0], [3.0, 0.5, 1.0, 2.0]], np.float32)  # 0 and 1: Stirling masked
    j, t = all_reductions("PoissonNLLLoss", log_input=log_input, full=full)
    assert_matches_torch(j, t, x, y, check_jit=False)
    same_error(
        lambda: F.poisson_nll_loss(jnp.ones(2), jnp.ones(2), reduction="x"),
        lambda: TF.poisson_nll_loss(torch.ones(2), torch.ones(2), reduction="x"),
    )


# ------------------------------------------------------- modules: legacy args, reprs
@pytest.mark.parametrize(
    "size_average,reduce", [(None, False), (False, None), (True, True), (False, True), (True, False)]
)
@pytest.mark.parametrize("name", ["MSELoss", "CrossEntropyLoss", "KLDivLoss", "BCEWithLogitsLoss", "TripletMarginLoss"])
def test_legacy_size_average_reduce(name, size_average, reduce):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = getattr(torch.nn, name)(size_average=size_average, reduce=reduce)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        j = getattr(nn, name)(size_average=size_average, reduce=reduce)
    assert j.reduction == t.reduction


def test_functional_legacy_args_and_elementwise_mean():
    x, y = np.array([1.0, 2.0, 4.0], np.float32), np.array([0.0, 2.0, 1.0], np.float32)
    for kw in [{"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True}]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = TF.l1_loss(torch.tensor(x), torch.tensor(y), **kw).numpy()
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            got = F.l1_loss(jnp.asarray(x), jnp.asarray(y), **kw)
        np.testing.assert_allclose(np.asarray(got), exp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = TF.kl_div(torch.tensor(-x), torch.tensor(y), **kw).numpy()
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            got = F.kl_div(jnp.asarray(-x), jnp.asarray(y), **kw)
        np.testing.assert_allclose(np.asarray(got), exp, rtol=1e-6)
    with pytest.warns(UserWarning, match="reduction='elementwise_mean' is deprecated"):
        got = F.mse_loss(jnp.asarray(x), jnp.asarray(y), reduction="elementwise_mean")
    np.testing.assert_allclose(float(got), TF.mse_loss(torch.tensor(x), torch.tensor(y)).item(), rtol=1e-6)


def test_loss_buffers_reprs_and_state_dict():
    w = np.arange(1, 6, dtype=np.float32)
    for name, kw in [
        ("CrossEntropyLoss", {"weight": w, "ignore_index": 3, "label_smoothing": 0.1}),
        ("NLLLoss", {"weight": w}),
        ("BCELoss", {"weight": w}),
        ("BCEWithLogitsLoss", {"weight": w, "pos_weight": w}),
        ("BCEWithLogitsLoss", {"pos_weight": w}),
        ("MultiLabelSoftMarginLoss", {"weight": w}),
        ("MultiMarginLoss", {"weight": w}),
        ("CrossEntropyLoss", {}),
        ("HuberLoss", {"delta": 2}),
        ("GaussianNLLLoss", {"full": True}),
    ]:
        j, t = _pair(name, **kw)
        for k, v in t.state_dict().items():
            np.testing.assert_array_equal(np.asarray(j.state_dict()[k]), v.numpy())
        assert sorted(b for b, _ in j.named_buffers()) == sorted(b for b, _ in t.named_buffers())
    with pytest.warns(FutureWarning, match="`NLLLoss2d` has been deprecated"):
        j = nn.NLLLoss2d(weight=jnp.asarray(w))
    assert list(j.state_dict()) == ["weight"]
    m = nn.CrossEntropyLoss(weight=jnp.asarray(w))
    m.load_state_dict({"weight": torch.ones(5)})
    np.testing.assert_array_equal(np.asarray(m.weight), np.ones(5))
    assert nn.CrossEntropyLoss().weight is None


LOSS_CLASSES = [
    "L1Loss",
    "NLLLoss",
    "NLLLoss2d",
    "PoissonNLLLoss",
    "GaussianNLLLoss",
    "KLDivLoss",
    "MSELoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "HingeEmbeddingLoss",
    "MultiLabelMarginLoss",
    "SmoothL1Loss",
    "HuberLoss",
    "SoftMarginLoss",
    "CrossEntropyLoss",
    "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss",
    "MarginRankingLoss",
    "MultiMarginLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "CTCLoss",
    "LinearCrossEntropyLoss",
]
LOSS_FUNCTIONS = [
    "nll_loss",
    "cross_entropy",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "kl_div",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "smooth_l1_loss",
    "huber_loss",
    "l1_loss",
    "mse_loss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "multilabel_margin_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "cosine_embedding_loss",
    "multi_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "ctc_loss",
    "linear_cross_entropy",
]


@pytest.mark.parametrize("name", LOSS_CLASSES + LOSS_FUNCTIONS)
def test_signature_matches_torch(name):
    if name[0].isupper():
        assert_same_signature(getattr(nn, name), getattr(torch.nn, name))
    else:
        assert_same_signature(getattr(F, name), getattr(TF, name))
