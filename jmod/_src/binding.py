"""What a compiled call is specialised on, and the binding that reuses it.

``jmod.jit`` splits its arguments into three kinds: *participants* (modules,
optimizers, generators: objects whose arrays it threads through the compiled call),
*dynamic* arrays (traced, as ``jax.jit`` traces them) and *static* values (compiled
in). The compiled executable is keyed by :func:`describe`, a hashable description of
everything that is not an array value: module types and non-array attributes, the
names, shapes and dtypes of parameters and buffers, ``requires_grad`` flags, hooks,
the optimizer's structure. It names no object: a fresh model and optimizer of the
same structure get the executable a previous pair compiled, without a retrace.

A :class:`Binding` is one set of participants bound to one executable: the
precomputed list of their array locations (read before, written after each call),
their locks, and a structure :class:`~jmod._src.structure.Signal` that any structural
change of the participants invalidates. It references participants only weakly; its
owner drops it as soon as one of them is collected, so nothing jmod caches keeps a
model (or its device memory) alive.
"""

from __future__ import annotations

import functools
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jmod._src import structure
from jmod._src.arrays import _is_torch_tensor, is_tracer, to_jax
from jmod._src.scope import is_participant, participant_locations

__all__ = ["Binding", "describe", "freeze", "CALL_CONTEXT_PROVIDERS", "BIND_CONTEXT_PROVIDERS"]

DYNAMIC_TYPES = (jax.Array, np.ndarray, np.generic)

# Extension points for state outside the participants that compiled code depends on.
# BIND_CONTEXT_PROVIDERS are read when a binding is made (things whose changes move the
# global structure epoch, such as torch's global hook registries); CALL_CONTEXT_PROVIDERS
# are read on every call and compared with the binding's (context-local settings such
# as an autocast region). Each is a function returning a hashable value.
BIND_CONTEXT_PROVIDERS: list[Callable[[], Any]] = []
CALL_CONTEXT_PROVIDERS: list[Callable[[], Any]] = []

def call_context() -> tuple:
    """The values of the CALL_CONTEXT_PROVIDERS now (checked on every compiled call)."""
    providers = CALL_CONTEXT_PROVIDERS
    if not providers:
        return ()
    if len(providers) == 1:
        return (providers[0](),)
    return tuple(f() for f in providers)


# Module attributes described separately (or not part of what forward computes).
_INTERNAL = frozenset(
    {
        "_parameters",
        "_buffers",
        "_modules",
        "_non_persistent_buffers_set",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_load_state_dict_pre_hooks",
        "_load_state_dict_post_hooks",
        "_compiled_call_impl",
    }
) | structure.PRIVATE_ATTRIBUTES

_SCALARS = (int, bool, str, bytes, complex, type(None), type(Ellipsis))


def freeze(v: Any, index: dict[int, int] | None = None, depth: int = 0) -> Any:
    """A hashable stand-in for a non-array value, by content where the content is what
    a trace depends on (numbers, containers, functions' code and closed-over values),
    naming modules of the same tree by position and other stateful objects by identity
    without keeping them alive."""
    t = type(v)
    if t in _SCALARS:
        return (t, v)
    if t is float:
        return (t, v if v == v else "nan")
    if index is not None and id(v) in index:
        return ("tree", index[id(v)])
    if depth > 12:
        return _by_identity(v)
    if isinstance(v, (tuple, list)):  # namedtuples too (optax's GradientTransformation)
        return (t, tuple(freeze(x, index, depth + 1) for x in v))
    if isinstance(v, dict):
        return (t, tuple((freeze(k, index, depth + 1), freeze(x, index, depth + 1)) for k, x in v.items()))
    if t in (set, frozenset):
        try:
            return (t, frozenset(v))
        except TypeError:
            return _by_identity(v)
    if isinstance(v, (jax.Array, np.ndarray)):
        # An array outside the state (compiled in as a constant): the key holds it, so
        # its identity stays unique while the entry lives.
        return ("array", v.shape, str(v.dtype), id(v), v)
    if t is types.MethodType:
        return ("method", freeze(v.__func__, index, depth + 1), freeze(v.__self__, index, depth + 1))
    if t is types.FunctionType:
        cells = v.__closure__ or ()
        contents = []
        for c in cells:
            try:
                contents.append(freeze(c.cell_contents, index, depth + 1))
            except ValueError:  # an empty cell
                contents.append(None)
        return ("fn", v.__code__, freeze(v.__defaults__, index, depth + 1), tuple(contents))
    if t is functools.partial:
        return ("partial", freeze(v.func, index, depth + 1), freeze(v.args, index, depth + 1),
                freeze(v.keywords, index, depth + 1))  # fmt: skip
    if is_participant(v):
        return _by_identity(v)
    try:
        hash(v)
    except TypeError:
        return _by_identity(v)
    return (t, v)


