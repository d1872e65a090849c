"""Parity of the transformer layers (and their LayerNorm/Dropout building blocks) with torch 2.13.

All parity runs use torch's general path (its parameters require grad, as in
``assert_matches_torch``). ``test_encoder_matches_torch_fast_paths`` checks torch's
inference fast paths (``torch.no_grad()``) too, including the one documented
divergence: nested-tensor padding in ``TransformerEncoder``.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from jmod.func import functional_call
from tests.helpers import assert_matches_torch
from tests.parity._allpairs import all_pairs, case_id

pytestmark = pytest.mark.torch

D, NHEAD, FF, S, T, N = 8, 2, 16, 5, 4, 3


class Tanh(nn.Module):
    """A module activation (registered as the submodule ``activation``, as torch does)."""

    def forward(self, x):
        return jnp.tanh(x)


# jmod activation, torch activation
ACTIVATIONS = {
    "default": (None, None),
    "gelu_str": ("gelu", "gelu"),
    "callable": (jax.nn.silu, torch.nn.functional.silu),
    "module": (Tanh(), torch.nn.Tanh()),
}


def _act_kwargs(name):
    j, t = ACTIVATIONS[name]
    if j is None:
        return {}, {}
    return {"activation": j}, {"activation": t}


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _seq(rng, n, batch_first, unbatched):
    if unbatched:
        return _rand(rng, n, D)
    return _rand(rng, N, n, D) if batch_first else _rand(rng, n, N, D)


def _causal(n, m=None):
    return np.triu(np.full((n, m or n), -np.inf, np.float32), 1)


def _padding(rng, n, unbatched, dtype=bool):
    """A key padding mask (True / -inf = padding) that never pads position 0."""
    pad = rng.random(n if unbatched else (N, n)) > 0.6
    pad[..., 0] = False
    return pad if dtype is bool else np.where(pad, -np.inf, 0.0).astype(np.float32)


def _quiet(fn, *args, **kwargs):
    """Build a torch module without its nested-tensor UserWarning (torch only warns; jmod does not)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


# ============================================================ TransformerEncoderLayer
def _with_activations(sweep):
    """Give the cases of a sweep the activation kinds in turn (each kind several times)."""
    return [{**case, "activation": list(ACTIVATIONS)[i % len(ACTIVATIONS)]} for i, case in enumerate(sweep)]


ENCODER_LAYER_SWEEP = _with_activations(
    all_pairs(
        {
            "masks": ["none", "src_bool", "causal_hint", "kpm_bool", "kpm_float_and_mask_3d"],
            "norm_first": [False, True],
            "batch_first": [False, True],
            "unbatched": [False, True],
            "bias": [True, False],
        }
    )
)


def _encoder_masks(kind, rng, unbatched):
    if kind == "src_bool":
        m = rng.random((S, S)) > 0.6
        np.fill_diagonal(m, False)
        return {"src_mask": m}
    if kind == "causal_hint":
        return {"src_mask": _causal(S), "is_causal": True}
    if kind == "kpm_bool":
        return {"src_key_padding_mask": _padding(rng, S, unbatched)}
    if kind == "kpm_float_and_mask_3d":
        heads = NHEAD if unbatched else N * NHEAD
        return {"src_key_padding_mask": _padding(rng, S, unbatched, float), "src_mask": _rand(rng, heads, S, S)}
    return {}


@pytest.mark.parametrize("case", ENCODER_LAYER_SWEEP, ids=[case_id(c) for c in ENCODER_LAYER_SWEEP])
def test_encoder_layer_sweep(case):
    rng = np.random.default_rng(0)
    j_act, t_act = _act_kwargs(case["activation"])
    ctor = dict(norm_first=case["norm_first"], batch_first=case["batch_first"], bias=case["bias"])
    torch.manual_seed(0)
    tm = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, **ctor, **t_act)
    jm = nn.TransformerEncoderLayer(D, NHEAD, FF, **ctor, **j_act)
    src = _seq(rng, S, case["batch_first"], case["unbatched"])
    assert_matches_torch(jm, tm, src, kwargs=_encoder_masks(case["masks"], rng, case["unbatched"]), train=False)


