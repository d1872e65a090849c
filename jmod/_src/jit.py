"""``jmod.jit``: compile functions that take and mutate Modules, Optimizers, Generators.

The fast path is what makes this worth having (Flax NNX's ``nnx.jit`` costs 4.7x a
hand-written step on an overhead-bound MLP, Equinox's ``filter_jit`` 3x, because
both walk the object graph on every call). Here a repeat call does:

1. compare the structure counter (``jmod._src.structure``) with the one seen last
   time, and the arguments with the last call's (identity for stateful objects,
   equality for static values): nothing structural changed -> reuse the binding;
2. read the state arrays from a precomputed list of locations;
3. one call of a ``jax.jit`` function, donating exactly the arrays it replaces;
4. write the new arrays into their locations.

Only when the counter moved is the graph walked again and the static key rebuilt;
the compiled function is then looked up by that key, so going back to a structure
seen before (``train()`` after ``eval()``) does not retrace.

Donating exactly the replaced arrays needs to know what the function changes before
compiling it. The first call therefore *traces* the Python function once
(``jax.jit(...).trace``), records which locations it changed, and compiles the
recorded jaxpr again with those inputs donated: user code (and its hooks) runs once
per trace, as under ``jax.jit``.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import jaxpr_as_fun

from jmod._src import structure
from jmod._src.arrays import is_tracer
from jmod._src.errors import RetraceWarning
from jmod._src.porting_notes import add_porting_note, note_retrace
from jmod._src.scope import Changes, Scope, apply_effects, is_participant, write_new

__all__ = ["jit", "JitFunction", "compile"]

_DYNAMIC_TYPES = (jax.Array, np.ndarray, np.generic)
# References to a state array held by jmod itself when ``__call__`` checks it: its
# location, the gathered list, the donated list and getrefcount's argument. More means
# the user (or a second location) holds it too, and donating it would delete their
# array. (tests/_src/test_jit.py checks that a training loop makes no copies.)
_OWN_REFS = 4
_RETRACE_WARN_AT = 8

_SUPPORTED_JIT_KWARGS = {
    "static_argnums",
    "static_argnames",
    "donate_argnums",
    "donate_argnames",
    "keep_unused",
    "inline",
    "compiler_options",
    "device",
    "backend",
    "in_shardings",
    "out_shardings",
}


class _Static:
    """A pytree leaf-less node whose aux data carries Python values through jax.jit's
    output treedef, so they are right for every trace jax caches."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


jax.tree_util.register_pytree_node(_Static, lambda s: ((), s.value), lambda aux, _: _Static(aux))


class _Meta:
    """What one trace learned: output structure, what changed, static effects."""

    __slots__ = ("out_tree", "out_static", "changes", "bump", "cache")

    def __init__(self, out_tree: Any, out_static: tuple, changes: Changes, bump: bool) -> None:
        self.out_tree = out_tree
        self.out_static = out_static
        self.changes = changes
        self.bump = bump
        self.cache: tuple[Any, Any] | None = None  # (binding, resolved locations)


def _freeze(v: Any, keep: list, depth: int = 0) -> Any:
    """A hashable stand-in for a non-array attribute value (part of the static key)."""
    t = type(v)
    if v is None or t in (int, bool, str, bytes, complex):
        return (t, v)
    if t is float:
        return (t, v if v == v else "nan")
    if depth > 6:
        keep.append(v)
        return ("id", id(v))
    if t in (tuple, list):
        return (t, tuple(_freeze(x, keep, depth + 1) for x in v))
    if isinstance(v, dict):
        return (t, tuple((k, _freeze(x, keep, depth + 1)) for k, x in v.items()))
    if t in (set, frozenset):
        try:
            return (t, frozenset(v))
        except TypeError:
            keep.append(v)
            return ("id", id(v))
    if isinstance(v, (jax.Array, np.ndarray)):
        keep.append(v)
        return ("id", id(v))
    try:
        hash(v)
    except TypeError:
        keep.append(v)
        return ("id", id(v))
    return (t, v)


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
)