class _Identity:
    """An object named by identity in a key, without keeping it alive where it allows
    weak references (equal only while the object lives: a reused id matches nothing)."""

    __slots__ = ("ident", "ref", "strong")

    def __init__(self, v: Any) -> None:
        self.ident = id(v)
        try:
            self.ref, self.strong = weakref.ref(v), None
        except TypeError:
            self.ref, self.strong = None, v

    def get(self) -> Any:
        return self.strong if self.ref is None else self.ref()

    def __hash__(self) -> int:
        return self.ident

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, _Identity) or other.ident != self.ident:
            return False
        mine = self.get()
        return mine is not None and mine is other.get()


def _by_identity(v: Any) -> Any:
    return ("id", type(v), _Identity(v))


def describe(participants: list[Any], modules: list[Any]) -> tuple:
    """The static key of a set of participants: everything but array values."""
    index = {id(m): i for i, m in enumerate(modules)}
    slots: dict[int, int] = {}
    mods = []
    for m in modules:
        attrs = []
        arrays = []
        for k, v in m.__dict__.items():
            if k in _INTERNAL:
                continue
            if isinstance(v, jax.Array):
                arrays.append((k, v.shape, v.dtype))
            else:
                attrs.append((k, freeze(v, index)))
        params = []
        for k, s in m._parameters.items():
            if s is None:
                params.append((k, None))
            else:
                si = slots.setdefault(id(s), len(slots))
                params.append((k, si, type(s), s.requires_grad, s.data.shape, s.data.dtype))
        buffers = tuple(
            (k, None)
            if b is None
            else (k, type(b), b.dtype, k in m._non_persistent_buffers_set)
            if not isinstance(b, jax.Array)  # an uninitialized (lazy) buffer
            else (k, b.shape, b.dtype, k in m._non_persistent_buffers_set)
            for k, b in m._buffers.items()
        )
        children = tuple((k, None if c is None else index[id(c)]) for k, c in m._modules.items())
        mods.append((type(m), tuple(attrs), tuple(arrays), tuple(params), buffers, children))
    others = []
    for p in participants:
        if hasattr(type(p), "_jmod_describe"):
            others.append(p._jmod_describe(slots))
        else:
            others.append((type(p), index.get(id(p))))
    return (tuple(mods), tuple(others), tuple(f() for f in BIND_CONTEXT_PROVIDERS))


def _split_args(leaves: list[Any], static_pos: frozenset) -> tuple[list, list, list]:
    """Classify flattened argument leaves: (kinds, participants, statics)."""
    kinds = []
    parts = []
    statics = []
    for i, leaf in enumerate(leaves):
        if i not in static_pos and is_participant(leaf):
            kinds.append(1)
            parts.append(leaf)
        elif i not in static_pos and (isinstance(leaf, DYNAMIC_TYPES) or _is_torch_tensor(leaf)):
            kinds.append(0)
        else:
            kinds.append(2)
            statics.append(leaf)
    return kinds, parts, statics


def lock_of(obj: Any) -> threading.RLock:
    """The participant's lock, made on first use (dict.setdefault is atomic)."""
    d = obj.__dict__
    lock = d.get("_jmod_lock")
    if lock is None:
        lock = d.setdefault("_jmod_lock", threading.RLock())
    return lock


def ordered_locks(objs: list) -> list[threading.RLock]:
    """The objects' locks, each once, in one global order (by id): two calls that share
    objects take them in the same order and cannot deadlock."""
    return sorted({id(o): lock_of(o) for o in objs}.values(), key=id)


