"""Structure signals: how compiled code learns, at the cost of one attribute read, that
nothing static about *its* objects changed.

Compiled code (``jmod.jit``, ``Module.compile``) is specialised on everything about
its participants that is not an array value: the module tree, parameter and buffer
names, ``requires_grad`` flags, hooks, ``training`` and every other non-array
attribute. Re-deriving that description on every call would cost as much as
Equinox's per-call flattening. Instead, when a call's participants are described,
a :class:`Signal` is made for that description and every object it covers (each
module, parameter slot, optimizer) *watches* it. A structural change of an object
(``Module.__setattr__`` of a non-array value, hook registration, ``train()``,
``requires_grad``, a cast...) calls :func:`bump` on that object, which invalidates
the signals it is watched by, and only those: building or changing an unrelated
module costs other compiled functions nothing.

Changes that concern every module at once (torch's global hook registries) move the
global epoch instead, which every signal also compares against.

Writing a new *value* into an existing array slot bumps nothing: that is the
per-step write-back of a training loop and must stay free. A shape change does not
need to either: the compiled function compares its inputs' shapes itself.

Objects keep their watchers in a ``WeakSet`` (attribute ``_jmod_watchers``): a signal
lives exactly as long as the compiled-call binding that made it.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["Signal", "bump", "watch", "global_epoch", "bump_global", "PRIVATE_ATTRIBUTES"]

# Attributes jmod stores on participants for its own bookkeeping; never user state,
# never part of a static key, never pickled.
PRIVATE_ATTRIBUTES = frozenset({"_jmod_watchers", "_jmod_lock"})

_EPOCH = [0]


class Signal:
    """``valid`` until an object it watches changes structurally."""

    __slots__ = ("valid", "epoch", "__weakref__")

    def __init__(self) -> None:
        self.valid = True
        self.epoch = _EPOCH[0]

    def ok(self) -> bool:
        return self.valid and self.epoch == _EPOCH[0]


def watch(obj: Any, signal: Signal) -> None:
    """Make ``signal`` invalid at ``obj``'s next structural change."""
    d = obj.__dict__
    watchers = d.get("_jmod_watchers")
    if watchers is None:
        watchers = d.setdefault("_jmod_watchers", weakref.WeakSet())
    watchers.add(signal)


def bump(obj: Any = None) -> None:
    """Record that ``obj``'s static structure changed (``None``: something unknown, which
    invalidates every signal)."""
    if obj is None:
        _EPOCH[0] += 1
        return
    d = getattr(obj, "__dict__", None)
    watchers = d.get("_jmod_watchers") if d is not None else None
    if watchers:
        for s in list(watchers):
            s.valid = False
        watchers.clear()


def bump_global() -> None:
    """A change that concerns every module (the global hook registries)."""
    _EPOCH[0] += 1


def global_epoch() -> int:
    return _EPOCH[0]
