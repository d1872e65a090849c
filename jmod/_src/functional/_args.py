"""Argument parsing shared by the conv, pooling, padding and upsampling functionals.

torch's C++ ops accept an int or a list of ints for every per-dimension argument
(``stride=2``, ``stride=(2,)`` or ``stride=(2, 1)`` for a 2-d op); these helpers
expand and check them the same way, raising torch's errors.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["is_int", "as_int_list", "expand", "dtype_name"]


def is_int(x: Any) -> bool:
    """True for Python/NumPy integers (not bools, as torch's int-list parser)."""
    return isinstance(x, (numbers.Integral, np.integer)) and not isinstance(x, bool)


def as_int_list(value: Any, fn: str, arg: str, pos: int) -> list[int]:
    """A list of Python ints from an int or a sequence of ints, else torch's TypeError."""
    if is_int(value):
        return [int(value)]
    if isinstance(value, (tuple, list)) or (hasattr(value, "__len__") and not isinstance(value, (str, bytes))):
        out = []
        for i, v in enumerate(value):
            if not is_int(v):
                raise TypeError(
                    f"{fn}(): argument '{arg}' (position {pos}) must be tuple of ints, "
                    f"but found element of type {type(v).__name__} at pos {i}"
                )
            out.append(int(v))
        return out
    raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be tuple of ints, not {type(value).__name__}")


def expand(values: list[int], n: int, error: str) -> tuple[int, ...]:
    """Broadcast a one-element list to ``n`` entries; any other length but ``n`` raises ``error``."""
    if len(values) == 1:
        return tuple(values) * n
    if len(values) != n:
        raise RuntimeError(error)
    return tuple(values)


_TORCH_NAMES = {
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


def dtype_name(dtype: Any) -> str:
    """torch's scalar type name for a dtype (``float32`` -> ``Float``)."""
    name = np.dtype(dtype).name
    return _TORCH_NAMES.get(name, name)