def test_encoder_layer_in_training_mode_without_dropout():
    rng = np.random.default_rng(1)
    tm = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0)
    jm = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.0)
    assert_matches_torch(jm, tm, _rand(rng, S, N, D), kwargs={"src_mask": _causal(S)}, train=True)


# ============================================================ TransformerDecoderLayer
DECODER_LAYER_SWEEP = _with_activations(
    all_pairs(
        {
            "masks": ["none", "tgt_causal_hint", "memory_mask_and_kpm", "tgt_kpm_and_mask", "memory_causal_hint"],
            "norm_first": [False, True],
            "batch_first": [False, True],
            "unbatched": [False, True],
        }
    )
)


def _decoder_masks(kind, rng, unbatched):
    if kind == "tgt_causal_hint":
        return {"tgt_mask": _causal(T), "tgt_is_causal": True}
    if kind == "memory_mask_and_kpm":
        m = rng.random((T, S)) > 0.6
        m[:, 0] = False
        return {"memory_mask": m, "memory_key_padding_mask": _padding(rng, S, unbatched)}
    if kind == "tgt_kpm_and_mask":
        return {"tgt_mask": _rand(rng, T, T), "tgt_key_padding_mask": _padding(rng, T, unbatched, float)}
    if kind == "memory_causal_hint":
        # A non-square hint: torch applies a top-left causal mask of shape (T, S).
        return {"memory_mask": _causal(T, S), "memory_is_causal": True}
    return {}


@pytest.mark.parametrize("case", DECODER_LAYER_SWEEP, ids=[case_id(c) for c in DECODER_LAYER_SWEEP])
def test_decoder_layer_sweep(case):
    rng = np.random.default_rng(2)
    j_act, t_act = _act_kwargs(case["activation"])
    ctor = dict(norm_first=case["norm_first"], batch_first=case["batch_first"])
    torch.manual_seed(0)
    tm = torch.nn.TransformerDecoderLayer(D, NHEAD, FF, **ctor, **t_act)
    jm = nn.TransformerDecoderLayer(D, NHEAD, FF, **ctor, **j_act)
    tgt = _seq(rng, T, case["batch_first"], case["unbatched"])
    memory = _seq(rng, S, case["batch_first"], case["unbatched"])
    kwargs = _decoder_masks(case["masks"], rng, case["unbatched"])
    assert_matches_torch(jm, tm, tgt, memory, kwargs=kwargs, train=False)


# ============================================================ stacks and the full model
@pytest.mark.parametrize(
    ("batch_first", "norm", "masks"),
    [(True, True, "kpm"), (False, True, "causal_detected"), (False, False, "bool_mask_and_kpm")],
)
def test_encoder_stack(batch_first, norm, masks):
    rng = np.random.default_rng(3)
    t_layer = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=batch_first)
    tm = _quiet(torch.nn.TransformerEncoder, t_layer, 2, norm=torch.nn.LayerNorm(D) if norm else None)
    jm = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=batch_first), 2,
                               norm=nn.LayerNorm(D) if norm else None)
    kwargs = {
        "kpm": {"src_key_padding_mask": _padding(rng, S, False)},
        "causal_detected": {"mask": _causal(S)},  # is_causal=None: detected, as in torch
        "bool_mask_and_kpm": {"mask": np.triu(np.ones((S, S), bool), 1), "src_key_padding_mask": _padding(rng, S, False)},
    }[masks]
    assert_matches_torch(jm, tm, _seq(rng, S, batch_first, False), kwargs=kwargs, train=False)


@pytest.mark.parametrize(("norm", "unbatched"), [(True, False), (False, True)])
def test_decoder_stack(norm, unbatched):
    rng = np.random.default_rng(4)
    tm = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, NHEAD, FF), 2,
                                     norm=torch.nn.LayerNorm(D) if norm else None)
    jm = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, NHEAD, FF), 2, norm=nn.LayerNorm(D) if norm else None)
    kwargs = {"tgt_mask": _causal(T), "memory_key_padding_mask": _padding(rng, S, unbatched)}
    assert_matches_torch(jm, tm, _seq(rng, T, False, unbatched), _seq(rng, S, False, unbatched), kwargs=kwargs,
                         train=False)


