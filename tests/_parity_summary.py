"""The torch-parity session summary: largest errors per layer and per layer family.

``tests/helpers.py`` records, for every parity check, the layer's name (the jmod class
name, ``F.<name>`` for a functional, or a whole model's class name), its errors and the
test that ran it. Under pytest-xdist each worker sends its records to the controller
(see ``tests/conftest.py``), which prints the tables.
"""

from __future__ import annotations

import inspect
from typing import Any

# the file a jmod layer class / functional is defined in -> family
FAMILY_OF_FILE = {
    "linear": "linear",
    "conv": "conv",
    "fold": "conv",
    "pooling": "pooling",
    "upsampling": "upsampling",
    "pixelshuffle": "upsampling",
    "channelshuffle": "upsampling",
    "padding": "padding",
    "normalization": "normalization",
    "instancenorm": "normalization",
    "batchnorm": "batchnorm",
    "activation": "activation",
    "dropout": "dropout",
    "loss": "loss",
    "sparse": "sparse/embedding",
    "attention": "attention",
    "transformer": "transformer",
    "rnn": "rnn",
    "container": "containers",
    "flatten": "containers",
}
FAMILIES = [
    "linear", "conv", "pooling", "upsampling", "padding", "normalization", "batchnorm", "activation", "dropout",
    "loss", "sparse/embedding", "attention", "transformer", "rnn", "containers", "models",
]  # fmt: skip

# whole models from tests/parity/test_models.py
MODELS = {"LeNet", "ResNet18", "EncoderClassifier", "LSTMClassifier"}


def family_of(name: str) -> str:
    """The family of a recorded parity name (``"Conv2d"``, ``"F.pad"``, ``"LeNet"``)."""
    from jmod import nn
    from jmod.nn import functional as F

    if name in MODELS:
        return "models"
    if name.startswith("F."):
        fn_name = name[2:]
        if fn_name.startswith("batch_norm"):  # lives with the other norms in functional/normalization.py
            return "batchnorm"
        obj: Any = getattr(F, fn_name, None)
    else:
        obj = getattr(nn, name, None)
    module = getattr(inspect.unwrap(obj), "__module__", None) if obj is not None else None
    if not module:
        return "other"
    return FAMILY_OF_FILE.get(module.rsplit(".", 1)[-1], "other")


def family_rows(max_errors: dict[str, list[float]], cases: dict[str, set[str]]) -> list[tuple]:
    """``(family, layers, tests, max forward error, max gradient error)`` per family."""
    rows: dict[str, list] = {}
    for name, (fwd, grad) in max_errors.items():
        fam = family_of(name)
        row = rows.setdefault(fam, [set(), set(), 0.0, 0.0])
        row[0].add(name)
        row[1] |= cases.get(name, set())
        row[2] = max(row[2], fwd)
        row[3] = max(row[3], grad)
    order = FAMILIES + sorted(set(rows) - set(FAMILIES))
    return [(f, len(rows[f][0]), len(rows[f][1]), rows[f][2], rows[f][3]) for f in order if f in rows]


def write_summary(write_line: Any, max_errors: dict[str, list[float]], cases: dict[str, set[str]]) -> None:
    write_line(f"{'layer':32s} {'tests':>6s} {'forward':>12s} {'gradient':>12s}")
    for name in sorted(max_errors):
        fwd, grad = max_errors[name]
        write_line(f"{name:32s} {len(cases.get(name, ())):6d} {fwd:12.3e} {grad:12.3e}")
    write_line("")
    write_line(f"{'family':18s} {'layers':>6s} {'tests':>6s} {'forward':>12s} {'gradient':>12s}")
    total_tests: set[str] = set().union(*cases.values()) if cases else set()
    for fam, n_layers, n_tests, fwd, grad in family_rows(max_errors, cases):
        write_line(f"{fam:18s} {n_layers:6d} {n_tests:6d} {fwd:12.3e} {grad:12.3e}")
    write_line(f"{'all':18s} {len(max_errors):6d} {len(total_tests):6d}")
