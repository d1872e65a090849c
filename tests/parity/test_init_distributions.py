"""Default initialisation of every layer in ``jmod.nn`` against torch, statistically.

``CTORS`` builds every class in ``jmod.nn.modules.__all__`` (a new class without an
entry fails ``test_table_covers_every_layer``). For each entry, ``K`` jmod and ``K``
torch instances are built with different seeds (jmod's draws and torch's cannot be
equal, only equally distributed), and for every parameter:

* names, shapes and dtypes equal torch's, in the same order;
* elements that are the same in every torch instance (torch's init is deterministic
  there: ones, zeros, PReLU's 0.25, an embedding's padding row) equal torch's exactly
  in every jmod instance;
* parameters that torch initialises identically within one instance (the deep-copied
  layers of ``TransformerEncoder``) are identical in jmod too;
* the random elements, pooled over the instances, have torch's distribution: a
  two-sample Kolmogorov-Smirnov test (scipy), the mean and the standard deviation
  within ``Z`` standard errors, and, for a bounded (uniform) distribution, the values
  inside torch's support.

Buffers (running statistics) must equal torch's exactly.
"""

from __future__ import annotations

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy import stats

import jmod
from jmod import nn
from jmod._src.arrays import long_dtype

pytestmark = pytest.mark.torch

# At least this many random values per parameter and side, from at most MAX_INSTANCES
# instances (parameters are sized so that most reach it).
N_TARGET, MAX_INSTANCES, MIN_INSTANCES = 4096, 40, 3
# Mean and standard deviation: |jmod - torch| <= Z standard errors of the difference.
# KS: p-value >= P_MIN. With ~150 random parameters, a correct init fails one of the
# checks by chance with probability < 150 * (2 * 6e-7 + 1e-5) ~ 2e-3 (and the seeds
# are fixed, so a run is reproducible).
Z, P_MIN = 5.0, 1e-5


def _transformer_encoder(nn):
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64), 2, enable_nested_tensor=False)


def _transformer_decoder(nn):
    return nn.TransformerDecoder(nn.TransformerDecoderLayer(32, 4, 64), 2)


def _lazy(cls_name, *args, input_shape, **kwargs):
    """A lazy layer after its first call (a dry run on zeros): the draws happen then."""

    def build(nn):
        m = getattr(nn, cls_name)(*args, **kwargs)
        zeros = torch.zeros(input_shape) if nn is torch.nn else jnp.zeros(input_shape)
        m(zeros)
        return m

    return build


