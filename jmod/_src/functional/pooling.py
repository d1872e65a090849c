"""Pooling: max/avg/lp pooling, adaptive pooling and max-unpooling (torch.nn.functional semantics).

Inputs are ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; pooling acts on the
trailing 1, 2 or 3 dimensions.

How torch's rules are reproduced:

* Output sizes use torch's ``pooling_output_shape``: with ``ceil_mode`` the last
  window must start inside the input or the left padding.
* ``max_pool`` without indices is ``lax.reduce_window(max)`` over the ``-inf``-padded
  input; its gradient goes to the first maximal element of each window in row-major
  order, which is where torch sends it.
* ``max_pool`` with indices (and adaptive max pooling) gathers each window and picks
  the element torch's CPU kernel picks: the first maximum, the *last* NaN if there is
  one, and the window's first in-bounds element when everything is ``-inf``. Values
  are then taken at that element, so the gradient follows the returned index.
* ``avg_pool`` sums the zero-padded window and divides by torch's divisor: the window
  clipped to ``input + padding`` (``count_include_pad=True``) or to the input, or
  ``divisor_override``.
* Adaptive windows are torch's ``[floor(i*L/out), ceil((i+1)*L/out))``.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jmod._src import amp
from jmod._src.amp import autocast_op
from jmod._src.arrays import long_dtype, to_jax
from jmod._src.functional._args import as_int_list, dtype_name, is_int

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
]

_WORDS = {2: "two", 3: "three"}


# ----------------------------------------------------------------------------- arguments
def _pool_args(op: str, n: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, legacy_1d: bool = False):
    """Expand kernel/stride/padding/dilation to n-tuples with torch's per-op length errors."""
    k = as_int_list(kernel_size, op, "kernel_size", 2)
    s = [] if stride is None else as_int_list(stride, op, "stride", 3)
    p = as_int_list(padding, op, "padding", 4)
    d = as_int_list(dilation, op, "dilation", 5)
    if n == 1:
        if legacy_1d:  # torch.max_pool1d (no indices) has its own checks
            checks = [
                (k, "kernel_size must be an int, list of ints or tuple of ints", False),
                (s, "stride must be None, an int, list of ints, or tuple of ints", True),
                (p, "padding must be an int, list of ints, or tuple of ints", False),
                (d, "dilation must be an int, list of ints, or tuple of ints", False),
            ]
            for values, msg, may_be_empty in checks:
                if len(values) != 1 and not (may_be_empty and len(values) == 0):
                    raise RuntimeError(f"{op}() {msg} of size 1 but got size {len(values)}")
        else:
            for values, name in ((k, "kernel_size"), (s, "stride"), (p, "padding"), (d, "dilation")):
                if len(values) > 1 or (len(values) == 0 and name != "stride"):
                    raise RuntimeError(f"{op}() argument '{name}' should contain one int (got {len(values)})")
    else:
        word = _WORDS[n]
        either = "" if op == "avg_pool3d" else "either "
        if len(k) not in (1, n):
            raise RuntimeError(f"{op}: kernel_size must {either}be a single int, or a tuple of {word} ints")
        if len(s) not in (0, 1, n):
            raise RuntimeError(f"{op}: stride must {either}be omitted, a single int, or a tuple of {word} ints")
        if len(p) not in (1, n):
            raise RuntimeError(f"{op}: padding must {either}be a single int, or a tuple of {word} ints")
        if len(d) not in (1, n):
            raise RuntimeError(f"{op}: dilation must be either a single int, or a tuple of {word} ints")
    k = tuple(k) * n if len(k) == 1 else tuple(k)
    s = k if len(s) == 0 else (tuple(s) * n if len(s) == 1 else tuple(s))
    p = tuple(p) * n if len(p) == 1 else tuple(p)
    d = tuple(d) * n if len(d) == 1 else tuple(d)
    return k, s, p, d


