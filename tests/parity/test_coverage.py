"""Coverage audit: which of torch.nn's classes and torch.nn.functional's functions jmod
provides, and that each one it provides has a parity test.

A name counts as tested when a parity test file (``tests/parity/test_*.py``; all
compare with torch, most through ``assert_matches_torch``, the random dropouts
statistically) mentions it as an identifier, an attribute, a string, or an f-string
with digit placeholders (``f"MaxPool{n}d"`` covers ``MaxPool1d``...). The names
torch has and jmod does not are listed in ``NOT_PROVIDED`` (the lead decides about
them); this test fails when that list goes stale in either direction.
"""

from __future__ import annotations

import ast
import inspect
import pathlib
import re

import pytest
import torch
import torch.nn.functional as TF

import jmod.nn.functional as F
from jmod import nn

pytestmark = pytest.mark.torch

PARITY_DIR = pathlib.Path(__file__).parent
# The audits themselves mention every name.
AUDIT_FILES = {"test_coverage.py", "test_signatures.py", "test_init_distributions.py"}

# Public callables of torch.nn.functional that are not part of its functional API:
# helpers it imports or defines for its own use.
NOT_FUNCTIONAL_API = {
    "assert_int_or_pair",  # argument checker, undocumented
    "boolean_dispatch",  # torch._jit_internal
    "handle_torch_function",  # torch.overrides
    "has_torch_function",
    "has_torch_function_unary",
    "has_torch_function_variadic",
}

# torch.nn classes and torch.nn.functional functions jmod does not provide (for the lead).
NOT_PROVIDED = {
    # classes
    # functions
    "scaled_grouped_mm",
    "scaled_mm",
    # torch's in-place variants (JAX arrays are immutable)
    "celu_",
    "elu_",
    "hardtanh_",
    "leaky_relu_",
    "relu_",
    "rrelu_",
    "selu_",
    "threshold_",
}

# Provided names no numerical parity test applies to, with the reason.
NO_PARITY_TEST = {
    "Module": "the base class; every parity test runs through it",
    "Container": "torch's deprecated base class, no forward",
    "RNNBase": "the base of RNN/LSTM/GRU, tested through them (test_rnn.py)",
    "RNNCellBase": "the base of RNNCell/LSTMCell/GRUCell, no forward",
}


def torch_classes() -> list[str]:
    return list(torch.nn.modules.__all__)


def torch_functions() -> list[str]:
    names = []
    for name in dir(TF):
        obj = getattr(TF, name)
        if name.startswith("_") or not callable(obj) or inspect.isclass(obj) or name in NOT_FUNCTIONAL_API:
            continue
        if getattr(obj, "__module__", None) == "typing":
            continue
        names.append(name)
    return names


def provided() -> list[str]:
    return [n for n in torch_classes() if hasattr(nn, n)] + [n for n in torch_functions() if hasattr(F, n)]


def _mentions(path: pathlib.Path) -> tuple[set[str], list[re.Pattern]]:
    """Identifiers, attributes and strings in a file, and its f-strings as patterns in
    which each placeholder is one digit."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    patterns: list[re.Pattern] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts = [re.escape(v.value) if isinstance(v, ast.Constant) else "[0-9]" for v in node.values]
            if any(isinstance(v, ast.Constant) and v.value for v in node.values):
                patterns.append(re.compile("".join(parts)))
    return names, patterns


def parity_mentions() -> dict[str, tuple[set[str], list[re.Pattern]]]:
    out = {}
    for path in sorted(PARITY_DIR.glob("test_*.py")):
        if path.name in AUDIT_FILES:
            continue
        out[path.name] = _mentions(path)
    return out


def _tested_in(name: str, mentions: dict) -> list[str]:
    return [f for f, (names, patterns) in mentions.items() if name in names or any(p.fullmatch(name) for p in patterns)]


def test_not_provided_is_current():
    """``NOT_PROVIDED`` lists exactly the torch.nn names jmod lacks."""
    missing = {n for n in torch_classes() if not hasattr(nn, n)} | {n for n in torch_functions() if not hasattr(F, n)}
    assert not missing - NOT_PROVIDED, (
        f"torch.nn names jmod does not provide, not yet listed: {sorted(missing - NOT_PROVIDED)}"
    )
    assert not NOT_PROVIDED - missing, (
        f"now provided (or gone from torch), drop from NOT_PROVIDED: {sorted(NOT_PROVIDED - missing)}"
    )


def test_every_provided_name_has_a_parity_test():
    mentions = parity_mentions()
    untested = [n for n in provided() if n not in NO_PARITY_TEST and not _tested_in(n, mentions)]
    assert not untested, f"provided but no parity test mentions them: {untested}"
    assert set(NO_PARITY_TEST) <= set(provided()), sorted(set(NO_PARITY_TEST) - set(provided()))
