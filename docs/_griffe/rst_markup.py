"""A griffe extension for the API pages: jmod's docstrings use torch's reStructuredText
markup (``:math:`x```, ``.. math::`` and ``.. note::`` directives, ``:class:`Module```,
simple tables), which Markdown would print literally. Rewrite it as MathJax
(pymdownx.arithmatex), admonitions, code spans and Markdown tables."""

from __future__ import annotations

import re
import textwrap
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


def convert(text: str) -> str:
    text = _simple_tables(text)
    text = _directives(text)
    text = _LITERAL_MARKER.sub(lambda m: m.group(1) + ":\n\n", text)
    text = _MATH_ROLE.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    text = _XREF_ROLE.sub(lambda m: "`" + m.group(1).split(".")[-1] + "`", text)
    return _ESCAPED_SPACE.sub("`", text)


class RstMarkup(griffe.Extension):
    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