@pytest.mark.parametrize(
    ("layers", "ctor"),
    [(2, {}), (1, {"batch_first": True, "norm_first": True, "activation": "gelu", "bias": False})],
    ids=["2x2_layers", "batch_first-norm_first-gelu-no_bias"],
)
def test_transformer(layers, ctor):
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    tm = _quiet(torch.nn.Transformer, D, NHEAD, layers, layers, FF, **ctor)
    jm = nn.Transformer(D, NHEAD, layers, layers, FF, **ctor)
    bf = ctor.get("batch_first", False)
    kwargs = {
        "tgt_mask": nn.Transformer.generate_square_subsequent_mask(T),
        "src_key_padding_mask": _padding(rng, S, False),
        "memory_key_padding_mask": _padding(rng, S, False),
    }
    kwargs = {k: np.asarray(v) for k, v in kwargs.items()}
    assert_matches_torch(jm, tm, _seq(rng, S, bf, False), _seq(rng, T, bf, False), kwargs=kwargs, train=False)


def test_transformer_unbatched_with_all_masks():
    rng = np.random.default_rng(6)
    torch.manual_seed(0)
    tm = _quiet(torch.nn.Transformer, D, NHEAD, 1, 1, FF)
    jm = nn.Transformer(D, NHEAD, 1, 1, FF)
    kwargs = {
        "src_mask": _rand(rng, S, S),
        "tgt_mask": _causal(T),
        "memory_mask": _rand(rng, T, S),
        "src_key_padding_mask": _padding(rng, S, True, float),
        "tgt_key_padding_mask": _padding(rng, T, True, float),
        "memory_key_padding_mask": _padding(rng, S, True, float),
        "tgt_is_causal": True,
    }
    assert_matches_torch(jm, tm, _rand(rng, S, D), _rand(rng, T, D), kwargs=kwargs, train=False)


def test_transformer_custom_encoder_decoder():
    torch.manual_seed(0)
    t_enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, NHEAD, FF), 1, enable_nested_tensor=False)
    t_dec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, NHEAD, FF), 1)
    tm = torch.nn.Transformer(D, NHEAD, custom_encoder=t_enc, custom_decoder=t_dec)
    jm = nn.Transformer(
        D,
        NHEAD,
        custom_encoder=nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF), 1, enable_nested_tensor=False),
        custom_decoder=nn.TransformerDecoder(nn.TransformerDecoderLayer(D, NHEAD, FF), 1),
    )
    assert list(jm.state_dict()) == list(tm.state_dict())
    rng = np.random.default_rng(7)
    assert_matches_torch(jm, tm, _rand(rng, S, N, D), _rand(rng, T, N, D), train=False)


# ============================================================ structure, repr, init
def _pairs():
    return [
        ("encoder_layer", lambda m: m.TransformerEncoderLayer(D, NHEAD, FF, activation="gelu", norm_first=True)),
        ("encoder_layer_module_act", lambda m: m.TransformerEncoderLayer(D, NHEAD, FF, activation=m.Tanh())),
        ("decoder_layer", lambda m: m.TransformerDecoderLayer(D, NHEAD, FF, bias=False, batch_first=True)),
        ("encoder", lambda m: m.TransformerEncoder(m.TransformerEncoderLayer(D, NHEAD, FF), 3, norm=m.LayerNorm(D))),
        ("decoder", lambda m: m.TransformerDecoder(m.TransformerDecoderLayer(D, NHEAD, FF), 2)),
        ("transformer", lambda m: m.Transformer(D, NHEAD, 2, 1, FF, layer_norm_eps=1e-6)),
    ]


class _JmodNamespace:
    def __getattr__(self, name):
        return Tanh if name == "Tanh" else getattr(nn, name)


@pytest.mark.parametrize("builder", [b for _, b in _pairs()], ids=[n for n, _ in _pairs()])
def test_structure_repr_and_state_dict_match_torch(builder):
    torch.manual_seed(0)
    tm = _quiet(builder, torch.nn)
    jm = builder(_JmodNamespace())
    t_sd, j_sd = tm.state_dict(), jm.state_dict()
    assert list(j_sd) == list(t_sd)
    assert {k: tuple(v.shape) for k, v in j_sd.items()} == {k: tuple(v.shape) for k, v in t_sd.items()}
    assert [n for n, _ in jm.named_modules()] == [n for n, _ in tm.named_modules()]
    assert repr(jm) == repr(tm)
    jm.load_state_dict(t_sd, strict=True)
    for name, value in jm.state_dict().items():
        np.testing.assert_array_equal(value, t_sd[name].numpy(), err_msg=name)


