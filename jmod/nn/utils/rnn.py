"""Packed sequences for the recurrent layers (``torch.nn.utils.rnn``).

A :class:`PackedSequence` holds the valid time steps of a batch of variable-length
sequences, time-major, batch entries sorted by decreasing length. JAX needs static
shapes, so ``batch_sizes`` is kept as *static* structure (a NumPy ``int64`` array, as
torch keeps it on the CPU) and lengths given to :func:`pack_padded_sequence` must be
concrete (a list, NumPy array or a concrete array), not traced values. A
``PackedSequence`` is a pytree (``data`` and the index arrays are leaves), so it can
be passed through ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.arrays import is_tracer, long_dtype, to_jax

__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpad_sequence",
    "pack_sequence",
    "unpack_sequence",
]


def _concrete_ints(x: Any, what: str) -> np.ndarray:
    if is_tracer(x):
        raise TypeError(
            f"{what} must be concrete (a list, NumPy array or non-traced array): the packed layout "
            "fixes array shapes, which JAX needs to know when tracing. Pack outside jax.jit."
        )
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x).astype(np.int64).reshape(-1)


@jax.tree_util.register_pytree_node_class
class PackedSequence:
    r"""Data and ``batch_sizes`` of a packed batch of sequences (torch's ``PackedSequence``).

    Build it with :func:`pack_padded_sequence` or :func:`pack_sequence`, not directly.
    It unpacks like torch's named tuple: ``data, batch_sizes, sorted_indices,
    unsorted_indices = packed``.

    Attributes:
        data (jax.Array): ``(sum(lengths), *)``: time step 0 of every sequence, then
            time step 1 of those still running, and so on.
        batch_sizes (numpy.ndarray): ``int64``, the number of sequences still running
            at each time step (static: it fixes the shapes).
        sorted_indices (jax.Array or None): order in which the batch was sorted by
            decreasing length (``None`` if it was given sorted).
        unsorted_indices (jax.Array or None): the inverse permutation.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod.nn.utils.rnn import pack_sequence
        >>> packed = pack_sequence([jnp.array([1.0, 2.0, 3.0]), jnp.array([4.0, 5.0])])
        >>> packed.data, packed.batch_sizes
        (Array([1., 4., 2., 5., 3.], dtype=float32), array([2, 2, 1]))
    """

    __slots__ = ("data", "_batch_sizes", "sorted_indices", "unsorted_indices", "_layout_cache")

    def __init__(
        self, data: Any, batch_sizes: Any = None, sorted_indices: Any = None, unsorted_indices: Any = None
    ) -> None:
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        self.data = data if isinstance(data, jax.Array) or data is None or is_tracer(data) else to_jax(data)
        self._batch_sizes = tuple(int(b) for b in _concrete_ints(batch_sizes, "batch_sizes"))
        self.sorted_indices = sorted_indices
        self.unsorted_indices = unsorted_indices
        self._layout_cache = None

    # -- torch's named-tuple surface
    @property
    def batch_sizes(self) -> np.ndarray:
        return np.asarray(self._batch_sizes, dtype=np.int64)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.data, self.batch_sizes, self.sorted_indices, self.unsorted_indices))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: Any) -> Any:
        return tuple(self)[i]

    def __repr__(self) -> str:
        return (
            f"PackedSequence(data={self.data!r}, batch_sizes={self.batch_sizes!r}, "
            f"sorted_indices={self.sorted_indices!r}, unsorted_indices={self.unsorted_indices!r})"
        )

    # -- pytree: batch_sizes is static structure
    def tree_flatten(self) -> tuple[tuple, tuple]:
        return (self.data, self.sorted_indices, self.unsorted_indices), self._batch_sizes

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: tuple) -> PackedSequence:
        obj = object.__new__(cls)
        obj.data, obj.sorted_indices, obj.unsorted_indices = children
        obj._batch_sizes = aux
        obj._layout_cache = None
        return obj

    # -- conversions (the indices stay integer, as in torch)
    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """Cast/move ``data`` like ``Module.to`` (``to(dtype)``, ``to(device)``)."""
        from jmod._src import devices

        device, dtype, _ = devices.parse_to_args(*args, **kwargs)
        data = self.data
        if dtype is not None:
            data = data.astype(devices.as_dtype(dtype))
        if device is not None:
            data = jax.device_put(data, device)
        if data is self.data:
            return self
        return self._replace_data(data)

    def float(self) -> PackedSequence:
        return self.to(jnp.float32)

    def half(self) -> PackedSequence:
        return self.to(jnp.float16)

    def double(self) -> PackedSequence:
        return self.to(jnp.float64)

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> PackedSequence:
        return self.to("cuda" if device is None else device)

    def pin_memory(self) -> PackedSequence:
        return self

    def is_pinned(self) -> bool:
        return False

    @property
    def is_cuda(self) -> bool:
        return any(d.platform == "gpu" for d in getattr(self.data, "devices", lambda: set())())

    # -- jmod internals
    def _replace_data(self, data: Any) -> PackedSequence:
        out = type(self).tree_unflatten(self._batch_sizes, (data, self.sorted_indices, self.unsorted_indices))
        return out

    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(t_idx, b_idx, lengths)``: row ``i`` of ``data`` is step ``t_idx[i]`` of sorted
        sequence ``b_idx[i]``; ``lengths`` are the sorted sequences' lengths."""
        if self._layout_cache is None:
            bs = np.asarray(self._batch_sizes, np.int64)
            t_idx = np.repeat(np.arange(len(bs)), bs)
            b_idx = np.concatenate([np.arange(b) for b in bs]) if len(bs) else np.zeros(0, np.int64)
            batch = int(bs[0]) if len(bs) else 0
            lengths = (bs[None, :] > np.arange(batch)[:, None]).sum(axis=1)
            self._layout_cache = (t_idx, b_idx, lengths)
        return self._layout_cache


def invert_permutation(permutation: Any) -> jax.Array | None:
    """The inverse of ``permutation`` (``None`` stays ``None``)."""
    if permutation is None:
        return None
    permutation = jnp.asarray(permutation)
    return jnp.zeros_like(permutation).at[permutation].set(jnp.arange(permutation.shape[0], dtype=permutation.dtype))


def pack_padded_sequence(
    input: Any, lengths: Any, batch_first: bool = False, enforce_sorted: bool = True
) -> PackedSequence:
    r"""Pack a padded batch of variable-length sequences.

    Args:
        input: ``(T, B, *)`` (or ``(B, T, *)`` with ``batch_first``), padded.
        lengths: the ``B`` sequence lengths (concrete: list, NumPy or non-traced array).
        batch_first: whether ``input`` is batch-major.
        enforce_sorted: require ``lengths`` sorted in decreasing order; with
            ``False`` the batch is sorted here and ``unsorted_indices`` restore it.

    Returns:
        a :class:`PackedSequence`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod.nn.utils.rnn import pack_padded_sequence
        >>> x = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
        >>> p = pack_padded_sequence(x, [3, 2], batch_first=True)
        >>> p.data, p.batch_sizes
        (Array([1., 4., 2., 5., 3.], dtype=float32), array([2, 2, 1]))
    """
    input = jnp.asarray(input)
    lengths = _concrete_ints(lengths, "lengths")
    if enforce_sorted:
        sorted_indices = None
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = jnp.asarray(order, long_dtype())
        input = jnp.take(input, sorted_indices, axis=0 if batch_first else 1)
    if batch_first:
        input = jnp.swapaxes(input, 0, 1)
    batch = input.shape[1]
    if len(lengths) != batch:
        raise RuntimeError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {len(lengths)} (batch_size={batch})"
        )
    if enforce_sorted and np.any(lengths[1:] > lengths[:-1]):
        raise RuntimeError(
            "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can pass "
            "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this requirement if you "
            "do not need ONNX exportability."
        )
    if batch and lengths[-1] <= 0:
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    if batch and lengths[0] > input.shape[0]:
        raise RuntimeError(
            f"Expected all lengths to be at most the padded sequence length {input.shape[0]}, but got {int(lengths[0])}"
        )
    max_len = int(lengths[0]) if batch else 0
    batch_sizes = (lengths[None, :] > np.arange(max_len)[:, None]).sum(axis=1)
    packed = PackedSequence(jnp.zeros((0,)), batch_sizes, sorted_indices, None)
    t_idx, b_idx, _ = packed._layout()
    return packed._replace_data(input[t_idx, b_idx])


