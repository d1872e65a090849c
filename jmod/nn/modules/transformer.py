"""Transformer layers (``torch/nn/modules/transformer.py``).

``Transformer``, ``TransformerEncoder``, ``TransformerDecoder``,
``TransformerEncoderLayer`` and ``TransformerDecoderLayer`` with torch's constructor
arguments, submodule names (so ``load_state_dict(torch_model.state_dict())`` works),
masks and numbers.

torch has inference fast paths (``eval()`` under ``torch.no_grad()``: a fused encoder
layer kernel, and nested tensors in ``TransformerEncoder`` when a
``src_key_padding_mask`` is given). jmod always computes what torch's general path
computes, which is what torch returns whenever gradients are enabled. The fast paths
agree with it except that ``TransformerEncoder``'s nested-tensor path returns zeros
(before the final ``norm``) at padded positions, whose values are arbitrary anyway;
mask them out (``out * ~src_key_padding_mask[..., None]``) where that matters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src import devices
from jmod._src.arrays import is_tracer
from jmod._src.functional import attention as _attn
from jmod.nn import functional as _F
from jmod.nn.init import xavier_uniform_
from jmod.nn.modules.attention import MultiheadAttention
from jmod.nn.modules.container import ModuleList
from jmod.nn.modules.dropout import Dropout
from jmod.nn.modules.linear import Linear
from jmod.nn.modules.module import Module
from jmod.nn.modules.normalization import LayerNorm

__all__ = [
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
]


# torch's default activation is F.relu; "gelu" is F.gelu (exact, erf-based). jmod's
# public relu/gelu come with the activations family; until they are present these
# private functions compute the same values (jax.nn.gelu's default is the tanh
# approximation, hence approximate=False).
def _relu_impl(input: Any) -> jax.Array:
    return jax.nn.relu(input)


def _gelu_impl(input: Any, approximate: str = "none") -> jax.Array:
    return jax.nn.gelu(input, approximate=approximate == "tanh")


_relu: Callable[..., Any] = getattr(_F, "relu", _relu_impl)
_gelu: Callable[..., Any] = getattr(_F, "gelu", _gelu_impl)


def _activation_kind(activation: Any) -> int:
    """torch's ``activation_relu_or_gelu``: 1 for relu, 2 for gelu, 0 otherwise."""
    from jmod.nn import modules

    relu_cls = getattr(modules, "ReLU", None)
    gelu_cls = getattr(modules, "GELU", None)
    if activation is _relu or activation is _relu_impl or activation is jax.nn.relu:
        return 1
    if relu_cls is not None and isinstance(activation, relu_cls):
        return 1
    if activation is _gelu or activation is _gelu_impl:
        return 2
    if gelu_cls is not None and isinstance(activation, gelu_cls):
        return 2
    return 0


def _generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> jax.Array:
    r"""A square causal mask: ``-inf`` above the diagonal, ``0`` elsewhere."""
    dtype = jnp.float32 if dtype is None else devices.as_dtype(dtype)
    mask = jnp.triu(jnp.full((sz, sz), -jnp.inf, dtype=dtype), k=1)
    if device is not None:
        mask = jax.device_put(mask, devices.resolve_device(device))
    return mask


def _get_seq_len(src: jax.Array, batch_first: bool) -> int | None:
    if src.ndim == 2:
        return src.shape[0]
    return src.shape[1 if batch_first else 0]


def _detect_is_causal_mask(mask: Any, is_causal: bool | None = None, size: int | None = None) -> bool:
    """torch's ``_detect_is_causal_mask``: ``is_causal`` if given, else whether ``mask`` is causal.

    A traced mask (inside ``jax.jit``) has no value to compare, so it counts as not
    causal: the layers then apply the mask itself, which gives the same numbers as the
    causal hint for a mask that is causal.
    """
    make_causal = is_causal is True
    if is_causal is None and mask is not None:
        if is_tracer(mask):
            return False
        # Compared on the host: inside a trace even constant jnp results are traced.
        mask = np.asarray(mask)
        sz = size if size is not None else mask.shape[-2]
        causal_comparison = np.triu(np.full((sz, sz), -np.inf), 1).astype(mask.dtype)
        if mask.shape == causal_comparison.shape:
            make_causal = bool((mask == causal_comparison).all())
        else:
            make_causal = False
    return make_causal