# class name -> constructors (``nn`` namespace -> module). Sizes are small but give most
# random parameters >= 128 values, so that <= MAX_INSTANCES instances reach N_TARGET.
CTORS = {
    # linear
    "Identity": [lambda nn: nn.Identity()],
    "Linear": [lambda nn: nn.Linear(64, 128), lambda nn: nn.Linear(16, 8, bias=False)],
    "Bilinear": [lambda nn: nn.Bilinear(16, 8, 128)],
    # conv
    "Conv1d": [lambda nn: nn.Conv1d(16, 128, 3)],
    "Conv2d": [lambda nn: nn.Conv2d(8, 128, 3), lambda nn: nn.Conv2d(8, 128, (3, 1), groups=4, bias=False)],
    "Conv3d": [lambda nn: nn.Conv3d(4, 128, 2)],
    "ConvTranspose1d": [lambda nn: nn.ConvTranspose1d(16, 128, 3)],
    "ConvTranspose2d": [lambda nn: nn.ConvTranspose2d(16, 128, 3), lambda nn: nn.ConvTranspose2d(8, 128, 2, groups=2)],
    "ConvTranspose3d": [lambda nn: nn.ConvTranspose3d(8, 128, 2)],
    "Fold": [lambda nn: nn.Fold((4, 4), 2)],
    "LazyLinear": [_lazy("LazyLinear", 128, input_shape=(2, 64))],
    **{
        f"Lazy{c}{d}d": [_lazy(f"Lazy{c}{d}d", 128, 2, input_shape=(1, 8) + (3,) * d)]
        for c in ("Conv", "ConvTranspose")
        for d in (1, 2, 3)
    },
    "Unfold": [lambda nn: nn.Unfold(2)],
    # pooling
    **{
        f"{p}{d}d": [lambda nn, c=f"{p}{d}d": getattr(nn, c)(2)]
        for p in ("MaxPool", "AvgPool", "MaxUnpool")
        for d in (1, 2, 3)
    },
    **{
        f"FractionalMaxPool{d}d": [lambda nn, c=f"FractionalMaxPool{d}d": getattr(nn, c)(2, output_size=2)]
        for d in (2, 3)
    },
    **{f"LPPool{d}d": [lambda nn, c=f"LPPool{d}d": getattr(nn, c)(2, 2)] for d in (1, 2, 3)},
    **{
        f"Adaptive{p}Pool{d}d": [lambda nn, c=f"Adaptive{p}Pool{d}d": getattr(nn, c)(2)]
        for p in ("Max", "Avg")
        for d in (1, 2, 3)
    },
    # upsampling, pixel/channel shuffle
    "Upsample": [lambda nn: nn.Upsample(scale_factor=2)],
    "UpsamplingNearest2d": [lambda nn: nn.UpsamplingNearest2d(scale_factor=2)],
    "UpsamplingBilinear2d": [lambda nn: nn.UpsamplingBilinear2d(scale_factor=2)],
    "PixelShuffle": [lambda nn: nn.PixelShuffle(2)],
    "PixelUnshuffle": [lambda nn: nn.PixelUnshuffle(2)],
    "ChannelShuffle": [lambda nn: nn.ChannelShuffle(2)],
    # padding
    **{
        f"{p}Pad{d}d": [lambda nn, c=f"{p}Pad{d}d": getattr(nn, c)(1)]
        for p in ("Reflection", "Replication", "Zero", "Circular")
        for d in (1, 2, 3)
    },
    **{f"ConstantPad{d}d": [lambda nn, c=f"ConstantPad{d}d": getattr(nn, c)(1, 0.5)] for d in (1, 2, 3)},
    # normalization
    "BatchNorm1d": [
        lambda nn: nn.BatchNorm1d(128),
        lambda nn: nn.BatchNorm1d(8, affine=False, track_running_stats=False),
    ],
    "BatchNorm2d": [lambda nn: nn.BatchNorm2d(128)],
    "BatchNorm3d": [lambda nn: nn.BatchNorm3d(128, momentum=None)],
    "SyncBatchNorm": [lambda nn: nn.SyncBatchNorm(128)],
    "InstanceNorm1d": [lambda nn: nn.InstanceNorm1d(128), lambda nn: nn.InstanceNorm1d(128, affine=True)],
    "InstanceNorm2d": [lambda nn: nn.InstanceNorm2d(128, affine=True, track_running_stats=True)],
    "InstanceNorm3d": [lambda nn: nn.InstanceNorm3d(128, affine=True)],
    "LayerNorm": [lambda nn: nn.LayerNorm(128), lambda nn: nn.LayerNorm((4, 32), bias=False)],
    "GroupNorm": [lambda nn: nn.GroupNorm(4, 128), lambda nn: nn.GroupNorm(2, 8, affine=False)],
    "RMSNorm": [lambda nn: nn.RMSNorm(128), lambda nn: nn.RMSNorm([4, 8], elementwise_affine=False)],
    "LocalResponseNorm": [lambda nn: nn.LocalResponseNorm(2)],
    **{f"LazyBatchNorm{d}d": [_lazy(f"LazyBatchNorm{d}d", input_shape=(2, 128) + (2,) * d)] for d in (1, 2, 3)},
    **{f"LazyInstanceNorm{d}d": [_lazy(f"LazyInstanceNorm{d}d", input_shape=(2, 128) + (3,) * d)] for d in (1, 2, 3)},
    "CrossMapLRN2d": [lambda nn: nn.CrossMapLRN2d(3)],
    # activations
    **{
        a: [lambda nn, c=a: getattr(nn, c)()]
        for a in (
            "CELU",
            "ELU",
            "GELU",
            "GLU",
            "Hardshrink",
            "Hardsigmoid",
            "Hardswish",
            "Hardtanh",
            "LeakyReLU",
            "LogSigmoid",
            "LogSoftmax",
            "Mish",
            "RReLU",
            "ReLU",
            "ReLU6",
            "SELU",
            "SiLU",
            "Sigmoid",
            "Softmax",
            "Softmax2d",
            "Softmin",
            "Softplus",
            "Softshrink",
            "Softsign",
            "Tanh",
            "Tanhshrink",
        )
    },  # fmt: skip
    "Threshold": [lambda nn: nn.Threshold(0.1, 20.0)],
    "PReLU": [lambda nn: nn.PReLU(), lambda nn: nn.PReLU(128, init=0.1)],
    # dropout
    **{
        d: [lambda nn, c=d: getattr(nn, c)(0.3)]
        for d in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")
    },
    # losses
    **{
        loss: [lambda nn, c=loss: getattr(nn, c)()]
        for loss in (
            "BCELoss",
            "BCEWithLogitsLoss",
            "CosineEmbeddingLoss",
            "CrossEntropyLoss",
            "GaussianNLLLoss",
            "HingeEmbeddingLoss",
            "HuberLoss",
            "KLDivLoss",
            "L1Loss",
            "MSELoss",
            "MarginRankingLoss",
            "MultiLabelMarginLoss",
            "MultiLabelSoftMarginLoss",
            "MultiMarginLoss",
            "NLLLoss",
            "NLLLoss2d",
            "PoissonNLLLoss",
            "SmoothL1Loss",
            "SoftMarginLoss",
            "TripletMarginLoss",
            "TripletMarginWithDistanceLoss",
            "CTCLoss",
        )
    },  # fmt: skip
    "AdaptiveLogSoftmaxWithLoss": [lambda nn: nn.AdaptiveLogSoftmaxWithLoss(64, 1000, [100, 500], head_bias=True)],
    "LinearCrossEntropyLoss": [lambda nn: nn.LinearCrossEntropyLoss(64, 128, bias=True)],
    # distances
    "PairwiseDistance": [lambda nn: nn.PairwiseDistance()],
    "CosineSimilarity": [lambda nn: nn.CosineSimilarity()],
    # sparse
    # N(0, 1): 3 x 65536 values resolve the standard deviation to ~1% (5 standard errors)
    "Embedding": [lambda nn: nn.Embedding(1024, 64), lambda nn: nn.Embedding(64, 32, padding_idx=3)],
    "EmbeddingBag": [lambda nn: nn.EmbeddingBag(1024, 64), lambda nn: nn.EmbeddingBag(64, 32, padding_idx=0)],
    # recurrent
    "RNN": [lambda nn: nn.RNN(16, 64), lambda nn: nn.RNN(16, 64, nonlinearity="relu", bias=False)],
    "LSTM": [lambda nn: nn.LSTM(16, 64, num_layers=2, bidirectional=True, proj_size=32)],
    "GRU": [lambda nn: nn.GRU(16, 64, batch_first=True)],
    "RNNBase": [lambda nn: nn.RNNBase("GRU", 16, 64)],
    "RNNCell": [lambda nn: nn.RNNCell(16, 128)],
    "LSTMCell": [lambda nn: nn.LSTMCell(16, 64)],
    "GRUCell": [lambda nn: nn.GRUCell(16, 64)],
    "RNNCellBase": [lambda nn: nn.RNNCellBase(16, 64, True, 2)],
    # attention and transformer
    "MultiheadAttention": [
        lambda nn: nn.MultiheadAttention(32, 4),
        lambda nn: nn.MultiheadAttention(32, 4, kdim=16, vdim=24, add_bias_kv=True),
    ],
    "TransformerEncoderLayer": [lambda nn: nn.TransformerEncoderLayer(32, 4, 128)],
    "TransformerDecoderLayer": [lambda nn: nn.TransformerDecoderLayer(32, 4, 128, norm_first=True)],
    "TransformerEncoder": [_transformer_encoder],
    "TransformerDecoder": [_transformer_decoder],
    "Transformer": [lambda nn: nn.Transformer(32, 4, 1, 1, 128)],
    # containers and utilities
    "Module": [lambda nn: nn.Module()],
    "Container": [lambda nn: nn.Container()],
    "Sequential": [lambda nn: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.BatchNorm1d(128))],
    "ModuleList": [lambda nn: nn.ModuleList([nn.Conv1d(16, 128, 3), nn.LayerNorm(128)])],
    "ModuleDict": [lambda nn: nn.ModuleDict({"emb": nn.Embedding(64, 32), "lin": nn.Linear(64, 128)})],
    # A parameter container holds the parameters it is given: no default initialisation.
    "ParameterList": [lambda nn: nn.ParameterList()],
    "ParameterDict": [lambda nn: nn.ParameterDict()],
    "Flatten": [lambda nn: nn.Flatten()],
    "Unflatten": [lambda nn: nn.Unflatten(1, (2, 3))],
}


