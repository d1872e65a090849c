"""A module's state as three pytrees, and the locations that hold it.

``ModuleState`` is the functional view of a module: three flat dicts keyed by dotted
names, parameters / persistent buffers / non-persistent buffers. ``state_dict()`` is
``{**parameters, **buffers}``. ``get_state``/``set_state`` move between the object
and the pytrees.

Compiled code and ``functional_call`` instead work on *locations*: ``(container,
key)`` pairs such that ``container[key]`` is one array of state (a parameter slot's
``__dict__["data"]``, an entry of ``module._buffers``, or a plain array attribute in
``module.__dict__``). Writing tracers into locations, running the Python code, and
restoring the originals is how a stateful module runs inside a JAX transformation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import jax

from jmod._src.arrays import is_jax_array, unaliased

__all__ = [
    "ModuleState",
    "get_state",
    "set_state",
    "walk_modules",
    "array_attributes",
    "Snapshot",
    "module_locations",
    "named_locations",
]

Location = tuple[Any, Any]


# id(array) -> weakref(parameter slot) for parameter arrays handed out by a module read
# (``m.weight``, ``named_parameters()``, ``state_dict()``): the user may hold them, or an
# alias made from them (``jax.device_put(w, w.sharding)`` shares the buffer), so
# ``jmod.jit`` donates a copy of such an array instead of the array itself. Written by
# ``jmod.nn.parameter``; entries go when their slot hands out another array or dies.
HANDED_OUT: dict[int, Any] = {}
# How many times an array was added to HANDED_OUT: a compiled call that saw the same
# count last time knows none of its current state arrays was handed out since (its
# previous call replaced them all), and skips the per-array look-up.
HANDOUTS = [0]


class _ThreadScopes(threading.local):
    """How many jmod scopes (jmod.jit/jmod.grad bodies, functional_call) are running *in
    this thread*: inside one, traced values written to a module are collected and
    restored; outside, a traced value assigned to a module would leak, and
    Module.__setattr__ says so. Per thread: another thread's trace says nothing
    about this one."""

    depth = 0


_SCOPES = _ThreadScopes()


def enter_managed() -> None:
    _SCOPES.depth += 1


def exit_managed() -> None:
    _SCOPES.depth -= 1


def in_managed_scope() -> bool:
    """Whether this thread is inside a jmod scope (where tracers in modules are handled)."""
    return _SCOPES.depth > 0


class ModuleState(NamedTuple):
    """The three pytrees of a module: flat dicts keyed by dotted names.

    Attributes:
        parameters: every parameter (tied ones once, under their first name).
        buffers: persistent buffers (part of ``state_dict``).
        non_persistent_buffers: buffers registered with ``persistent=False``.
    """

    parameters: dict[str, jax.Array]
    buffers: dict[str, jax.Array]
    non_persistent_buffers: dict[str, jax.Array]


def walk_modules(roots: Iterable[Any]) -> list[Any]:
    """All modules reachable from ``roots``, each once, in ``named_modules`` order."""
    seen: set[int] = set()
    out: list[Any] = []
    for root in roots:
        for m in root.modules(remove_duplicate=True):
            if id(m) not in seen:
                seen.add(id(m))
                out.append(m)
    return out


def named_buffer_locations(module: Any) -> Iterator[tuple[str, Any, str, bool]]:
    """``(dotted_name, buffers_dict, key, persistent)`` for every non-None buffer."""
    for prefix, m in module.named_modules():
        for name, buf in m._buffers.items():
            if buf is not None and is_jax_array(buf):
                full = prefix + ("." if prefix else "") + name
                yield full, m._buffers, name, name not in m._non_persistent_buffers_set


def commit(writes: Iterable[tuple[Any, Any, Any]]) -> None:
    """Write ``container[key] = value`` for each triple, all or nothing as far as an
    asynchronous exception goes: a ``KeyboardInterrupt`` arriving in the middle makes
    the remaining writes happen before it propagates (writes are idempotent, so the
    whole list is simply written again)."""
    writes = list(writes)
    try:
        for c, k, v in writes:
            c[k] = v
    except BaseException:
        for c, k, v in writes:
            c[k] = v
        raise


def get_state(module: Any) -> ModuleState:
    """Split a module into its three state pytrees.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.func import get_state
        >>> m = nn.Linear(2, 2)
        >>> m.register_buffer("n", jnp.zeros(()), persistent=False)
        >>> [list(d) for d in get_state(m)]
        [['weight', 'bias'], [], ['n']]
    """
    params = {name: slot.data for name, slot in module.named_parameter_slots()}
    buffers: dict[str, jax.Array] = {}
    non_persistent: dict[str, jax.Array] = {}
    for name, bufs, key, persistent in named_buffer_locations(module):
        (buffers if persistent else non_persistent)[name] = bufs[key]
    return ModuleState(params, buffers, non_persistent)


def _locate(module: Any, name: str) -> tuple[Any, str, str]:
    """Resolve a dotted name to ``(owner module, attribute, kind)``."""
    path, _, attr = name.rpartition(".")
    owner = module.get_submodule(path)
    if attr in owner._parameters:
        return owner, attr, "parameter"
    if attr in owner._buffers:
        return owner, attr, "buffer"
    if is_jax_array(owner.__dict__.get(attr)):
        return owner, attr, "attribute"
    return owner, attr, "missing"


def set_state(module: Any, state: ModuleState | dict | tuple, strict: bool = True) -> None:
    """Write state pytrees (as returned by ``get_state``, or one flat dict) back into
    ``module``, in place. Parameter slots are kept, so ties survive.

    Raises:
        KeyError: with ``strict=True``, for names the module does not have.
    """
    dicts = state if isinstance(state, tuple) else (state,)
    for d in dicts:
        for name, value in d.items():
            # the module owns its buffers: a compiled step may donate them
            value = unaliased(value, value)
            owner, attr, kind = _locate(module, name)
            if kind == "parameter" and owner._parameters[attr] is not None:
                owner._parameters[attr].data = value
            elif kind == "buffer":
                owner._buffers[attr] = value
            elif kind == "attribute":
                owner.__dict__[attr] = value
            elif strict:
                raise KeyError(f"{module._get_name()} has no parameter or buffer named {name!r}")


def array_attributes(module: Any) -> list[str]:
    """Names of plain attributes holding a ``jax.Array`` (state outside ``state_dict``)."""
    return [k for k, v in module.__dict__.items() if is_jax_array(v)]


def _own_locations(m: Any, seen_slots: set[int]) -> Iterator[tuple[str, Location]]:
    """``(attribute name, location)`` for one module's arrays: parameter slots not seen
    yet, buffers holding arrays (not an uninitialized lazy buffer), plain array
    attributes. The one place that says where a module keeps array state."""
    for k, slot in m._parameters.items():
        if slot is not None and id(slot) not in seen_slots:
            seen_slots.add(id(slot))
            yield k, (slot.__dict__, "data")
    bufs = m._buffers
    for k, v in bufs.items():
        if v is not None and is_jax_array(v):
            yield k, (bufs, k)
    d = m.__dict__
    for k, v in d.items():
        if is_jax_array(v):
            yield k, (d, k)


def module_locations(modules: Iterable[Any]) -> list[Location]:
    """Every array location of ``modules``: parameter slots (each slot once),
    buffers, plain array attributes, in a fixed order."""
    seen_slots: set[int] = set()
    return [loc for m in modules for _, loc in _own_locations(m, seen_slots)]


def named_locations(root: Any) -> Iterator[tuple[str, Any, Any]]:
    """``(dotted name, container, key)`` for every array of ``root``'s state, in
    ``module_locations`` order (tied parameters once, under their first name)."""
    seen_slots: set[int] = set()
    for prefix, m in root.named_modules():
        dot = prefix + "." if prefix else ""
        for k, (c, key) in _own_locations(m, seen_slots):
            yield dot + k, c, key


class Snapshot:
    """The values at a set of locations, to restore after a traced call.

    Also remembers which plain attributes existed, so arrays a traced ``forward``
    stored in *new* attributes can be found (``new_array_locations``) and removed.
    """

    def __init__(self, modules: list[Any], locations: list[Location]) -> None:
        enter_managed()
        self.modules = modules
        self.locations = locations
        self.values = [c[k] for c, k in locations]
        self.attr_keys = [set(m.__dict__) for m in modules]
        self.buffer_keys = [dict(m._buffers) for m in modules]
        self.param_slots = [dict(m._parameters) for m in modules]

    def restore(self) -> None:
        """Put every recorded value back and drop attributes/buffers created since."""
        for m, keys, bufs, slots in zip(self.modules, self.attr_keys, self.buffer_keys, self.param_slots):
            d = m.__dict__
            for k in [k for k in d if k not in keys and is_jax_array(d[k])]:
                del d[k]
            _restore_dict(m._buffers, bufs)
            _restore_dict(m._parameters, slots)
        for (c, k), v in zip(self.locations, self.values):
            c[k] = v
        exit_managed()

    def changed(self) -> list[int]:
        """Indices of locations whose value is no longer the recorded one."""
        return [i for i, ((c, k), v) in enumerate(zip(self.locations, self.values)) if c.get(k) is not v]


def _restore_dict(current: dict, saved: dict) -> None:
    """Make ``current`` equal to ``saved`` (same objects, same order) if it changed."""
    if current.keys() != saved.keys() or any(current[k] is not v for k, v in saved.items()):
        current.clear()
        current.update(saved)
