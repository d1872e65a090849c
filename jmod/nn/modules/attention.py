"""``MultiheadAttention`` (``torch.nn.MultiheadAttention``, from ``torch/nn/modules/activation.py``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import devices
from jmod._src.arrays import host_empty
from jmod._src.functional import attention as F
from jmod.nn.init import constant_, xavier_normal_, xavier_uniform_
from jmod.nn.modules.linear import NonDynamicallyQuantizableLinear
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter

__all__ = ["MultiheadAttention"]


class MultiheadAttention(Module):
    r"""Attend jointly to information from different representation subspaces.

    .. math::
        \text{MultiHead}(Q, K, V) = \text{Concat}(\text{head}_1,\dots,\text{head}_h)W^O,
        \quad \text{head}_i = \text{Attention}(QW_i^Q, KW_i^K, VW_i^V)

    torch's ``nn.MultiheadAttention`` with the same parameters, masks and outputs. jmod
    always computes what torch's general ("slow") path computes; torch's inference
    fast path (``eval()`` under ``torch.no_grad()``) gives the same numbers except in
    its corner cases, listed under Note.

    Args:
        embed_dim: total dimension of the model :math:`E`; split across the heads.
        num_heads: number of parallel attention heads; must divide ``embed_dim``.
        dropout: dropout probability on the attention weights (training only).
            Default: ``0.0``.
        bias: add biases to the input and output projections. Default: ``True``.
        add_bias_kv: learn a bias appended to the key and value sequences.
            Default: ``False``.
        add_zero_attn: append a zero key and value to the sequences. Default: ``False``.
        kdim: number of features of the keys (default ``embed_dim``).
        vdim: number of features of the values (default ``embed_dim``).
        batch_first: inputs and outputs are ``(N, L, E)`` instead of ``(L, N, E)``.
            Ignored for unbatched inputs. Default: ``False``.
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Shape:
        - query: :math:`(L, E)` unbatched, :math:`(L, N, E)`, or :math:`(N, L, E)` with
          ``batch_first``.
        - key: :math:`(S, E_k)`, :math:`(S, N, E_k)` or :math:`(N, S, E_k)`.
        - value: :math:`(S, E_v)`, :math:`(S, N, E_v)` or :math:`(N, S, E_v)`.
        - key_padding_mask: :math:`(S)` unbatched or :math:`(N, S)`; bool (``True`` =
          ignore that key) or float (added to the scores).
        - attn_mask: :math:`(L, S)` or :math:`(N \cdot \text{num\_heads}, L, S)`; bool
          (``True`` = not allowed to attend) or float (added to the scores). A bool
          and a float mask together work but warn (deprecated in torch).
        - attn_output: :math:`(L, E)`, :math:`(L, N, E)` or :math:`(N, L, E)`.
        - attn_output_weights (``need_weights=True``): :math:`(L, S)` / :math:`(N, L, S)`
          averaged over heads, or :math:`(\text{num\_heads}, L, S)` /
          :math:`(N, \text{num\_heads}, L, S)` with ``average_attn_weights=False``.

    Attributes:
        in_proj_weight: ``(3 * embed_dim, embed_dim)`` packed q/k/v projection, xavier
            uniform; ``None`` when ``kdim``/``vdim`` differ from ``embed_dim``.
        q_proj_weight: ``(embed_dim, embed_dim)``, xavier uniform (only when
            ``kdim``/``vdim`` differ; else ``None``).
        k_proj_weight: ``(embed_dim, kdim)``, same rule.
        v_proj_weight: ``(embed_dim, vdim)``, same rule.
        in_proj_bias: ``(3 * embed_dim,)``, zeros (``None`` with ``bias=False``).
        bias_k: ``(1, 1, embed_dim)``, xavier normal (``None`` without ``add_bias_kv``).
        bias_v: ``(1, 1, embed_dim)``, xavier normal (``None`` without ``add_bias_kv``).
        out_proj: ``NonDynamicallyQuantizableLinear(embed_dim, embed_dim)`` (a
            ``Linear``): torch's Linear initialisation for the weight, zero bias.

    Note:
        Where torch's fast path (eval, ``torch.no_grad()``, ``batch_first``, self
        attention, no ``add_bias_kv``/``add_zero_attn``) differs from its general path,
        jmod follows the general path: a query whose keys are all masked gives the
        output projection's bias with ``need_weights=False`` (the fast path gives NaN),
        and ``is_causal=True`` without ``attn_mask`` raises (the fast path ignores the
        hint and masks nothing).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod
        >>> from jmod import nn
        >>> _ = jmod.manual_seed(0)
        >>> mha = nn.MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True)
        >>> x = jnp.ones((3, 5, 8))
        >>> out, weights = mha(x, x, x)
        >>> out.shape, weights.shape
        ((3, 5, 8), (3, 5, 5))
        >>> pad = jnp.array([[False] * 4 + [True]] * 3)  # ignore the last key
        >>> out, per_head = mha(x, x, x, key_padding_mask=pad, average_attn_weights=False)
        >>> per_head.shape, float(per_head[..., -1].max())
        ((3, 2, 5, 5), 0.0)
        >>> mha
        MultiheadAttention(
          (out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)
        )
    """

    __constants__ = ["batch_first"]

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0,"
                f" got embed_dim={embed_dim} and num_heads={num_heads} instead"
            )
        super().__init__()
        dtype = devices.factory_dtype(dtype)
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim

        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != self.embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")

        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(host_empty((embed_dim, embed_dim), dtype))
            self.k_proj_weight = Parameter(host_empty((embed_dim, self.kdim), dtype))
            self.v_proj_weight = Parameter(host_empty((embed_dim, self.vdim), dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(host_empty((3 * embed_dim, embed_dim), dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)

        if bias:
            self.in_proj_bias = Parameter(host_empty(3 * embed_dim, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, dtype=dtype)

        if add_bias_kv:
            self.bias_k = Parameter(host_empty((1, 1, embed_dim), dtype))
            self.bias_v = Parameter(host_empty((1, 1, embed_dim), dtype))
        else:
            self.bias_k = self.bias_v = None

        self.add_zero_attn = add_zero_attn

        self._reset_parameters()
        if device is not None:
            self.to(device)

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            xavier_uniform_(self.in_proj_weight)
        else:
            xavier_uniform_(self.q_proj_weight)
            xavier_uniform_(self.k_proj_weight)
            xavier_uniform_(self.v_proj_weight)

        if self.in_proj_bias is not None:
            constant_(self.in_proj_bias, 0.0)
            constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            xavier_normal_(self.bias_v)

    def __setstate__(self, state: dict) -> None:
        # Checkpoints pickled before kdim/vdim existed (torch 1.1) lack the flag.
        if "_qkv_same_embed_dim" not in state:
            state["_qkv_same_embed_dim"] = True
        super().__setstate__(state)

    def forward(
        self,
        query: Any,
        key: Any,
        value: Any,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[jax.Array, jax.Array | None]:
        r"""Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(L, E)``, ``(L, N, E)`` or ``(N, L, E)`` (``batch_first``).
            key: ``(S, E_k)``, ``(S, N, E_k)`` or ``(N, S, E_k)``.
            value: ``(S, E_v)``, ``(S, N, E_v)`` or ``(N, S, E_v)``.
            key_padding_mask: ``(S)`` or ``(N, S)``: bool, ``True`` ignores that key;
                float is added to the scores.
            need_weights: also return the attention weights. Default: ``True``.
            attn_mask: ``(L, S)`` or ``(N * num_heads, L, S)``: bool, ``True`` forbids
                attending; float is added to the scores.
            average_attn_weights: return weights averaged over heads (default) or per
                head.
            is_causal: hint that ``attn_mask`` is causal; needs ``attn_mask``. With
                ``need_weights=False`` and no ``key_padding_mask`` a causal mask is
                applied in place of ``attn_mask``, as in torch.

        Returns:
            ``(attn_output, attn_output_weights)``; the weights are ``None`` when
            ``need_weights=False``.
        """
        query, key, value = (F._as_array(x) for x in (query, key, value))
        key_padding_mask = F._canonical_mask(
            mask=key_padding_mask,
            mask_name="key_padding_mask",
            other_type=F._none_or_dtype(attn_mask),
            other_name="attn_mask",
            target_type=query.dtype,
        )
        attn_mask = F._canonical_mask(
            mask=attn_mask,
            mask_name="attn_mask",
            other_type=None,
            other_name="",
            target_type=query.dtype,
            check_other=False,
        )
        is_batched = query.ndim == 3
        if self.batch_first and is_batched:
            query, key, value = (jnp.swapaxes(x, 0, 1) for x in (query, key, value))

        if not self._qkv_same_embed_dim:
            attn_output, attn_output_weights = F.multi_head_attention_forward(
                query,
                key,
                value,
                self.embed_dim,
                self.num_heads,
                self.in_proj_weight,
                self.in_proj_bias,
                self.bias_k,
                self.bias_v,
                self.add_zero_attn,
                self.dropout,
                self.out_proj.weight,
                self.out_proj.bias,
                training=self.training,
                key_padding_mask=key_padding_mask,
                need_weights=need_weights,
                attn_mask=attn_mask,
                use_separate_proj_weight=True,
                q_proj_weight=self.q_proj_weight,
                k_proj_weight=self.k_proj_weight,
                v_proj_weight=self.v_proj_weight,
                average_attn_weights=average_attn_weights,
                is_causal=is_causal,
            )
        else:
            attn_output, attn_output_weights = F.multi_head_attention_forward(
                query,
                key,
                value,
                self.embed_dim,
                self.num_heads,
                self.in_proj_weight,
                self.in_proj_bias,
                self.bias_k,
                self.bias_v,
                self.add_zero_attn,
                self.dropout,
                self.out_proj.weight,
                self.out_proj.bias,
                training=self.training,
                key_padding_mask=key_padding_mask,
                need_weights=need_weights,
                attn_mask=attn_mask,
                average_attn_weights=average_attn_weights,
                is_causal=is_causal,
            )
        if self.batch_first and is_batched:
            return jnp.swapaxes(attn_output, 1, 0), attn_output_weights
        return attn_output, attn_output_weights

    def merge_masks(self, attn_mask: Any, key_padding_mask: Any, query: Any) -> tuple[jax.Array | None, int | None]:
        r"""Combine ``attn_mask`` and ``key_padding_mask`` as torch's fast path does.

        Args:
            attn_mask: ``(L, L)`` (mask type 0) or ``(N * num_heads, L, L)``.
            key_padding_mask: ``(N, L)`` (mask type 1).
            query: ``(N, L, E)``.

        Returns:
            ``(merged_mask, mask_type)``: one mask alone comes back with its type; both
            are expanded to ``(N, num_heads, L, L)`` and added (type 2);
            ``(None, None)`` without masks.
        """
        mask_type: int | None = None
        merged_mask = None
        if key_padding_mask is not None:
            mask_type = 1
            merged_mask = key_padding_mask
        if attn_mask is not None:
            batch_size, seq_len, _ = jnp.shape(query)
            mask_type = 2
            attn_mask = jnp.asarray(attn_mask)
            if attn_mask.ndim == 3:
                attn_mask_expanded = attn_mask.reshape(batch_size, -1, seq_len, seq_len)
            else:
                attn_mask_expanded = jnp.broadcast_to(
                    attn_mask.reshape(1, 1, seq_len, seq_len), (batch_size, self.num_heads, seq_len, seq_len)
                )
            merged_mask = attn_mask_expanded
            if key_padding_mask is not None:
                key_padding_mask_expanded = jnp.broadcast_to(
                    jnp.asarray(key_padding_mask).reshape(batch_size, 1, 1, seq_len),
                    (batch_size, self.num_heads, 1, seq_len),
                )
                merged_mask = attn_mask_expanded + key_padding_mask_expanded
        return merged_mask, mask_type
