"""A deterministic all-pairs (pairwise) sweep for parametrizing option grids.

``all_pairs({"a": [..], "b": [..], ...})`` returns a short list of option dicts in
which every pair of values of every two options appears at least once: a sweep that
exercises each option against each other option without the full product's cost.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any


def all_pairs(factors: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(factors)
    sizes = [len(factors[n]) for n in names]
    uncovered = {
        (i, a, j, b) for i, j in combinations(range(len(names)), 2) for a in range(sizes[i]) for b in range(sizes[j])
    }
    cases: list[list[int]] = []
    while uncovered:
        i, a, j, b = min(uncovered)
        case: list[int | None] = [None] * len(names)
        case[i], case[j] = a, b
        for f in range(len(names)):
            if case[f] is not None:
                continue

            def gain(v: int, f: int = f) -> int:
                return sum(
                    1
                    for g, w in enumerate(case)
                    if w is not None and ((min(f, g), v if f < g else w, max(f, g), w if f < g else v) in uncovered)
                )

            case[f] = max(range(sizes[f]), key=gain)
        for f, g in combinations(range(len(names)), 2):
            uncovered.discard((f, case[f], g, case[g]))
        cases.append(case)  # type: ignore[arg-type]
    return [{n: factors[n][v] for n, v in zip(names, case)} for case in cases]


def case_id(case: dict[str, Any]) -> str:
    return "-".join(f"{k}={getattr(v, '__name__', v)}" for k, v in case.items())