def _pooling_output_shape(size: int, k: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape`` (checks included)."""
    if stride == 0:
        raise RuntimeError("stride should not be zero")
    if pad < 0:
        raise RuntimeError(f"pad must be non-negative, but got pad: {pad}")
    if pad > ((k - 1) * dilation + 1) // 2:
        raise RuntimeError(
            f"pad should be at most half of effective kernel size, but got pad={pad}, kernel_size={k} and "
            f"dilation={dilation}"
        )
    out = (size + 2 * pad - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _shape_check(
    x: jax.Array, op: str, n: int, k: tuple, s: tuple, p: tuple, d: tuple, out: list[int], lifted_1d: bool
) -> None:
    """torch's pool{2,3}d_shape_check: the value checks that follow the output-size computation."""
    shape = list(x.shape)
    if n == 2:
        if any(v <= 0 for v in k):
            raise RuntimeError(f"kernel size should be greater than zero, but got kH: {k[0]} kW: {k[1]}")
        if any(v <= 0 for v in s):
            raise RuntimeError(f"stride should be greater than zero, but got dH: {s[0]} dW: {s[1]}")
        if any(v <= 0 for v in d):
            raise RuntimeError(f"dilation should be greater than zero, but got dilationH: {d[0]} dilationW: {d[1]}")
        if 0 in shape[1:] or x.ndim not in (3, 4):
            raise RuntimeError(
                f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:{shape}"
            )
        if not (k[1] // 2 >= p[1] and k[0] // 2 >= p[0]):
            raise RuntimeError(
                f"pad should be smaller than or equal to half of kernel size, but got padW = {p[1]}, padH = {p[0]}, "
                f"kW = {k[1]}, kH = {k[0]}"
            )
    else:
        if any(v <= 0 for v in k):
            raise RuntimeError(f"kernel size should be greater than zero, but got kT: {k[0]} kH: {k[1]} kW: {k[2]}")
        if any(v <= 0 for v in s):
            raise RuntimeError(f"stride should be greater than zero, but got dT: {s[0]} dH: {s[1]} dW: {s[2]}")
        if any(v <= 0 for v in d):
            raise RuntimeError(
                f"dilation should be greater than zero, but got dilationT: {d[0]} dilationH: {d[1]} dilationW: {d[2]}"
            )
        if 0 in shape[1:]:
            # torch prints the zero length, not the dimension index
            name = "max_pool3d_with_indices_out_cpu_template" if op == "max_pool3d" else op
            raise RuntimeError(
                f"{name}(): Expected input's non-batch dimensions to have positive length, but input has a shape of "
                f"{shape} and non-batch dimension 0 has length zero!"
            )
        if not (k[2] // 2 >= p[2] and k[1] // 2 >= p[1] and k[0] // 2 >= p[0]):
            raise RuntimeError(
                f"pad should be smaller than or equal to half of kernel size, but got kT: {k[0]} kW: {k[2]} kH: {k[1]} "
                f"padT: {p[0]} padW: {p[2]} padH: {p[1]}"
            )
    if any(o < 1 for o in out):
        if op == "avg_pool3d":
            raise RuntimeError(
                f"input image (T: {shape[-3]} H: {shape[-2]} W: {shape[-1]}) smaller than kernel size "
                f"(kT: {k[0]} kH: {k[1]} kW: {k[2]})"
            )
        ins = "x".join(str(v) for v in shape[-n - 1 :])
        outs = "x".join(str(v) for v in [shape[-n - 1], *out])
        raise RuntimeError(f"Given input size: ({ins}). Calculated output size: ({outs}). Output size is too small")


def _prepare(
    input: Any,
    op: str,
    n: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    legacy_1d: bool = False,
):
    """Validate like torch and return ``(x, k, s, p, d, out_sizes)``."""
    x = to_jax(input)
    k, s, p, d = _pool_args(op, n, kernel_size, stride, padding, dilation, legacy_1d)
    if n == 1 and legacy_1d:
        if x.ndim not in (2, 3) or 0 in x.shape[1:] or (x.ndim == 2 and 0 in x.shape):
            raise RuntimeError(
                f"{op}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for input, but got:"
                f"{list(x.shape)}"
            )
        if k[0] <= 0:
            raise RuntimeError(f"{op}() kernel_size must be greater than zero, but got {k[0]}")
        if s[0] <= 0:
            raise RuntimeError(f"{op}() stride must be greater than zero, but got {s[0]}")
        if p[0] < 0:
            raise RuntimeError(f"{op}() padding must be non-negative, but got {p[0]}")
        if p[0] > k[0] // 2:
            raise RuntimeError(
                f"{op}() padding should be at most half of kernel size, but got padding={p[0]} and kernel_size={k[0]}"
            )
        if d[0] <= 0:
            raise RuntimeError(f"{op}() dilation must be greater than zero, but got {d[0]}")
        out = _pooling_output_shape(x.shape[-1], k[0], p[0], s[0], d[0], ceil_mode)
        if out <= 0:
            raise RuntimeError(f"{op}() Invalid computed output size: {out}")
        return x, k, s, p, d, [out]
    if n == 1:
        # torch runs these through the 2-d kernels with a unit height
        if x.ndim not in (2, 3):
            raise RuntimeError(
                f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument #1 'self' "
                f"(while checking arguments for {op})"
            )
        lifted = x[..., None, :]
        k2, s2, p2, d2 = (1, k[0]), (1, s[0]), (0, p[0]), (1, d[0])
        out2 = [_pooling_output_shape(lifted.shape[-2 + i], k2[i], p2[i], s2[i], d2[i], ceil_mode) for i in range(2)]
        _shape_check(lifted, op, 2, k2, s2, p2, d2, out2, True)
        return x, k, s, p, d, out2[1:]
    if x.ndim not in (n + 1, n + 2):
        if op == "avg_pool2d":
            if x.ndim < 3:
                raise IndexError(
                    f"Dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], but got -3)"
                )
            raise RuntimeError(
                "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:"
                f"{list(x.shape)}"
            )
        raise RuntimeError(f"non-empty {n + 1}D or {n + 2}D (batch mode) tensor expected for input")
    out = [_pooling_output_shape(x.shape[-n + i], k[i], p[i], s[i], d[i], ceil_mode) for i in range(n)]
    _shape_check(x, op, n, k, s, p, d, out, False)
    return x, k, s, p, d, out


def _pad_value(dtype: Any) -> Any:
    if jnp.issubdtype(dtype, jnp.floating):
        return -jnp.inf
    if dtype == jnp.bool_:
        return False
    return jnp.iinfo(dtype).min


def _pad_trailing(x: jax.Array, n: int, lows: list[int], highs: list[int], value: Any) -> jax.Array:
    """lax.pad the trailing ``n`` dims; negative ``highs`` crop (windows that never reach the end)."""
    config = [(0, 0, 0)] * (x.ndim - n) + [(lo, hi, 0) for lo, hi in zip(lows, highs)]
    return lax.pad(x, jnp.asarray(value, x.dtype), config)


def _window_extent(out: int, k: int, s: int, d: int) -> int:
    return (out - 1) * s + d * (k - 1) + 1


# ----------------------------------------------------------------------------- max pool
# The computational cores are jitted with static shapes and options: one XLA computation
# per call instead of dozens of eagerly dispatched ops (forward and backward).
@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _max_pool(x: jax.Array, n: int, k: tuple, s: tuple, p: tuple, d: tuple, out: tuple) -> jax.Array:
    sizes = x.shape[-n:]
    highs = [_window_extent(out[i], k[i], s[i], d[i]) - sizes[i] - p[i] for i in range(n)]
    xp = _pad_trailing(x, n, list(p), highs, _pad_value(x.dtype))
    lead = x.ndim - n
    return lax.reduce_window(
        xp,
        np.array(_pad_value(x.dtype), x.dtype),  # a concrete init: JAX then knows the max monoid
        lax.max,
        window_dimensions=(1,) * lead + tuple(k),
        window_strides=(1,) * lead + tuple(s),
        padding=[(0, 0)] * x.ndim,
    )


def _select_torch_max(patches: jax.Array, default_tap: Any, pad_value: Any) -> jax.Array:
    """Index (along the last axis) of the element torch's CPU max-pooling kernel picks.

    torch scans the window in order keeping ``val > max || isnan(val)``: the first
    maximum wins, any NaN beats it and the last NaN wins; if nothing beats the initial
    ``-inf`` the index stays at the window's first in-bounds element.
    """
    K = patches.shape[-1]
    mx = jnp.max(patches, axis=-1, keepdims=True)
    first_max = jnp.argmax(patches == mx, axis=-1)
    found = mx[..., 0] > pad_value
    sel = jnp.where(found, first_max, default_tap)
    if jnp.issubdtype(patches.dtype, jnp.floating):
        is_nan = jnp.isnan(patches)
        last_nan = K - 1 - jnp.argmax(is_nan[..., ::-1], axis=-1)
        sel = jnp.where(is_nan.any(axis=-1), last_nan, sel)
    return sel


def _patches(x: jax.Array, n: int, k: tuple, s: tuple, p: tuple, d: tuple, out: tuple, pad_value: Any) -> jax.Array:
    """``(..., *out, prod(k))``: every window's elements, row-major tap order (torch's scan order)."""
    sizes = x.shape[-n:]
    highs = [_window_extent(out[i], k[i], s[i], d[i]) - sizes[i] - p[i] for i in range(n)]
    xp = _pad_trailing(x, n, list(p), highs, pad_value)
    lead = x.ndim - n
    taps = []  # one strided slice per tap
    for offs in itertools.product(*[range(kk) for kk in k]):
        start = [0] * lead + [offs[i] * d[i] for i in range(n)]
        limit = list(x.shape[:lead]) + [offs[i] * d[i] + (out[i] - 1) * s[i] + 1 for i in range(n)]
        taps.append(lax.slice(xp, start, limit, (1,) * lead + tuple(s)))
    return jnp.stack(taps, axis=-1)


def _torch_selection(x: jax.Array, n: int, k: tuple, s: tuple, p: tuple, d: tuple, out: tuple):
    """``(patches, sel)``: the gathered windows and the tap torch's kernel picks in each."""
    pad_value = _pad_value(x.dtype)
    patches = _patches(x, n, k, s, p, d, out, pad_value)
    # torch's default tap when nothing beats -inf: the first in-bounds element per dim
    default = np.zeros([out[i] for i in range(n)], np.int64)
    for i in range(n):
        origin = np.arange(out[i]) * s[i] - p[i]
        first = np.minimum(np.where(origin < 0, -(origin // d[i]), 0), k[i] - 1)  # ceil(-origin / d)
        shape = [1] * n
        shape[i] = out[i]
        default = default * k[i] + first.reshape(shape)
    return patches, _select_torch_max(patches, jnp.asarray(default), pad_value)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _max_pool_with_indices(x: jax.Array, n: int, k: tuple, s: tuple, p: tuple, d: tuple, out: tuple):
    sizes = x.shape[-n:]
    patches, sel = _torch_selection(x, n, k, s, p, d, out)
    values = jnp.take_along_axis(patches, sel[..., None], axis=-1)[..., 0]
    # flat input index of the chosen tap
    coords = [np.arange(out[i])[:, None] * s[i] - p[i] + np.arange(k[i])[None, :] * d[i] for i in range(n)]
    tap_idx = jnp.unravel_index(sel, k)
    idx = jnp.zeros(sel.shape, jnp.int32)
    for i in range(n):
        shape = [1] * n
        shape[i] = out[i]
        o_idx = jnp.asarray(np.arange(out[i]).reshape(shape))
        c = jnp.asarray(coords[i])[o_idx, tap_idx[i]]
        idx = idx * sizes[i] + c
    return values, idx.astype(long_dtype())


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4, 5, 6))
def _max_pool_values(x: jax.Array, n: int, k: tuple, s: tuple, p: tuple, d: tuple, out: tuple) -> jax.Array:
    """Max pooling values; the derivative follows torch's choice of element (see ``_select_torch_max``).

    The forward is the cheap ``reduce_window``. Its own derivative (XLA's
    select-and-scatter) agrees with torch on ties but not on NaN windows, and JAX has
    none for dilated windows, so the tangent is taken from the element torch selects.
    Being a JVP, it serves forward and reverse mode alike.
    """
    if any(v != 1 for v in d):
        return _max_pool_with_indices(x, n, k, s, p, d, out)[0]
    return _max_pool(x, n, k, s, p, d, out)


@_max_pool_values.defjvp
def _max_pool_values_jvp(n, k, s, p, d, out, primals, tangents):
    (x,), (t,) = primals, tangents
    y = _max_pool_values(x, n, k, s, p, d, out)
    _, sel = _torch_selection(lax.stop_gradient(x), n, k, s, p, d, out)
    t_patches = _patches(t, n, k, s, p, d, out, 0)
    return y, jnp.take_along_axis(t_patches, sel[..., None], axis=-1)[..., 0]


def _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, n):
    op = f"max_pool{n}d"
    legacy = n == 1 and not return_indices
    x, k, s, p, d, out = _prepare(input, op, n, kernel_size, stride, padding, dilation, ceil_mode, legacy)
    out = tuple(out)
    if return_indices:
        return _max_pool_with_indices(x, n, k, s, p, d, out)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return (
            _max_pool(x, n, k, s, p, d, out)
            if all(v == 1 for v in d)
            else _max_pool_with_indices(x, n, k, s, p, d, out)[0]
        )
    return _max_pool_values(x, n, k, s, p, d, out)


def max_pool1d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    r"""1-D max pooling over ``(N, C, L)`` or ``(C, L)`` input.

    Args:
        input: ``(N, C, L_in)`` or ``(C, L_in)``.
        kernel_size: window size.
        stride: window stride (default: ``kernel_size``).
        padding: implicit ``-inf`` padding on both sides, at most ``kernel_size / 2``.
        dilation: spacing between window elements.
        ceil_mode: use ceil instead of floor for the output size (the last window must
            still start inside the input or the left padding).
        return_indices: also return the flat argmax indices (for ``max_unpool1d``).

    Returns:
        ``(N, C, L_out)`` with :math:`L_{out} = \left\lfloor\frac{L_{in} + 2p - d(k-1) - 1}{s}\right\rfloor + 1`
        (ceil in ``ceil_mode``), and the indices if requested.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.max_pool1d(jnp.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2, return_indices=True)
        (Array([[[3., 5.]]], dtype=float32), Array([[[1, 3]]], dtype=int32))
    """
    return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    r"""2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``.
        kernel_size: window size (int or ``(kH, kW)``).
        stride: window stride (default: ``kernel_size``).
        padding: implicit ``-inf`` padding, at most half the effective kernel size.
        dilation: spacing between window elements.
        ceil_mode: use ceil instead of floor for the output size.
        return_indices: also return the argmax as indices into the flattened ``H*W``
            plane (torch's long dtype: int64 with x64 enabled, else int32).

    Returns:
        ``(N, C, H_out, W_out)``, each size
        :math:`\left\lfloor\frac{X_{in} + 2p - d(k-1) - 1}{s}\right\rfloor + 1`, and the indices if requested.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.max_pool2d(jnp.arange(16.0).reshape(1, 1, 4, 4), 3, stride=2, padding=1)
        Array([[[[ 5.,  7.],
                 [13., 15.]]]], dtype=float32)
    """
    return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


@autocast_op(amp.max_pool3d_op)
def max_pool3d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    r"""3-D max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input.

    Args:
        input: ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``.
        kernel_size: window size (int or 3-tuple).
        stride: window stride (default: ``kernel_size``).
        padding: implicit ``-inf`` padding, at most half the effective kernel size.
        dilation: spacing between window elements.
        ceil_mode: use ceil instead of floor for the output size.
        return_indices: also return the argmax as indices into the flattened ``D*H*W`` volume.

    Returns:
        ``(N, C, D_out, H_out, W_out)`` and the indices if requested.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.max_pool3d(jnp.ones((1, 2, 5, 5, 5)), 2, ceil_mode=True).shape
        (1, 2, 3, 3, 3)
    """
    return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3)


def max_pool1d_with_indices(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """:func:`max_pool1d` that always returns ``(values, indices)``."""
    return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, True, 1)


def max_pool2d_with_indices(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """:func:`max_pool2d` that always returns ``(values, indices)``."""
    return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, True, 2)


def max_pool3d_with_indices(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """:func:`max_pool3d` that always returns ``(values, indices)``."""
    return _max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, True, 3)


# ----------------------------------------------------------------------------- avg pool
def _avg_divisor(size: int, k: int, s: int, p: int, out: int, count_include_pad: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-window divisor factor along one dim, and whether the window touches the input."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    pool = end - start
    lo = np.maximum(start, 0)
    hi = np.minimum(end, size)
    valid = hi - lo
    return (pool if count_include_pad else valid), valid > 0


def _avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, n):
    op = f"avg_pool{n}d"
    x, k, s, p, _, out = _prepare(input, op, n, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    div = None if divisor_override is None else int(divisor_override)
    return _avg_pool_core(x, n, k, s, p, tuple(out), bool(count_include_pad), div)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6, 7))
def _avg_pool_core(
    x: jax.Array, n: int, k: tuple, s: tuple, p: tuple, out: tuple, count_include_pad: bool, divisor_override: Any
) -> jax.Array:
    sizes = x.shape[-n:]
    highs = [_window_extent(out[i], k[i], s[i], 1) - sizes[i] - p[i] for i in range(n)]
    xp = _pad_trailing(x, n, list(p), highs, 0)
    lead = x.ndim - n
    summed = lax.reduce_window(
        xp,
        np.array(0, x.dtype),
        lax.add,
        window_dimensions=(1,) * lead + tuple(k),
        window_strides=(1,) * lead + tuple(s),
        padding=[(0, 0)] * x.ndim,
    )
    divisor = np.ones((), np.int64)
    inside = np.ones((), bool)
    for i in range(n):
        div_i, valid_i = _avg_divisor(sizes[i], k[i], s[i], p[i], out[i], count_include_pad)
        shape = [1] * n
        shape[i] = out[i]
        divisor = divisor * div_i.reshape(shape)
        inside = inside & valid_i.reshape(shape)
    if divisor_override is not None:
        divisor = np.full(divisor.shape, divisor_override, np.int64)
    # windows entirely in the padding give 0, as torch (which skips them)
    divisor = np.where(inside, divisor, 1)
    inside_j = jnp.asarray(inside)
    if jnp.issubdtype(x.dtype, jnp.integer):
        # integer inputs: truncating division, as torch's integer kernel
        quotient = lax.div(summed, jnp.broadcast_to(jnp.asarray(divisor, x.dtype), summed.shape))
        return jnp.where(inside_j, quotient, jnp.zeros((), x.dtype))
    return jnp.where(inside_j, summed / jnp.asarray(divisor, x.dtype), jnp.zeros((), x.dtype))


def avg_pool1d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> jax.Array:
    r"""1-D average pooling over ``(N, C, L)`` or ``(C, L)`` input.

    Args:
        input: ``(N, C, L_in)`` or ``(C, L_in)``.
        kernel_size: window size.
        stride: window stride (default: ``kernel_size``).
        padding: implicit zero padding on both sides, at most ``kernel_size / 2``.
        ceil_mode: use ceil instead of floor for the output size.
        count_include_pad: count the zero padding in the divisor.

    Returns:
        ``(N, C, L_out)``, :math:`L_{out} = \left\lfloor\frac{L_{in} + 2p - k}{s}\right\rfloor + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.avg_pool1d(jnp.array([[[1.0, 2, 3, 4, 5, 6, 7]]]), kernel_size=3, stride=2)
        Array([[[2., 4., 6.]]], dtype=float32)
    """
    return _avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def avg_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    r"""2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)`` input.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``.
        kernel_size: window size (int or ``(kH, kW)``).
        stride: window stride (default: ``kernel_size``).
        padding: implicit zero padding, at most half the kernel size.
        ceil_mode: use ceil instead of floor for the output size.
        count_include_pad: count the zero padding in the divisor.
        divisor_override: if given, the divisor for every window.

    Returns:
        ``(N, C, H_out, W_out)``, each size :math:`\left\lfloor\frac{X_{in} + 2p - k}{s}\right\rfloor + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.avg_pool2d(jnp.ones((1, 1, 3, 3)), 2, padding=1, count_include_pad=False)
        Array([[[[1., 1.],
                 [1., 1.]]]], dtype=float32)
    """
    return _avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2)


