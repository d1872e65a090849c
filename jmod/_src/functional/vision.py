"""Spatial transformer sampling: ``affine_grid`` and ``grid_sample`` (torch.nn.functional semantics).

How torch's CPU kernels are reproduced:

* ``affine_grid`` builds torch's base grid (``linspace(-1, 1, n)``, scaled by
  ``(n - 1) / n`` unless ``align_corners``, computed with torch's linspace formula in
  ``theta``'s dtype) and multiplies it by ``theta`` per batch element.
* ``grid_sample`` unnormalizes each coordinate, applies the padding mode and gathers
  the neighbouring pixels with one vectorised gather per tap (``(N, Q)`` flat indices
  into the ``(N, H*W, C)`` input), so it compiles to a fixed-size XLA computation and
  is differentiable with respect to both the input (a scatter-add) and the grid.
* 2-D sampling follows torch's vectorised CPU kernel, 3-D its scalar kernel: their
  formulas differ slightly (``(x + 1) * size/2 - 0.5`` vs ``((x + 1) * size - 1) / 2``,
  ``1 - frac`` vs ``(x0 + 1) - x`` weights), and each is copied so results agree to the
  last bits in most cases.
* ``border``/``reflection`` clamp the coordinate into ``[0, size - 1]``; as in torch the
  clamp's derivative is 0 *at* the borders (torch treats them as out of bounds), and
  reflection flips the sign of the derivative on odd reflections.
* ``nearest`` rounds half to even (``std::nearbyint``); ``bicubic`` uses the cubic
  convolution with ``A = -0.75`` and applies the padding mode to each of the 16 taps.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.amp import autocast_op
from jmod._src.arrays import to_jax
from jmod._src.functional._args import dtype_name
from jmod._src.functional._torch_ops import list_str, size_str

__all__ = ["affine_grid", "grid_sample"]

_ALIGN_WARNING = (
    "Default grid_sample and affine_grid behavior has changed "
    "to align_corners=False since 1.3.0. Please specify "
    "align_corners=True if the old behavior is desired. "
    "See the documentation of grid_sample for details."
)

# Bicubic convolution constant (torch: aten/src/ATen/native/UpSample.h).
_A = -0.75


# ----------------------------------------------------------------------------- affine_grid
def _torch_linspace(steps: int, dtype: Any) -> np.ndarray:
    """``torch.linspace(-1, 1, steps)`` as torch's CPU kernel computes it, in ``dtype``."""
    dt = np.dtype(dtype)
    start, end = dt.type(-1), dt.type(1)
    step = (end - start) / dt.type(steps - 1)
    i = np.arange(steps)
    # torch fills the first half from the start and the second half from the end
    from_start = start + step * i.astype(dt)
    from_end = end - step * (steps - i - 1).astype(dt)
    return np.where(i < steps // 2, from_start, from_end).astype(dt)


def _linspace_from_neg_one(steps: int, align_corners: bool, dtype: Any) -> np.ndarray:
    """torch's ``linspace_from_neg_one`` (AffineGridGenerator.cpp)."""
    dt = np.dtype(dtype)
    if steps <= 1:
        return np.zeros(1, dt)
    r = _torch_linspace(steps, dt)
    if not align_corners:
        r = (r * dt.type(steps - 1)) / dt.type(steps)
    return r.astype(dt)


def _base_grid(spatial: list[int], align_corners: bool, dtype: Any) -> np.ndarray:
    """``(prod(spatial), n + 1)``: the (x, y[, z], 1) coordinates of every output point."""
    n = len(spatial)
    axes = [_linspace_from_neg_one(s, align_corners, dtype) for s in spatial]  # D, H, W order
    mesh = np.meshgrid(*axes, indexing="ij")
    cols = [mesh[n - 1 - i].reshape(-1) for i in range(n)]  # x (W) first
    cols.append(np.ones(math.prod(spatial), np.dtype(dtype)))
    return np.stack(cols, axis=-1)


def affine_grid(theta: Any, size: Any, align_corners: bool | None = None) -> jax.Array:
    r"""Generate a 2-D or 3-D sampling grid (flow field) from a batch of affine matrices.

    Output point ``(x, y)`` (normalized to ``[-1, 1]``) of image ``n`` is mapped to
    ``theta[n] @ (x, y, 1)``; pass the result to :func:`grid_sample` (with the same
    ``align_corners``) to build a spatial transformer network.

    Args:
        theta: affine matrices, ``(N, 2, 3)`` for 2-D or ``(N, 3, 4)`` for 3-D; floating.
        size: the target output size, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        align_corners: if ``True``, ``-1`` and ``1`` are the centres of the corner
            pixels; if ``False``, their outer corners. ``None`` means ``False`` and
            warns, as torch does.

    Shape:
        - theta: :math:`(N, 2, 3)` or :math:`(N, 3, 4)`.
        - Output: :math:`(N, H, W, 2)` or :math:`(N, D, H, W, 3)`.

    Raises:
        ValueError: for a non-floating ``theta``, a ``theta`` shape that does not fit
            ``size`` or a non-positive output size (torch's messages).
        NotImplementedError: for a ``size`` that is neither 4-D nor 5-D.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> theta = jnp.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> F.affine_grid(theta, (1, 1, 2, 2), align_corners=True)[0]
        Array([[[-1., -1.],
                [ 1., -1.]],
        <BLANKLINE>
               [[-1.,  1.],
                [ 1.,  1.]]], dtype=float32)
    """
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    t = to_jax(theta)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        raise ValueError(f"Expected theta to have floating point type, but got torch.{np.dtype(t.dtype).name}")
    size_list = [int(s) for s in size]
    if len(size_list) == 4:
        if t.ndim != 3 or t.shape[-2] != 2 or t.shape[-1] != 3:
            raise ValueError(
                f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. Got {size_str(t.shape)}."
            )
        spatial = size_list[-2:]
    elif len(size_list) == 5:
        if t.ndim != 3 or t.shape[-2] != 3 or t.shape[-1] != 4:
            raise ValueError(
                f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. Got {size_str(t.shape)}."
            )
        spatial = size_list[-3:]
    else:
        raise NotImplementedError(
            "affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, respectively. "
            f"Got size {size}."
        )
    if align_corners and min(spatial) == 1:
        warnings.warn(
            "Since version 1.3.0, affine_grid behavior has changed for unit-size grids when align_corners=True. "
            "This is not an intended use case of affine_grid. See the documentation of affine_grid for details.",
            stacklevel=2,
        )
    elif min(size_list) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    n = len(spatial)
    if size_list[0] != t.shape[0]:  # torch's bmm check
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{size_list[0]}, {n + 1}] but got: "
            f"[{t.shape[0]}, {n + 1}]."
        )
    base = _base_grid(spatial, bool(align_corners), t.dtype)
    return _affine_grid_core(t, jnp.asarray(base), tuple(spatial))