def _build(ctor, lib, seed):
    if lib == "torch":
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nested-tensor / deprecation notes
            m = ctor(torch.nn)
        return (
            {k: v.detach().numpy().copy() for k, v in m.named_parameters()},
            {k: v.detach().numpy().copy() for k, v in m.named_buffers()},
        )
    jmod.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ctor(nn)
    return (
        {k: np.asarray(v) for k, v in m.named_parameters()},
        {k: np.asarray(v) for k, v in m.named_buffers()},
    )


def _is_bounded(x: np.ndarray) -> bool:
    """Uniform-like: the extremes within 2.5 standard deviations of the mean (a uniform
    sample reaches sqrt(3) = 1.73; a normal one of >= 1000 values reaches ~3.1)."""
    s = x.std()
    return s > 0 and float(np.max(np.abs(x - x.mean()))) < 2.5 * s


def _std_se(x: np.ndarray) -> float:
    """Standard error of the sample standard deviation (delta method: Var(s^2) = (m4 - s^4)/n)."""
    s2 = x.var()
    m4 = np.mean((x - x.mean()) ** 4)
    return math.sqrt(max(m4 - s2**2, 0.0) / len(x)) / (2 * math.sqrt(s2)) if s2 > 0 else 0.0


def compare_samples(j: np.ndarray, t: np.ndarray, what: str) -> dict:
    """Assert that ``j`` (jmod's values) is distributed as ``t`` (torch's). Returns the statistics."""
    j, t = j.astype(np.float64), t.astype(np.float64)
    se_mean = math.sqrt(j.var() / len(j) + t.var() / len(t))
    assert abs(j.mean() - t.mean()) <= Z * se_mean, (
        f"{what}: mean {j.mean():.5g} vs torch {t.mean():.5g} (se {se_mean:.2g})"
    )
    se_std = math.hypot(_std_se(j), _std_se(t))
    assert abs(j.std() - t.std()) <= Z * se_std, f"{what}: std {j.std():.5g} vs torch {t.std():.5g} (se {se_std:.2g})"
    p = stats.ks_2samp(j, t).pvalue
    assert p >= P_MIN, (
        f"{what}: KS test p = {p:.3g} (jmod mean {j.mean():.4g} std {j.std():.4g}, torch {t.mean():.4g} {t.std():.4g})"
    )
    bounded = _is_bounded(t)
    if bounded:
        # torch's sample extremes are within ~range/n of its support's ends; allow 10x that.
        slack = 10 * (t.max() - t.min()) / len(t)
        assert t.min() - slack <= j.min() and j.max() <= t.max() + slack, (
            f"{what}: jmod's values span [{j.min():.5g}, {j.max():.5g}], torch's support [{t.min():.5g}, {t.max():.5g}]"
        )
    return {"n": len(j), "bounded": bounded, "ks_p": p}


