"""``interpolate`` (and the deprecated ``upsample*``) with torch's exact sampling conventions.

``jax.image.resize`` does not follow torch's rules, so every mode is written out as a
gather with per-axis index and weight tables that reproduce torch's CPU kernels
(``aten/src/ATen/native/UpSample.h`` and ``cpu/UpSampleKernel.cpp``), including their
float32 arithmetic:

* ``nearest``: source ``min(floor(dst * scale), in - 1)`` with ``scale = 1/scale_factor``
  when a scale factor is given (and not recomputed), else ``in/out``.
* ``nearest-exact``: ``min(floor(scale * (dst + 0.5) - 0.5 + 0.5), in - 1)``.
* ``linear/bilinear/trilinear``: ``align_corners=True`` maps corners to corners
  (``scale = (in-1)/(out-1)``); otherwise ``src = scale * (dst + 0.5) - 0.5`` clamped
  at 0, two taps with weights ``1 - l, l``; equal sizes copy.
* ``bicubic``: Keys' cubic convolution with ``A = -0.75`` on four taps
  ``floor(src) - 1 .. + 2``, indices clamped to the border.
* ``antialias=True`` (bilinear, bicubic with ``A = -0.5``, lanczos-3): PIL-style
  filters whose support grows with the downscaling factor, normalised per output.
* ``area``: adaptive average pooling.

The multi-dimensional modes are separable; axes are processed last to first, the
order in which torch's kernels nest their sums. The gradient of a gather is the
scatter-add torch's backward computes.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src import amp
from jmod._src.amp import autocast_op
from jmod._src.arrays import to_jax
from jmod._src.functional._args import is_int
from jmod._src.functional.pooling import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area", "nearest-exact")


def _opmath(dtype: Any) -> type:
    """torch's ``opmath_type``: double for double input, float otherwise."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _scales_value(scale: float | None, in_size: int, out_size: int, ot: type) -> Any:
    # compute_scales_value: 1/scale (computed in double) if a positive scale was given
    if scale is not None and scale > 0:
        return ot(1.0 / scale)
    return ot(in_size) / ot(out_size)


def _area_scale(in_size: int, out_size: int, align_corners: bool, scale: float | None, ot: type) -> Any:
    if align_corners:
        return ot(in_size - 1) / ot(out_size - 1) if out_size > 1 else ot(0)
    return _scales_value(scale, in_size, out_size, ot)


def _source_index(scale: Any, dst: np.ndarray, align_corners: bool, cubic: bool, ot: type) -> np.ndarray:
    dst = dst.astype(ot)
    if align_corners:
        return scale * dst
    src = scale * (dst + ot(0.5)) - ot(0.5)
    return src if cubic else np.where(src < 0, ot(0), src)


def _guard(real: np.ndarray, in_size: int, ot: type) -> tuple[np.ndarray, np.ndarray]:
    # guard_index_and_lambda (floorf: the index is floored in float32)
    index = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
    lam = np.minimum(np.maximum(real - index.astype(ot), ot(0)), ot(1))
    return index, lam.astype(ot)


def _nearest_table(
    in_size: int, out_size: int, scale: float | None, exact: bool, ot: type, shortcuts: bool = False
) -> np.ndarray:
    if shortcuts and not exact:
        # torch's 2-d nearest kernel uses nearest_idx, which ignores the scale factor
        # when the output is the input size or twice it
        if out_size == in_size:
            return np.arange(out_size)
        if out_size == 2 * in_size:
            return np.arange(out_size) >> 1
    s = _area_scale(in_size, out_size, False, scale, ot)
    dst = np.arange(out_size)
    if exact:
        real = _source_index(s, dst, False, False, ot)
        idx = np.floor((real + ot(0.5)).astype(np.float32)).astype(np.int64)
    else:
        real = _source_index(s, dst, True, False, ot)
        idx = np.floor(real.astype(np.float32)).astype(np.int64)
    return np.minimum(idx, in_size - 1)