def describe(participants: list[Any], modules: list[Any], keep: list) -> tuple:
    """The static key of a set of participants: everything but array values."""
    from jmod.nn.modules import hooks as _hooks

    index = {id(m): i for i, m in enumerate(modules)}
    slots: dict[int, int] = {}
    mods = []
    for m in modules:
        d = m.__dict__
        attrs = []
        arrays = []
        for k, v in d.items():
            if k in _INTERNAL:
                continue
            if isinstance(v, jax.Array):
                arrays.append((k, v.shape, v.dtype))
            else:
                attrs.append((k, _freeze(v, keep)))
        params = []
        for k, s in m._parameters.items():
            if s is None:
                params.append((k, None))
            else:
                si = slots.setdefault(id(s), len(slots))
                params.append((k, si, s.requires_grad, s.data.shape, s.data.dtype))
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
        if hasattr(p, "_jmod_describe"):
            others.append(p._jmod_describe(slots, keep))
        else:
            others.append((type(p), index.get(id(p))))
    return (tuple(mods), tuple(others), _hooks.global_hooks_state())


def _split_args(leaves: list[Any], static_pos: frozenset) -> tuple[list, list, list]:
    """Classify flattened argument leaves: (kinds, participants, statics)."""
    kinds = []
    parts = []
    statics = []
    for i, leaf in enumerate(leaves):
        if i not in static_pos and is_participant(leaf):
            kinds.append(1)
            parts.append(leaf)
        elif i not in static_pos and isinstance(leaf, _DYNAMIC_TYPES):
            kinds.append(0)
        else:
            kinds.append(2)
            statics.append(leaf)
    return kinds, parts, statics


class _Binding:
    """A call's stateful objects, their array locations, and the compiled entry."""

    def __init__(self, fn: JitFunction, args: tuple, kwargs: dict) -> None:
        from jmod._src.random import default_generator

        self.version = structure.VERSION
        leaves, self.treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_participant)
        static_pos = fn._static_positions(args, kwargs, leaves)
        self.kinds, parts, statics = _split_args(leaves, static_pos)
        self.leaf_ids = [id(x) if k == 1 else None for x, k in zip(leaves, self.kinds)]
        self.statics = statics
        self.arg_participants = parts
        participants = list(dict.fromkeys(parts + [default_generator]).keys())
        self.participants = participants
        self.scope = Scope(participants)
        self.locs = self.scope.locs
        keep: list = []
        static_key = []
        for s in statics:
            try:
                hash(s)
                static_key.append((type(s), s))
            except TypeError as e:
                raise TypeError(
                    f"jmod.jit: argument value {s!r} ({type(s).__name__}) is not an array, Module or Optimizer, "
                    "so it is treated as static (compiled in) and must be hashable. Pass it as an array, "
                    "or as a tuple instead of a list."
                ) from e
        part_pos = tuple(participants.index(p) for p in parts)
        self.key = (
            self.treedef,
            tuple(self.kinds),
            tuple(static_key),
            part_pos,
            describe(participants, self.scope.modules, keep),
        )
        if fn.keep_shardings:
            # The layouts the compiled code pins updated state to are part of what it
            # was compiled for: re-placing state (Module.to, shard_module) recompiles.
            self.key += (tuple(_committed_sharding(c[k]) for c, k in self.locs),)
        self.keep = keep
        self.entry: _Entry | None = None
        self.donate_dyn = fn._donate_positions(args, kwargs, leaves, self.kinds)

    def match(self, args: tuple, kwargs: dict) -> list | None:
        """The dynamic argument leaves if this call has the same static arguments and
        the same stateful objects as the one this binding was made for, else None."""
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_participant)
        if treedef != self.treedef:
            return None
        statics = self.statics
        dyn = []
        si = 0
        for leaf, kind, lid in zip(leaves, self.kinds, self.leaf_ids):
            if kind == 0:
                if not isinstance(leaf, _DYNAMIC_TYPES):
                    return None
                dyn.append(leaf)
            elif kind == 1:
                if id(leaf) != lid:
                    return None
            else:
                s = statics[si]
                si += 1
                if type(leaf) is not type(s) or not (leaf is s or leaf == s):
                    return None
        return dyn

    def rebuild(self, dyn: list) -> tuple[tuple, dict]:
        """Arguments for the user function: tracers where arrays were."""
        dyn_it = iter(dyn)
        part_it = iter(self.arg_participants)
        stat_it = iter(self.statics)
        leaves = [next(dyn_it) if k == 0 else next(part_it) if k == 1 else next(stat_it) for k in self.kinds]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