def _case_ids():
    return [(name, i) for name in sorted(CTORS) for i in range(len(CTORS[name]))]


# exported next to the layers, like torch's, but not modules
NOT_MODULES = {"LinearCrossEntropyOptions"}


def test_table_covers_every_layer():
    """Every class jmod.nn exports has a constructor entry (add one for a new layer)."""
    missing = sorted(set(nn.modules.__all__) - set(CTORS) - NOT_MODULES)
    assert not missing, f"add constructor arguments for {missing} to CTORS"
    assert not set(CTORS) - set(nn.modules.__all__), sorted(set(CTORS) - set(nn.modules.__all__))


@pytest.mark.parametrize("name,i", _case_ids(), ids=[f"{n}-{i}" for n, i in _case_ids()])
def test_default_init_matches_torch(name, i):
    ctor = CTORS[name][i]
    t_params, t_buffers = _build(ctor, "torch", 10_000)
    j_params, j_buffers = _build(ctor, "jmod", 0)

    # names, shapes, dtypes
    assert [(k, v.shape, v.dtype) for k, v in j_params.items()] == [(k, v.shape, v.dtype) for k, v in t_params.items()]
    # torch's int64 buffers (num_batches_tracked) are jmod's long dtype: int32 unless x64 is on
    t_buffer_dtypes = [np.dtype(long_dtype()) if v.dtype == np.int64 else v.dtype for v in t_buffers.values()]
    assert [(k, v.shape, v.dtype) for k, v in j_buffers.items()] == [
        (k, v.shape, dt) for (k, v), dt in zip(t_buffers.items(), t_buffer_dtypes)
    ]
    for k, v in t_buffers.items():
        np.testing.assert_array_equal(j_buffers[k], v, err_msg=f"{name} buffer {k}")
    if not t_params:
        return

    smallest = min(v.size for v in t_params.values())
    k_inst = min(MAX_INSTANCES, max(MIN_INSTANCES, math.ceil(N_TARGET / smallest)))
    t_all = [t_params] + [_build(ctor, "torch", 10_000 + s)[0] for s in range(1, k_inst)]
    j_all = [j_params] + [_build(ctor, "jmod", s)[0] for s in range(1, k_inst)]

    for pname in t_params:
        t_stack = np.stack([p[pname] for p in t_all])
        j_stack = np.stack([p[pname] for p in j_all])
        fixed = np.all(t_stack == t_stack[0], axis=0)  # torch's init is deterministic here
        for j_inst in j_stack:
            np.testing.assert_array_equal(
                j_inst[fixed], t_stack[0][fixed], err_msg=f"{name}: {pname} (deterministic part)"
            )
        if (~fixed).any():
            compare_samples(j_stack[:, ~fixed].ravel(), t_stack[:, ~fixed].ravel(), f"{name}: {pname}")

    # parameters torch initialises identically within an instance (deep-copied layers)
    names = list(t_params)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            if t_params[a].shape == t_params[b].shape and all(np.array_equal(p[a], p[b]) for p in t_all):
                if (t_params[a] == t_params[a].flat[0]).all():
                    continue  # constants (ones, zeros) are covered above
                for p in j_all:
                    np.testing.assert_array_equal(p[a], p[b], err_msg=f"{name}: {a} and {b} are copies in torch")
