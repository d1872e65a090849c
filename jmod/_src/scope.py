"""Run Python code on stateful objects whose arrays were swapped for (traced) values.

This is the one mechanism behind ``jmod.jit``, ``jmod.grad`` and the compiled
``Module.__call__``: the *participants* (modules, optimizers, generators) expose
their arrays as locations (``container[key]``); a :class:`Scope` writes the values a
JAX transformation gives it into those locations, runs the user's code on the real
objects (so hooks see the real module, ``self`` is ``self``), then reads out what the
code changed and puts every original value back. Nothing traced is left behind, also
when the code raises.

What the code changed comes in four kinds (:class:`Changes`):

* ``changed``: existing locations that now hold a new array (a BatchNorm buffer
  update, an optimizer step, the advanced random key);
* ``new``: arrays stored where there was no array before (``self.cache = x`` on a
  fresh attribute, a lazily registered buffer), addressed by path;
* ``effects``: non-array attributes that were reassigned (``self.calls += 1`` with an
  int); they stay applied, and compiled code replays them on every call;
* leaks: a traced array put inside a list/dict attribute cannot be carried out, so
  :class:`~jmod._src.errors.TracerEscapeError` names the attribute and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax

from jmod._src import structure
from jmod._src.arrays import is_jax_array, is_tracer
from jmod._src.errors import TracerEscapeError
from jmod._src.state import enter_managed, exit_managed, walk_modules

_MISSING = object()

# Attributes Module.__init__ creates: jmod's own bookkeeping, never user state.
MODULE_INTERNALS = frozenset(
    {
        "training",
        "_parameters",
        "_buffers",
        "_non_persistent_buffers_set",
        "_backward_pre_hooks",
        "_backward_hooks",
        "_is_full_backward_hook",
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_load_state_dict_pre_hooks",
        "_load_state_dict_post_hooks",
        "_modules",
        "_compiled_call_impl",
    }
)

Location = tuple[Any, Any]
# (participant index, dotted module path, kind, name): kind is "attr", "buffer" or "param"
Path = tuple[int, str, str, str]


class Changes(NamedTuple):
    changed_idx: tuple[int, ...]
    changed_vals: list[Any]
    new_paths: tuple[Path, ...]
    new_vals: list[Any]
    effects: tuple[tuple[Path, Any], ...]


def is_participant(x: Any) -> bool:
    """Objects whose state jmod threads through transformations: modules, optimizers,
    generators, anything implementing ``_jmod_state_locations`` (a class-level check:
    ``hasattr`` on a Module instance would go through its slow ``__getattr__``)."""
    return hasattr(type(x), "_jmod_state_locations")


def _is_module_tree(x: Any) -> bool:
    """Participants that are module trees (``_jmod_modules`` lists their modules)."""
    return hasattr(type(x), "_jmod_modules")


def participant_locations(participants: Sequence[Any]) -> tuple[list[Any], list[Location]]:
    """The modules reachable from ``participants`` and every array location, each once.

    Order: module state (parameter slots, buffers, plain array attributes, module by
    module in ``named_modules`` order), then non-module participants' locations
    (optimizer state, parameter slots an optimizer updates, generator keys).
    """
    from jmod._src.state import module_locations

    modules = walk_modules([p for p in participants if _is_module_tree(p)])
    locs = module_locations(modules)
    seen = {(id(c), k) for c, k in locs}
    for p in participants:
        if _is_module_tree(p):
            continue
        for c, k in p._jmod_state_locations():
            if (id(c), k) not in seen:
                seen.add((id(c), k))
                locs.append((c, k))
    return modules, locs


def _module_paths(participants: Sequence[Any]) -> dict[int, tuple[int, str]]:
    paths: dict[int, tuple[int, str]] = {}
    for pi, p in enumerate(participants):
        if _is_module_tree(p):
            for name, m in p.named_modules():
                paths.setdefault(id(m), (pi, name))
    return paths


def resolve_path(participants: Sequence[Any], path: Path) -> Location:
    """The location a :data:`Path` names (creating the parameter slot if needed)."""
    pi, mpath, kind, name = path
    module = participants[pi].get_submodule(mpath)
    if kind == "buffer":
        return module._buffers, name
    if kind == "param":
        return module._parameters[name].__dict__, "data"
    return module.__dict__, name


def _find_leak(value: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if is_tracer(value):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_find_leak(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_find_leak(v, depth + 1) for v in value.values())
    return False


class Scope:
    """Swap values into the participants' locations, run code, collect, restore."""

    def __init__(self, participants: Sequence[Any]) -> None:
        self.participants = list(participants)
        self.modules, self.locs = participant_locations(self.participants)

    # ------------------------------------------------------------------ entering
    def enter(self, values: Sequence[Any] | None = None, indices: Sequence[int] | None = None) -> None:
        """Record the current state and write ``values`` into the locations.

        With ``indices``, ``values[j]`` goes to location ``indices[j]``; otherwise
        ``values`` covers every location in order.
        """
        locs = self.locs
        self.orig = [c[k] for c, k in locs]
        self.snaps = [(dict(m.__dict__), dict(m._buffers), dict(m._parameters)) for m in self.modules]
        # Invalidated if the code changes the structure of any module (new submodules,
        # buffers, attributes): collect() then looks at every module reachable.
        self.signal = structure.Signal()
        for m in self.modules:
            structure.watch(m, self.signal)
        if values is not None:
            if indices is None:
                for (c, k), v in zip(locs, values):
                    c[k] = v
            else:
                for i, v in zip(indices, values):
                    c, k = locs[i]
                    c[k] = v
        self.inputs = [c[k] for c, k in locs]
        enter_managed()

    # ----------------------------------------------------------------- collecting
    def collect(self, check_leaks: bool = True) -> Changes:
        """What the code changed since :meth:`enter` (see the module docstring)."""
        changed_idx: list[int] = []
        changed_vals: list[Any] = []
        for i, ((c, k), before) in enumerate(zip(self.locs, self.inputs)):
            now = c.get(k, _MISSING) if isinstance(c, dict) else c[k]
            if now is not before and is_jax_array(now):
                changed_idx.append(i)
                changed_vals.append(now)

        new_paths: list[Path] = []
        new_vals: list[Any] = []
        effects: list[tuple[Path, Any]] = []
        known = {(id(c), k) for c, k in self.locs}
        paths = _module_paths(self.participants)
        modules = self.modules
        if not self.signal.valid:
            # The code changed some structure (new submodules, buffers, attributes):
            # look at every module reachable now.
            modules = walk_modules([p for p in self.participants if _is_module_tree(p)])
        snaps = {id(m): s for m, s in zip(self.modules, self.snaps)}
        for m in modules:
            where = paths.get(id(m))
            if where is None:
                continue
            pi, mpath = where
            snap = snaps.get(id(m))
            for name, slot in m._parameters.items():
                if slot is not None and (id(slot.__dict__), "data") not in known and is_jax_array(slot.data):
                    new_paths.append((pi, mpath, "param", name))
                    new_vals.append(slot.data)
            for name, buf in m._buffers.items():
                if buf is not None and (id(m._buffers), name) not in known and is_jax_array(buf):
                    new_paths.append((pi, mpath, "buffer", name))
                    new_vals.append(buf)
            d = m.__dict__
            for name, value in d.items():
                if is_jax_array(value):
                    if (id(d), name) not in known:
                        new_paths.append((pi, mpath, "attr", name))
                        new_vals.append(value)
                elif name in structure.PRIVATE_ATTRIBUTES:
                    continue
                elif snap is not None and snap[0].get(name, _MISSING) is not value:
                    if check_leaks and _find_leak(value):
                        raise TracerEscapeError(
                            f"{type(m).__name__}.{name} (module '{mpath or '<root>'}') now holds a traced array "
                            f"inside a {type(value).__name__}, which would outlive the compiled call. Assign the array "
                            f"itself to an attribute (self.{name} = x) or a buffer, return it, or use jmod.capture / a "
                            f"host=True hook to observe it."
                        )
                    effects.append(((pi, mpath, "attr", name), value))
            if check_leaks:
                for name, value in d.items():
                    if (
                        name not in MODULE_INTERNALS
                        and name not in structure.PRIVATE_ATTRIBUTES
                        and not is_jax_array(value)
                        and isinstance(value, (list, dict, set))
                        and _find_leak(value)
                    ):
                        raise TracerEscapeError(
                            f"{type(m).__name__}.{name} (module '{mpath or '<root>'}') had a traced array put into it "
                            f"(a {type(value).__name__} mutated in place), which would outlive the compiled call. "
                            f"Assign a new value instead (self.{name} = ...), return the array, or use jmod.capture / "
                            f"a host=True hook to observe it."
                        )
        return Changes(tuple(changed_idx), changed_vals, tuple(new_paths), new_vals, tuple(effects))

    # ----------------------------------------------------------------- restoring
    def restore(self) -> None:
        """Put back every original value; remove traced values stored in new places."""
        for m, (attrs, bufs, params) in zip(self.modules, self.snaps):
            d = m.__dict__
            for name in [n for n, v in d.items() if is_tracer(v)]:
                if name in attrs:
                    d[name] = attrs[name]
                else:
                    del d[name]
            if any(is_tracer(v) for v in m._buffers.values()) or m._buffers.keys() != bufs.keys():
                for name in [n for n, v in m._buffers.items() if is_tracer(v)]:
                    if name in bufs:
                        # a traced value where there was no array (a lazy buffer
                        # materialized in the trace, a None buffer): put the old one back
                        m._buffers[name] = bufs[name]
                    else:
                        del m._buffers[name]
                        m._non_persistent_buffers_set.discard(name)
            for name in [n for n, s in m._parameters.items() if s is not None and n not in params and is_tracer(s.data)]:
                del m._parameters[name]
        for (c, k), v in zip(self.locs, self.orig):
            c[k] = v
        # Drop every reference to the traced values (jax.check_tracer_leaks looks).
        self.orig = self.inputs = self.snaps = None
        exit_managed()


def apply_effects(participants: Sequence[Any], effects: tuple[tuple[Path, Any], ...]) -> None:
    """Re-apply non-array attribute assignments recorded while tracing."""
    for path, value in effects:
        pi, mpath, _, _ = path
        c, k = resolve_path(participants, path)
        if c.get(k, _MISSING) is not value:
            c[k] = value
            structure.bump(participants[pi].get_submodule(mpath))


def write_new(participants: Sequence[Any], paths: tuple[Path, ...], values: Sequence[Any]) -> None:
    """Store arrays that the traced code put into new places."""
    for (pi, mpath, kind, name), v in zip(paths, values):
        module = participants[pi].get_submodule(mpath)
        module._jmod_store_new(kind, name, v)
        structure.bump(module)


def tree_has_tracer(tree: Any) -> bool:
    return any(is_tracer(x) for x in jax.tree_util.tree_leaves(tree))
