"""Linear maps: ``linear``, ``bilinear``, ``grouped_mm`` (torch.nn.functional semantics)."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jmod._src.amp import autocast_op
from jmod._src.arrays import to_jax
from jmod._src.devices import as_dtype
from jmod._src.functional._args import dtype_name

__all__ = ["linear", "bilinear", "grouped_mm"]


@autocast_op("linear")
def linear(input: Any, weight: Any, bias: Any = None) -> jax.Array:
    r"""Apply :math:`y = xA^T + b`.

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)`` or ``(in_features,)``.
        bias: ``(out_features,)`` or ``None``.

    Returns:
        ``(*, out_features)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(4)).shape
        (2, 4)
    """
    x_shape, w_shape = jnp.shape(input), jnp.shape(weight)
    if len(x_shape) == 0 or len(w_shape) == 0:
        raise RuntimeError(
            f"both arguments to linear need to be at least 1D, but they are {len(x_shape)}D and {len(w_shape)}D"
        )
    if len(w_shape) == 2 and x_shape[-1] != w_shape[1]:
        # torch's message, which shows the input flattened to a matrix and the weight transposed
        rows = math.prod(x_shape[:-1])
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{x_shape[-1]} and {w_shape[1]}x{w_shape[0]})"
        )
    out = jnp.matmul(input, jnp.swapaxes(weight, -1, -2)) if len(w_shape) == 2 else jnp.matmul(input, weight)
    if bias is not None:
        out = out + bias
    return out


@autocast_op("bilinear")
def bilinear(input1: Any, input2: Any, weight: Any, bias: Any = None) -> jax.Array:
    r"""Apply :math:`y = x_1^T A x_2 + b`.

    Args:
        input1: ``(*, in1_features)``.
        input2: ``(*, in2_features)``.
        weight: ``(out_features, in1_features, in2_features)``.
        bias: ``(out_features,)`` or ``None``.
    """
    out = jnp.einsum("...i,oij,...j->...o", input1, weight, input2)
    if bias is not None:
        out = out + bias
    return out


_GROUPED_MM_DTYPES = (np.dtype(jnp.float32), np.dtype(jnp.bfloat16), np.dtype(jnp.float16))
_C10_NAMES = {"float32": "float", "bfloat16": "c10::BFloat16", "float16": "c10::Half"}


def grouped_mm(mat_a: Any, mat_b: Any, *, offs: Any = None, bias: Any = None, out_dtype: Any = None) -> jax.Array:
    r"""Grouped matrix multiply (Mixture-of-Experts layers): one GEMM per group, jagged group sizes.

    The four layouts of torch's ``grouped_mm``, with ``offs`` the (int32, 1-D,
    non-decreasing) end offsets of the groups along the jagged dimension (group ``g``
    spans ``[offs[g - 1], offs[g])``, ``offs[-1] = 0``):

    * 2-D x 3-D, ``(M, K) x (G, K, N) -> (M, N)``: rows of ``mat_a`` in group ``g`` are
      multiplied by ``mat_b[g]`` (``jax.lax.ragged_dot``); rows past ``offs[-1]`` are 0.
    * 3-D x 2-D, ``(G, M, K) x (K, N) -> (M, N)``: columns of ``mat_b`` in group ``g``
      are multiplied by ``mat_a[g]``; columns past ``offs[-1]`` are 0.
    * 2-D x 2-D, ``(M, K) x (K, N) -> (G, M, N)``: the shared ``K`` is jagged, output
      ``g`` is ``mat_a[:, group g] @ mat_b[group g, :]`` (MoE weight gradients).
    * 3-D x 3-D, ``(G, M, K) x (G, K, N) -> (G, M, N)``: a batched matmul (no ``offs``).

    torch leaves the rows/columns past ``offs[-1]`` uninitialised; jmod sets them to 0.
    Gradients flow to both operands.

    Args:
        mat_a: left operand, 2-D or 3-D, float32, bfloat16 or float16.
        mat_b: right operand, 2-D or 3-D, same dtype.
        offs: group end offsets (int32, 1-D); required iff an operand is 2-D.
        bias: must be ``None`` (torch: "Bias not supported yet").
        out_dtype: ``None`` or ``mat_a``'s dtype; ``float32`` is also accepted for
            bfloat16/float16 inputs (float32 accumulation and output, as torch's CUDA kernel).

    Shape:
        - Output: ``(M, N)`` for a 2-D x 3-D or 3-D x 2-D product, ``(G, M, N)`` otherwise.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod.nn.functional as F
        >>> a = jnp.ones((5, 2))                              # 5 tokens
        >>> b = jnp.stack([jnp.eye(2), 2 * jnp.eye(2)])      # 2 experts
        >>> F.grouped_mm(a, b, offs=jnp.array([2, 5], jnp.int32))[:, 0]
        Array([1., 1., 2., 2., 2.], dtype=float32)
    """
    a, b = to_jax(mat_a), to_jax(mat_b)
    for name, m in (("mat_a", a), ("mat_b", b)):
        if np.dtype(m.dtype) not in _GROUPED_MM_DTYPES:
            raise RuntimeError(f"Expected {name} to be Float32, BFloat16 or Float16 matrix, got {dtype_name(m.dtype)}")
    if a.ndim not in (2, 3):
        raise RuntimeError("mat_a has to be 2 or 3d")
    if b.ndim not in (2, 3):
        raise RuntimeError("mat_b has to be 2 or 3d")
    if a.shape[-1] != b.shape[-2]:
        raise RuntimeError("contraction dimension of mat_a and mat_b must match")
    a_2d, b_2d = a.ndim == 2, b.ndim == 2
    if (offs is not None) != (a_2d or b_2d):
        raise RuntimeError("Have to provide offsets if there is a 2d matrix, or no offset if both matrices are 3d")
    o = None
    if offs is not None:
        o = to_jax(offs)
        if o.ndim != 1:
            raise RuntimeError("offs has to be 1D")
        if o.dtype != jnp.int32:
            raise RuntimeError("Offsets have to be int32")
    if bias is not None:
        raise RuntimeError("Bias not supported yet")
    out = a.dtype if out_dtype is None else as_dtype(out_dtype)
    if out != a.dtype and not (out == jnp.float32 and a.dtype in (jnp.bfloat16, jnp.float16)):
        raise RuntimeError("Grouped gemm output dtype must match `mat_a` dtype")
    if not a_2d and not b_2d and a.shape[0] != b.shape[0]:
        raise RuntimeError("batched dimension has to match")
    if (a_2d != b_2d) and o.shape[0] != (b.shape[0] if a_2d else a.shape[0]):
        raise RuntimeError("matrix batch sizes have to match")
    if a.dtype != b.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {_C10_NAMES[np.dtype(a.dtype).name]} != "
            f"{_C10_NAMES[np.dtype(b.dtype).name]}"
        )
    return _grouped_mm_core(a, b, o, np.dtype(out))


@functools.partial(jax.jit, static_argnums=(3,))
def _grouped_mm_core(a: jax.Array, b: jax.Array, offs: Any, out: Any) -> jax.Array:
    if offs is None:  # 3-D x 3-D
        return jnp.matmul(a, b, preferred_element_type=out).astype(out)
    sizes = jnp.diff(offs, prepend=jnp.zeros((1,), offs.dtype))
    if a.ndim == 2 and b.ndim == 3:
        return lax.ragged_dot(a, b, sizes, preferred_element_type=out).astype(out)
    if a.ndim == 3:  # 3-D x 2-D: the columns of mat_b are jagged
        return lax.ragged_dot(b.T, jnp.swapaxes(a, 1, 2), sizes, preferred_element_type=out).T.astype(out)
    # 2-D x 2-D: the contraction is jagged. jax's ragged_dot_general has no gradient for
    # that mode, so each group's product masks the contraction to the group's span.
    k = jnp.arange(a.shape[1])
    starts = offs - sizes
    mask = ((k >= starts[:, None]) & (k < offs[:, None])).astype(a.dtype)  # (G, K)
    return jnp.einsum("mk,gk,kn->gmn", a, mask, b, preferred_element_type=out).astype(out)
