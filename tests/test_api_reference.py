"""Every public name has an entry in the API reference (docs/api/*.md).

A *public module* is ``jmod`` and, recursively, every submodule of a public module
whose dotted path has no ``_``-prefixed part, except an *implementation module*: one
whose public names are all re-exported by its parent (``jmod.nn.modules.conv`` ->
``jmod.nn``, ``jmod.optim.torch_optimizers`` -> ``jmod.optim``), since its names are
documented under the parent's path. A module's public names are its ``__all__``, or
without one, its attributes not starting with ``_`` that jmod defines (functions,
classes, ...; imported third-party names and submodules are not counted).

A name *has an entry* when the same object is rendered by a ``::: path`` directive of
a docs page: the directive's object itself, the names in its ``members:`` list, or,
for a module directive without ``members``, all of that module's public names.

To add an entry for a new public name, add a directive under its public path to the
page of docs/api/ that covers its torch counterpart (a new page goes in mkdocs.yml's
nav and needs a ``**On this page**`` line)::

    ::: jmod.optim.LBFGS
        options:
          heading_level: 2

then run ``python docs/_griffe/api_tables.py`` to refresh that page's summary table
(the second test here checks the tables). ``python tests/test_api_reference.py``
prints the names that still lack an entry.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_DIRECTIVE = re.compile(r"^::: *(?P<path>[\w.]+)[ \t]*\n(?P<opts>(?:(?:[ \t]+.*)?\n)*)", re.M)


def _is_public_path(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def public_names(module: types.ModuleType) -> dict[str, object]:
    """``{name: object}`` of a module's public API (``__all__``, or what it defines)."""
    if hasattr(module, "__all__"):
        return {n: getattr(module, n) for n in module.__all__ if not isinstance(getattr(module, n), types.ModuleType)}
    out = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if (getattr(obj, "__module__", None) or "").startswith("jmod"):
            out[name] = obj
    return out


def _import_public_submodules() -> None:
    import jmod

    for info in pkgutil.walk_packages(jmod.__path__, "jmod."):
        if _is_public_path(info.name) and not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def public_modules() -> list[types.ModuleType]:
    """The public modules, ``jmod`` first, found by walking submodule attributes."""
    _import_public_submodules()
    import jmod

    found, queue = [], [jmod]
    seen = {id(jmod)}
    while queue:
        module = queue.pop(0)
        found.append(module)
        parent_objects = {id(o) for o in vars(module).values()}
        for sub in vars(module).values():
            if not isinstance(sub, types.ModuleType) or id(sub) in seen:
                continue
            if not sub.__name__.startswith(module.__name__ + ".") or not _is_public_path(sub.__name__):
                continue
            seen.add(id(sub))
            names = public_names(sub)
            if names and all(id(o) in parent_objects for o in names.values()):
                # implementation module: its names are documented under the parent's path;
                # its own public submodules are still walked
                queue.extend(
                    s for s in vars(sub).values()
                    if isinstance(s, types.ModuleType) and s.__name__.startswith(sub.__name__ + ".")
                    and _is_public_path(s.__name__) and id(s) not in seen
                )
                continue
            queue.append(sub)
    return found


def _api_tables() -> types.ModuleType:
    """docs/_griffe/api_tables.py: the docs' own resolver and table builder."""
    sys.path.insert(0, str(ROOT / "docs" / "_griffe"))
    import api_tables

    return api_tables



def _members(opts: str) -> list[str] | bool | None:
    """The ``members:`` option of a directive: a list, False, or None (absent)."""
    m = re.search(r"^[ \t]+members:[ \t]*(?P<inline>.*)\n(?P<items>(?:[ \t]+- .*\n)*)", opts, re.M)
    if not m:
        return None
    inline = m.group("inline").strip()
    if inline == "false":
        return False
    if inline.startswith("["):
        return [x.strip() for x in inline.strip("[]").split(",") if x.strip()]
    return [line.strip()[2:].strip() for line in m.group("items").splitlines()]


def documented() -> dict[int, list[str]]:
    """``{id(object): [directive paths rendering it]}`` over every docs page."""
    out: dict[int, list[str]] = {}
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if "_griffe" in page.parts:
            continue
        for m in _DIRECTIVE.finditer(page.read_text()):
            path, members = m.group("path"), _members(m.group("opts"))
            obj = _api_tables()._resolve(path)
            out.setdefault(id(obj), []).append(path)
            if isinstance(obj, types.ModuleType):
                names = public_names(obj) if members is None else {n: getattr(obj, n) for n in members or []}
                for name, member in names.items():
                    out.setdefault(id(member), []).append(f"{path}.{name}")
    return out


def missing() -> list[str]:
    docs = documented()
    out, seen = [], set()
    for module in public_modules():  # jmod first: a name is reported under its shortest path
        for name, obj in public_names(module).items():
            if id(obj) not in docs and id(obj) not in seen:
                seen.add(id(obj))
                out.append(f"{module.__name__}.{name}")
    return out


def test_every_public_name_has_an_api_reference_entry():
    absent = missing()
    assert not absent, (
        f"{len(absent)} public names have no entry in docs/api/*.md (add a '::: path' directive or a "
        "'members:' item; see this file's docstring):\n  " + "\n  ".join(absent)
    )


def test_each_reference_page_opens_with_its_summary_table():
    api_tables = _api_tables()
    stale = []
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        text = page.read_text()
        if page.name == "index.md":
            continue
        m = api_tables.TABLE.search(text)
        if m is None or m.group(0) != api_tables.table(text):
            stale.append(page.name)
    assert not stale, f"summary tables missing or out of date in {stale}: run python docs/_griffe/api_tables.py"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print("public modules:", ", ".join(m.__name__ for m in public_modules()))
    print("\n".join(missing()) or "every public name has an entry")