@autocast_op("avg_pool3d")
def avg_pool3d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    r"""3-D average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input.

    Args:
        input: ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``.
        kernel_size: window size (int or 3-tuple).
        stride: window stride (default: ``kernel_size``).
        padding: implicit zero padding, at most half the kernel size.
        ceil_mode: use ceil instead of floor for the output size.
        count_include_pad: count the zero padding in the divisor.
        divisor_override: if given, the divisor for every window.

    Returns:
        ``(N, C, D_out, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.avg_pool3d(jnp.ones((1, 2, 4, 4, 4)), 2).shape
        (1, 2, 2, 2, 2)
    """
    return _avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3)


# ----------------------------------------------------------------------------- lp pool
def _lp_pool(input: Any, norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool, n: int) -> jax.Array:
    x = to_jax(input)
    kernel_size = tuple(kernel_size) if hasattr(kernel_size, "__len__") else kernel_size
    stride = tuple(stride) if hasattr(stride, "__len__") else stride
    return _lp_pool_core(x, norm_type, kernel_size, stride, bool(ceil_mode), n)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _lp_pool_core(x: jax.Array, norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool, n: int) -> jax.Array:
    max_fn = {1: max_pool1d, 2: max_pool2d, 3: max_pool3d}[n]
    avg_fn = {1: avg_pool1d, 2: avg_pool2d, 3: avg_pool3d}[n]
    if isinstance(norm_type, (int, float)):
        if norm_type == math.inf:
            return max_fn(jnp.abs(x), kernel_size, stride, 0, 1, ceil_mode)
        if norm_type == -math.inf:
            return -max_fn(-jnp.abs(x), kernel_size, stride, 0, 1, ceil_mode)
    k = as_int_list(kernel_size, f"lp_pool{n}d", "kernel_size", 3)
    k = k * n if len(k) == 1 else k
    # x ** p with an integral p is an exact product (torch's pow does the same)
    p = float(norm_type)
    powered = lax.integer_pow(x, int(p)) if p.is_integer() else jnp.power(x, p)
    out = avg_fn(powered, kernel_size, stride, 0, ceil_mode)
    return jnp.power(jnp.sign(out) * jax.nn.relu(jnp.abs(out)) * math.prod(k), 1.0 / p)