class _Entry:
    """One compiled version of the function, for one static key."""

    def __init__(self, owner: JitFunction) -> None:
        self.owner = owner
        self.compiled: Callable | None = None
        self.mut_idx: tuple[int, ...] = ()
        self.const_idx: tuple[int, ...] = ()
        self.binding: _Binding | None = None

    # The Python function JAX traces. ``state`` covers every location in order;
    # ``force`` lists locations returned even if unchanged (donated ones must be).
    def body(self, state: list, dyn: list, force: tuple = ()) -> tuple:
        b = self.binding
        owner = self.owner
        owner.trace_count += 1
        note_retrace(owner, dyn)
        scope = b.scope
        scope.enter(state)
        try:
            args, kwargs = b.rebuild(dyn)
            try:
                out = owner.fn(*args, **kwargs)
            except Exception as e:  # errors torch code raises on traced arrays get a note (porting_notes.py)
                add_porting_note(e, compiled=True)
                raise
            changes = scope.collect()
            if force:
                changes = _with_forced(changes, force, scope)
        finally:
            scope.restore()
        out_leaves, out_tree = jax.tree_util.tree_flatten(out)
        out_dyn = [x for x in out_leaves if isinstance(x, jax.Array)]
        out_static = tuple((i, x) for i, x in enumerate(out_leaves) if not isinstance(x, jax.Array))
        bump = any(
            (v.shape, v.dtype) != (state[i].shape, state[i].dtype) for i, v in zip(changes.changed_idx, changes.changed_vals)
        ) or bool(changes.new_paths)
        meta = _Meta(out_tree, out_static, changes._replace(changed_vals=[], new_vals=[]), bump)
        return out_dyn, changes.changed_vals, changes.new_vals, _Static(meta)

    def build(self, state: list, dyn: list) -> None:
        """First call: trace once, then compile the recorded jaxpr with donation."""
        owner = self.owner
        traced = jax.jit(self.body, **owner.jit_kwargs).trace(state, dyn)
        meta = traced.out_tree.unflatten([None] * traced.out_tree.num_leaves)[3].value
        n_state = len(state)
        mut = tuple(i for i in meta.changes.changed_idx)
        const = tuple(i for i in range(n_state) if i not in set(mut))
        self.mut_idx, self.const_idx = mut, const
        fun = jaxpr_as_fun(traced.jaxpr)
        avals = [(a.shape, a.dtype) for a in traced.jaxpr.in_avals]
        out_tree = traced.out_tree
        body = self.body
        # Committed state keeps its layout: each updated array is constrained to the
        # sharding its location had when this was compiled (uncommitted arrays have no
        # layout to keep and follow JAX's propagation).
        keep = {i: state[i].sharding for i in mut if _committed_sharding(state[i]) is not None}
        keep = keep if owner.keep_shardings else {}
        user_out = owner.out_shardings

        def constrain(res: tuple) -> tuple:
            out_dyn, changed_vals, new_vals, static = res
            meta = static.value
            if keep:
                changed_vals = [
                    jax.lax.with_sharding_constraint(v, keep[i]) if i in keep else v
                    for i, v in zip(meta.changes.changed_idx, changed_vals)
                ]
            if user_out is not None:
                out_dyn = _constrain_outputs(out_dyn, meta, user_out)
            return out_dyn, changed_vals, new_vals, static

        def replay(mut_vals: list, const_vals: list, dyn_vals: list) -> Any:
            st: list = [None] * n_state
            for i, v in zip(mut, mut_vals):
                st[i] = v
            for i, v in zip(const, const_vals):
                st[i] = v
            flat = st + list(dyn_vals)
            if [(jnp.shape(x), jnp.result_type(x)) for x in flat] == avals:
                return constrain(jax.tree_util.tree_unflatten(out_tree, fun(*flat)))
            # New argument shapes: run the Python function again (a retrace, as jax.jit).
            return constrain(body(st, list(dyn_vals), mut))

        donate = (0,) if owner.donate else ()
        if self.owner.donate_user:
            donate = donate + (2,)
        kwargs = dict(owner.jit_kwargs)
        if owner.in_shardings is not None:
            kwargs["in_shardings"] = (None, None, _dyn_in_shardings(self.binding, owner.in_shardings))
        self.compiled = jax.jit(replay, donate_argnums=donate, **kwargs)