def _committed_sharding(x: Any) -> Any:
    """The sharding of a committed ``jax.Array`` (one placed on purpose), else None
    (also for tracers: a call nested in another transformation has no placement)."""
    return x.sharding if isinstance(x, jax.Array) and not is_tracer(x) and x.committed else None


class Binding:
    """A call's participants (weakly), their array locations, locks and entry."""

    def __init__(
        self, leaves: list, treedef: Any, static_pos: frozenset, donate_pos: frozenset, generator: Any,
        keep_shardings: bool,
    ) -> None:  # fmt: skip
        self.treedef = treedef
        self.kinds, parts, statics = _split_args(leaves, static_pos)
        self.statics = statics
        for s in statics:
            try:
                hash(s)
            except TypeError as e:
                raise TypeError(
                    f"jmod.jit: argument value {s!r} ({type(s).__name__}) is not an array, Module or Optimizer, "
                    "so it is treated as static (compiled in) and must be hashable. Pass it as an array, "
                    "or as a tuple instead of a list."
                ) from e
        participants = list(dict.fromkeys(parts + [generator]))
        self.part_refs = [weakref.ref(p) for p in parts]  # argument participants, in leaf order
        self.refs = [weakref.ref(p) for p in participants]
        self.generator_ref = weakref.ref(generator)
        self.n_parts = len(parts)
        modules, self.locs = participant_locations(participants)
        part_pos = tuple(participants.index(p) for p in parts)
        self.key = (treedef, tuple(self.kinds), tuple((type(s), s) for s in statics), part_pos,
                    describe(participants, modules))  # fmt: skip
        if keep_shardings:
            # The layouts the compiled code pins updated state to are part of what it
            # was compiled for: re-placing state (Module.to, shard_module) recompiles.
            self.key += (tuple(_committed_sharding(c[k]) for c, k in self.locs),)
        self.context = call_context()
        self.key += (self.context,)
        # Structural changes of any module, parameter slot or other participant
        # invalidate this binding (and only bindings that involve that object).
        self.signal = structure.Signal()
        for m in modules:
            structure.watch(m, self.signal)
            for s in m._parameters.values():
                if s is not None:
                    structure.watch(s, self.signal)
        for p in participants:
            structure.watch(p, self.signal)
        # Locks of the argument participants in a global order (no deadlock between two
        # calls that share objects); the generator's is taken separately.
        self.locks = ordered_locks(parts)
        self.generator_lock = lock_of(generator)
        dyn_index = [i for i, k in enumerate(self.kinds) if k == 0]
        self.donate_dyn = tuple(j for j, i in enumerate(dyn_index) if i in donate_pos)
        self.entry: Any = None
        self.gen_loc: int | None = None  # the generator key's location index
        self.ids: tuple = ()
        self.meta: Any = None  # the trace result write_locs was computed for
        self.handouts_seen = -1  # state.HANDOUTS after this binding's last call
        self.write_locs: list = []

    def participants(self) -> list[Any]:
        """The live participants (only called while a call holds them)."""
        return [r() for r in self.refs]

    def match(self, leaves: list) -> list | None:
        """The dynamic argument leaves if ``leaves`` (this call's, flattened) have the
        same static values and the same participants, else None."""
        statics = self.statics
        refs = self.part_refs
        dyn = []
        si = pi = 0
        for leaf, kind in zip(leaves, self.kinds):
            if kind == 0:
                if not isinstance(leaf, DYNAMIC_TYPES):
                    if not _is_torch_tensor(leaf):
                        return None
                    leaf = to_jax(leaf)  # a torch DataLoader's batch, read through NumPy
                dyn.append(leaf)
            elif kind == 1:
                if refs[pi]() is not leaf:
                    return None
                pi += 1
            else:
                s = statics[si]
                si += 1
                if type(leaf) is not type(s) or not (leaf is s or leaf == s):
                    return None
        return dyn

    def rebuild(self, dyn: list) -> tuple[tuple, dict]:
        """Arguments for the user function: tracers where arrays were."""
        dyn_it = iter(dyn)
        part_it = (r() for r in self.part_refs)
        stat_it = iter(self.statics)
        leaves = [next(dyn_it) if k == 0 else next(part_it) if k == 1 else next(stat_it) for k in self.kinds]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)