def _linear_table(in_size: int, out_size: int, align_corners: bool, scale: float | None, ot: type):
    """Two taps per output: (indices (out, 2), weights (out, 2))."""
    if in_size == out_size:
        i = np.arange(out_size)
        return np.stack([i, i], 1), np.stack([np.ones(out_size, ot), np.zeros(out_size, ot)], 1)
    s = _area_scale(in_size, out_size, align_corners, scale, ot)
    real = _source_index(s, np.arange(out_size), align_corners, False, ot)
    i0, lam1 = _guard(real, in_size, ot)
    i1 = i0 + (i0 < in_size - 1)
    lam0 = ot(1) - lam1
    return np.stack([i0, i1], 1), np.stack([lam0, lam1], 1).astype(ot)


def _cubic_coeffs(t: np.ndarray, A: Any, ot: type) -> np.ndarray:
    def cc1(x):
        return ((A + ot(2)) * x - (A + ot(3))) * x * x + ot(1)

    def cc2(x):
        return ((A * x - ot(5) * A) * x + ot(8) * A) * x - ot(4) * A

    x1 = t
    x2 = (ot(1) - t).astype(ot)
    return np.stack([cc2((x1 + ot(1)).astype(ot)), cc1(x1), cc1(x2), cc2((x2 + ot(1)).astype(ot))], 1).astype(ot)


