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
    "distance": "distance",
}
FAMILIES = [
    "linear", "conv", "pooling", "upsampling", "padding", "normalization", "batchnorm", "activation", "dropout",
    "distance", "loss", "sparse/embedding", "attention", "transformer", "rnn", "containers", "models",
]  # fmt: skip

# whole models from tests/parity/test_models.py
MODELS = {"LeNet", "ResNet18", "EncoderClassifier", "LSTMClassifier"}
# test wrappers named after what they check, not after a jmod class
ALIASES = {
    "WSConv": "conv",  # a Conv2d subclass (test_conv.py)
    "ScaledDotProductAttention": "attention",  # F.scaled_dot_product_attention wrappers (test_attention.py)
}


def family_of(name: str) -> str:
    """The family of a recorded parity name (``"Conv2d"``, ``"F.pad"``, ``"LeNet"``)."""
    from jmod import nn
    from jmod.nn import functional as F

    if name in MODELS:
        return "models"
    for prefix, fam in ALIASES.items():
        if name.startswith(prefix):
            return fam
    if name.startswith("F."):
        fn_name = name[2:].split("[")[0]  # "F.interpolate[aa]": a variant of F.interpolate
        if fn_name.startswith("batch_norm"):  # lives with the other norms in functional/normalization.py
            return "batchnorm"
        obj: Any = getattr(F, fn_name, None)
    else:
        obj = getattr(nn, name, None)
    module = getattr(inspect.unwrap(obj), "__module__", None) if obj is not None else None
    if not module:
        return "other"
    return FAMILY_OF_FILE.get(module.rsplit(".", 1)[-1], "other")


def family_rows(max_errors: dict, max_rel: dict, cases: dict) -> list[tuple]:
    """``(family, layers, tests, forward abs, gradient abs, forward rel, gradient rel)`` per family."""
    rows: dict[str, list] = {}
    for name, errs in max_errors.items():
        fam = family_of(name)
        row = rows.setdefault(fam, [set(), set(), 0.0, 0.0, 0.0, 0.0])
        row[0].add(name)
        row[1] |= cases.get(name, set())
        for i, v in enumerate([*errs, *max_rel.get(name, (0.0, 0.0))]):
            row[2 + i] = max(row[2 + i], v)
    order = FAMILIES + sorted(set(rows) - set(FAMILIES))
    return [(f, len(rows[f][0]), len(rows[f][1]), *rows[f][2:]) for f in order if f in rows]


def write_summary(write_line: Any, max_errors: dict, max_rel: dict, cases: dict) -> None:
    """Per layer and per family: the tests that checked it, the largest absolute error of
    the forward (outputs, updated buffers) and of the gradients, and the largest relative
    error (``max|a - e| / max|e|`` per array; large absolute errors on large values)."""
    head = f"{'tests':>6s} {'fwd abs':>10s} {'grad abs':>10s} {'fwd rel':>10s} {'grad rel':>10s}"
    write_line(f"{'layer':34s} {head}")
    for name in sorted(max_errors):
        (fwd, grad), (fr, gr) = max_errors[name], max_rel.get(name, (0.0, 0.0))
        write_line(f"{name:34s} {len(cases.get(name, ())):6d} {fwd:10.2e} {grad:10.2e} {fr:10.2e} {gr:10.2e}")
    write_line("")
    write_line(f"{'family':18s} {'layers':>6s} {head}")
    for fam, n_layers, n_tests, fwd, grad, fr, gr in family_rows(max_errors, max_rel, cases):
        write_line(f"{fam:18s} {n_layers:6d} {n_tests:6d} {fwd:10.2e} {grad:10.2e} {fr:10.2e} {gr:10.2e}")
    total_tests: set[str] = set().union(*cases.values()) if cases else set()
    write_line(f"{'all':18s} {len(max_errors):6d} {len(total_tests):6d}")