@autocast_op(amp.lp_pool_op(1))
def lp_pool1d(input: Any, norm_type: float, kernel_size: int, stride: Any = None, ceil_mode: bool = False) -> jax.Array:
    r"""1-D power-average pooling: :math:`(\sum_{x \in X} x^p)^{1/p}` over each window.

    Computed as torch does, from ``avg_pool1d(x ** p)`` times the window size (windows
    that ``ceil_mode`` lets hang over the end are rescaled by the full window size, as
    in torch). ``p = inf`` is max pooling of ``|x|``.

    Args:
        input: ``(N, C, L_in)`` or ``(C, L_in)``.
        norm_type: the exponent ``p``.
        kernel_size: window size.
        stride: window stride (default: ``kernel_size``).
        ceil_mode: use ceil instead of floor for the output size.

    Returns:
        ``(N, C, L_out)``, :math:`L_{out} = \left\lfloor\frac{L_{in} - k}{s}\right\rfloor + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.lp_pool1d(jnp.array([[[3.0, 4.0, 1.0, 1.0]]]), 2, 2)
        Array([[[5.       , 1.4142135]]], dtype=float32)
    """
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1)


@autocast_op(amp.lp_pool_op(2))
def lp_pool2d(input: Any, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> jax.Array:
    r"""2-D power-average pooling: :math:`(\sum_{x \in X} x^p)^{1/p}` over each window.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``.
        norm_type: the exponent ``p``.
        kernel_size: window size (int or ``(kH, kW)``).
        stride: window stride (default: ``kernel_size``).
        ceil_mode: use ceil instead of floor for the output size.

    Returns:
        ``(N, C, H_out, W_out)``, each size :math:`\left\lfloor\frac{X_{in} - k}{s}\right\rfloor + 1`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.lp_pool2d(jnp.ones((1, 1, 4, 4)), 2, 2)
        Array([[[[2., 2.],
                 [2., 2.]]]], dtype=float32)
    """
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2)