@functools.partial(jax.jit, static_argnums=(2,))
def _affine_grid_core(theta: jax.Array, base: jax.Array, spatial: tuple) -> jax.Array:
    grid = jnp.einsum("pk,njk->npj", base, theta, precision=jax.lax.Precision.HIGHEST)
    return grid.reshape((theta.shape[0], *spatial, len(spatial)))


# ----------------------------------------------------------------------------- grid_sample
def _check_grid_sampler(x: jax.Array, g: jax.Array, mode: str) -> None:
    """torch's ``check_grid_sampler_common`` / ``_2d`` / ``_3d`` and its dtype checks."""
    if x.ndim == 0 or g.ndim == 0 or x.shape[0] != g.shape[0]:
        raise RuntimeError(
            "grid_sampler(): expected grid and input to have same batch size, but got input with sizes "
            f"{list_str(x.shape)} and grid with sizes {list_str(g.shape)}"
        )
    if g.shape[-1] != x.ndim - 2:
        raise RuntimeError(
            f"grid_sampler(): expected grid to have size {x.ndim - 2} in last dimension, but got grid with sizes "
            f"{list_str(g.shape)}"
        )
    for i in range(2, x.ndim):
        if x.shape[i] <= 0:
            raise RuntimeError(
                "grid_sampler(): expected input to have non-empty spatial dimensions, but input has sizes "
                f"{list_str(x.shape)} with dimension {i} being empty"
            )
    if x.ndim == 4:
        if g.ndim != 4:
            raise RuntimeError(
                "grid_sampler(): expected 4D input and grid with same number of dimensions, but got input with sizes "
                f"{list_str(x.shape)} and grid with sizes {list_str(g.shape)}"
            )
        kernel = "grid_sampler_2d_cpu_kernel_impl"
    else:
        if x.ndim != 5 or g.ndim != 5:
            raise RuntimeError(
                "grid_sampler(): expected 5D input and grid with same number of dimensions, but got input with sizes "
                f"{list_str(x.shape)} and grid with sizes {list_str(g.shape)}"
            )
        if mode == "bicubic":
            raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
        kernel = "grid_sampler3d_cpu"
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtype_name(x.dtype)}'")
    if x.dtype != g.dtype:
        raise RuntimeError(f"expected scalar type {dtype_name(x.dtype)} but found {dtype_name(g.dtype)}")


