"""Small building blocks that reproduce torch's numerics where jnp's differ.

* :func:`torch_abs`: ``|x|`` whose derivative at 0 is 0 (torch: ``sgn(x) * grad``);
  ``jnp.abs`` gives 1 there, which changes L1-type gradients at ties.
* :func:`clamp_min` / :func:`clamp_max`: the gradient passes at equality, as torch's
  ``clamp_min`` backward (``jnp.maximum`` splits it 0.5/0.5).
* :func:`vector_norm`: a p-norm with torch's backward conventions (0 gradient at a
  zero vector instead of NaN).
* :func:`wrap_dim`: torch's dimension wrapping and its ``IndexError`` text.
* Error-message formatting helpers that print shapes and dtypes the way torch does.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.arrays import is_tracer, long_dtype

__all__ = [
    "torch_abs",
    "clamp_min",
    "clamp_max",
    "vector_norm",
    "wrap_dim",
    "is_concrete",
    "torch_dtype_name",
    "size_str",
    "list_str",
    "float_dtype_of",
]


@jax.custom_jvp
def torch_abs(x: jax.Array) -> jax.Array:
    """``|x|`` with torch's derivative ``sign(x)`` (0 at 0)."""
    return jnp.abs(x)


@torch_abs.defjvp
def _torch_abs_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    return jnp.abs(x), jnp.sign(x).astype(t.dtype) * t


def clamp_min(x: jax.Array, lo: Any) -> jax.Array:
    """``max(x, lo)``; NaN propagates and the gradient passes where ``x >= lo``."""
    return jnp.where(x < lo, jnp.asarray(lo, x.dtype), x)


def clamp_max(x: jax.Array, hi: Any) -> jax.Array:
    """``min(x, hi)``; NaN propagates and the gradient passes where ``x <= hi``."""
    return jnp.where(x > hi, jnp.asarray(hi, x.dtype), x)


def vector_norm(x: jax.Array, p: float = 2.0, axis: Any = None, keepdims: bool = False) -> jax.Array:
    """torch's ``linalg.vector_norm`` / ``Tensor.norm(p, dim)`` including its backward.

    At a zero vector torch's gradient is 0 (its backward masks ``norm == 0``); the naive
    ``sqrt(sum(x**2))`` gives NaN there, so the square root and the powers are guarded.
    ``p=inf``/``-inf`` share the gradient evenly between tied entries, as torch does.
    """
    p = float(p)
    if p == 2.0:
        s = jnp.sum(x * x, axis=axis, keepdims=keepdims)
        pos = s > 0
        return jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1)), 0).astype(s.dtype)
    if p == 1.0:
        return jnp.sum(torch_abs(x), axis=axis, keepdims=keepdims)
    if p == math.inf:
        return jnp.max(torch_abs(x), axis=axis, keepdims=keepdims)
    if p == -math.inf:
        return jnp.min(torch_abs(x), axis=axis, keepdims=keepdims)
    if p == 0.0:
        return jnp.sum(x != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
    a = torch_abs(x)
    nz = a > 0
    ap = jnp.where(nz, jnp.where(nz, a, 1) ** p, 0)
    s = jnp.sum(ap, axis=axis, keepdims=keepdims)
    pos = s > 0
    return jnp.where(pos, jnp.where(pos, s, 1) ** (1.0 / p), 0).astype(s.dtype)


def wrap_dim(dim: int, ndim: int) -> int:
    """Normalise a possibly negative ``dim`` for an array of rank ``ndim`` (torch's rule:
    a 0-d array accepts ``-1`` and ``0``); raise torch's ``IndexError`` otherwise."""
    n = max(ndim, 1)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if dim < -n or dim >= n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return int(dim) % n


def is_concrete(*xs: Any) -> bool:
    """True when none of ``xs`` is a tracer, i.e. their values can be checked eagerly."""
    return not any(is_tracer(x) for x in xs)


_TORCH_DTYPE_NAMES = {
    "float32": "Float",
    "float64": "Double",
    "float16": "Half",
    "bfloat16": "BFloat16",
    "int64": "Long",
    "int32": "Int",
    "int16": "Short",
    "int8": "Char",
    "uint8": "Byte",
    "bool": "Bool",
    "complex64": "ComplexFloat",
    "complex128": "ComplexDouble",
}


def torch_dtype_name(dtype: Any) -> str:
    """torch's scalar-type name for a dtype (``float32`` -> ``Float``), for error messages."""
    name = jnp.dtype(dtype).name
    if name == "int32" and jnp.dtype(long_dtype()) == jnp.int32:
        # Without x64, int32 is jmod's stand-in for torch's long (see arrays.long_dtype).
        return "Long"
    return _TORCH_DTYPE_NAMES.get(name, name)


def list_str(shape: Any) -> str:
    """A shape as torch prints ``IntArrayRef``: ``[2, 3]``."""
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def size_str(shape: Any) -> str:
    """A shape as torch prints ``Tensor.size()``: ``torch.Size([2, 3])``."""
    return f"torch.Size({list_str(shape)})"


def float_dtype_of(x: jax.Array) -> Any:
    """``x``'s dtype if floating, else float32 (integer inputs are promoted)."""
    return x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.float32