def _committed_sharding(x: Any) -> Any:
    """The sharding of a committed ``jax.Array`` (one placed on purpose), else None
    (also for tracers: a call nested in another transformation has no placement)."""
    return x.sharding if isinstance(x, jax.Array) and not is_tracer(x) and x.committed else None


def _is_sharding_leaf(x: Any) -> bool:
    return x is None or isinstance(x, (jax.sharding.Sharding, jax.sharding.PartitionSpec))


def _broadcast_prefix(prefix: Any, tree: Any, what: str, of: str) -> list:
    """``[(leaf index, sharding)]`` for ``tree`` (whose leaves are their indices) from a
    sharding pytree prefix, as jax.jit reads ``in_shardings``/``out_shardings``."""
    pairs: list = []

    def visit(s: Any, sub: Any) -> None:
        pairs.extend((i, s) for i in jax.tree_util.tree_leaves(sub))

    try:
        jax.tree_util.tree_map(visit, prefix, tree, is_leaf=_is_sharding_leaf)
    except ValueError as e:
        raise ValueError(f"jmod.jit: {what} must be a pytree prefix of {of} ({e})") from e
    return pairs


def _constrain_outputs(out_dyn: list, meta: _Meta, spec: Any) -> list:
    """Apply the user's ``out_shardings`` (a prefix of fn's return value) to its arrays."""
    out_tree = meta.out_tree
    index_tree = jax.tree_util.tree_unflatten(out_tree, list(range(out_tree.num_leaves)))
    static = {i for i, _ in meta.out_static}
    dyn_pos = {}
    for i in range(out_tree.num_leaves):
        if i not in static:
            dyn_pos[i] = len(dyn_pos)
    out = list(out_dyn)
    for i, s in _broadcast_prefix(spec, index_tree, "out_shardings", "the function's return value"):
        if s is not None and i in dyn_pos:
            out[dyn_pos[i]] = jax.lax.with_sharding_constraint(out[dyn_pos[i]], s)
    return out


def _dyn_in_shardings(b: _Binding, spec: Any) -> list:
    """The user's ``in_shardings`` (a prefix of the positional arguments) for the array
    arguments; Modules, Optimizers and static values take none (state keeps its own)."""
    index_tree, _ = jax.tree_util.tree_unflatten(b.treedef, list(range(len(b.kinds))))
    by_leaf = dict(_broadcast_prefix(
        tuple(spec) if isinstance(spec, list) else spec, index_tree, "in_shardings", "the positional arguments"
    ))
    return [by_leaf.get(i) for i, k in enumerate(b.kinds) if k == 0]


def _with_forced(changes: Changes, force: tuple, scope: Scope) -> Changes:
    """Add the ``force`` locations (unchanged ones pass their input through)."""
    have = dict(zip(changes.changed_idx, changes.changed_vals))
    for i in force:
        have.setdefault(i, scope.inputs[i])
    idx = tuple(sorted(have))
    return changes._replace(changed_idx=idx, changed_vals=[have[i] for i in idx])