@autocast_op(amp.lp_pool_op(3))
def lp_pool3d(input: Any, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> jax.Array:
    r"""3-D power-average pooling: :math:`(\sum_{x \in X} x^p)^{1/p}` over each window.

    Args:
        input: ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``.
        norm_type: the exponent ``p``.
        kernel_size: window size (int or 3-tuple).
        stride: window stride (default: ``kernel_size``).
        ceil_mode: use ceil instead of floor for the output size.

    Returns:
        ``(N, C, D_out, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.lp_pool3d(jnp.ones((1, 1, 2, 2, 2)), 1, 2)
        Array([[[[[8.]]]]], dtype=float32)
    """
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3)


# ----------------------------------------------------------------------------- adaptive
def _adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(out)
    start = (i * size) // out
    end = ((i + 1) * size + out - 1) // out
    return start, end


def _adaptive_args(input: Any, output_size: Any, n: int, op: str, is_max: bool) -> tuple[jax.Array, list[int]]:
    x = to_jax(input)
    if n == 1:
        if output_size is None or (not is_int(output_size) and not hasattr(output_size, "__len__")):
            raise TypeError(
                f"{op}(): argument 'output_size' (position 2) must be tuple of ints, not {type(output_size).__name__}"
            )
        sizes = as_int_list(output_size, op, "output_size", 2)
        if len(sizes) != 1:
            raise RuntimeError(f"{op}() argument 'output_size' should contain one int (got {len(sizes)})")
        if x.ndim not in (2, 3):
            raise RuntimeError(
                f"Expected 2 to 3 dimensions, but got {x.ndim}-dimensional tensor for argument #1 'self' "
                f"(while checking arguments for {op})"
            )
        if 0 in x.shape[1:] or (x.ndim == 2 and x.shape[0] == 0):
            if is_max:
                raise RuntimeError(
                    f"{op}(): Expected input to have non-zero size for non-batch dimensions, but input has sizes "
                    f"{list(x.shape)} with dimension {x.ndim - 1} being empty"
                )
            lifted = list(x.shape[:-1]) + [1, x.shape[-1]]
            raise RuntimeError(
                "adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch dimensions, but input has "
                f"sizes {lifted} with dimension {len(lifted) - 1} being empty"
            )
    else:
        if is_int(output_size):
            sizes = [int(output_size)] * n
        else:
            sizes = list(output_size)
            if any(v is None for v in sizes):
                if x.ndim <= len(sizes):
                    raise ValueError(f"Input dimension should be at least {len(sizes) + 1}")
                sizes = [x.shape[x.ndim - len(sizes) + i] if v is None else v for i, v in enumerate(sizes)]
            sizes = [int(v) for v in sizes]
        if x.ndim not in (n + 1, n + 2):
            sep = ": " if is_max else " "
            raise RuntimeError(f"{op}(): Expected {n + 1}D or {n + 2}D tensor, but got{sep}{list(x.shape)}")
        if len(sizes) != n:
            if is_max:
                raise RuntimeError(f"{op}(): internal error: output_size.size() must be {n}")
            raise RuntimeError(f"{op}: output_size must be {n}")
        for i in range(1, x.ndim):
            if x.shape[i] == 0:
                raise RuntimeError(
                    f"{op}(): Expected input to have non-zero size for non-batch dimensions, but input has sizes "
                    f"{list(x.shape)} with dimension {i} being empty"
                )
        if any(v < 0 for v in sizes):
            shown = ", ".join(str(v) for v in sizes)
            raise RuntimeError(
                f"{op}: elements of output_size must be greater than or equal to 0 but received {{{shown}}}"
            )
    return x, sizes


