"""Signature audit: every class and function jmod provides under a torch.nn name takes
torch's arguments: the same names, order, kinds and defaults (``device``/``dtype``
included).

Classes: ``__init__``, ``forward`` and every other public method torch defines on the
class or its bases below ``torch.nn.Module`` (``reset_parameters``, ``extra_repr``,
``from_pretrained``, the containers' ``append``/``update``...); ``Module`` itself: all
of ``torch.nn.Module``'s public methods. Functions: ``inspect.signature``, or for torch's
C builtins (which have none) the signature line of torch's docstring, or its ATen schema
when the docstring has none; those do not mark keyword-only arguments, so there only
names, order and defaults are compared.

Differences that are intended are in ``ALLOWED`` with the reason.
"""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any

import pytest
import torch
import torch.nn.functional as TF

import jmod.nn.functional as F
from jmod import nn
from tests.parity.test_coverage import torch_functions

pytestmark = pytest.mark.torch

# "Class.method" or "F.function" -> why jmod's signature differs from torch's.
ALLOWED = {
    # The default activation is each library's own F.relu (the same function).
    "Transformer.__init__": "activation defaults to jmod.nn.functional.relu (torch: torch.nn.functional.relu)",
    "TransformerEncoderLayer.__init__": "activation defaults to jmod.nn.functional.relu",
    "TransformerDecoderLayer.__init__": "activation defaults to jmod.nn.functional.relu",
    # Module (core, jmod/nn/modules/module.py and hooks.py): jmod's extensions.
    "Module.compile": "takes jmod.jit's keyword arguments (**jit_kwargs); torch forwards *args/**kwargs to torch.compile",
    "Module.register_forward_hook": "extra keyword-only host=False (run the hook on the host inside compiled code)",
    "Module.register_forward_pre_hook": "extra keyword-only host=False",
    "Module.register_full_backward_hook": "extra keyword-only host=False",
    "Module.register_full_backward_pre_hook": "extra keyword-only host=False",
    "Module.to_empty": "device defaults to None (the default device); torch requires it",
    # torch.nn.Module methods jmod does not define: accelerators JAX does not target.
    "Module.ipu": "no IPU backend in JAX",
    "Module.mtia": "no MTIA backend in JAX",
    "Module.xpu": "no XPU backend in JAX",
}


def _params(fn: Any, kinds: bool = True) -> list[tuple]:
    return [(p.name, p.kind if kinds else None, p.default) for p in inspect.signature(fn).parameters.values()]