def _get_clones(module: Module, N: int) -> ModuleList:
    return ModuleList([copy.deepcopy(module) for _ in range(N)])


def _get_activation_fn(activation: str) -> Callable[[jax.Array], jax.Array]:
    if activation == "relu":
        return _relu
    elif activation == "gelu":
        return _gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


def _dtype(dtype: Any) -> Any:
    return None if dtype is None else devices.as_dtype(dtype)


class Transformer(Module):
    r"""The encoder-decoder transformer of "Attention Is All You Need".

    An encoder (:class:`TransformerEncoder` of ``num_encoder_layers``
    :class:`TransformerEncoderLayer` plus a final :class:`~jmod.nn.LayerNorm`) and a
    decoder (:class:`TransformerDecoder` likewise); all matrices are re-initialised with
    xavier uniform, as in torch.

    Args:
        d_model: number of expected features in the encoder/decoder inputs. Default: 512.
        nhead: number of heads in the attention layers. Default: 8.
        num_encoder_layers: number of encoder layers. Default: 6.
        num_decoder_layers: number of decoder layers. Default: 6.
        dim_feedforward: dimension of the feedforward network. Default: 2048.
        dropout: dropout probability. Default: 0.1.
        activation: activation of the feedforward network: ``"relu"``, ``"gelu"`` or a
            unary callable (a function or a module). Default: relu.
        custom_encoder: a module used instead of the default encoder.
        custom_decoder: a module used instead of the default decoder.
        layer_norm_eps: eps of the layer normalizations. Default: ``1e-5``.
        batch_first: inputs and outputs are ``(N, S, E)`` rather than ``(S, N, E)``.
            Default: ``False``.
        norm_first: normalize before (``True``) rather than after the attention and
            feedforward blocks. Default: ``False``.
        bias: give the ``Linear`` and ``LayerNorm`` layers an additive bias. Default:
            ``True``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - src: :math:`(S, E)` unbatched, :math:`(S, N, E)`, or :math:`(N, S, E)` with
          ``batch_first``.
        - tgt: :math:`(T, E)`, :math:`(T, N, E)` or :math:`(N, T, E)`.
        - src_mask: :math:`(S, S)` or :math:`(N \cdot \text{nhead}, S, S)`.
        - tgt_mask: :math:`(T, T)` or :math:`(N \cdot \text{nhead}, T, T)`.
        - memory_mask: :math:`(T, S)`.
        - src_key_padding_mask: :math:`(S)` unbatched or :math:`(N, S)`.
        - tgt_key_padding_mask: :math:`(T)` or :math:`(N, T)`.
        - memory_key_padding_mask: :math:`(S)` or :math:`(N, S)`.
        - output: :math:`(T, E)`, :math:`(T, N, E)` or :math:`(N, T, E)`.

        Bool masks mark with ``True`` the positions that may **not** be attended (the
        opposite of ``scaled_dot_product_attention``); float masks are added to the
        attention scores.

    Attributes:
        encoder: the encoder (``encoder.layers.{i}``, ``encoder.norm``).
        decoder: the decoder (``decoder.layers.{i}``, ``decoder.norm``).
        d_model: ``d_model``.
        nhead: ``nhead``.
        batch_first: ``batch_first``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod
        >>> from jmod import nn
        >>> _ = jmod.manual_seed(0)
        >>> model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
        ...                        dim_feedforward=16).eval()
        >>> src, tgt = jnp.ones((10, 3, 8)), jnp.ones((7, 3, 8))
        >>> model(src, tgt, tgt_mask=nn.Transformer.generate_square_subsequent_mask(7)).shape
        (7, 3, 8)
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[jax.Array], jax.Array] = _relu,
        custom_encoder: Any | None = None,
        custom_decoder: Any | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": _dtype(dtype)}
        super().__init__()
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(
                d_model,
                nhead,
                dim_feedforward,
                dropout,
                activation,
                layer_norm_eps,
                batch_first,
                norm_first,
                bias,
                **factory_kwargs,
            )
            encoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory_kwargs)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(
                d_model,
                nhead,
                dim_feedforward,
                dropout,
                activation,
                layer_norm_eps,
                batch_first,
                norm_first,
                bias,
                **factory_kwargs,
            )
            decoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory_kwargs)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, decoder_norm)

        self._reset_parameters()

        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def forward(
        self,
        src: Any,
        tgt: Any,
        src_mask: Any = None,
        tgt_mask: Any = None,
        memory_mask: Any = None,
        src_key_padding_mask: Any = None,
        tgt_key_padding_mask: Any = None,
        memory_key_padding_mask: Any = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        r"""Encode ``src`` and decode ``tgt`` against it.

        Args:
            src: the sequence to the encoder.
            tgt: the sequence to the decoder.
            src_mask: mask of the encoder's self-attention.
            tgt_mask: mask of the decoder's self-attention.
            memory_mask: mask of the decoder's attention over the encoder output.
            src_key_padding_mask: padding of ``src`` per batch element.
            tgt_key_padding_mask: padding of ``tgt`` per batch element.
            memory_key_padding_mask: padding of the memory per batch element.
            src_is_causal: hint that ``src_mask`` is causal (``None``: detect it).
            tgt_is_causal: hint that ``tgt_mask`` is causal (``None``: detect it).
            memory_is_causal: hint that ``memory_mask`` is causal.

        Returns:
            The decoder output, shaped like ``tgt``.
        """
        src, tgt = _attn._as_array(src), _attn._as_array(tgt)
        is_batched = src.ndim == 3
        if not self.batch_first and src.shape[1] != tgt.shape[1] and is_batched:
            raise RuntimeError("the batch number of src and tgt must be equal")
        elif self.batch_first and src.shape[0] != tgt.shape[0] and is_batched:
            raise RuntimeError("the batch number of src and tgt must be equal")

        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")

        memory = self.encoder(
            src,
            mask=src_mask,
            src_key_padding_mask=src_key_padding_mask,
            is_causal=src_is_causal,
        )
        output = self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )
        return output

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> jax.Array:
        r"""Generate a square causal mask for the sequence.

        The masked positions (above the diagonal) are ``-inf``, the others ``0.0``.

        Examples:
            >>> from jmod import nn
            >>> nn.Transformer.generate_square_subsequent_mask(3)
            Array([[  0., -inf, -inf],
                   [  0.,   0., -inf],
                   [  0.,   0.,   0.]], dtype=float32)
        """
        return _generate_square_subsequent_mask(sz, dtype=dtype, device=device)

    def _reset_parameters(self) -> None:
        r"""Initialize every parameter with more than one dimension with xavier uniform."""
        for p in self.parameters():
            if p.ndim > 1:
                xavier_uniform_(p)


class TransformerEncoder(Module):
    r"""A stack of ``num_layers`` encoder layers, optionally followed by ``norm``.

    Each layer is a deep copy of ``encoder_layer``, so all start with the same
    parameters (as in torch); re-initialise them if that matters.

    Args:
        encoder_layer: a :class:`TransformerEncoderLayer` (or compatible module).
        num_layers: number of layers.
        norm: a module applied to the output of the last layer (e.g.
            :class:`~jmod.nn.LayerNorm`), or ``None``.
        enable_nested_tensor: kept for torch compatibility; torch uses it to pick a
            nested-tensor inference path, which jmod does not have (see the module
            docstring). ``use_nested_tensor`` holds what torch would decide, without
            torch's warning.
        mask_check: kept for torch compatibility (a check of that same path).

    Shape:
        See :class:`Transformer` (``src``, ``src_mask``, ``src_key_padding_mask``).

    Attributes:
        layers: ``ModuleList`` of the ``num_layers`` copies.
        norm: the final normalization or ``None``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> encoder_layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
        >>> encoder = nn.TransformerEncoder(encoder_layer, num_layers=3, norm=nn.LayerNorm(8))
        >>> encoder(jnp.ones((10, 4, 8))).shape
        (10, 4, 8)
        >>> len(encoder.layers)
        3
    """

    __constants__ = ["norm"]

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = _get_clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

        # What torch decides for its nested-tensor fast path (it also warns when
        # enable_nested_tensor cannot be honoured); jmod keeps only the attribute.
        why_not = ""
        if not isinstance(encoder_layer, TransformerEncoderLayer):
            why_not = "encoder_layer was not TransformerEncoderLayer"
        elif encoder_layer.norm_first:
            why_not = "encoder_layer.norm_first was True"
        elif not encoder_layer.self_attn.batch_first:
            why_not = "encoder_layer.self_attn.batch_first was not True"
        elif not encoder_layer.self_attn._qkv_same_embed_dim:
            why_not = "encoder_layer.self_attn._qkv_same_embed_dim was not True"
        elif encoder_layer.self_attn.in_proj_bias is None:
            why_not = "encoder_layer.self_attn was passed bias=False"
        elif not encoder_layer.activation_relu_or_gelu:
            why_not = "encoder_layer.activation_relu_or_gelu was not True"
        elif encoder_layer.norm1.eps != encoder_layer.norm2.eps:
            why_not = "encoder_layer.norm1.eps was not equal to encoder_layer.norm2.eps"
        elif encoder_layer.self_attn.num_heads % 2 == 1:
            why_not = "encoder_layer.self_attn.num_heads is odd"
        if enable_nested_tensor and why_not:
            self.use_nested_tensor = False

    def forward(
        self,
        src: Any,
        mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool | None = None,
    ) -> jax.Array:
        r"""Pass the input through the encoder layers in turn, then ``norm``.

        Args:
            src: the sequence to the encoder.
            mask: the mask for the src sequence.
            src_key_padding_mask: the mask for the src keys per batch.
            is_causal: hint that ``mask`` is causal; ``None`` detects it.

        Returns:
            Shaped like ``src``.
        """
        src = _attn._as_array(src)
        src_key_padding_mask = _attn._canonical_mask(
            mask=src_key_padding_mask,
            mask_name="src_key_padding_mask",
            other_type=_attn._none_or_dtype(mask),
            other_name="mask",
            target_type=src.dtype,
        )
        mask = _attn._canonical_mask(
            mask=mask, mask_name="mask", other_type=None, other_name="", target_type=src.dtype, check_other=False
        )

        output = src
        batch_first = self.layers[0].self_attn.batch_first
        seq_len = _get_seq_len(src, batch_first)
        is_causal = _detect_is_causal_mask(mask, is_causal, seq_len)

        for mod in self.layers:
            output = mod(output, src_mask=mask, is_causal=is_causal, src_key_padding_mask=src_key_padding_mask)

        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(Module):
    r"""A stack of ``num_layers`` decoder layers, optionally followed by ``norm``.

    Each layer is a deep copy of ``decoder_layer`` (same starting parameters, as in
    torch).

    Args:
        decoder_layer: a :class:`TransformerDecoderLayer` (or compatible module).
        num_layers: number of layers.
        norm: a module applied to the output of the last layer, or ``None``.

    Shape:
        See :class:`Transformer` (``tgt``, ``memory`` and their masks).

    Attributes:
        layers: ``ModuleList`` of the ``num_layers`` copies.
        norm: the final normalization or ``None``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> decoder_layer = nn.TransformerDecoderLayer(d_model=8, nhead=2, dim_feedforward=16)
        >>> decoder = nn.TransformerDecoder(decoder_layer, num_layers=2)
        >>> memory, tgt = jnp.ones((10, 4, 8)), jnp.ones((6, 4, 8))
        >>> decoder(tgt, memory).shape
        (6, 4, 8)
    """

    __constants__ = ["norm"]

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _get_clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt: Any,
        memory: Any,
        tgt_mask: Any = None,
        memory_mask: Any = None,
        tgt_key_padding_mask: Any = None,
        memory_key_padding_mask: Any = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        r"""Pass the inputs (and masks) through the decoder layers in turn, then ``norm``.

        Args:
            tgt: the sequence to the decoder.
            memory: the sequence from the last layer of the encoder.
            tgt_mask: the mask for the tgt sequence.
            memory_mask: the mask for the memory sequence.
            tgt_key_padding_mask: the mask for the tgt keys per batch.
            memory_key_padding_mask: the mask for the memory keys per batch.
            tgt_is_causal: hint that ``tgt_mask`` is causal; ``None`` detects it.
            memory_is_causal: hint that ``memory_mask`` is causal.

        Returns:
            Shaped like ``tgt``.
        """
        output = _attn._as_array(tgt)
        seq_len = _get_seq_len(output, self.layers[0].self_attn.batch_first)
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, seq_len)

        for mod in self.layers:
            output = mod(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=tgt_is_causal,
                memory_is_causal=memory_is_causal,
            )

        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerEncoderLayer(Module):
    r"""Self-attention followed by a feedforward network, each with a residual and a LayerNorm.

    With ``norm_first=False`` (default): ``x = norm1(x + sa(x)); x = norm2(x + ff(x))``;
    with ``norm_first=True``: ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``, where
    ``ff(x) = dropout2(linear2(dropout(activation(linear1(x)))))`` and ``sa`` is
    ``self_attn`` followed by ``dropout1``.

    Args:
        d_model: number of expected features in the input.
        nhead: number of attention heads.
        dim_feedforward: dimension of the feedforward network. Default: 2048.
        dropout: dropout probability. Default: 0.1.
        activation: ``"relu"``, ``"gelu"`` (exact) or a unary callable (a function or
            a module; a module is registered as the submodule ``activation``).
            Default: relu.
        layer_norm_eps: eps of the layer normalizations. Default: ``1e-5``.
        batch_first: inputs and outputs are ``(N, S, E)``. Default: ``False``.
        norm_first: normalize before the attention and feedforward blocks. Default:
            ``False``.
        bias: give the ``Linear`` and ``LayerNorm`` layers (and the attention
            projections) an additive bias. Default: ``True``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - src: :math:`(S, E)`, :math:`(S, N, E)` or :math:`(N, S, E)` (``batch_first``).
        - src_mask: :math:`(S, S)` or :math:`(N \cdot \text{nhead}, S, S)`.
        - src_key_padding_mask: :math:`(S)` or :math:`(N, S)`.
        - output: shaped like ``src``.

    Attributes:
        self_attn: ``MultiheadAttention(d_model, nhead, dropout, bias, batch_first)``.
        linear1: ``Linear(d_model, dim_feedforward)``.
        dropout: ``Dropout(dropout)`` inside the feedforward network.
        linear2: ``Linear(dim_feedforward, d_model)``.
        norm1: ``LayerNorm(d_model)`` around the attention block.
        norm2: ``LayerNorm(d_model)`` around the feedforward block.
        dropout1: ``Dropout(dropout)`` after attention.
        dropout2: ``Dropout(dropout)`` after the feedforward network.
        activation: the activation function (or module).
        activation_relu_or_gelu: 1 for relu, 2 for gelu, 0 otherwise (as torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
        >>> src = jnp.ones((4, 10, 8))
        >>> layer(src).shape
        (4, 10, 8)
        >>> layer.eval()(src, src_mask=nn.Transformer.generate_square_subsequent_mask(10), is_causal=True).shape
        (4, 10, 8)
    """

    __constants__ = ["norm_first"]

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[jax.Array], jax.Array] = _relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": _dtype(dtype)}
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **factory_kwargs)
        # Implementation of Feedforward model
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory_kwargs)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory_kwargs)

        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory_kwargs)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory_kwargs)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

        # Legacy string support for activation function.
        if isinstance(activation, str):
            activation = _get_activation_fn(activation)
        self.activation_relu_or_gelu = _activation_kind(activation)
        self.activation = activation

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if not hasattr(self, "activation"):
            self.activation = _relu

    def forward(
        self,
        src: Any,
        src_mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool = False,
    ) -> jax.Array:
        r"""Pass the input through the encoder layer.

        Args:
            src: the sequence to the encoder layer.
            src_mask: the mask for the src sequence (bool ``True`` = not allowed, or
                float, added).
            src_key_padding_mask: the mask for the src keys per batch.
            is_causal: hint that ``src_mask`` is causal (it still needs ``src_mask``).

        Returns:
            Shaped like ``src``.
        """
        src = _attn._as_array(src)
        src_key_padding_mask = _attn._canonical_mask(
            mask=src_key_padding_mask,
            mask_name="src_key_padding_mask",
            other_type=_attn._none_or_dtype(src_mask),
            other_name="src_mask",
            target_type=src.dtype,
        )
        src_mask = _attn._canonical_mask(
            mask=src_mask, mask_name="src_mask", other_type=None, other_name="", target_type=src.dtype, check_other=False
        )

        # see Fig. 1 of https://arxiv.org/pdf/2002.04745v1.pdf
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal=is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal=is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    # self-attention block
    def _sa_block(self, x: jax.Array, attn_mask: Any, key_padding_mask: Any, is_causal: bool = False) -> jax.Array:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    # feed forward block
    def _ff_block(self, x: jax.Array) -> jax.Array:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(Module):
    r"""Self-attention, attention over the encoder output (memory), then a feedforward network.

    Each block has a residual connection and a LayerNorm (after the block by default,
    before it with ``norm_first=True``), as in torch.

    Args:
        d_model: number of expected features in the input.
        nhead: number of attention heads.
        dim_feedforward: dimension of the feedforward network. Default: 2048.
        dropout: dropout probability. Default: 0.1.
        activation: ``"relu"``, ``"gelu"`` (exact) or a unary callable. Default: relu.
        layer_norm_eps: eps of the layer normalizations. Default: ``1e-5``.
        batch_first: inputs and outputs are ``(N, T, E)``. Default: ``False``.
        norm_first: normalize before each block. Default: ``False``.
        bias: give the ``Linear``, ``LayerNorm`` and attention layers an additive bias.
            Default: ``True``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - tgt: :math:`(T, E)`, :math:`(T, N, E)` or :math:`(N, T, E)` (``batch_first``).
        - memory: :math:`(S, E)`, :math:`(S, N, E)` or :math:`(N, S, E)`.
        - tgt_mask: :math:`(T, T)` or :math:`(N \cdot \text{nhead}, T, T)`.
        - memory_mask: :math:`(T, S)` or :math:`(N \cdot \text{nhead}, T, S)`.
        - tgt_key_padding_mask: :math:`(T)` or :math:`(N, T)`.
        - memory_key_padding_mask: :math:`(S)` or :math:`(N, S)`.
        - output: shaped like ``tgt``.

    Attributes:
        self_attn: ``MultiheadAttention`` over ``tgt``.
        multihead_attn: ``MultiheadAttention`` from ``tgt`` to ``memory``.
        linear1: ``Linear(d_model, dim_feedforward)``.
        dropout: ``Dropout`` inside the feedforward network.
        linear2: ``Linear(dim_feedforward, d_model)``.
        norm1: ``LayerNorm`` around self-attention.
        norm2: ``LayerNorm`` around the memory attention.
        norm3: ``LayerNorm`` around the feedforward network.
        dropout1: ``Dropout`` after self-attention.
        dropout2: ``Dropout`` after the memory attention.
        dropout3: ``Dropout`` after the feedforward network.
        activation: the activation function (or module).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> layer = nn.TransformerDecoderLayer(d_model=8, nhead=2, dim_feedforward=16)
        >>> memory, tgt = jnp.ones((10, 4, 8)), jnp.ones((6, 4, 8))
        >>> layer(tgt, memory).shape
        (6, 4, 8)
    """

    __constants__ = ["norm_first"]

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[jax.Array], jax.Array] = _relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": _dtype(dtype)}
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, **factory_kwargs)
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, **factory_kwargs
        )
        # Implementation of Feedforward model
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory_kwargs)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory_kwargs)

        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory_kwargs)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory_kwargs)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory_kwargs)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

        # Legacy string support for activation function.
        if isinstance(activation, str):
            self.activation = _get_activation_fn(activation)
        else:
            self.activation = activation

    def __setstate__(self, state: dict) -> None:
        if "activation" not in state:
            state["activation"] = _relu
        super().__setstate__(state)

    def forward(
        self,
        tgt: Any,
        memory: Any,
        tgt_mask: Any = None,
        memory_mask: Any = None,
        tgt_key_padding_mask: Any = None,
        memory_key_padding_mask: Any = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> jax.Array:
        r"""Pass the inputs (and masks) through the decoder layer.

        Args:
            tgt: the sequence to the decoder layer.
            memory: the sequence from the last layer of the encoder.
            tgt_mask: the mask for the tgt sequence.
            memory_mask: the mask for the memory sequence.
            tgt_key_padding_mask: the mask for the tgt keys per batch.
            memory_key_padding_mask: the mask for the memory keys per batch.
            tgt_is_causal: hint that ``tgt_mask`` is causal.
            memory_is_causal: hint that ``memory_mask`` is causal.

        Returns:
            Shaped like ``tgt``.
        """
        x = _attn._as_array(tgt)
        memory = _attn._as_array(memory)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    # self-attention block
    def _sa_block(self, x: jax.Array, attn_mask: Any, key_padding_mask: Any, is_causal: bool = False) -> jax.Array:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout1(x)

    # multihead attention block
    def _mha_block(
        self, x: jax.Array, mem: jax.Array, attn_mask: Any, key_padding_mask: Any, is_causal: bool = False
    ) -> jax.Array:
        x = self.multihead_attn(
            x,
            mem,
            mem,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout2(x)

    # feed forward block
    def _ff_block(self, x: jax.Array) -> jax.Array:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)