def _adaptive_avg(input: Any, output_size: Any, n: int) -> jax.Array:
    op = f"adaptive_avg_pool{n}d"
    x, sizes = _adaptive_args(input, output_size, n, op, False)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise NotImplementedError(f"\"adaptive_avg_pool{max(n, 2)}d\" not implemented for '{dtype_name(x.dtype)}'")
    # the average over a box is the average over each axis in turn
    for i in range(n):
        axis = x.ndim - n + i
        size, out = x.shape[axis], sizes[i]
        if out == 0:
            x = jnp.zeros(x.shape[:axis] + (0,) + x.shape[axis + 1 :], x.dtype)
            continue
        if size % out == 0:
            k = size // out
            x = jnp.mean(x.reshape(x.shape[:axis] + (out, k) + x.shape[axis + 1 :]), axis=axis + 1)
            continue
        start, end = _adaptive_windows(size, out)
        K = int((end - start).max())
        idx = start[:, None] + np.arange(K)[None, :]
        mask = idx < end[:, None]
        idx = np.minimum(idx, size - 1)
        g = jnp.take(x, jnp.asarray(idx.reshape(-1), jnp.int32), axis=axis, mode="clip")
        g = g.reshape(x.shape[:axis] + (out, K) + x.shape[axis + 1 :])
        m = jnp.asarray(mask.reshape((out, K) + (1,) * (x.ndim - axis - 1)))
        summed = jnp.sum(jnp.where(m, g, jnp.zeros((), x.dtype)), axis=axis + 1)
        count = jnp.asarray((end - start).reshape((out,) + (1,) * (x.ndim - axis - 1)), x.dtype)
        x = summed / count
    return x


def _adaptive_max(input: Any, output_size: Any, n: int, return_indices: bool) -> Any:
    op = f"adaptive_max_pool{n}d"
    x, sizes = _adaptive_args(input, output_size, n, op, True)
    return _adaptive_max_core(x, n, tuple(sizes), bool(return_indices))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _adaptive_max_core(x: jax.Array, n: int, sizes: tuple, return_indices: bool) -> Any:
    spatial = x.shape[-n:]
    lead = x.ndim - n
    if 0 in sizes:
        shape = x.shape[:lead] + tuple(sizes)
        values = jnp.zeros(shape, x.dtype)
        return (values, jnp.zeros(shape, long_dtype())) if return_indices else values
    # gather every window (padded to the longest window by repeating its last element,
    # which changes neither the max nor the first/last position of a max or NaN)
    idxs, Ks = [], []
    for i in range(n):
        start, end = _adaptive_windows(spatial[i], sizes[i])
        K = int((end - start).max())
        idx = np.minimum(start[:, None] + np.arange(K)[None, :], end[:, None] - 1)
        idxs.append(idx)
        Ks.append(K)
    g = x
    for i in range(n):
        axis = lead + 2 * i
        g = jnp.take(g, jnp.asarray(idxs[i].reshape(-1), jnp.int32), axis=axis, mode="clip")
        g = g.reshape(g.shape[:axis] + (sizes[i], Ks[i]) + g.shape[axis + 1 :])
    # (..., o1, K1, o2, K2, ...) -> (..., o1, o2, ..., K1*K2*...)
    perm = list(range(lead)) + [lead + 2 * i for i in range(n)] + [lead + 2 * i + 1 for i in range(n)]
    patches = jnp.transpose(g, perm).reshape(x.shape[:lead] + tuple(sizes) + (math.prod(Ks),))
    sel = _select_torch_max(patches, 0, _pad_value(x.dtype))
    values = jnp.take_along_axis(patches, sel[..., None], axis=-1)[..., 0]
    if not return_indices:
        return values
    taps = jnp.unravel_index(sel, Ks)
    idx = jnp.zeros(sel.shape, jnp.int32)
    for i in range(n):
        shape = [1] * n
        shape[i] = sizes[i]
        o_idx = jnp.asarray(np.arange(sizes[i]).reshape(shape))
        idx = idx * spatial[i] + jnp.asarray(idxs[i])[o_idx, taps[i]]
    return values, idx.astype(long_dtype())