def test_layer_attributes_match_torch():
    for act in ("relu", "gelu", None):
        kw = {} if act is None else {"activation": act}
        t, j = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, **kw), nn.TransformerEncoderLayer(D, NHEAD, FF, **kw)
        assert j.activation_relu_or_gelu == t.activation_relu_or_gelu
        assert j.norm_first == t.norm_first and j.norm1.eps == t.norm1.eps
    j = nn.TransformerEncoderLayer(D, NHEAD, FF, activation=jax.nn.silu)
    assert j.activation_relu_or_gelu == 0 and j.activation is jax.nn.silu
    dec = nn.TransformerDecoderLayer(D, NHEAD, FF, dropout=0.2, layer_norm_eps=1e-3)
    assert dec.dropout.p == dec.dropout3.p == dec.self_attn.dropout == 0.2 and dec.norm3.eps == 1e-3
    model = nn.Transformer(D, NHEAD, 1, 1, FF, batch_first=True)
    assert (model.d_model, model.nhead, model.batch_first) == (D, NHEAD, True)
    assert model.encoder.layers[0].self_attn.batch_first and model.decoder.layers[0].multihead_attn.batch_first


@pytest.mark.parametrize(
    "layer_kwargs",
    [{}, {"batch_first": True}, {"batch_first": True, "norm_first": True}, {"batch_first": True, "nhead": 1},
     {"batch_first": True, "activation": "gelu"}, {"batch_first": True, "activation": jax.nn.silu}],
)
@pytest.mark.parametrize("enable_nested_tensor", [True, False])
def test_encoder_use_nested_tensor_attribute_matches_torch(layer_kwargs, enable_nested_tensor):
    kw = dict(layer_kwargs)
    nhead = kw.pop("nhead", NHEAD)
    t_kw = {**kw, "activation": torch.nn.functional.silu} if kw.get("activation") is jax.nn.silu else kw
    t = _quiet(torch.nn.TransformerEncoder, torch.nn.TransformerEncoderLayer(D, nhead, FF, **t_kw), 1,
               enable_nested_tensor=enable_nested_tensor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # jmod keeps torch's attribute but not its warning
        j = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, nhead, FF, **kw), 1,
                                  enable_nested_tensor=enable_nested_tensor)
    assert (j.use_nested_tensor, j.enable_nested_tensor, j.mask_check) == (
        t.use_nested_tensor, t.enable_nested_tensor, t.mask_check)


def test_clones_start_equal_and_are_independent():
    jmod.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF), 2)
    a, b = enc.layers
    assert a is not b and a.self_attn is not b.self_attn
    np.testing.assert_array_equal(a.linear1.weight, b.linear1.weight)
    a.linear1.weight = jnp.zeros_like(a.linear1.weight)
    assert np.any(np.asarray(b.linear1.weight))
    assert len(list(enc.parameters())) == 2 * len(list(a.parameters()))


def test_transformer_reset_parameters_is_xavier_uniform():
    jmod.manual_seed(0)
    model = nn.Transformer(D, NHEAD, 1, 1, FF)
    for name, p in model.named_parameters():
        p = np.asarray(p)
        if p.ndim > 1:
            bound = np.sqrt(6.0 / (p.shape[0] + p.shape[1]))
            assert np.abs(p).max() <= bound, name
        elif "norm" in name and name.endswith("weight"):
            np.testing.assert_array_equal(p, 1.0)
    # every layer was re-drawn separately (not one set of weights cloned)
    assert not np.array_equal(model.encoder.layers[0].linear1.weight, model.decoder.layers[0].linear1.weight)


@pytest.mark.parametrize("dtype", [None, jnp.float16, "bool"])
def test_generate_square_subsequent_mask_matches_torch(dtype):
    t_dtype = {None: None, jnp.float16: torch.float16, "bool": torch.bool}[dtype]
    expected = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=t_dtype).numpy()
    got = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert nn.Transformer.generate_square_subsequent_mask(3, device="cpu").shape == (3, 3)