@autocast_op("grid_sampler")
def grid_sample(
    input: Any,
    grid: Any,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> jax.Array:
    r"""Sample ``input`` at the normalized locations of ``grid`` (spatial transformer sampling).

    ``grid[n, h, w]`` holds an ``(x, y)`` location (``(x, y, z)`` for 5-D input) in
    ``[-1, 1]`` coordinates: ``x = -1`` is the left edge of ``input`` and ``x = 1`` the
    right one (pixel centres with ``align_corners=True``, outer pixel edges otherwise).
    ``output[n, :, h, w]`` is the input interpolated there.

    Args:
        input: ``(N, C, H_in, W_in)`` or ``(N, C, D_in, H_in, W_in)``.
        grid: ``(N, H_out, W_out, 2)`` or ``(N, D_out, H_out, W_out, 3)``, same dtype as ``input``.
        mode: ``'bilinear'`` (trilinear for 5-D input), ``'nearest'`` (rounding half to
            even) or ``'bicubic'`` (4-D input only; cubic convolution with
            :math:`A = -0.75`).
        padding_mode: where ``grid`` points outside the input: ``'zeros'`` (zero
            outside), ``'border'`` (clamp to the edge pixels) or ``'reflection'``
            (reflect at the borders until inside).
        align_corners: if ``True``, ``-1``/``1`` are the centres of the corner pixels.
            ``None`` means ``False`` and warns, as torch does.

    Shape:
        - input: :math:`(N, C, H_{in}, W_{in})` or :math:`(N, C, D_{in}, H_{in}, W_{in})`.
        - grid: :math:`(N, H_{out}, W_{out}, 2)` or :math:`(N, D_{out}, H_{out}, W_{out}, 3)`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(N, C, D_{out}, H_{out}, W_{out})`.

    Raises:
        ValueError: for an unknown ``mode`` or ``padding_mode``.
        RuntimeError: for mismatched shapes or dtypes (torch's messages).

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> x = jnp.arange(4.0).reshape(1, 1, 2, 2)
        >>> grid = jnp.array([[[[0.0, 0.0], [1.0, -1.0]]]])  # centre, top-right corner
        >>> F.grid_sample(x, grid, align_corners=True)
        Array([[[[1.5, 1. ]]]], dtype=float32)
        >>> # the centre is pixel coordinate (0.5, 0.5): nearest rounds half to even
        >>> F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)
        Array([[[[0., 1.]]]], dtype=float32)
    """
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            "nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or 'reflection', "
            f"but got: '{padding_mode}'"
        )
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    x, g = to_jax(input), to_jax(grid)
    _check_grid_sampler(x, g, mode)
    return _grid_sample_core(x, g, mode, padding_mode, bool(align_corners))


