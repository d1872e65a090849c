"""A griffe extension for the API pages: jmod's docstrings use torch's reStructuredText
markup (``:math:`x```, ``.. math::`` and ``.. note::`` directives, ``:class:`Module```,
simple tables), which Markdown would print literally. Rewrite it as MathJax
(pymdownx.arithmatex), admonitions, code spans and Markdown tables."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import griffe

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc|ref):`~?([^`]+)`")
_ESCAPED_SPACE = re.compile(r"`\\ ")  # RST's ``PartitionSpec``\ s
_LITERAL_MARKER = re.compile(r"(\S)::\n\n")  # "as written::" before an indented code block
_RULE = re.compile(r"^( *)(=+(?: +=+)+) *$")


_DIRECTIVE = re.compile(r"^( *)\.\. (math|note|warning)::(.*)$")


def _directives(text: str) -> str:
    """``.. math::`` (and its indented body) becomes a ``$$ ... $$`` block; ``.. note::``
    and ``.. warning::`` become Material admonitions."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent, kind = m.group(1), m.group(2)
        body = [m.group(3).strip()]
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            body.append(lines[i])
            i += 1
        content = textwrap.dedent("\n".join(body)).strip().split("\n")
        if kind == "math":
            out += ["", indent + "$$", *(indent + part for part in content), indent + "$$", ""]
        else:
            out += ["", f"{indent}!!! {kind}", *(f"{indent}    {part}" if part else "" for part in content), ""]
    return "\n".join(out)


def _simple_tables(text: str) -> str:
    """RST simple tables (rule, header, rule, rows, rule) become Markdown tables."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _RULE.match(lines[i])
        rules = [j for j in range(i, min(len(lines), i + 200)) if _RULE.match(lines[j])] if m else []
        if len(rules) < 3 or rules[1] != i + 2:
            out.append(lines[i])
            i += 1
            continue
        indent, rule = m.group(1), m.group(2)
        spans = [(c.start() + len(indent), c.end() + len(indent)) for c in re.finditer(r"=+", rule)]

        def cells(line: str) -> list[str]:
            bounds = [s for s, _ in spans[1:]] + [len(line)]
            return [line[s:e].strip() for (s, _), e in zip(spans, bounds)]

        header = cells(lines[i + 1])
        rows = [cells(line) for line in lines[rules[1] + 1 : rules[2]] if line.strip()]
        out += ["", indent + "| " + " | ".join(header) + " |", indent + "|" + "---|" * len(header)]
        out += [indent + "| " + " | ".join(r) + " |" for r in rows]
        out.append("")
        i = rules[2] + 1
    return "\n".join(out)


_SECTION = re.compile(r"^( *)(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Other Parameters):\s*$")
_GROUPED = re.compile(r"^(?P<names>\*{0,2}\w+(?:, *\*{0,2}\w+)+)(?P<type> *\([^)]*\))?:(?P<text>.*)$")


def _split_grouped_args(text: str) -> str:
    """``a, b (type): text`` in an Args section becomes one entry per name.

    jmod documents related arguments together, as torch does (``size_average, reduce:
    deprecated``). griffe reads such a line as one parameter named ``"size_average,
    reduce"``, finds no parameter of that name in the signature and renders its default
    as *required*; one entry per name gets each parameter's real default."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        m = _SECTION.match(lines[i])
        i += 1
        if not m:
            continue
        base = len(m.group(1))
        entry_indent = None
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > base):
            line = lines[i]
            indent = len(line) - len(line.lstrip())
            if line.strip() and entry_indent is None:
                entry_indent = indent
            g = _GROUPED.match(line.strip()) if line.strip() and indent == entry_indent else None
            if not g:
                out.append(line)
                i += 1
                continue
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > entry_indent:
                body.append(lines[i])
                i += 1
            for name in (n.strip() for n in g.group("names").split(",")):
                out.append(" " * entry_indent + name + (g.group("type") or "") + ":" + g.group("text"))
                out.extend(body)
    return "\n".join(out)


def convert(text: str) -> str:
    text = _split_grouped_args(text)
    text = _simple_tables(text)
    text = _directives(text)
    text = _LITERAL_MARKER.sub(lambda m: m.group(1) + ":\n\n", text)
    text = _MATH_ROLE.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    text = _XREF_ROLE.sub(lambda m: "`" + m.group(1).split(".")[-1] + "`", text)
    return _ESCAPED_SPACE.sub("`", text)


class RstMarkup(griffe.Extension):
    def on_module_members(self, *, mod: Any, **kwargs: Any) -> None:
        """Take a jmod module's ``__all__`` from the imported module.

        Some are computed (``jmod.nn.modules``: every class the package imports;
        ``jmod.nn``: that list plus its own names), which griffe's static reading cannot
        evaluate: it would then see no exports, expand ``from jmod.nn.modules import *``
        to nothing, and ``::: jmod.nn.Conv2d`` would not resolve. With the real list,
        the reference shows every object under its public path."""
        if not (mod.path == "jmod" or mod.path.startswith("jmod.")) or "__all__" not in mod.members:
            return
        root = str(Path(__file__).resolve().parents[2])
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            mod.exports = list(importlib.import_module(mod.path).__all__)
        except Exception:  # noqa: BLE001  (keep griffe's static reading)
            return

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