def pad_packed_sequence(
    sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0, total_length: int | None = None
) -> tuple[jax.Array, jax.Array]:
    r"""Undo :func:`pack_padded_sequence`: return ``(padded, lengths)``.

    Args:
        sequence: the packed batch.
        batch_first: return ``(B, T, *)`` instead of ``(T, B, *)``.
        padding_value: value of the padded positions.
        total_length: pad to this length (at least the longest sequence).

    Returns:
        ``(padded, lengths)``, in the batch's original order; ``lengths`` is an
        integer array (torch's int64).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod.nn.utils.rnn import pack_sequence, pad_packed_sequence
        >>> packed = pack_sequence([jnp.array([1.0]), jnp.array([2.0, 3.0])], enforce_sorted=False)
        >>> padded, lengths = pad_packed_sequence(packed, batch_first=True)
        >>> padded
        Array([[1., 0.],
               [2., 3.]], dtype=float32)
        >>> lengths.tolist()
        [1, 2]
    """
    max_seq_length = len(sequence._batch_sizes)
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError(
                "Expected total_length to be at least the length "
                "of the longest sequence in input, but got "
                f"total_length={total_length} and max sequence length being {max_seq_length}"
            )
        max_seq_length = total_length
    t_idx, b_idx, lengths = sequence._layout()
    data = sequence.data
    batch = int(sequence._batch_sizes[0]) if sequence._batch_sizes else 0
    padded = jnp.full((max_seq_length, batch) + data.shape[1:], padding_value, data.dtype)
    padded = padded.at[t_idx, b_idx].set(data)
    lengths = jnp.asarray(lengths, long_dtype())
    if batch_first:
        padded = jnp.swapaxes(padded, 0, 1)
    unsorted_indices = sequence.unsorted_indices
    if unsorted_indices is not None:
        batch_dim = 0 if batch_first else 1
        return jnp.take(padded, unsorted_indices, axis=batch_dim), lengths[unsorted_indices]
    return padded, lengths