class JitFunction:
    """A function compiled by :func:`jit`. Call it like the original."""

    def __init__(self, fn: Callable, *, donate: bool = True, keep_shardings: bool = True, **jit_kwargs: Any) -> None:
        unknown = set(jit_kwargs) - _SUPPORTED_JIT_KWARGS
        if unknown:
            raise TypeError(f"jmod.jit got unsupported jax.jit argument(s) {sorted(unknown)}")
        self.fn = fn
        self.donate = donate
        # jmod applies these itself: jax.jit's would also cover the state it threads.
        self.in_shardings = jit_kwargs.pop("in_shardings", None)
        self.out_shardings = jit_kwargs.pop("out_shardings", None)
        # jax.jit's deprecated device=/backend= cannot be combined with shardings.
        self.keep_shardings = keep_shardings and not ({"device", "backend"} & set(jit_kwargs))
        static_argnums = jit_kwargs.pop("static_argnums", ())
        self.static_argnums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        static_argnames = jit_kwargs.pop("static_argnames", ())
        self.static_argnames = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        donate_argnums = jit_kwargs.pop("donate_argnums", ())
        self.donate_argnums = (donate_argnums,) if isinstance(donate_argnums, int) else tuple(donate_argnums)
        donate_argnames = jit_kwargs.pop("donate_argnames", ())
        self.donate_argnames = (donate_argnames,) if isinstance(donate_argnames, str) else tuple(donate_argnames)
        self.donate_user = bool(self.donate_argnums or self.donate_argnames)
        self.jit_kwargs = jit_kwargs
        self.entries: dict[Any, _Entry] = {}
        self.last: _Binding | None = None
        self.trace_count = 0
        self._warned = False
        functools.update_wrapper(self, fn)

    # ---------------------------------------------------------------- argument roles
    def _arg_leaf_ranges(self, args: tuple, kwargs: dict) -> tuple[list, dict]:
        pos = []
        start = 0
        for a in args:
            n = len(jax.tree_util.tree_leaves(a, is_leaf=is_participant))
            pos.append(range(start, start + n))
            start += n
        names = {}
        for k, v in kwargs.items():
            n = len(jax.tree_util.tree_leaves(v, is_leaf=is_participant))
            names[k] = range(start, start + n)
            start += n
        return pos, names

    def _static_positions(self, args: tuple, kwargs: dict, leaves: list) -> frozenset:
        if not (self.static_argnums or self.static_argnames):
            return frozenset()
        pos, names = self._arg_leaf_ranges(args, kwargs)
        out: set[int] = set()
        for i in self.static_argnums:
            out.update(pos[i])
        for n in self.static_argnames:
            if n in names:
                out.update(names[n])
        return frozenset(out)

    def _donate_positions(self, args: tuple, kwargs: dict, leaves: list, kinds: list) -> frozenset:
        if not self.donate_user:
            return frozenset()
        pos, names = self._arg_leaf_ranges(args, kwargs)
        out: set[int] = set()
        for i in self.donate_argnums:
            out.update(pos[i])
        for n in self.donate_argnames:
            if n in names:
                out.update(names[n])
        return frozenset(out)

    # -------------------------------------------------------------------- calling
    def _bind(self, args: tuple, kwargs: dict) -> _Binding:
        b = _Binding(self, args, kwargs)
        entry = self.entries.get(b.key)
        if entry is None:
            entry = _Entry(self)
            self.entries[b.key] = entry
            if len(self.entries) >= _RETRACE_WARN_AT and not self._warned:
                self._warned = True
                warnings.warn(
                    f"jmod.jit({getattr(self.fn, '__qualname__', self.fn)!r}) has been compiled for "
                    f"{len(self.entries)} different static configurations. Something that is compiled in "
                    "(a non-array attribute, a Python scalar argument, a hook, a shape) changes between calls; "
                    "keep changing numbers in arrays or buffers to reuse the compiled code.",
                    RetraceWarning,
                    stacklevel=3,
                )
        b.entry = entry
        self.last = b
        return b

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        b = self.last
        dyn = None if b is None or b.version != structure.VERSION else b.match(args, kwargs)
        if dyn is None:
            b = self._bind(args, kwargs)
            dyn = b.match(args, kwargs)
        entry = b.entry
        entry.binding = b
        locs = b.locs
        state = [c[k] for c, k in locs]
        if entry.compiled is None:
            entry.build(state, dyn)
        mut = [state[i] for i in entry.mut_idx]
        if self.donate:
            getrefcount = sys.getrefcount
            for j in range(len(mut)):
                if getrefcount(mut[j]) > _OWN_REFS:
                    # Someone else holds this array (a user variable, a second location):
                    # donate a copy so their array stays valid.
                    mut[j] = jnp.copy(mut[j])
        const = [state[i] for i in entry.const_idx]
        del state
        out_dyn, changed_vals, new_vals, static = entry.compiled(mut, const, dyn)
        meta: _Meta = static.value
        changes = meta.changes
        cache = meta.cache
        if cache is None or cache[0] is not b:
            cache = (b, [locs[i] for i in changes.changed_idx])
            meta.cache = cache
        for (c, k), v in zip(cache[1], changed_vals):
            c[k] = v
        if changes.new_paths:
            write_new(b.participants, changes.new_paths, new_vals)
        if changes.effects:
            apply_effects(b.participants, changes.effects)
        if meta.bump:
            structure.bump()
        if meta.out_static:
            leaves: list = list(out_dyn)
            for i, x in meta.out_static:
                leaves.insert(i, x)
            return jax.tree_util.tree_unflatten(meta.out_tree, leaves)
        return jax.tree_util.tree_unflatten(meta.out_tree, out_dyn)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # Decorating a method: bind ``self`` like a function would.
        if obj is None:
            return self
        return functools.partial(self, obj)

    def clear_cache(self) -> None:
        """Forget every compiled version."""
        self.entries.clear()
        self.last = None