def _unnormalize(c: jax.Array, size: int, align_corners: bool, vectorised: bool) -> jax.Array:
    """Grid coordinate in ``[-1, 1]`` to pixel coordinate (torch's two formulas)."""
    dt = c.dtype
    if vectorised:  # GridSamplerKernel.cpp ComputeLocationBase
        if align_corners:
            return (c + 1) * jnp.asarray((size - 1) / 2, dt)
        return (c + 1) * jnp.asarray(size / 2, dt) - jnp.asarray(0.5, dt)
    if align_corners:  # GridSampler.h grid_sampler_unnormalize
        return ((c + 1) / 2) * jnp.asarray(size - 1, dt)
    return ((c + 1) * jnp.asarray(size, dt) - 1) / 2


def _clip(c: jax.Array, size: int) -> jax.Array:
    """Clamp to ``[0, size - 1]`` with derivative 0 at and beyond the borders (as torch)."""
    hi = jnp.asarray(size - 1, c.dtype)
    zero = jnp.zeros((), c.dtype)
    return jnp.where(c <= 0, zero, jnp.where(c >= hi, hi, c))


def _reflect(c: jax.Array, twice_low: int, twice_high: int) -> jax.Array:
    """Reflect into ``[low, high]`` (bounds given doubled), torch's ``reflect_coordinates``."""
    if twice_low == twice_high:
        return jnp.zeros_like(c)
    lo = jnp.asarray(twice_low / 2, c.dtype)
    span = jnp.asarray((twice_high - twice_low) / 2, c.dtype)
    d = c - lo
    d = jnp.where(d < 0, -d, d)  # derivative +-1 (jnp.abs would give 0 at 0)
    extra = jnp.fmod(d, span)
    flips = jnp.floor(d / span)
    even = jnp.fmod(flips, 2) == 0
    return jnp.where(even, extra + lo, span - extra + lo)


def _pad_coordinates(c: jax.Array, size: int, padding_mode: str, align_corners: bool) -> jax.Array:
    """torch's ``compute_coordinates``: apply the padding mode to a pixel coordinate."""
    if padding_mode == "border":
        return _clip(c, size)
    if padding_mode == "reflection":
        if align_corners:
            c = _reflect(c, 0, 2 * (size - 1))
        else:
            c = _reflect(c, -1, 2 * size - 1)
        return _clip(c, size)
    return c


