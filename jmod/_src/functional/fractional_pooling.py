"""Fractional max pooling (Graham, 2014) with torch.nn.functional's semantics.

Each output cell pools a ``kernel_size`` window whose start along a dimension is
torch's pseudo-random interval sequence, drawn per ``(batch, channel)`` plane from a
sample ``u`` in ``[0, 1)``::

    alpha = (input_size - pool_size) / (output_size - 1)
    start[i] = int((i + u) * alpha) - int(u * alpha)      for i < output_size - 1
    start[output_size - 1] = input_size - pool_size

computed in the input's dtype as torch's CPU kernel does, so with the same
``_random_samples`` the windows, values and indices are torch's exactly. Sample
component 0 drives the width and 1 the height (2-d); 0/1/2 drive time/height/width (3-d).

Without ``_random_samples`` the samples are drawn from jmod's generator
(``jmod.manual_seed``; threaded through ``jmod.jit`` like dropout masks), shaped
``(N, C, 2)`` or ``(N, C, 3)`` (``N = 1`` for unbatched input) as torch's ``torch.rand``.

Every window is gathered in one vectorised gather and the element torch's kernel picks
is selected (first maximum, last NaN; the window's first element if all are ``-inf``),
so values, the flat spatial indices (torch's long dtype) and the gradient (which flows to
the selected element) agree with torch.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.amp import autocast_op
from jmod._src.arrays import long_dtype, to_jax
from jmod._src.functional._args import as_int_list, dtype_name
from jmod._src.functional._torch_ops import list_str
from jmod._src.functional.pooling import _pad_value, _select_torch_max
from jmod._src.random import next_key

__all__ = [
    "fractional_max_pool2d",
    "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d",
    "fractional_max_pool3d_with_indices",
]

_AXIS_NAMES = {2: ("height", "width"), 3: ("time", "height", "width")}
# which sample component drives each spatial axis (in D/H/W order), as torch's kernels
_SAMPLE_COMPONENT = {2: (1, 0), 3: (0, 1, 2)}


def _dim_error(ndim: int, dim: int) -> IndexError:
    n = max(ndim, 1)
    return IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")


def _output_size_from_ratio(x: jax.Array, output_ratio: Any, n: int) -> list[int]:
    op = f"fractional_max_pool{n}d"
    if n == 2 and hasattr(output_ratio, "__len__") and len(output_ratio) > 2:
        raise ValueError(f"{op} requires output_ratio to either be a single Int or tuple of Ints.")
    ratio = list(output_ratio) if hasattr(output_ratio, "__len__") else [output_ratio] * n
    if len(ratio) < n:
        raise IndexError("tuple index out of range")
    if x.ndim < n:
        raise _dim_error(x.ndim, -n)
    return [int(x.shape[x.ndim - n + i] * ratio[i]) for i in range(n)]


def _check(x: jax.Array, k: list[int], out: list[int], n: int) -> None:
    """torch's meta checks for ``fractional_max_pool{2,3}d`` (in torch's order)."""
    op = f"fractional_max_pool{n}d"
    if len(k) != n:
        word = "Ints" if n == 2 else "three Ints"
        raise RuntimeError(f"{op}: kernel_size must either be a single Int or tuple of {word}")
    if len(out) != n:
        word = "Ints" if n == 2 else "three Ints"
        raise RuntimeError(f"{op}: output_size must either be a single Int or tuple of {word}")
    name = "fractional_max_pool2d()" if n == 2 else "fractional_max_pool3d_out()"
    if x.ndim not in (n + 1, n + 2):
        raise RuntimeError(f"{name}: Expected {n + 1}D or {n + 2}D tensor, but got: {list_str(x.shape)}")
    for i in range(1, x.ndim):
        if x.shape[i] <= 0:
            raise RuntimeError(
                f"{name}: Expected input to have non-zero size for non-batch dimensions, but got"
                f"{list_str(x.shape)} with dimension {i} being empty."
            )
    sizes = x.shape[-n:]
    # torch's 2-d check allows out + k - 1 == size, its 3-d check does not; 3-d checks T, W, H
    order = [0, 1] if n == 2 else [0, 2, 1]
    for i in order:
        ok = out[i] + k[i] - 1 <= sizes[i] if n == 2 else out[i] + k[i] - 1 < sizes[i]
        if not ok:
            name_i = _AXIS_NAMES[n][i]
            raise RuntimeError(f"{name}: pool {name_i} {k[i]} too large relative to input {name_i} {sizes[i]}")
    shape = list(x.shape[:-n]) + list(out)
    for v in shape:
        if v < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {v}: {list_str(shape)}")


def _check_samples(x: jax.Array, s: jax.Array, n: int) -> None:
    """torch's ``fractional_max_pool_check_shape``."""
    if s.dtype != x.dtype:
        raise RuntimeError("Expect _random_samples to have the same dtype as input")
    if s.ndim != 3:
        raise RuntimeError(f"Expect _random_samples to have 3 dimensions, got {s.ndim}")
    batch, channels = (1, x.shape[0]) if x.ndim == n + 1 else x.shape[:2]
    if s.shape[0] < batch:
        raise RuntimeError("Expect _random_samples.size(0) no less then input batch size.")
    if s.shape[1] != channels:
        raise RuntimeError("Expect _random_samples.size(1) equals to input channel size.")
    if s.shape[2] != n:
        raise RuntimeError(f"Expect _random_samples.size(2) equals to {n}; got {s.shape[2]}.")