def _same(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(x[:2] == y[:2] and (x[2] is y[2] or x[2] == y[2]) for x, y in zip(a, b))


def _doc_params(name: str, fn: Any) -> list[tuple] | None:
    """Parameters from the ``name(...)`` line of torch's docstring (names, no kinds, defaults)."""
    doc = inspect.getdoc(fn) or ""
    m = re.search(rf"(?m)^\s*{re.escape(name)}\(", doc)
    if m is None:
        return None
    depth, end = 1, m.end()
    while depth:
        depth += (doc[end] in "([{") - (doc[end] in ")]}")
        end += 1
    args = ast.parse(f"def f({doc[m.end() : end - 1]}): pass").body[0].args  # type: ignore[attr-defined]
    pos = args.posonlyargs + args.args
    defaults = [None] * (len(pos) - len(args.defaults)) + list(args.defaults)
    out = [(a.arg, None, inspect.Parameter.empty if d is None else ast.literal_eval(d)) for a, d in zip(pos, defaults)]
    out += [
        (a.arg, None, inspect.Parameter.empty if d is None else ast.literal_eval(d))
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    ]
    return out


def _schema_params(name: str) -> list[tuple] | None:
    """Parameters from the ATen schema, for builtins whose docstring has no signature line
    (``conv_tbc``); torch's Python binding names the schema's ``self`` ``input``."""
    schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
    if not schemas:
        return None
    return [
        (
            "input" if a.name == "self" else a.name,
            None,
            a.default_value if a.has_default_value() else inspect.Parameter.empty,
        )
        for a in schemas[0].arguments
    ]


def torch_function_params(name: str) -> list[tuple] | None:
    fn = getattr(TF, name)
    try:
        params = _params(fn)
    except ValueError:  # a C builtin
        return _doc_params(name, fn) or _schema_params(name)
    if [p[1] for p in params] == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        return _doc_params(name, fn)  # boolean_dispatch (max_pool2d...): the docstring has the real one
    return params


def class_methods(torch_cls: type) -> list[str]:
    """Public methods (and ``__init__``) torch defines on the class, below torch.nn.Module
    (for Module: Module's own)."""
    bases = (
        [torch_cls]
        if torch_cls is torch.nn.Module
        else [k for k in torch_cls.__mro__ if k not in (torch.nn.Module, object)]
    )
    names = {m for k in bases for m in vars(k) if not m.startswith("_") or m == "__init__"}
    out = []
    for m in sorted(names):
        attr = inspect.getattr_static(torch_cls, m)
        if inspect.isfunction(attr) or isinstance(attr, (staticmethod, classmethod)):
            out.append(m)
    return out


def class_mismatches() -> dict[str, str]:
    out = {}
    for name in nn.modules.__all__:
        j_cls, t_cls = getattr(nn, name), getattr(torch.nn, name, None)
        if t_cls is None:
            continue
        for m in class_methods(t_cls):
            key = f"{name}.{m}"
            if not hasattr(j_cls, m):
                out[key] = "missing in jmod"
                continue
            a, b = _params(getattr(j_cls, m)), _params(getattr(t_cls, m))
            if not _same(a, b):
                out[key] = f"jmod {a}\n  torch {b}"
    return out


def function_mismatches() -> dict[str, str]:
    out = {}
    for name in torch_functions():
        if not hasattr(F, name):
            continue
        t = torch_function_params(name)
        assert t is not None, f"no signature for torch.nn.functional.{name}"
        a = _params(getattr(F, name), kinds=t[0][1] is not None if t else True)
        if not _same(a, t):
            out[f"F.{name}"] = f"jmod {a}\n  torch {t}"
    return out


def test_class_signatures_match_torch():
    found = class_mismatches()
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not unexpected, "signatures differ from torch's:\n" + "\n".join(
        f"{k}:\n  {v}" for k, v in unexpected.items()
    )
    stale = sorted(k for k in ALLOWED if not k.startswith("F.") and k not in found)
    assert not stale, f"these now match torch, drop them from ALLOWED: {stale}"


def test_function_signatures_match_torch():
    found = function_mismatches()
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not unexpected, "signatures differ from torch's:\n" + "\n".join(
        f"{k}:\n  {v}" for k, v in unexpected.items()
    )
    stale = sorted(k for k in ALLOWED if k.startswith("F.") and k not in found)
    assert not stale, f"these now match torch, drop them from ALLOWED: {stale}"


def test_transformer_activation_default_is_jmods_relu():
    """What the allow-listed Transformer difference amounts to."""
    for cls in ("Transformer", "TransformerEncoderLayer", "TransformerDecoderLayer"):
        assert inspect.signature(getattr(nn, cls)).parameters["activation"].default is F.relu
        assert inspect.signature(getattr(torch.nn, cls)).parameters["activation"].default is TF.relu


def test_docstring_signatures_are_parsed():
    """The docstring fallback reads what inspect would (checked on a function that has both)."""
    assert _doc_params("conv2d", TF.conv2d)[:3] == [
        ("input", None, inspect.Parameter.empty),
        ("weight", None, inspect.Parameter.empty),
        ("bias", None, None),
    ]
    assert [p[0] for p in torch_function_params("max_pool2d")] == [
        "input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
    ]  # fmt: skip
    assert [p[0] for p in torch_function_params("scaled_dot_product_attention")][-2:] == ["scale", "enable_gqa"]