def jit(fn: Callable | None = None, *, donate: bool = True, keep_shardings: bool = True, **jax_jit_kwargs: Any) -> Any:
    """Compile ``fn`` with ``jax.jit``; ``fn`` may take and mutate Modules and Optimizers.

    Arguments that are Modules, Optimizers or Generators (also inside tuples, lists
    and dicts) are split into structure and state: their arrays (parameters,
    buffers, plain array attributes, optimizer state, the random key) flow through
    one compiled call and what ``fn`` changed is written back to the same Python
    objects. Other array arguments are traced as in ``jax.jit``; any other value
    (Python numbers, strings, ``None``) is compiled in as a constant.

    The compiled code is reused until something static changes: the module tree, a
    non-array attribute, ``training``, hooks, ``requires_grad``, a shape or dtype,
    a static argument. Arrays ``fn`` replaces are donated (no copy per step) unless
    you hold a reference to them.

    Placement follows the state, as ``jax.jit`` follows committed inputs: a model
    moved to a device (``model.to(...)``) or sharded over a mesh
    (``jmod.parallel.shard_module``) computes there, and with ``keep_shardings``
    every state array the function updates is written back with the sharding it
    had, so a step never changes a parameter's or optimizer state's layout.

    Args:
        fn: the function to compile (use as ``@jmod.jit`` or ``jmod.jit(fn, ...)``).
        donate: donate replaced state arrays (default ``True``).
        keep_shardings: constrain each updated state array that was committed to a
            device or sharding (``jax.Array.committed``) to keep that sharding
            (default ``True``). Changing a layout through ``Module.to`` or
            ``jmod.parallel`` recompiles; ``False`` leaves the output layout of state
            to JAX's sharding propagation.
        **jax_jit_kwargs: ``static_argnums``, ``static_argnames``, ``donate_argnums``,
            ``donate_argnames``, ``keep_unused``, ``inline``, ``compiler_options``,
            ``device``, ``backend`` (passed to ``jax.jit``); ``in_shardings`` (a prefix
            of the positional arguments, applied to array arguments; Modules and
            Optimizers keep their arrays' shardings) and ``out_shardings`` (a prefix of
            ``fn``'s return value), as in ``jax.jit``.

    Examples:
        >>> import jax.numpy as jnp, optax, jmod
        >>> from jmod import nn
        >>> import jmod.nn.functional as F
        >>> model = nn.Linear(3, 2)
        >>> opt = jmod.optim.Optimizer(model, optax.sgd(0.1))
        >>> @jmod.jit
        ... def train_step(model, opt, x, y):
        ...     loss, grads = jmod.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
        ...     opt.step(grads)
        ...     return loss
        >>> x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
        >>> bool(train_step(model, opt, x, y) > train_step(model, opt, x, y))
        True
    """
    if fn is None:
        return functools.partial(jit, donate=donate, keep_shardings=keep_shardings, **jax_jit_kwargs)
    return JitFunction(fn, donate=donate, keep_shardings=keep_shardings, **jax_jit_kwargs)


def compile(model: Any = None, **jit_kwargs: Any) -> Any:
    """``torch.compile`` for jmod: compile ``model``'s forward in place and return it.

    Equivalent to ``model.compile(**jit_kwargs); return model``. With a plain function
    it is :func:`jit`.
    """
    from jmod.nn.modules.module import Module

    if model is None:
        return functools.partial(compile, **jit_kwargs)
    if isinstance(model, Module):
        model.compile(**jit_kwargs)
        return model
    return jit(model, **jit_kwargs)