# ============================================================ errors and warnings
def _same_error(torch_call, jmod_call):
    try:
        torch_call()
    except Exception as err:  # noqa: BLE001
        with pytest.raises(type(err), match=re.escape(str(err))):
            jmod_call()
    else:
        raise AssertionError("torch accepted the call")


def test_errors_match_torch():
    _same_error(lambda: torch.nn.TransformerEncoderLayer(D, NHEAD, activation="tanh"),
                lambda: nn.TransformerEncoderLayer(D, NHEAD, activation="tanh"))
    _same_error(lambda: torch.nn.TransformerDecoderLayer(D, NHEAD, activation="swish"),
                lambda: nn.TransformerDecoderLayer(D, NHEAD, activation="swish"))
    rng = np.random.default_rng(8)
    tm, jm = _quiet(torch.nn.Transformer, D, NHEAD, 1, 1, FF), nn.Transformer(D, NHEAD, 1, 1, FF)
    src, tgt_bad_batch, tgt_bad_dim = _rand(rng, S, N, D), _rand(rng, T, N + 1, D), _rand(rng, T, N, D + 1)
    for tgt in (tgt_bad_batch, tgt_bad_dim):
        _same_error(lambda tgt=tgt: tm(torch.tensor(src), torch.tensor(tgt)), lambda tgt=tgt: jm(src, tgt))
    t_layer, j_layer = torch.nn.TransformerEncoderLayer(D, NHEAD, FF), nn.TransformerEncoderLayer(D, NHEAD, FF)
    _same_error(lambda: t_layer(torch.tensor(src), is_causal=True), lambda: j_layer(src, is_causal=True))


def test_mismatched_mask_types_warn_like_torch():
    rng = np.random.default_rng(9)
    tm, jm = torch.nn.TransformerEncoderLayer(D, NHEAD, FF), nn.TransformerEncoderLayer(D, NHEAD, FF)
    kwargs = {"src_mask": _causal(S), "src_key_padding_mask": _padding(rng, S, False)}
    msg = "Support for mismatched src_key_padding_mask and src_mask is deprecated. Use same type for both instead."
    jm.load_state_dict(tm.state_dict())
    tm.eval(), jm.eval()
    src = _rand(rng, S, N, D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = tm(torch.tensor(src), **{k: torch.tensor(v) for k, v in kwargs.items()}).detach().numpy()
    with pytest.warns(UserWarning, match=re.escape(msg)):
        np.testing.assert_allclose(jm(src, **kwargs), expected, atol=1e-5, rtol=1e-5)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF), 1)
    msg = "Support for mismatched src_key_padding_mask and mask is deprecated. Use same type for both instead."
    with pytest.warns(UserWarning, match=re.escape(msg)):
        enc(_rand(rng, S, N, D), mask=_causal(S), src_key_padding_mask=_padding(rng, S, False))


# ============================================================ torch's fast paths, jit, dropout
def test_encoder_matches_torch_fast_paths():
    """Under torch.no_grad() in eval mode torch runs fused kernels. They agree with jmod,
    except that TransformerEncoder's nested-tensor path returns zeros (before the final
    norm) at padded positions; jmod returns what torch's general path returns there."""
    rng = np.random.default_rng(10)
    src = _rand(rng, N, S, D)
    pad = np.zeros((N, S), bool)
    pad[1, 3:] = True  # left-aligned padding, as torch's nested path requires
    t_layer = torch.nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=True)
    tm = torch.nn.TransformerEncoder(t_layer, 2, norm=torch.nn.LayerNorm(D)).eval()
    with torch.no_grad():
        tm.norm.bias.normal_()
    jm = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF, batch_first=True), 2, norm=nn.LayerNorm(D)).eval()
    jm.load_state_dict(tm.state_dict())

    got = np.asarray(jm(src, src_key_padding_mask=pad))
    general = tm(torch.tensor(src), src_key_padding_mask=torch.tensor(pad)).detach().numpy()
    with torch.no_grad():
        fast = tm(torch.tensor(src), src_key_padding_mask=torch.tensor(pad)).numpy()
        fast_layer = tm.layers[0](torch.tensor(src)).numpy()
    np.testing.assert_allclose(got, general, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got[~pad], fast[~pad], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(fast[pad], np.broadcast_to(tm.norm.bias.detach().numpy(), fast[pad].shape), atol=1e-6)
    assert not np.allclose(got[pad], fast[pad])  # the documented divergence
    np.testing.assert_allclose(jm.layers[0](src), fast_layer, atol=1e-5, rtol=1e-5)


def test_causal_detection_under_jit():
    """Inside jax.jit the mask is traced, so it is not detected as causal; the result is the same."""
    rng = np.random.default_rng(11)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, NHEAD, FF), 2).eval()
    state = dict(enc.named_parameters())
    src = jnp.asarray(_rand(rng, S, N, D))
    mask = jnp.asarray(_causal(S))
    eager = enc(src, mask=mask)
    jitted = jax.jit(lambda p, x, m: functional_call(enc, p, (x,), {"mask": m}))(state, src, mask)
    np.testing.assert_allclose(jitted, eager, atol=1e-6)