def pad_sequence(
    sequences: Any, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"
) -> jax.Array:
    r"""Stack variable-length sequences ``(L_i, *)`` into ``(T, B, *)`` (or ``(B, T, *)``).

    Args:
        sequences: an iterable of arrays with equal trailing shapes.
        batch_first: return batch-major.
        padding_value: value of the padded positions.
        padding_side: ``"right"`` (default) or ``"left"``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod.nn.utils.rnn import pad_sequence
        >>> pad_sequence([jnp.ones(2), jnp.ones(3)], batch_first=True)
        Array([[1., 1., 0.],
               [1., 1., 1.]], dtype=float32)
    """
    if not isinstance(sequences, Iterable) and not isinstance(sequences, jax.Array):
        raise RuntimeError(
            f"pad_sequence: Expected iterable for input sequences, but got arg of type: {type(sequences)}"
        )
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    seqs = [jnp.asarray(s) for s in sequences]
    if not seqs:
        raise RuntimeError("received an empty list of sequences")
    max_len = max(s.shape[0] for s in seqs)
    rows = []
    for s in seqs:
        pad = [(0, 0)] * s.ndim
        pad[0] = (0, max_len - s.shape[0]) if padding_side == "right" else (max_len - s.shape[0], 0)
        rows.append(jnp.pad(s, pad, constant_values=padding_value))
    out = jnp.stack(rows, axis=0)
    return out if batch_first else jnp.swapaxes(out, 0, 1)


def unpad_sequence(padded_sequences: Any, lengths: Any, batch_first: bool = False) -> list[jax.Array]:
    """Split a padded batch back into a list of its ``B`` sequences (inverse of :func:`pad_sequence`)."""
    padded_sequences = jnp.asarray(padded_sequences)
    if not batch_first:
        padded_sequences = jnp.swapaxes(padded_sequences, 0, 1)
    lengths = _concrete_ints(lengths, "lengths")
    return [seq[: int(n)] for seq, n in zip(padded_sequences, lengths)]


def pack_sequence(sequences: list[Any], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of variable-length sequences ``(L_i, *)`` (``pad_sequence`` then
    ``pack_padded_sequence``)."""
    lengths = [jnp.shape(v)[0] for v in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[jax.Array]:
    """Unpack a :class:`PackedSequence` into the list of its sequences (original order).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod.nn.utils.rnn import pack_sequence, unpack_sequence
        >>> [s.tolist() for s in unpack_sequence(pack_sequence([jnp.array([1.0]), jnp.array([2.0, 3.0])], False))]
        [[1.0], [2.0, 3.0]]
    """
    padded_sequences, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded_sequences, np.asarray(lengths), batch_first=True)
