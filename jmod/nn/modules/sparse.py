"""Embedding and EmbeddingBag (``torch/nn/modules/sparse.py``).

``max_norm``: torch renormalises the looked-up rows of ``weight`` in place on every
forward. jmod's forward assigns the renormalised table back to ``self.weight`` (so the
parameter holds what torch's would; compiled code writes it back like any parameter
update) and looks up from it. ``sparse=True`` is accepted and has no effect (JAX
gradients are dense).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import devices
from jmod._src.arrays import to_jax
from jmod._src.functional import sparse as F
from jmod.nn import init
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter

__all__ = ["Embedding", "EmbeddingBag"]


def _check_padding_idx(padding_idx: int | None, num_embeddings: int, word: str) -> int | None:
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= num_embeddings:
                raise AssertionError(f"{word} must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -num_embeddings:
                raise AssertionError(f"{word} must be within num_embeddings")
            padding_idx = num_embeddings + padding_idx
    return padding_idx


class Embedding(Module):
    r"""A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``.

    Args:
        num_embeddings: size of the dictionary.
        embedding_dim: size of each embedding vector.
        padding_idx: the row at this index is initialised to zeros and gets no gradient
            (a fixed "pad"); negative values count from the end.
        max_norm: on each forward, looked-up rows with a larger ``norm_type``-norm are
            renormalised to ``max_norm`` and the result is assigned to ``self.weight``
            (torch updates the weight in place).
        norm_type: the p of the p-norm for ``max_norm``. Default: 2.
        scale_grad_by_freq: scale gradients by the inverse frequency of the indices in
            the mini-batch. Default: ``False``.
        sparse: accepted for torch compatibility (no effect).
        _weight: an initial ``(num_embeddings, embedding_dim)`` table (not zeroed at
            ``padding_idx``), as torch.
        _freeze: create the weight with ``requires_grad=False``.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: :math:`(*)`, integer indices of any shape.
        - Output: :math:`(*, H)` with :math:`H = \text{embedding\_dim}`.

    Attributes:
        weight: shape ``(num_embeddings, embedding_dim)``, initialised from
            :math:`\mathcal{N}(0, 1)` (row ``padding_idx`` zeroed).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> _ = jmod.manual_seed(0)
        >>> emb = nn.Embedding(10, 3, padding_idx=0)
        >>> emb(jnp.array([[1, 2, 4, 5], [4, 3, 2, 9]])).shape
        (2, 4, 3)
        >>> emb(jnp.array([0]))
        Array([[0., 0., 0.]], dtype=float32)
        >>> emb
        Embedding(10, 3, padding_idx=0)
    """

    __constants__ = [
        "num_embeddings",
        "embedding_dim",
        "padding_idx",
        "max_norm",
        "norm_type",
        "scale_grad_by_freq",
        "sparse",
    ]

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _check_padding_idx(padding_idx, num_embeddings, "Padding_idx")
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        if _weight is None:
            self.weight = Parameter(
                jnp.empty((num_embeddings, embedding_dim), devices.factory_dtype(dtype)), requires_grad=not _freeze
            )
            self.reset_parameters()
        else:
            _weight = to_jax(_weight)
            if list(_weight.shape) != [num_embeddings, embedding_dim]:
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight, requires_grad=not _freeze)
        self.sparse = sparse
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw the table from :math:`\\mathcal{N}(0, 1)` and zero the padding row."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            self.weight = self.weight.at[self.padding_idx].set(0)

    def forward(self, input: Any) -> jax.Array:
        weight = self.weight
        if self.max_norm is not None:
            weight = F.embedding_renorm(weight, input, self.max_norm, self.norm_type)
            self.weight = weight
        return F.embedding(input, weight, self.padding_idx, None, self.norm_type, self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        r"""Create an Embedding from a 2-D table (jax, NumPy or torch array).

        Args:
            embeddings: ``(num_embeddings, embedding_dim)`` table, used as is.
            freeze: if ``True`` the weight is a ``Parameter(..., requires_grad=False)``.
            padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse: as the constructor.

        Examples:
            >>> import jax.numpy as jnp
            >>> from jmod import nn
            >>> emb = nn.Embedding.from_pretrained(jnp.array([[1.0, 2.3, 3.0], [4.0, 5.1, 6.3]]))
            >>> emb(jnp.array([1]))
            Array([[4. , 5.1, 6.3]], dtype=float32)
            >>> emb._parameters["weight"].requires_grad
            False
        """
        embeddings = to_jax(embeddings)
        if embeddings.ndim != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(
            num_embeddings=rows,
            embedding_dim=cols,
            _weight=embeddings,
            _freeze=freeze,
            padding_idx=padding_idx,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
        )


class EmbeddingBag(Module):
    r"""Sums, means or maxes of bags of embeddings, without the intermediate lookups.

    Args:
        num_embeddings: size of the dictionary.
        embedding_dim: size of each embedding vector.
        max_norm: renormalise looked-up rows to at most this norm (assigned back to
            ``self.weight``, as torch's in-place update).
        norm_type: the p of the p-norm for ``max_norm``. Default: 2.
        scale_grad_by_freq: scale gradients by inverse index frequency (not with ``'max'``).
        mode: ``'sum'``, ``'mean'`` or ``'max'``. Default: ``'mean'``.
        sparse: accepted for torch compatibility (no effect; not with ``'max'``).
        _weight: an initial ``(num_embeddings, embedding_dim)`` table.
        include_last_offset: ``offsets`` has one extra entry, the end of the last bag.
        padding_idx: entries equal to it are excluded from the bags and get no
            gradient; its row is initialised to zeros.
        dtype: parameter dtype (default float32).

    Shape:
        - Input: ``(B, N)`` (``B`` bags of length ``N``), or ``(L,)`` with ``offsets``
          ``(B,)`` (``(B+1,)`` with ``include_last_offset``).
        - per_sample_weights (optional, ``'sum'`` only): same shape as the input.
        - Output: ``(B, embedding_dim)``.

    Attributes:
        weight: shape ``(num_embeddings, embedding_dim)``, initialised from
            :math:`\mathcal{N}(0, 1)` (row ``padding_idx`` zeroed).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> bag = nn.EmbeddingBag(10, 3, mode="sum")
        >>> bag(jnp.array([1, 2, 4, 5, 4, 3, 2, 9]), jnp.array([0, 4])).shape
        (2, 3)
        >>> bag
        EmbeddingBag(10, 3, mode='sum')
    """

    __constants__ = [
        "num_embeddings",
        "embedding_dim",
        "max_norm",
        "norm_type",
        "scale_grad_by_freq",
        "mode",
        "sparse",
        "include_last_offset",
        "padding_idx",
    ]

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Any = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _check_padding_idx(padding_idx, num_embeddings, "padding_idx")
        if _weight is None:
            self.weight = Parameter(jnp.empty((num_embeddings, embedding_dim), devices.factory_dtype(dtype)))
            self.reset_parameters()
        else:
            _weight = to_jax(_weight)
            if list(_weight.shape) != [num_embeddings, embedding_dim]:
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight)
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        """Re-draw the table from :math:`\\mathcal{N}(0, 1)` and zero the padding row."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            self.weight = self.weight.at[self.padding_idx].set(0)

    def forward(self, input: Any, offsets: Any = None, per_sample_weights: Any = None) -> jax.Array:
        weight = self.weight
        if self.max_norm is not None:
            weight = F.embedding_renorm(weight, input, self.max_norm, self.norm_type)
            self.weight = weight
        out = F.embedding_bag(
            input,
            weight,
            offsets,
            None,
            self.norm_type,
            self.scale_grad_by_freq,
            self.mode,
            self.sparse,
            per_sample_weights,
            self.include_last_offset,
            self.padding_idx,
        )
        return out

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings!r}, {self.embedding_dim!r}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx!r}"
        return s

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ) -> EmbeddingBag:
        r"""Create an EmbeddingBag from a 2-D table; ``freeze`` sets ``requires_grad=False``.

        Examples:
            >>> import jax.numpy as jnp
            >>> from jmod import nn
            >>> bag = nn.EmbeddingBag.from_pretrained(jnp.array([[1.0, 2.0], [3.0, 4.0]]))
            >>> bag(jnp.array([[0, 1]]))
            Array([[2., 3.]], dtype=float32)
        """
        embeddings = to_jax(embeddings)
        if embeddings.ndim != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        bag = cls(
            num_embeddings=rows,
            embedding_dim=cols,
            _weight=embeddings,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            mode=mode,
            sparse=sparse,
            include_last_offset=include_last_offset,
            padding_idx=padding_idx,
        )
        bag._parameters["weight"].requires_grad = not freeze
        return bag
