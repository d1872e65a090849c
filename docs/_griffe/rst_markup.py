"""A griffe extension for the API pages: jmod's docstrings use torch's reStructuredText
markup (``:math:`x```, ``.. math::`` blocks, ``:class:`Module```), which Markdown would
print literally. Rewrite it as MathJax (pymdownx.arithmatex) and code spans."""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc|ref):`~?([^`]+)`")
_ESCAPED_SPACE = re.compile(r"`\\ ")  # RST's ``PartitionSpec``\ s


def _math_blocks(text: str) -> str:
    """``.. math::`` directives (and their indented body) become ``$$ ... $$`` blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if not stripped.startswith(".. math::"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        body = [stripped[len(".. math::") :].strip()]
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            body.append(lines[i])
            i += 1
        formula = textwrap.dedent("\n".join(body)).strip()
        out += ["", indent + "$$", *(indent + part for part in formula.split("\n")), indent + "$$", ""]
    return "\n".join(out)


def convert(text: str) -> str:
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    text = _XREF_ROLE.sub(lambda m: "`" + m.group(1).split(".")[-1] + "`", text)
    return _ESCAPED_SPACE.sub("`", text)


class RstMarkup(griffe.Extension):
    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
