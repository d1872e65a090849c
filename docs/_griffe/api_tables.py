"""The summary table at the top of each API reference page (docs/api/*.md).

Each page lists its objects in a table between ``**On this page**`` and the first
blank line after the table: one row per ``::: path`` directive, linking to the entry
and giving the first sentence of its docstring. Regenerate the tables after adding or
removing a directive with::

    python docs/_griffe/api_tables.py

(tests/test_api_reference.py fails while a page's table is out of date).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"
DIRECTIVE = re.compile(r"^::: *(?P<path>[\w.]+)[ \t]*$", re.M)
TABLE = re.compile(r"^\*\*On this page\*\*\n\n(?:\|.*\|\n)+", re.M)


def _resolve(path: str) -> object:
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def summary(obj: object) -> str:
    """The first sentence of ``obj``'s docstring, as one Markdown table cell."""
    sys.path.insert(0, str(Path(__file__).parent))
    from rst_markup import convert

    doc = (getattr(obj, "__doc__", None) or "").strip()
    first = " ".join(convert(re.split(r"\n\s*\n", doc, maxsplit=1)[0]).split())
    m = re.match(r"(.+?\.)(\s+[A-Z(`]|$)", first)
    return (m.group(1) if m else first).replace("|", "\\|")


def table(text: str) -> str:
    """The summary table for a page's directives (module intros with ``members: false`` left out)."""
    rows = ["**On this page**", "", "| | |", "|---|---|"]
    for m in DIRECTIVE.finditer(text):
        path = m.group("path")
        obj = _resolve(path)
        if type(obj).__name__ == "module":
            continue
        rows.append(f"| [`{path.rsplit('.', 1)[-1]}`](#{path}) | {summary(obj)} |")
    return "\n".join(rows) + "\n"


def refresh(page: Path) -> bool:
    """Rewrite ``page``'s table; True if it changed."""
    text = page.read_text()
    new = TABLE.sub(lambda _: table(text), text, count=1)
    if new != text:
        page.write_text(new)
    return new != text


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for page in sorted(API.glob("*.md")):
        if TABLE.search(page.read_text()) and refresh(page):
            print(f"updated {page.relative_to(ROOT)}")