def adaptive_avg_pool1d(input: Any, output_size: Any) -> jax.Array:
    r"""1-D adaptive average pooling to ``output_size`` elements.

    Window ``i`` covers :math:`[\lfloor iL/out \rfloor, \lceil (i+1)L/out \rceil)`, as torch.

    Args:
        input: ``(N, C, L_in)`` or ``(C, L_in)``.
        output_size: the target length (int or 1-tuple).

    Returns:
        ``(N, C, output_size)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.adaptive_avg_pool1d(jnp.array([[[1.0, 2, 3, 4, 5]]]), 3)
        Array([[[1.5, 3. , 4.5]]], dtype=float32)
    """
    return _adaptive_avg(input, output_size, 1)


def adaptive_avg_pool2d(input: Any, output_size: Any) -> jax.Array:
    r"""2-D adaptive average pooling to ``output_size``.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``.
        output_size: int or ``(H_out, W_out)``; a ``None`` entry keeps the input size.

    Returns:
        ``(N, C, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.adaptive_avg_pool2d(jnp.ones((2, 3, 7, 5)), (3, None)).shape
        (2, 3, 3, 5)
    """
    return _adaptive_avg(input, output_size, 2)


@autocast_op("adaptive_avg_pool3d")
def adaptive_avg_pool3d(input: Any, output_size: Any) -> jax.Array:
    r"""3-D adaptive average pooling to ``output_size``.

    Args:
        input: ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``.
        output_size: int or 3-tuple; ``None`` entries keep the input size.

    Returns:
        ``(N, C, D_out, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.adaptive_avg_pool3d(jnp.ones((1, 2, 5, 6, 7)), 1).shape
        (1, 2, 1, 1, 1)
    """
    return _adaptive_avg(input, output_size, 3)


def adaptive_max_pool1d(input: Any, output_size: Any, return_indices: bool = False) -> Any:
    r"""1-D adaptive max pooling to ``output_size`` elements (windows as :func:`adaptive_avg_pool1d`).

    Args:
        input: ``(N, C, L_in)`` or ``(C, L_in)``.
        output_size: the target length.
        return_indices: also return the argmax indices.

    Returns:
        ``(N, C, output_size)``, and the indices if requested.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.adaptive_max_pool1d(jnp.array([[[1.0, 5, 3, 4, 2]]]), 2, return_indices=True)
        (Array([[[5., 4.]]], dtype=float32), Array([[[1, 3]]], dtype=int32))
    """
    return _adaptive_max(input, output_size, 1, return_indices)


def adaptive_max_pool2d(input: Any, output_size: Any, return_indices: bool = False) -> Any:
    r"""2-D adaptive max pooling to ``output_size``.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``.
        output_size: int or ``(H_out, W_out)``; a ``None`` entry keeps the input size.
        return_indices: also return the argmax as indices into the flattened ``H*W`` plane.

    Returns:
        ``(N, C, H_out, W_out)``, and the indices if requested.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.adaptive_max_pool2d(jnp.arange(20.0).reshape(1, 4, 5), (2, 3))
        Array([[[ 6.,  8.,  9.],
                [16., 18., 19.]]], dtype=float32)
    """
    return _adaptive_max(input, output_size, 2, return_indices)


@autocast_op("adaptive_max_pool3d")
def adaptive_max_pool3d(input: Any, output_size: Any, return_indices: bool = False) -> Any:
    r"""3-D adaptive max pooling to ``output_size``.

    Args:
        input: ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``.
        output_size: int or 3-tuple; ``None`` entries keep the input size.
        return_indices: also return the argmax as indices into the flattened volume.

    Returns:
        ``(N, C, D_out, H_out, W_out)``, and the indices if requested.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.adaptive_max_pool3d(jnp.ones((1, 2, 5, 6, 7)), (2, None, 3)).shape
        (1, 2, 2, 6, 3)
    """
    return _adaptive_max(input, output_size, 3, return_indices)


