"""fuse_conv_bn_eval / fuse_linear_bn_eval (and the *_weights forms), skip_init and the
deprecated stateless.functional_call, against torch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from jmod.nn.utils import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
    skip_init,
    stateless,
)
from tests.helpers import assert_close, assert_matches_torch

pytestmark = pytest.mark.torch
RNG = np.random.default_rng(3)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _bn_stats(t_bn):
    with torch.no_grad():
        n = t_bn.num_features
        t_bn.running_mean.copy_(torch.tensor(_x(n)))
        t_bn.running_var.copy_(torch.tensor(np.abs(_x(n)) + 0.5))
        if t_bn.affine:
            t_bn.weight.copy_(torch.tensor(_x(n)))
            t_bn.bias.copy_(torch.tensor(_x(n)))


CONV = [
    ("Conv1d", "BatchNorm1d", (2, 4, 3), (2, 2, 7), False, True),
    ("Conv2d", "BatchNorm2d", (2, 3, 3), (1, 2, 5, 5), False, False),
    ("ConvTranspose2d", "BatchNorm2d", (2, 3, 2), (1, 2, 4, 4), True, True),
]


@pytest.mark.parametrize("conv,bn,args,shape,transpose,bias", CONV, ids=[c[0] for c in CONV])
def test_fuse_conv_bn_eval_matches_torch(conv, bn, args, shape, transpose, bias):
    tc, tb = getattr(torch.nn, conv)(*args, bias=bias).eval(), getattr(torch.nn, bn)(args[1]).eval()
    _bn_stats(tb)
    jc, jb = getattr(nn, conv)(*args, bias=bias).eval(), getattr(nn, bn)(args[1]).eval()
    jc.load_state_dict(tc.state_dict())
    jb.load_state_dict(tb.state_dict())
    jf = fuse_conv_bn_eval(jc, jb, transpose=transpose)
    tf = torch.nn.utils.fuse_conv_bn_eval(tc, tb, transpose=transpose)
    assert type(jf) is type(jc) and jf is not jc and list(jf.state_dict()) == list(tf.state_dict())
    assert jf._parameters["weight"].requires_grad and jf._parameters["bias"].requires_grad == bias
    assert tf.bias.requires_grad == bias
    assert_matches_torch(jf, tf, _x(*shape), atol=1e-5)
    x = jnp.asarray(_x(*shape))
    assert_close(jf(x), jb(jc(x)), atol=1e-5, rtol=1e-5, what="fused vs conv+bn")
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        fuse_conv_bn_eval(jc.train(), jb)


def test_fuse_linear_bn_eval_and_weights_match_torch():
    tl, tb = torch.nn.Linear(3, 4).eval(), torch.nn.BatchNorm1d(4).eval()
    _bn_stats(tb)
    jl, jb = nn.Linear(3, 4).eval(), nn.BatchNorm1d(4).eval()
    jl.load_state_dict(tl.state_dict())
    jb.load_state_dict(tb.state_dict())
    assert_matches_torch(fuse_linear_bn_eval(jl, jb), torch.nn.utils.fuse_linear_bn_eval(tl, tb), _x(2, 3))
    jw, jbias = fuse_linear_bn_weights(jl.weight, None, jb.running_mean, jb.running_var, jb.eps, jb.weight, jb.bias)
    tw, tbias = torch.nn.utils.fuse_linear_bn_weights(
        tl.weight, None, tb.running_mean, tb.running_var, tb.eps, tb.weight, tb.bias
    )
    assert_close(jw.data, tw, atol=1e-6, rtol=1e-6, what="w")
    assert_close(jbias.data, tbias, atol=1e-6, rtol=1e-6, what="b")
    assert (jw.requires_grad, jbias.requires_grad) == (tw.requires_grad, tbias.requires_grad)
    cw, cb = fuse_conv_bn_weights(
        jnp.asarray(_x(4, 2, 3)), None, jb.running_mean, jb.running_var, 1e-5, None, None
    )  # plain arrays: no requires_grad, as torch's plain tensors
    assert cw.shape == (4, 2, 3) and not cw.requires_grad and not cb.requires_grad
    with pytest.raises(AssertionError, match="To fuse, linear.out_features == bn.num_features"):
        fuse_linear_bn_eval(nn.Linear(3, 5).eval(), jb)


def test_skip_init():
    state = jmod.default_generator.get_state() if hasattr(jmod, "default_generator") else None
    from jmod._src import random as R

    key = np.asarray(R.default_generator.get_state())
    m = skip_init(nn.Linear, 10, 3)
    np.testing.assert_array_equal(np.asarray(R.default_generator.get_state()), key)  # nothing drawn
    assert m.weight.shape == (3, 10) and m.bias.shape == (3,)
    assert float(jnp.abs(m.weight).sum()) == 0.0 and float(jnp.abs(m.bias).sum()) == 0.0
    e = skip_init(nn.Embedding, 5, 2, padding_idx=0)
    assert e.weight.shape == (5, 2)
    t = torch.nn.utils.skip_init(torch.nn.Linear, 10, 3)
    assert list(m.state_dict()) == list(t.state_dict())
    del state

    class NoDevice(nn.Module):
        def __init__(self):
            super().__init__()

    for jf, tf in (
        (lambda: skip_init(NoDevice), lambda: torch.nn.utils.skip_init(torch.nn.Identity)),
        (lambda: skip_init(int), lambda: torch.nn.utils.skip_init(int)),
    ):
        with pytest.raises(RuntimeError) as te:
            tf()
        with pytest.raises(RuntimeError) as je:
            jf()
        assert str(je.value).split(";")[0] == str(te.value).split(";")[0]


def test_stateless_functional_call_is_deprecated_alias():
    m = nn.Linear(3, 1)
    params = {"weight": jnp.ones((1, 3)), "bias": jnp.zeros(1)}
    with pytest.warns(FutureWarning, match="torch.func.functional_call"):
        out = stateless.functional_call(m, params, (jnp.ones((2, 3)),))
    assert_close(out, np.full((2, 1), 3.0, np.float32), atol=0, rtol=0, what="out")
    with pytest.warns(FutureWarning):
        t_out = torch.nn.utils.stateless.functional_call(
            torch.nn.Linear(3, 1), {"weight": torch.ones(1, 3), "bias": torch.zeros(1)}, (torch.ones(2, 3),)
        )
    assert_close(out, t_out, atol=0, rtol=0, what="torch")


SIGNATURES = [
    "parametrize.register_parametrization",
    "parametrize.remove_parametrizations",
    "parametrize.is_parametrized",
    "parametrize.type_before_parametrizations",
    "parametrize.transfer_parametrizations_and_params",
    "parametrize.cached",
    "parametrizations.weight_norm",
    "parametrizations.spectral_norm",
    "parametrizations.orthogonal",
    "weight_norm",
    "remove_weight_norm",
    "spectral_norm",
    "remove_spectral_norm",
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "skip_init",
    "stateless.functional_call",
]


@pytest.mark.parametrize("name", SIGNATURES)
def test_signatures_match_torch(name):
    import functools
    import inspect

    import jmod.nn.utils as JU

    def get(root, dotted):
        return functools.reduce(getattr, dotted.split("."), root)

    def params(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert params(get(JU, name)) == params(get(torch.nn.utils, name))
    assert sorted(JU.__all__) == sorted(
        torch.nn.utils.__all__.__class__(n for n in torch.nn.utils.__all__ if not n.startswith("convert_conv"))
    )