def _fractional_max_pool(
    input: Any, kernel_size: Any, output_size: Any, output_ratio: Any, _random_samples: Any, n: int
) -> tuple[jax.Array, jax.Array]:
    op = f"fractional_max_pool{n}d"
    x = to_jax(input)
    if output_size is None and output_ratio is None:
        raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
    if output_size is None:
        output_size = _output_size_from_ratio(x, output_ratio, n)
    k = as_int_list(kernel_size, op, "kernel_size", 2)
    out = as_int_list(output_size, op, "output_size", 3)
    k = k * n if len(k) == 1 else k
    out = out * n if len(out) == 1 else out
    if _random_samples is None:
        if x.ndim < n + 1:
            raise _dim_error(x.ndim, -(n + 1))
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise NotImplementedError(f"\"check_uniform_bounds\" not implemented for '{dtype_name(x.dtype)}'")
        batch = 1 if x.ndim == n + 1 else x.shape[0]
        samples = jax.random.uniform(next_key(), (batch, x.shape[-(n + 1)], n), x.dtype)
        _check(x, k, out, n)
    else:
        if not hasattr(_random_samples, "shape"):
            raise TypeError(
                f"{op}(): argument 'random_samples' (position 4) must be Tensor, not {type(_random_samples).__name__}"
            )
        samples = to_jax(_random_samples)
        _check(x, k, out, n)
        _check_samples(x, samples, n)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise NotImplementedError(f"\"{op}_out_frame\" not implemented for '{dtype_name(x.dtype)}'")
    return _fractional_core(x, samples, n, tuple(k), tuple(out))


def _intervals(sample: jax.Array, size: int, out: int, k: int) -> jax.Array:
    """``(..., out)`` window starts from ``(...)`` samples: torch's ``generate_intervals``."""
    dt = np.dtype(sample.dtype)
    last = jnp.full(sample.shape + (min(out, 1),), size - k, jnp.int32)
    if out <= 1:
        return last[..., :out]
    alpha = jnp.asarray(dt.type(size - k) / dt.type(out - 1), sample.dtype)  # scalar_t division, as torch
    i = jnp.arange(out - 1).astype(sample.dtype)
    u = sample[..., None]
    seq = ((i + u) * alpha).astype(jnp.int32) - (u * alpha).astype(jnp.int32)
    return jnp.concatenate([seq, last], axis=-1)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _fractional_core(x: jax.Array, samples: jax.Array, n: int, k: tuple, out: tuple) -> tuple[jax.Array, jax.Array]:
    batched = x.ndim == n + 2
    xb = x if batched else x[None]
    N, C = xb.shape[:2]
    sizes = xb.shape[2:]
    s = samples[:N]
    # flat spatial index of every window element: (N, C, *out, *k)
    flat = jnp.zeros((N, C) + (1,) * (2 * n), jnp.int32)
    for i in range(n):
        starts = _intervals(s[..., _SAMPLE_COMPONENT[n][i]], sizes[i], out[i], k[i])  # (N, C, out_i)
        coord = starts[..., None] + jnp.arange(max(k[i], 0), dtype=jnp.int32)  # (N, C, out_i, k_i)
        shape = [N, C] + [1] * (2 * n)
        shape[2 + i], shape[2 + n + i] = out[i], max(k[i], 0)
        flat = flat * sizes[i] + coord.reshape(shape)
    K = math.prod(max(v, 0) for v in k)
    lead = (N, C) + tuple(out)
    if K == 0:
        # an empty window (kernel_size <= 0): torch returns -inf at the window's start
        origin = jnp.zeros((N, C) + (1,) * n, jnp.int32)
        for i in range(n):
            starts = _intervals(s[..., _SAMPLE_COMPONENT[n][i]], sizes[i], out[i], k[i])
            shape = [N, C] + [1] * n
            shape[2 + i] = out[i]
            origin = origin * sizes[i] + starts.reshape(shape)
        values = jnp.full(lead, _pad_value(x.dtype), x.dtype)
        idx = jnp.broadcast_to(origin, lead)
    else:
        flat = jnp.broadcast_to(flat, lead + tuple(k)).reshape(lead + (K,))
        plane = xb.reshape(N, C, math.prod(sizes))
        patches = jnp.take_along_axis(plane, flat.reshape(N, C, math.prod(lead[2:]) * K), axis=2, mode="clip")
        patches = patches.reshape(lead + (K,))
        sel = _select_torch_max(patches, 0, _pad_value(x.dtype))[..., None]
        values = jnp.take_along_axis(patches, sel, axis=-1)[..., 0]
        idx = jnp.take_along_axis(flat, sel, axis=-1)[..., 0]
    if not batched:
        values, idx = values[0], idx[0]
    return values, idx.astype(long_dtype())