def adaptive_max_pool1d_with_indices(
    input: Any, output_size: Any, return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """:func:`adaptive_max_pool1d` that always returns ``(values, indices)``."""
    return _adaptive_max(input, output_size, 1, True)


def adaptive_max_pool2d_with_indices(
    input: Any, output_size: Any, return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """:func:`adaptive_max_pool2d` that always returns ``(values, indices)``."""
    return _adaptive_max(input, output_size, 2, True)


@autocast_op("adaptive_max_pool3d")
def adaptive_max_pool3d_with_indices(
    input: Any, output_size: Any, return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """:func:`adaptive_max_pool3d` that always returns ``(values, indices)``."""
    return _adaptive_max(input, output_size, 3, True)


# ----------------------------------------------------------------------------- unpool
def _unpool_output_size(
    input_shape: tuple, kernel_size: tuple, stride: tuple, padding: tuple, output_size: Any
) -> list[int]:
    n = len(kernel_size)
    default = [(input_shape[-n + d] - 1) * stride[d] + kernel_size[d] - 2 * padding[d] for d in range(n)]
    if output_size is None:
        ret = default
    else:
        output_size = [int(v) for v in output_size]
        if len(output_size) == n + 2:
            output_size = output_size[2:]
        if len(output_size) != n:
            raise ValueError(
                f"output_size should be a sequence containing {n} or {n + 2} elements, but it has a length of "
                f"'{len(output_size)}'"
            )
        for d in range(n):
            min_size = default[d] - stride[d]
            max_size = default[d] + stride[d]
            if not (min_size < output_size[d] < max_size):
                raise ValueError(
                    f'invalid output_size "{output_size}" (dim {d} must be between {min_size} and {max_size})'
                )
        ret = output_size
    for d in range(n):
        if ret[d] < 0:
            raise ValueError(
                "max_unpooling: output_size must contain non-negative spatial dimensions, but got "
                f"output_size[{d}]={ret[d]}"
            )
    return ret


def _max_unpool(
    input: Any, indices: Any, kernel_size: Any, stride: Any, padding: Any, output_size: Any, n: int
) -> jax.Array:
    def tup(v: Any) -> tuple:
        return tuple(v) if hasattr(v, "__len__") else (v,) * n

    x = to_jax(input)
    ind = to_jax(indices)
    k = tup(kernel_size)
    s = k if stride is None else tup(stride)
    p = tup(padding)
    out = _unpool_output_size(x.shape, k, s, p, output_size)
    if x.ndim not in (n + 1, n + 2):
        raise RuntimeError(
            f"Input to max_unpooling{n}d should be a {n + 1}d or {n + 2}d Tensor, but got a tensor with {x.ndim} dimensions."
        )
    if ind.shape != x.shape:
        raise RuntimeError(
            f"Expected shape of indices to be same as that of the input tensor ({list(x.shape)}) but got indices "
            f"tensor with shape: {list(ind.shape)}"
        )
    if not jnp.issubdtype(ind.dtype, jnp.integer):
        raise RuntimeError(f"elements in indices should be type int64 but got: {dtype_name(ind.dtype)}")
    return _unpool_scatter(x, ind.astype(jnp.int32), n, tuple(out))


def _scatter_plane(x: jax.Array, ind: jax.Array, n: int, out: tuple, add: bool) -> jax.Array:
    lead = x.shape[:-n]
    flat_x = x.reshape((-1, math.prod(x.shape[-n:])))
    flat_i = ind.reshape(flat_x.shape)
    rows = jnp.arange(flat_x.shape[0])[:, None]
    target = jnp.zeros((flat_x.shape[0], math.prod(out)), x.dtype).at[rows, flat_i]
    # indices outside the output plane are dropped (torch raises for them on CPU)
    result = target.add(flat_x, mode="drop") if add else target.set(flat_x, mode="drop")
    return result.reshape(lead + out)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _unpool_scatter(x: jax.Array, ind: jax.Array, n: int, out: tuple) -> jax.Array:
    """Scatter ``x`` to ``ind``; with overlapping pooling windows an index repeats (same value).

    torch's backward is a gather of the output gradient at ``indices``, so every
    repeat receives it. A scatter-set would give it to only one of them; the tangent
    map is therefore the scatter-*add*, whose transpose is exactly that gather.
    """
    return _scatter_plane(x, ind, n, out, add=False)


@_unpool_scatter.defjvp
def _unpool_scatter_jvp(n, out, primals, tangents):
    x, ind = primals
    t, _ = tangents
    return _unpool_scatter(x, ind, n, out), _scatter_plane(t, ind, n, out, add=True)


def max_unpool1d(
    input: Any, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, output_size: Any = None
) -> jax.Array:
    r"""Partial inverse of :func:`max_pool1d`: scatter ``input`` to ``indices``, zeros elsewhere.

    Args:
        input: ``(N, C, L_in)`` or ``(C, L_in)``.
        indices: the indices returned by ``max_pool1d(..., return_indices=True)``.
        kernel_size, stride, padding: those of the max pooling (``stride`` defaults
            to ``kernel_size``).
        output_size: the exact output length (default
            :math:`(L_{in} - 1) s - 2p + k`), to undo an ambiguous pooling.

    Returns:
        ``(N, C, L_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> out, idx = F.max_pool1d(jnp.array([[[1.0, 3, 2, 5, 4]]]), 2, return_indices=True)
        >>> F.max_unpool1d(out, idx, 2, output_size=[5])
        Array([[[0., 3., 0., 5., 0.]]], dtype=float32)
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


@autocast_op("max_unpool2d")
def max_unpool2d(
    input: Any, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, output_size: Any = None
) -> jax.Array:
    r"""Partial inverse of :func:`max_pool2d`: scatter ``input`` to ``indices``, zeros elsewhere.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``.
        indices: the indices returned by ``max_pool2d(..., return_indices=True)``.
        kernel_size, stride, padding: those of the max pooling.
        output_size: the exact output size (default :math:`(X_{in} - 1) s - 2p + k` per dim).

    Returns:
        ``(N, C, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
        >>> out, idx = F.max_pool2d(x, 2, return_indices=True)
        >>> F.max_unpool2d(out, idx, 2)[0, 0]
        Array([[ 0.,  0.,  0.,  0.],
               [ 0.,  5.,  0.,  7.],
               [ 0.,  0.,  0.,  0.],
               [ 0., 13.,  0., 15.]], dtype=float32)
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


@autocast_op("max_unpool3d")
def max_unpool3d(
    input: Any, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, output_size: Any = None
) -> jax.Array:
    r"""Partial inverse of :func:`max_pool3d`: scatter ``input`` to ``indices``, zeros elsewhere.

    Args:
        input: ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``.
        indices: the indices returned by ``max_pool3d(..., return_indices=True)``.
        kernel_size, stride, padding: those of the max pooling.
        output_size: the exact output size.

    Returns:
        ``(N, C, D_out, H_out, W_out)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> out, idx = F.max_pool3d(jnp.ones((1, 1, 4, 4, 4)), 2, return_indices=True)
        >>> F.max_unpool3d(out, idx, 2).shape
        (1, 1, 4, 4, 4)
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)
