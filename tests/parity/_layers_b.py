"""Test helpers for the conv / pooling / padding / upsampling parity suites.

* :func:`pairwise` builds a small set of option combinations in which every pair of
  values of every two options appears at least once (the full product of the conv
  options is hundreds of cases; the pairwise cover is ~20-40).
* :func:`assert_same_error` checks that jmod raises torch's exception type and message.
* :class:`JFn` / :class:`TFn` wrap a functional call as a module, so that
  ``assert_matches_torch`` can compare functionals (forward, jit and gradients).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

from jmod import nn


def pairwise(options: dict[str, Sequence[Any]], valid: Callable[[dict], bool] = lambda c: True) -> list[dict]:
    """A deterministic all-pairs cover of ``options`` restricted to ``valid`` combinations.

    Greedy: repeatedly take the valid combination (from the full product) that covers
    the most still-uncovered value pairs, until every coverable pair is covered.
    """
    names = list(options)
    product = [dict(zip(names, values)) for values in itertools.product(*options.values())]
    product = [c for c in product if valid(c)]

    def pairs_of(c: dict) -> set:
        return {(a, repr(c[a]), b, repr(c[b])) for a, b in itertools.combinations(names, 2)}

    uncovered = set().union(*(pairs_of(c) for c in product)) if product else set()
    chosen: list[dict] = []
    while uncovered:
        best = max(product, key=lambda c: len(pairs_of(c) & uncovered))
        chosen.append(best)
        uncovered -= pairs_of(best)
    return chosen


def case_id(case: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in case.items()).replace(" ", "")


def _sorted_sets(message: str) -> str:
    """Sort the elements of set literals in a message ("{'b', 'a'}" -> "{'a', 'b'}").

    torch prints Python sets in its messages (``padding_mode must be one of {...}``);
    their order depends on string hashing and on the order the set constant was stored
    in each module's bytecode, so it differs between processes and between torch and jmod.
    """
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


def assert_same_error(jmod_fn: Callable[[], Any], torch_fn: Callable[[], Any]) -> str:
    """Both calls raise; jmod's exception has torch's type and its message's first line."""
    with pytest.raises(Exception) as t_info:
        torch_fn()
    expected_type = t_info.type
    expected = _sorted_sets(str(t_info.value).split("\n")[0])
    with pytest.raises(expected_type) as j_info:
        jmod_fn()
    assert expected in _sorted_sets(str(j_info.value)), f"{j_info.value!r} does not contain {expected!r}"
    return expected


_CLASSES: dict[str, type] = {}


def functional_pair(name: str, jmod_fn: Callable, torch_fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``(jmod_module, torch_module)`` calling the two functionals with the same extra arguments.

    The jmod module's class is named ``name`` (e.g. ``"F.pad"``) so the parity summary
    table reports functionals under their own name.
    """
    cls = _CLASSES.get(name)
    if cls is None:
        cls = _CLASSES[name] = type(name, (JFn,), {})
    return cls(jmod_fn, *args, **kwargs), TFn(torch_fn, *args, **kwargs)


class JFn(nn.Module):
    """A jmod module that calls ``fn(input, *args, **kwargs)``."""

    def __init__(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def forward(self, *inputs: Any) -> Any:
        return self.fn(*inputs, *self.args, **self.kwargs)


class TFn(torch.nn.Module):
    """The torch twin of :class:`JFn`."""

    def __init__(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def forward(self, *inputs: Any) -> Any:
        return self.fn(*inputs, *self.args, **self.kwargs)