@autocast_op("fractional_max_pool2d")
def fractional_max_pool2d_with_indices(
    input: Any,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> tuple[jax.Array, jax.Array]:
    r"""2-D fractional max pooling that returns ``(values, indices)``; see :func:`fractional_max_pool2d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.arange(25.0).reshape(1, 1, 5, 5)
        >>> u = jnp.full((1, 1, 2), 0.5)
        >>> F.fractional_max_pool2d_with_indices(x, 2, output_size=3, _random_samples=u)[1]
        Array([[[[ 6,  8,  9],
                 [16, 18, 19],
                 [21, 23, 24]]]], dtype=int32)
    """
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, _random_samples, 2)


@autocast_op("fractional_max_pool2d")
def fractional_max_pool2d(
    input: Any,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Any:
    r"""2-D fractional max pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input.

    Max pooling over ``kernel_size`` windows placed with a pseudo-random stride so that
    the output has ``output_size`` (or ``output_ratio`` times the input size). Each
    ``(batch, channel)`` plane draws its own window positions from ``_random_samples``
    (uniform in ``[0, 1)``; drawn from jmod's generator when not given).

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``.
        kernel_size: window size, ``k`` or ``(kH, kW)``.
        output_size: ``oH`` or ``(oH, oW)``; needs :math:`o + k - 1 \le` input size.
        output_ratio: alternatively, ``r`` or ``(rH, rW)``: output size
            ``int(input_size * r)``.
        return_indices: also return the argmax as indices into the flattened ``H*W``
            plane (for :func:`max_unpool2d`).
        _random_samples: ``(N, C, 2)`` samples in ``[0, 1)`` of the input's dtype
            (component 0 places the columns, 1 the rows), to reproduce a pooling.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`, where
          :math:`(H_{out}, W_{out}) = \text{output\_size}` or
          :math:`\lfloor\text{output\_ratio} \times (H_{in}, W_{in})\rfloor`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.arange(25.0).reshape(1, 1, 5, 5)
        >>> F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=jnp.full((1, 1, 2), 0.5))
        Array([[[[ 6.,  8.,  9.],
                 [16., 18., 19.],
                 [21., 23., 24.]]]], dtype=float32)
        >>> F.fractional_max_pool2d(jnp.ones((2, 3, 10, 9)), 3, output_ratio=0.5).shape
        (2, 3, 5, 4)
    """
    values, indices = _fractional_max_pool(input, kernel_size, output_size, output_ratio, _random_samples, 2)
    return (values, indices) if return_indices else values


@autocast_op("fractional_max_pool3d")
def fractional_max_pool3d_with_indices(
    input: Any,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> tuple[jax.Array, jax.Array]:
    r"""3-D fractional max pooling that returns ``(values, indices)``; see :func:`fractional_max_pool3d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> out, idx = F.fractional_max_pool3d_with_indices(jnp.ones((1, 2, 6, 6, 6)), 2, output_size=3)
        >>> out.shape, idx.shape
        ((1, 2, 3, 3, 3), (1, 2, 3, 3, 3))
    """
    return _fractional_max_pool(input, kernel_size, output_size, output_ratio, _random_samples, 3)


@autocast_op("fractional_max_pool3d")
def fractional_max_pool3d(
    input: Any,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Any:
    r"""3-D fractional max pooling over ``(N, C, T, H, W)`` or ``(C, T, H, W)`` input.

    As :func:`fractional_max_pool2d`, over ``kT x kH x kW`` windows.

    Args:
        input: ``(N, C, T_in, H_in, W_in)`` or ``(C, T_in, H_in, W_in)``.
        kernel_size: window size, ``k`` or ``(kT, kH, kW)``.
        output_size: ``o`` or ``(oT, oH, oW)``; needs :math:`o + k - 1 <` input size
            (strictly, as torch's 3-d check).
        output_ratio: alternatively, ``r`` or ``(rT, rH, rW)``.
        return_indices: also return the argmax as indices into the flattened ``T*H*W``
            volume (for :func:`max_unpool3d`).
        _random_samples: ``(N, C, 3)`` samples in ``[0, 1)`` of the input's dtype
            (components 0, 1, 2 place the windows along T, H, W).

    Shape:
        - Input: :math:`(N, C, T_{in}, H_{in}, W_{in})` or :math:`(C, T_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, T_{out}, H_{out}, W_{out})` or :math:`(C, T_{out}, H_{out}, W_{out})`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.fractional_max_pool3d(jnp.ones((2, 5, 7, 8)), (2, 3, 3), output_ratio=0.5).shape
        (2, 2, 3, 4)
    """
    values, indices = _fractional_max_pool(input, kernel_size, output_size, output_ratio, _random_samples, 3)
    return (values, indices) if return_indices else values
