"""Argument helpers of ``torch/nn/modules/utils.py`` (``_pair``, ``_reverse_repeat_tuple``...).

Custom layers ported from torch often import these (``from torch.nn.modules.utils
import _pair``); they behave exactly as torch's: an iterable is turned into a tuple
as it is (no length check), anything else is repeated ``n`` times.
"""

from __future__ import annotations

import collections.abc
from itertools import repeat
from typing import Any

__all__: list[str] = []


def _ntuple(n: int, name: str = "parse"):
    def parse(x: Any) -> tuple:
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t: Any, n: int) -> tuple:
    r"""Reverse the order of ``t`` and repeat each element ``n`` times.

    Translates the padding argument of Conv and Pooling modules (first spatial dim
    first) to the one ``F.pad`` takes (last dim first, left and right).

    Examples:
        >>> _reverse_repeat_tuple((1, 2), 2)
        (2, 2, 1, 1)
    """
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size: Any, defaults: Any) -> Any:
    """Replace ``None`` entries of ``out_size`` by the matching trailing entries of ``defaults``."""
    if isinstance(out_size, int):
        return out_size
    if len(defaults) <= len(out_size):
        raise ValueError(f"Input dimension should be at least {len(out_size) + 1}")
    return [v if v is not None else d for v, d in zip(out_size, defaults[-len(out_size) :])]
