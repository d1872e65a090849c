"""Every layer's ``dtype=`` takes torch's spellings (``torch.float16``), jax's and names,
and gives the parameters and buffers the dtypes torch gives them (issue 16: Linear,
Bilinear, Embedding, EmbeddingBag and PReLU used ``dtype or jnp.float32``)."""

import inspect

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jmod import nn

pytestmark = pytest.mark.torch

# Constructor arguments of every layer whose __init__ takes ``dtype`` (the list is checked
# against jmod.nn below, so a new layer with ``dtype=`` must be added here).
ARGS = {
    "AdaptiveLogSoftmaxWithLoss": (16, 10, [4, 8]),
    "BatchNorm1d": (3,),
    "BatchNorm2d": (3,),
    "BatchNorm3d": (3,),
    "Bilinear": (2, 3, 4),
    "Conv1d": (2, 3, 2),
    "Conv2d": (2, 3, 2),
    "Conv3d": (2, 3, 2),
    "ConvTranspose1d": (2, 3, 2),
    "ConvTranspose2d": (2, 3, 2),
    "ConvTranspose3d": (2, 3, 2),
    "Embedding": (5, 3),
    "EmbeddingBag": (5, 3),
    "GRUCell": (3, 4),
    "GroupNorm": (2, 4),
    "InstanceNorm1d": (3,),
    "InstanceNorm2d": (3,),
    "InstanceNorm3d": (3,),
    "LSTMCell": (3, 4),
    "LayerNorm": (4,),
    "Linear": (2, 2),
    "LinearCrossEntropyLoss": (4, 5),
    "MultiheadAttention": (4, 2),
    "PReLU": (),
    "RMSNorm": (4,),
    "RNNCell": (3, 4),
    "SyncBatchNorm": (3,),
    "Transformer": (),
    "TransformerDecoderLayer": (4, 2),
    "TransformerEncoderLayer": (4, 2),
    "RNN": (3, 4),
    "LSTM": (3, 4),
    "GRU": (3, 4),
}
KWARGS = {
    **{f"InstanceNorm{n}d": {"affine": True, "track_running_stats": True} for n in (1, 2, 3)},
    "Transformer": {"d_model": 4, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                          "dim_feedforward": 8}}
# Lazy layers: (constructor args, a float16 example input for the dry run).
LAZY = {
    "LazyLinear": ((3,), (2, 5)),
    "LazyConv1d": ((3, 2), (1, 2, 6)),
    "LazyConv2d": ((3, 2), (1, 2, 6, 6)),
    "LazyConv3d": ((3, 2), (1, 2, 4, 4, 4)),
    "LazyConvTranspose1d": ((3, 2), (1, 2, 6)),
    "LazyConvTranspose2d": ((3, 2), (1, 2, 6, 6)),
    "LazyConvTranspose3d": ((3, 2), (1, 2, 4, 4, 4)),
    "LazyBatchNorm1d": ((), (2, 3)),
    "LazyBatchNorm2d": ((), (2, 3, 4, 4)),
    "LazyBatchNorm3d": ((), (2, 3, 2, 2, 2)),
    "LazyInstanceNorm1d": ((), (2, 3, 5)),
    "LazyInstanceNorm2d": ((), (2, 3, 4, 4)),
    "LazyInstanceNorm3d": ((), (2, 3, 2, 2, 2)),
}
ABSTRACT = {"RNNBase", "RNNCellBase"}  # bases, built through their subclasses


def _layers_with_dtype():
    out = set()
    for name in dir(nn):
        cls = getattr(nn, name)
        if inspect.isclass(cls) and issubclass(cls, nn.Module) and "dtype" in inspect.signature(cls.__init__).parameters:
            out.add(name)
    return out


def test_every_layer_with_dtype_is_listed():
    assert _layers_with_dtype() - ABSTRACT <= set(ARGS) | set(LAZY)


def _dtypes(state):
    # integer buffers (num_batches_tracked) are int32 without JAX's 64-bit mode, int64 in torch
    # (docs/differences.md); dtype= never touches them
    return {k: str(v.dtype).removeprefix("torch.").replace("int64", "int32") for k, v in state.items()}


@pytest.mark.parametrize("name", sorted(ARGS))
@pytest.mark.parametrize("spelling", ["torch", "jax", "str"])
def test_dtype_argument_matches_torch(name, spelling):
    dtype = {"torch": torch.float16, "jax": jnp.float16, "str": "float16"}[spelling]
    j = getattr(nn, name)(*ARGS[name], **KWARGS.get(name, {}), dtype=dtype)
    t = getattr(torch.nn, name)(*ARGS[name], **KWARGS.get(name, {}), dtype=torch.float16)
    got, want = _dtypes(j.state_dict()), _dtypes(t.state_dict())
    assert got == want
    assert "float16" in got.values()


@pytest.mark.parametrize("name", sorted(LAZY))
def test_lazy_layer_dtype_argument(name):
    args, shape = LAZY[name]
    j = getattr(nn, name)(*args, dtype=torch.float16)
    j(jnp.asarray(np.ones(shape), jnp.float16))
    t = getattr(torch.nn, name)(*args, dtype=torch.float16)
    t(torch.ones(shape, dtype=torch.float16))
    assert _dtypes(j.state_dict()) == _dtypes(t.state_dict())


def test_integer_dtype_is_refused_with_a_message():
    with pytest.raises(TypeError, match="floating point"):
        nn.Linear(2, 2, dtype=torch.int64)
