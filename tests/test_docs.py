"""The code in the guides runs, and prints what the guides say it prints.

Each page's ```python blocks run in order in one namespace (a page reads as one
session). A ```text block right after a python block is that block's output and
must match what it printed. A block preceded by ``<!-- no-run -->`` is shown but not
run (hardware the test machine lacks, a fragment). Run one page by hand with
``python tests/test_docs.py docs/hooks.md``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/installation.md",
    "docs/model-call.md",
    "docs/modules-and-state.md",
    "docs/hooks.md",
    "docs/compiling-and-training.md",
    "docs/mixed-precision.md",
    "docs/api/functional.md",
]

_FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def blocks(text: str) -> list[tuple[str, str, bool, str | None]]:
    """``(info, code, run, expected_output)`` for every python block of a page."""
    found = list(_FENCE.finditer(text))
    out = []
    for i, m in enumerate(found):
        info = m.group("info").strip().split()[0] if m.group("info").strip() else ""
        if info != "python":
            continue
        before = text[: m.start()].rstrip().splitlines()
        run = not (before and before[-1].strip() == "<!-- no-run -->")
        expected = None
        if i + 1 < len(found):
            nxt = found[i + 1]
            between = text[m.end() : nxt.start()]
            if not between.strip() and nxt.group("info").strip() == "text":
                expected = nxt.group("body")
        out.append((info, textwrap.dedent(m.group("body")), run, expected))
    return out


def _normalise(s: str) -> str:
    return "\n".join(line.rstrip() for line in s.strip("\n").splitlines())


def run_page(path: Path) -> list[str]:
    """Run a page's blocks; return a list of problems (empty when all is well)."""
    namespace: dict = {"__name__": "__docs__"}
    problems = []
    for n, (_, code, run, expected) in enumerate(blocks(path.read_text()), 1):
        if not run:
            continue
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{path.name}[block {n}]", "exec"), namespace)
        if expected is not None and _normalise(buf.getvalue()) != _normalise(expected):
            problems.append(f"{path.name} block {n}: printed\n{buf.getvalue()}\n--- but the page shows ---\n{expected}")
    return problems


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs_and_prints_what_it_shows(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that save files write them here
    problems = run_page(ROOT / page)
    assert not problems, "\n\n".join(problems)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for arg in sys.argv[1:] or PAGES:
        page = Path(arg) if os.path.isabs(arg) or Path(arg).exists() else ROOT / arg
        found = run_page(page)
        print("\n\n".join(found) if found else f"{arg}: ok")