def _cubic_coefficients(t: jax.Array) -> list[jax.Array]:
    """The four cubic-convolution weights for taps at offsets -1, 0, 1, 2 (torch's order of operations)."""
    A = jnp.asarray(_A, t.dtype)

    def outer(x: jax.Array) -> jax.Array:  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    def inner(x: jax.Array) -> jax.Array:  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    return [outer(t + 1), inner(t), inner(1 - t), outer(2 - t)]


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _grid_sample_core(x: jax.Array, grid: jax.Array, mode: str, padding_mode: str, align_corners: bool) -> jax.Array:
    nd = x.ndim - 2
    N, C = x.shape[:2]
    sizes = x.shape[2:]  # (D,) H, W
    out_sp = grid.shape[1:-1]
    Q = math.prod(out_sp)
    dt = x.dtype
    g = grid.reshape(N, Q, nd)
    # (N, P, C): one gather of C values per (batch, flat pixel index)
    xt = jnp.moveaxis(x.reshape(N, C, math.prod(sizes)), 1, 2)
    vectorised = nd == 2  # torch: vectorised 2-d CPU kernel, scalar 3-d kernel

    def gather(coords: list[jax.Array], check_bounds: bool) -> jax.Array:
        """Input values at integral float ``coords`` (one ``(N, Q, *taps)`` array per input
        axis, D/H/W order), 0 outside: ``(N, Q, *taps, C)``, all taps in one gather."""
        mask = None
        flat = None
        for i, c in enumerate(coords):
            if check_bounds:
                inside = (c >= 0) & (c <= sizes[i] - 1)
                mask = inside if mask is None else mask & inside
                c = jnp.where(inside, c, 0)
            ci = c.astype(jnp.int32)
            flat = ci if flat is None else flat * sizes[i] + ci
        n_idx = jnp.arange(N).reshape((N,) + (1,) * (flat.ndim - 1))
        vals = xt[n_idx, flat]
        if mask is not None:
            vals = jnp.where(mask[..., None], vals, jnp.zeros((), dt))
        return vals

    # raw[i] is the grid coordinate along input axis i (D, H, W order); grid's last dim
    # lists them as x (W), y (H), z (D).
    raw = [g[..., nd - 1 - i] for i in range(nd)]
    if mode in ("bilinear", "nearest"):
        coords = [
            _pad_coordinates(
                _unnormalize(raw[i], sizes[i], align_corners, vectorised), sizes[i], padding_mode, align_corners
            )
            for i in range(nd)
        ]
        if mode == "nearest":
            out = gather([jnp.round(c) for c in coords], padding_mode == "zeros")
        else:
            lo = [jnp.floor(c) for c in coords]
            if vectorised:
                # frac = x - x0, weights (1 - frac, frac); corner weight is y-weight * x-weight
                w1 = [coords[i] - lo[i] for i in range(nd)]
                w0 = [1 - w for w in w1]
            else:
                # ((x0 + 1) - x, x - x0); corner weight is x-weight * y-weight * z-weight
                w0 = [(lo[i] + 1) - coords[i] for i in range(nd)]
                w1 = [coords[i] - lo[i] for i in range(nd)]
            # torch's corner order: x fastest, then y, then z (nw, ne, sw, se, ...)
            corners = [[(k >> (nd - 1 - i)) & 1 for i in range(nd)] for k in range(2**nd)]
            taps = [jnp.stack([lo[i] + b[i] for b in corners], axis=-1) for i in range(nd)]
            vals = gather(taps, True)  # (N, Q, 2**nd, C)
            out = None
            for k, b in enumerate(corners):
                ws = [w1[i] if b[i] else w0[i] for i in range(nd)]
                if vectorised:
                    weight = ws[0] * ws[1]  # (y, x)
                else:
                    weight = ws[nd - 1]
                    for i in range(nd - 2, -1, -1):
                        weight = weight * ws[i]
                term = vals[:, :, k] * weight[..., None]
                out = term if out is None else out + term
    else:  # bicubic, 2-d
        uy, ux = (_unnormalize(raw[i], sizes[i], align_corners, True) for i in range(2))
        y0, x0 = jnp.floor(uy), jnp.floor(ux)
        cx = _cubic_coefficients(ux - x0)
        cy = _cubic_coefficients(uy - y0)
        offsets = jnp.arange(-1, 3, dtype=dt)
        # the padding mode applies to each tap's coordinate
        ty = _pad_coordinates(y0[..., None] + offsets, sizes[0], padding_mode, align_corners)  # (N, Q, 4)
        tx = _pad_coordinates(x0[..., None] + offsets, sizes[1], padding_mode, align_corners)
        vals = gather(
            [jnp.broadcast_to(ty[..., :, None], (N, Q, 4, 4)), jnp.broadcast_to(tx[..., None, :], (N, Q, 4, 4))], True
        )
        out = None
        for j in range(4):
            row = None
            for i in range(4):
                term = cx[i][..., None] * vals[:, :, j, i]
                row = term if row is None else row + term
            term = cy[j][..., None] * row
            out = term if out is None else out + term
    return jnp.moveaxis(out, 2, 1).reshape((N, C, *out_sp))
