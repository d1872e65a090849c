"""LinearCrossEntropyLoss / F.linear_cross_entropy / LinearCrossEntropyOptions against
torch: the reference path (class weights, ignore_index, label smoothing, bias,
K-dimensional weights, probability targets, unbatched input) and the batch-chunked path
(``options``), forward and gradients with respect to the input and the linear layer;
option validation, the fallback warning and error messages.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import jmod.nn.functional as F
from jmod import nn
from tests.helpers import assert_matches_torch
from tests.parity._helpers_layers_a import all_reductions, jmod_fn, same_error, torch_fn

pytestmark = pytest.mark.torch

IN, C = 6, 5
WEIGHT = np.array([0.5, 2.0, 1.0, 0.25, 3.0], np.float32)


def _rng(seed):
    return np.random.default_rng(seed)


CONFIGS = {
    "plain": {},
    "bias+weight+ignore": {"bias": True, "weight": WEIGHT, "ignore_index": 1},
    "smoothing": {"label_smoothing": 0.2, "bias": True},
    "kdim": {"out_features": (3, 2), "bias": True, "weight": WEIGHT},
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_module_reference_path(config):
    cfg = CONFIGS[config]
    x = _rng(0).standard_normal((4, IN)).astype(np.float32)
    t = _rng(1).integers(0, C, size=(4, *cfg.get("out_features", ()))).astype(np.int64)
    j, tm = all_reductions("LinearCrossEntropyLoss", in_features=IN, num_classes=C, **cfg)
    assert_matches_torch(j, tm, x, t, check_jit=config == "bias+weight+ignore")


def test_module_probability_targets_and_unbatched():
    x = _rng(2).standard_normal((4, IN)).astype(np.float32)
    p = _rng(3).dirichlet(np.ones(C), size=4).astype(np.float32)
    j, tm = all_reductions("LinearCrossEntropyLoss", in_features=IN, num_classes=C, bias=True, label_smoothing=0.1)
    assert_matches_torch(j, tm, x, p, check_jit=False)
    assert_matches_torch(j, tm, x[0], np.array(3, np.int64), check_jit=False)


def _opts(lib, **kw):
    return lib.LinearCrossEntropyOptions(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"batch_chunk_size": 3, "bias": True, "weight": WEIGHT, "ignore_index": 2},
        {"chunking_method": "aspect_ratio", "acc_policy": "accurate"},
        {"batch_chunk_size": 16},
    ],
    ids=["chunk3-bias-weight-ignore", "aspect_ratio", "one-chunk"],
)
def test_chunked_path(kw):
    kw = dict(kw)
    opt_kw = {k: kw.pop(k) for k in ("batch_chunk_size", "chunking_method", "acc_policy") if k in kw}
    x = _rng(4).standard_normal((7, IN)).astype(np.float32)
    t = _rng(5).integers(0, C, size=(7,)).astype(np.int64)
    t[1] = kw.get("ignore_index", t[1])

    def make(lib):
        weight = kw.get("weight")
        # a fresh class-weight tensor per child: torch de-duplicates shared buffers
        conv = torch.tensor if lib is torch.nn else jnp.array
        rest = {k: v for k, v in kw.items() if k != "weight"}

        def init(self):
            (torch.nn.Module if lib is torch.nn else nn.Module).__init__(self)
            for r in ("none", "mean", "sum"):
                setattr(
                    self,
                    r,
                    lib.LinearCrossEntropyLoss(
                        IN,
                        C,
                        reduction=r,
                        options=_opts(lib, **opt_kw),
                        weight=None if weight is None else conv(weight),
                        **rest,
                    ),
                )

        base = torch.nn.Module if lib is torch.nn else nn.Module
        fwd = lambda self, *xs: tuple(getattr(self, r)(*xs) for r in ("none", "mean", "sum"))  # noqa: E731
        return type("LinearCrossEntropyLoss", (base,), {"__init__": init, "forward": fwd})()

    j, tm = make(nn), make(torch.nn)
    assert repr(j) == repr(tm)
    assert_matches_torch(j, tm, x, t, check_jit=True)


def test_functional_both_paths():
    x = _rng(6).standard_normal((5, IN)).astype(np.float32)
    w = _rng(7).standard_normal((C, IN)).astype(np.float32)
    b = _rng(8).standard_normal((C,)).astype(np.float32)
    t = _rng(9).integers(0, C, size=(5,)).astype(np.int64)
    j = jmod_fn(F.linear_cross_entropy, reduction="sum", options=nn.LinearCrossEntropyOptions(batch_chunk_size=2))
    tm = torch_fn(
        TF.linear_cross_entropy, reduction="sum", options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2)
    )
    assert_matches_torch(j, tm, x, w, t, check_jit=True)
    j = jmod_fn(lambda x, w, t, b: F.linear_cross_entropy(x, w, t, linear_bias=b), name="linear_cross_entropy")
    tm = torch_fn(lambda x, w, t, b: TF.linear_cross_entropy(x, w, t, linear_bias=b), name="linear_cross_entropy")
    assert_matches_torch(j, tm, x, w, t, b, check_jit=False)


def test_options_validation_and_repr():
    for kw in [
        {},
        {"batch_chunk_size": 8, "chunking_method": None, "acc_policy": "compact", "allow_retain_graph": True},
    ]:
        assert repr(nn.LinearCrossEntropyOptions(**kw)) == repr(torch.nn.LinearCrossEntropyOptions(**kw))
    for kw in [
        {"acc_policy": "fast"},
        {"chunking_method": "aspect"},
        {"chunking_method": "aspect_ratio:0"},
        {"batch_chunk_size": 0},
        {"batch_chunk_size": 2.0},
    ]:
        same_error(lambda: nn.LinearCrossEntropyOptions(**kw), lambda: torch.nn.LinearCrossEntropyOptions(**kw))
    with pytest.raises(ValueError, match="acc_dtype must be one of"):
        nn.LinearCrossEntropyOptions(acc_dtype=jnp.int32)
    assert nn.LinearCrossEntropyOptions(acc_dtype=torch.float32).acc_dtype is torch.float32
    with pytest.raises(AttributeError):
        nn.LinearCrossEntropyOptions().acc_policy = "compact"  # frozen, as torch


def test_errors_and_warning_match_torch():
    x = np.ones((4, IN), np.float32)
    w = np.ones((C, IN), np.float32)
    t = np.zeros((4,), np.int64)
    p = np.full((4, C), 0.2, np.float32)

    def call(lib_f, *a, **kw):
        conv = torch.tensor if lib_f is TF.linear_cross_entropy else jnp.asarray
        args = [conv(np.asarray(v)) if isinstance(v, (np.ndarray, np.generic)) else v for v in a]
        kwargs = {k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        return lambda: lib_f(*args, **kwargs)

    for a, kw in [
        ((x[0, 0], w, t), {}),
        ((x[None], w, t), {}),
        ((x, w[0], t), {}),
        ((x, w[:, :3], t), {}),
        ((x, w, t), {"linear_bias": np.ones(3, np.float32)}),
        ((x[0], np.ones((C, 2, IN), np.float32), t[0]), {}),
        ((x, w, p), {"ignore_index": 1}),
        ((x, w, t), {"reduction": "avg"}),
        ((x, w, np.array([0, 1, 9, 0], np.int64)), {}),
    ]:
        same_error(call(F.linear_cross_entropy, *a, **kw), call(TF.linear_cross_entropy, *a, **kw))
    same_error(
        call(
            F.linear_cross_entropy,
            x,
            w,
            t,
            options=nn.LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio"),
        ),
        call(
            TF.linear_cross_entropy,
            x,
            w,
            t,
            options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=3, chunking_method="aspect_ratio"),
        ),
    )
    for kw in [{"weight": np.ones(3, np.float32)}, {"label_smoothing": 1.5}, {"label_smoothing": -0.1}]:
        same_error(
            lambda: nn.LinearCrossEntropyLoss(
                IN, C, **{k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
            ),
            lambda: torch.nn.LinearCrossEntropyLoss(
                IN, C, **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
            ),
        )
    # options with an unsupported configuration fall back to the reference path, warning
    with warnings.catch_warnings(record=True) as wj:
        warnings.simplefilter("always")
        got = F.linear_cross_entropy(
            jnp.asarray(x), jnp.asarray(w), jnp.asarray(t), label_smoothing=0.1, options=nn.LinearCrossEntropyOptions()
        )
    with warnings.catch_warnings(record=True) as wt:
        warnings.simplefilter("always")
        expected = TF.linear_cross_entropy(
            torch.tensor(x),
            torch.tensor(w),
            torch.tensor(t),
            label_smoothing=0.1,
            options=torch.nn.LinearCrossEntropyOptions(),
        )
    np.testing.assert_allclose(np.asarray(got), expected.numpy(), rtol=1e-6)
    prefix = "linear_cross_entropy: ``options`` ignored; chunked path needs"
    assert str(wj[0].message).startswith(prefix) and str(wt[0].message).startswith(prefix)