def _cubic_table(in_size: int, out_size: int, align_corners: bool, scale: float | None, ot: type):
    s = _area_scale(in_size, out_size, align_corners, scale, ot)
    real = _source_index(s, np.arange(out_size), align_corners, True, ot)
    i, lam = _guard(real, in_size, ot)
    idx = np.clip(i[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
    return idx, _cubic_coeffs(lam, ot(-0.75), ot)


def _aa_filter(mode: str, x: np.ndarray, ft: type) -> np.ndarray:
    x = np.abs(x.astype(ft))
    if mode == "bilinear":
        return np.where(x < 1, ft(1) - x, ft(0)).astype(ft)
    if mode == "bicubic":
        a = ft(-0.5)  # Keys' a = -0.5 (PIL) for antialiased bicubic
        c1 = ((a + ft(2)) * x - (a + ft(3))) * x * x + ft(1)
        c2 = ((a * x - ft(5) * a) * x + ft(8) * a) * x - ft(4) * a
        return np.where(x < 1, c1, np.where(x < 2, c2, ft(0))).astype(ft)
    # lanczos-3: sinc(x) sinc(x/3) on |x| < 3
    with np.errstate(invalid="ignore", divide="ignore"):
        px = ft(np.pi) * x
        sinc = np.where(x == 0, ft(1), np.sin(px) / px)
        sinc3 = np.where(x == 0, ft(1), np.sin(px / ft(3)) / (px / ft(3)))
    return np.where(x < 3, sinc * sinc3, ft(0)).astype(ft)


_AA_INTERP_SIZE = {"bilinear": 2, "bicubic": 4, "lanczos": 6}


def _aa_table(mode: str, in_size: int, out_size: int, align_corners: bool, scale: float | None, ft: type):
    """torch's ``_compute_indices_min_size_weights_aa``: per output, taps ``xmin .. xmin+xsize``."""
    s = _area_scale(in_size, out_size, align_corners, scale, ft)
    interp = _AA_INTERP_SIZE[mode]
    support = ft(interp * 0.5 * s) if s >= 1.0 else ft(interp * 0.5)
    max_interp = int(math.ceil(support)) * 2 + 1
    invscale = ft(1.0 / s) if s >= 1.0 else ft(1.0)
    idx = np.zeros((out_size, max_interp), np.int64)
    wts = np.zeros((out_size, max_interp), ft)
    for i in range(out_size):
        center = ft(s * (i + 0.5))
        xmin = max(int(float(center - support) + 0.5), 0)
        xsize = min(int(float(center + support) + 0.5), in_size) - xmin
        xsize = min(max(xsize, 0), max_interp)
        j = np.arange(xsize)
        arg = ((j + xmin).astype(ft) - center).astype(np.float64) + 0.5
        w = _aa_filter(mode, (arg * float(invscale)).astype(ft), ft)
        total = ft(0)
        for v in w:  # sequential float accumulation, as torch
            total = ft(total + v)
        if total != 0:
            w = (w / total).astype(ft)
        idx[i, :xsize] = xmin + j
        idx[i, xsize:] = xmin + max(xsize - 1, 0)
        wts[i, :xsize] = w
    return idx, wts


def _apply_taps(x: jax.Array, axis: int, idx: np.ndarray, wts: np.ndarray | None) -> jax.Array:
    """out[..., o, ...] = sum_j wts[o, j] * x[..., idx[o, j], ...] along ``axis``."""
    out, taps = idx.shape
    g = jnp.take(x, jnp.asarray(idx.reshape(-1), jnp.int32), axis=axis, mode="clip")
    g = g.reshape(x.shape[:axis] + (out, taps) + x.shape[axis + 1 :])
    if wts is None:
        return jnp.squeeze(g, axis + 1)
    w = jnp.asarray(wts.astype(np.dtype(x.dtype)))
    w = w.reshape((out, taps) + (1,) * (x.ndim - axis - 1))
    acc = g.take(0, axis=axis + 1) * w.take(0, axis=1)
    for j in range(1, taps):
        acc = acc + g.take(j, axis=axis + 1) * w.take(j, axis=1)
    return acc


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _interpolate_core(
    x: jax.Array, mode: str, out_sizes: tuple, scales: tuple | None, align_corners: bool, antialias: bool
) -> jax.Array:
    n = len(out_sizes)
    ot = _opmath(x.dtype)
    for i in reversed(range(n)):  # last axis first, as torch nests its sums
        axis = x.ndim - n + i
        in_size, out_size = x.shape[axis], out_sizes[i]
        scale = None if scales is None else scales[i]
        if antialias:
            if in_size == out_size:
                continue  # torch skips axes whose size does not change
            ft = np.float64 if np.dtype(x.dtype) == np.float64 else np.float32
            idx, w = _aa_table(mode, in_size, out_size, align_corners, scale, ft)
        elif mode in ("nearest", "nearest-exact"):
            idx = _nearest_table(in_size, out_size, scale, mode == "nearest-exact", ot, shortcuts=n == 2)[:, None]
            w = None
        elif mode == "bicubic":
            idx, w = _cubic_table(in_size, out_size, align_corners, scale, ot)
        else:
            idx, w = _linear_table(in_size, out_size, align_corners, scale, ot)
        x = _apply_taps(x, axis, idx, w)
    return x


def _check_sizes(x: jax.Array, out_sizes: list[int]) -> None:
    names = {1: ["W"], 2: ["H", "W"], 3: ["D", "H", "W"]}[len(out_sizes)]
    ins = x.shape[2:]
    if all(v > 0 for v in ins) and all(v > 0 for v in out_sizes):
        return
    if len(out_sizes) == 1:
        raise RuntimeError(
            f"Input and output sizes should be greater than 0, but got input (W: {ins[0]}) and output "
            f"(W: {out_sizes[0]})"
        )
    i_str = ", ".join(f"{nm}: {v}" for nm, v in zip(names, ins))
    o_str = ", ".join(f"{nm}: {v}" for nm, v in zip(names, out_sizes))
    raise RuntimeError(f"Input and output sizes should be greater than 0, but got input ({i_str}) output ({o_str})")


@autocast_op(amp.interpolate_op)
def interpolate(
    input: Any,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> jax.Array:
    r"""Down/up-sample ``input`` to ``size`` or by ``scale_factor`` (torch.nn.functional.interpolate).

    Args:
        input: ``(N, C, W)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        size: output spatial size (int or tuple of ints, one per spatial dimension).
        scale_factor: multiplier for the spatial size (float or tuple); the output size
            is ``floor(in * scale_factor)``.
        mode: ``'nearest'`` | ``'linear'`` (3-D) | ``'bilinear'`` (4-D) | ``'bicubic'``
            (4-D) | ``'trilinear'`` (5-D) | ``'lanczos'`` (4-D, needs ``antialias``) |
            ``'area'`` | ``'nearest-exact'``.
        align_corners: for the interpolating modes, align the centres of the corner
            pixels (``True``) or their outer corners (``False``, the default).
        recompute_scale_factor: compute the sampling scale from the output size
            (``True``) instead of using ``scale_factor`` itself.
        antialias: low-pass filter when downsampling (bilinear/bicubic/lanczos, 4-D),
            matching PIL with ``align_corners=False``.

    Returns:
        ``(N, C, *size)``.

    Raises:
        ValueError, TypeError, NotImplementedError, RuntimeError: torch's, for
            inconsistent arguments (both or neither of ``size``/``scale_factor``,
            ``align_corners`` with a non-interpolating mode, a mode/rank mismatch...).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.array([[[1.0, 2.0, 4.0]]])
        >>> F.interpolate(x, scale_factor=2, mode="nearest")
        Array([[[1., 1., 2., 2., 4., 4.]]], dtype=float32)
        >>> F.interpolate(x, size=5, mode="linear", align_corners=True)
        Array([[[1. , 1.5, 2. , 3. , 4. ]]], dtype=float32)
    """
    x = to_jax(input)
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | "
                "trilinear"
            )
    elif align_corners is None:
        align_corners = False
    dim = x.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    elif size is not None:
        scale_factors = None
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but got input with spatial "
                    f"dimensions of {list(x.shape[2:])} and output size of {size}. Please provide input tensor in "
                    "(N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format."
                )
            if not all(is_int(v) for v in size):
                raise TypeError(
                    "expected size to be one of int or Tuple[int] or Tuple[int, int] or Tuple[int, int, int], but "
                    f"got size with types {[type(v) for v in size]}"
                )
            output_size = [int(v) for v in size]
        else:
            output_size = [int(size) for _ in range(dim)]
    elif scale_factor is not None:
        output_size = None
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, but got input with "
                    f"spatial dimensions of {list(x.shape[2:])} and scale_factor of shape {scale_factor}. Please "
                    "provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                    "format."
                )
            scale_factors = [float(s) for s in scale_factor]
        else:
            scale_factors = [float(scale_factor) for _ in range(dim)]
    else:
        raise ValueError("either size or scale_factor should be defined")

    if recompute_scale_factor is not None and recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output_size is None:
        recompute_scale_factor = True
    if recompute_scale_factor is not None and recompute_scale_factor:
        output_size = [int(x.shape[i + 2] * scale_factors[i]) for i in range(dim)]
        scale_factors = None
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and x.ndim == 4):
        raise ValueError(
            "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a 4-D tensor as input"
        )

    supported = {
        "nearest": (3, 4, 5),
        "nearest-exact": (3, 4, 5),
        "area": (3, 4, 5),
        "linear": (3,),
        "bilinear": (4,),
        "trilinear": (5,),
        "bicubic": (4,),
        "lanczos": (4,),
    }
    if mode not in supported or x.ndim not in supported[mode]:
        needs = {"linear": 3, "bilinear": 4, "trilinear": 5}
        if mode in needs and x.ndim in (3, 4, 5):
            raise NotImplementedError(f"Got {x.ndim}D input, but {mode} mode needs {needs[mode]}D input")
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {x.ndim}D) for the modes: nearest | "
            f"linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {mode})"
        )
    if mode == "area":
        pool = {3: adaptive_avg_pool1d, 4: adaptive_avg_pool2d, 5: adaptive_avg_pool3d}[x.ndim]
        return pool(x, output_size)
    if mode == "lanczos":
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    if output_size is None:
        # the C++ op derives the size from the scale factors (truncating, as static_cast<int64_t>)
        output_size = [int(x.shape[i + 2] * scale_factors[i]) for i in range(dim)]
    _check_sizes(x, output_size)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        if mode in ("nearest", "nearest-exact"):
            return _interpolate_core(
                x, mode, tuple(output_size), None if scale_factors is None else tuple(scale_factors), False, False
            )
        raise NotImplementedError(f'"upsample_{mode}" not implemented for integer input')
    return _interpolate_core(
        x,
        mode,
        tuple(output_size),
        None if scale_factors is None else tuple(scale_factors),
        bool(align_corners),
        bool(antialias),
    )


def upsample(
    input: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest", align_corners: bool | None = None
) -> jax.Array:
    """Deprecated alias of :func:`interpolate` (warns, as torch)."""
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Any, size: Any = None, scale_factor: Any = None) -> jax.Array:
    """Deprecated: ``interpolate(..., mode='nearest')`` (warns, as torch)."""
    warnings.warn(
        "`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2
    )
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Any, size: Any = None, scale_factor: Any = None) -> jax.Array:
    """Deprecated: ``interpolate(..., mode='bilinear', align_corners=True)`` (warns, as torch)."""
    warnings.warn(
        "`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=2
    )
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