def test_dropout_in_training_mode():
    rng = np.random.default_rng(12)
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF, dropout=0.5)
    src = _rand(rng, S, N, D)
    jmod.manual_seed(0)
    a = layer(src)
    b = layer(src)
    jmod.manual_seed(0)
    np.testing.assert_array_equal(a, layer(src))
    assert not np.array_equal(a, b)
    layer.eval()
    np.testing.assert_array_equal(layer(src), layer(src))
    # jmod.jit-style threading: a key passed to functional_call makes dropout traceable
    layer.train()
    state = dict(layer.named_parameters())
    f = jax.jit(lambda key, x: functional_call(layer, state, (x,), key=key))
    assert not np.array_equal(f(jax.random.key(0), src), f(jax.random.key(1), src))


# ============================================================ LayerNorm and Dropout
@pytest.mark.parametrize(
    "ctor",
    [{"normalized_shape": D}, {"normalized_shape": (S, D), "bias": False}, {"normalized_shape": [D], "elementwise_affine": False, "eps": 1e-3}],
    ids=["default", "2d_no_bias", "no_affine"],
)
def test_layer_norm_matches_torch(ctor):
    rng = np.random.default_rng(13)
    tm, jm = torch.nn.LayerNorm(**ctor), nn.LayerNorm(**ctor)
    with torch.no_grad():
        for p in tm.parameters():
            p.normal_()
    assert repr(jm) == repr(tm)
    assert_matches_torch(jm, tm, _rand(rng, N, S, D) * 3 + 1)


def test_layer_norm_shape_error_matches_torch():
    _same_error(lambda: torch.nn.LayerNorm((S, D))(torch.zeros(N, S + 1, D)),
                lambda: nn.LayerNorm((S, D))(jnp.zeros((N, S + 1, D))))


def test_dropout_module():
    for p in (-0.1, 1.5):
        _same_error(lambda p=p: torch.nn.Dropout(p), lambda p=p: nn.Dropout(p))
    assert repr(nn.Dropout()) == repr(torch.nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    x = jnp.ones((64, 64))
    m = nn.Dropout(0.25)
    jmod.manual_seed(0)
    y = np.asarray(m(x))
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    assert abs((y == 0).mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / y.size)
    np.testing.assert_array_equal(m.eval()(x), x)
    assert not np.any(np.asarray(nn.Dropout(1.0)(x)))
    key_before = np.asarray(jmod.get_rng_state())
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)  # p=0 draws nothing, as in torch
    np.testing.assert_array_equal(jmod.get_rng_state(), key_before)


def test_dtype_argument_reaches_every_parameter():
    model = nn.Transformer(D, NHEAD, 1, 1, FF, dtype=torch.float16)
    assert {str(p.dtype) for p in model.parameters()} == {"float16"}
    layer = nn.TransformerEncoderLayer(D, NHEAD, FF, dtype=jnp.float16)
    assert {str(p.dtype) for p in layer.parameters()} == {"float16"}
    assert str(nn.LayerNorm(D, dtype="float16").weight.dtype) == "float16"
