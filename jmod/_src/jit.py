"""``jmod.jit``: compile functions that take and mutate Modules, Optimizers, Generators.

The fast path is what makes this worth having (Flax NNX's ``nnx.jit`` and Equinox's
``filter_jit`` cost several times a hand-written step on an overhead-bound MLP,
because both walk the object graph on every call). Here a repeat call does:

1. check the last binding's structure signal (one attribute read: see
   ``structure.py``) and compare the arguments with the last call's (identity for
   stateful objects, equality for static values);
2. read the state arrays from a precomputed list of locations;
3. one call of a ``jax.jit`` function, donating exactly the arrays it replaces;
4. write the new arrays into their locations.

Only when the signal is invalid is the graph walked again and the static key rebuilt
(``binding.py``); the compiled function is then looked up by that key, so going back
to a structure seen before (``train()`` after ``eval()``), or a fresh model and
optimizer of the same structure, does not retrace.

Donating exactly the replaced arrays needs to know what the function changes before
compiling it. The first call therefore *traces* the Python function once
(``jax.jit(...).trace``), records which locations it changed, and compiles the
recorded jaxpr again with those inputs donated: user code (and its hooks) runs once
per trace, as under ``jax.jit``.

A call is a transaction (docs/guarantees.md): the result of the compiled call is
stored before Python can raise an asynchronous exception (``KeyboardInterrupt``)
between the call and the write-back, and a write-back that is interrupted is
finished before the exception propagates; code that runs host callbacks (which can
fail after the donated inputs were consumed) donates nothing. So every participant
holds all of its old state or all of its new state after any failure.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Callable
from itertools import starmap
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import jaxpr_as_fun

from jmod._src import structure
from jmod._src.binding import (
    CALL_CONTEXT_PROVIDERS,
    Binding,
    _committed_sharding,
    call_context,
)
from jmod._src.errors import RetraceWarning, TracerEscapeError
from jmod._src.host_hooks import HOOKS_RUN, _hook_name
from jmod._src.porting_notes import add_porting_note, note_retrace
from jmod._src.random import _FORKED, current_generator, default_generator
from jmod._src.scope import Changes, Scope, apply_effects, is_participant, write_new
from jmod._src.state import HANDED_OUT, HANDOUTS
from jmod._src.tracebacks import filter_traceback

__all__ = ["jit", "JitFunction", "compile"]

# References to a state array held by jmod itself when ``__call__`` checks it: its
# location, the gathered list, the donated list and getrefcount's argument. More means
# the user (or a second location) holds it too, and donating it would delete their
# array. (tests/_src/test_jit.py checks that a training loop makes no copies.)
_OWN_REFS = 4
_RETRACE_WARN_AT = 8
# Bindings a function keeps for different sets of participants (one per model a
# sweep trains at once, per thread); older ones are made again when needed.
_MAX_BINDINGS = 16

# Tests set this to a callable run right after the compiled call was dispatched and
# before its results are written back (a KeyboardInterrupt at the worst instant).
_TEST_AFTER_DISPATCH: Callable[[], None] | None = None

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


class _CallState(threading.local):
    """The binding of the call running in this thread: what a retrace (new argument
    shapes, inside the compiled call) rebuilds the user's arguments from."""

    binding: Binding | None = None


_CALL = _CallState()


class _Meta:
    """What one trace learned: output structure, what changed, static effects."""

    __slots__ = ("out_tree", "out_static", "changes", "bump")

    def __init__(self, out_tree: Any, out_static: tuple, changes: Changes, bump: bool) -> None:
        self.out_tree = out_tree
        self.out_static = out_static
        self.changes = changes
        self.bump = bump


class _Entry:
    """One compiled version of the function, for one static key. It references no
    participant: the binding of the running call is found in ``_CALL``."""

    def __init__(self, owner: JitFunction) -> None:
        self.owner = owner
        self.compiled: Callable | None = None
        self.mut_idx: tuple[int, ...] = ()
        self.const_idx: tuple[int, ...] = ()
        self.donate = False
        self.uses_generator = True  # until the first trace says otherwise
        self.lock = threading.Lock()

    # The Python function JAX traces. ``state`` covers every location in order;
    # ``force`` lists locations returned even if unchanged (donated ones must be).
    def body(self, state: list, dyn: list, force: tuple = ()) -> tuple:
        b = _CALL.binding
        owner = self.owner
        owner.trace_count += 1
        note_retrace(owner, dyn)
        tracer = next((x for x in (*state, *dyn) if isinstance(x, jax.core.Tracer)), None)
        if tracer is not None:
            owner._trace_ref = weakref.ref(tracer._trace)
        scope = Scope(b.participants())
        scope.enter(state)
        outer_log = HOOKS_RUN.log
        HOOKS_RUN.log = owner._hooks_run = []
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
            HOOKS_RUN.log = outer_log
            scope.restore()
        out_leaves, out_tree = jax.tree_util.tree_flatten(out)
        out_dyn = [x for x in out_leaves if isinstance(x, jax.Array)]
        out_static = tuple((i, x) for i, x in enumerate(out_leaves) if not isinstance(x, jax.Array))
        bump = any(
            (v.shape, v.dtype) != (state[i].shape, state[i].dtype) for i, v in zip(changes.changed_idx, changes.changed_vals)
        ) or bool(changes.new_paths)
        meta = _Meta(out_tree, out_static, changes._replace(changed_vals=[], new_vals=[]), bump)
        # The trace's static results ride in the output treedef as the key of a one-entry
        # dict: plain containers are unflattened by C++, so no Python runs between the
        # end of the compiled call and jmod holding its results (see __call__).
        return out_dyn, changes.changed_vals, changes.new_vals, {meta: None}

    def build(self, b: Binding, state: list, dyn: list) -> None:
        """First call: trace once, then compile the recorded jaxpr with donation."""
        owner = self.owner
        owner._trace_ref = None
        traced = jax.jit(self.body, **owner.jit_kwargs).trace(state, dyn)
        _check_escaped(owner)
        meta = next(iter(traced.out_tree.unflatten([None] * traced.out_tree.num_leaves)[3]))
        n_state = len(state)
        mut = tuple(meta.changes.changed_idx)
        const = tuple(i for i in range(n_state) if i not in set(mut))
        self.mut_idx, self.const_idx = mut, const
        gen_loc = b.gen_loc
        self.uses_generator = gen_loc is not None and gen_loc in set(mut)
        # Host callbacks (host=True hooks, jax.debug.callback) run user Python during the
        # execution, after the donated inputs were consumed: if one raises, the old state
        # would be gone. Such code donates nothing, so a failure leaves the old state.
        self.donate = owner.donate and not traced.jaxpr.effects
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
        n_dyn = len(dyn)
        donated_dyn = b.donate_dyn
        kept_dyn = tuple(j for j in range(n_dyn) if j not in set(donated_dyn))

        def constrain(res: tuple) -> tuple:
            out_dyn, changed_vals, new_vals, static = res
            meta = next(iter(static))
            if keep:
                changed_vals = [
                    jax.lax.with_sharding_constraint(v, keep[i]) if i in keep else v
                    for i, v in zip(meta.changes.changed_idx, changed_vals)
                ]
            if user_out is not None:
                out_dyn = _constrain_outputs(out_dyn, meta, user_out)
            return out_dyn, changed_vals, new_vals, static

        def replay(mut_vals: list, const_vals: list, dyn_donated: list, dyn_kept: list) -> Any:
            st: list = [None] * n_state
            for i, v in zip(mut, mut_vals):
                st[i] = v
            for i, v in zip(const, const_vals):
                st[i] = v
            dyn_vals: list = [None] * n_dyn
            for j, v in zip(donated_dyn, dyn_donated):
                dyn_vals[j] = v
            for j, v in zip(kept_dyn, dyn_kept):
                dyn_vals[j] = v
            flat = st + dyn_vals
            if [(jnp.shape(x), jnp.result_type(x)) for x in flat] == avals:
                return constrain(jax.tree_util.tree_unflatten(out_tree, fun(*flat)))
            # New argument shapes: run the Python function again (a retrace, as jax.jit).
            return constrain(body(st, dyn_vals, mut))

        donate = ((0,) if self.donate else ()) + ((2,) if donated_dyn else ())
        kwargs = dict(owner.jit_kwargs)
        if owner.in_shardings is not None:
            dyn_sh = _dyn_in_shardings(b, owner.in_shardings)
            kwargs["in_shardings"] = (
                None, None, [dyn_sh[j] for j in donated_dyn], [dyn_sh[j] for j in kept_dyn]
            )  # fmt: skip
        self.compiled = jax.jit(replay, donate_argnums=donate, **kwargs)


def _check_escaped(owner: JitFunction) -> None:
    """Raise if a traced value of the trace just finished is still referenced (stored in
    a dict, list or global the user owns): it would fail later, far from the cause."""
    ref = owner._trace_ref
    hooks = owner._hooks_run or []
    owner._trace_ref = owner._hooks_run = None
    if ref is None or ref() is None:
        return
    gc.collect()  # only values alive through cycles reach here; collect those first
    trace = ref()
    if trace is None:
        return
    tracers = [x for x in gc.get_referrers(trace) if isinstance(x, jax.core.Tracer)]
    if not tracers:
        return
    del trace
    holders, why = _holders(tracers)
    culprits = [h for h in hooks if _refers_to(h, holders)]
    del tracers, holders
    name = getattr(owner.fn, "__qualname__", repr(owner.fn))
    by = ""
    if culprits:
        names = list(dict.fromkeys(_hook_name(h) for h in culprits))
        by = f" by the hook{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)}"
    raise TracerEscapeError(
        f"jmod.jit({name}): a traced value computed inside the compiled call was stored{by} somewhere that "
        f"outlives the call (a dict, list or global your code owns, as a forward hook doing "
        f"`activation[name] = output` does). It is an abstract placeholder, not a value: using it later fails. "
        f"Where it is held:\n{why}\nFixes: register the hook with host=True "
        f"(`module.register_forward_hook(hook, host=True)`: it then runs on every call with concrete arrays), "
        f"use `jmod.capture(model, names)` to return chosen activations from compiled code, or return the value "
        f"from the compiled function."
    )


def _holders(tracers: list) -> tuple[set[int], str]:
    """ids of the containers (dicts, lists, sets, tuples, instances' dicts) that hold the
    leaked tracers, a few levels up (a list inside the dict a hook writes), and a line
    per level saying where. One heap scan per level: this runs only on the error path."""
    try:
        from jax._src.core import _why_alive_container_info as where
    except ImportError:  # pragma: no cover - private helper moved
        def where(container: Any, child_id: int) -> str:
            return f"<{type(container).__name__}>"
    seen: set[int] = set()
    lines: list[tuple[bool, str]] = []
    frontier = list(tracers)
    skip = {id(tracers), id(frontier)}
    for _ in range(4):
        ids = {id(o) for o in frontier}
        nxt = []
        for r in gc.get_referrers(*frontier):
            if id(r) in skip or id(r) in seen or isinstance(r, types.FrameType):
                continue
            if isinstance(r, (dict, list, set, tuple)):
                seen.add(id(r))
                nxt.append(r)
                if len(lines) < 12:
                    child = next((i for i in ids if _holds(r, i)), None)
                    if child is not None:
                        # dicts first: the user's `activation[name]` is one, JAX's own
                        # bookkeeping lists are not
                        lines.append((not isinstance(r, dict), f"held by {where(r, child)}"))
        skip.add(id(nxt))
        frontier = nxt
        if not frontier:
            break
    return seen, "\n".join(line for _, line in sorted(lines, key=lambda t: t[0])[:4])


def _holds(container: Any, child_id: int) -> bool:
    values = container.values() if isinstance(container, dict) else container
    return any(id(v) == child_id for v in values)


def _refers_to(hook: Any, holders: set[int]) -> bool:
    """Whether ``hook`` (unwrapped) closes over or names as a global one of ``holders``."""
    fn = getattr(hook, "hook", hook)  # HostHook / torch-style _WrappedHook
    fn = getattr(fn, "__func__", fn)
    cells = getattr(fn, "__closure__", None) or ()
    for c in cells:
        try:
            if id(c.cell_contents) in holders:
                return True
        except ValueError:
            pass
    code = getattr(fn, "__code__", None)
    g = getattr(fn, "__globals__", None)
    if code is not None and g is not None:
        return any(id(g.get(n)) in holders for n in code.co_names if n in g)
    return False


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


def _dyn_in_shardings(b: Binding, spec: Any) -> list:
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


def _with_forced(changes: Changes, force: tuple, scope: Scope) -> Changes:
    """Add the ``force`` locations (unchanged ones pass their input through)."""
    have = dict(zip(changes.changed_idx, changes.changed_vals))
    for i in force:
        have.setdefault(i, scope.inputs[i])
    idx = tuple(sorted(have))
    return changes._replace(changed_idx=idx, changed_vals=[have[i] for i in idx])


def _drop_binding(fn_ref: weakref.ref, b_ref: weakref.ref, _: Any) -> None:
    """A participant of a binding was collected: forget the binding (and with it the
    locations that would keep the participant's arrays alive)."""
    fn, b = fn_ref(), b_ref()
    if fn is None or b is None:
        return
    fn._forget(b)


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
        self.jit_kwargs = jit_kwargs
        self.entries: dict[Any, _Entry] = {}
        # Bindings by the ids of their participants (verified by weak reference).
        self._bindings: dict[tuple, Binding] = {}
        self._last: Binding | None = None
        self._bind_lock = threading.RLock()
        self._trace_ref: Any = None
        self._hooks_run: list | None = None
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

    def _positions(self, args: tuple, kwargs: dict, nums: tuple, argnames: tuple) -> frozenset:
        """Flattened leaf positions of the arguments ``nums``/``argnames`` name."""
        if not (nums or argnames):
            return frozenset()
        pos, names = self._arg_leaf_ranges(args, kwargs)
        out: set[int] = set()
        for i in nums:
            out.update(pos[i])
        for n in argnames:
            if n in names:
                out.update(names[n])
        return frozenset(out)

    # -------------------------------------------------------------------- binding
    def _bind(self, args: tuple, kwargs: dict, generator: Any) -> tuple[Binding, list]:
        """The binding for this call's participants (found again, or made and described)."""
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_participant)
        ids = (treedef, id(generator), *(id(x) for x in leaves if is_participant(x)))
        with self._bind_lock:
            b = self._bindings.get(ids)
            if b is not None and b.signal.valid and b.signal.epoch == structure.global_epoch() and (
                not CALL_CONTEXT_PROVIDERS or b.context == call_context()
            ):
                dyn = b.match(leaves)
                if dyn is not None and b.generator_ref() is generator:
                    self._last = b
                    return b, dyn
            static_pos = self._positions(args, kwargs, self.static_argnums, self.static_argnames)
            donate_pos = self._positions(args, kwargs, self.donate_argnums, self.donate_argnames)
            b = Binding(leaves, treedef, static_pos, donate_pos, generator, self.keep_shardings)
            gen_locs = generator._jmod_state_locations()
            loc_index = {(id(c), k): i for i, (c, k) in enumerate(b.locs)}
            b.gen_loc = loc_index.get((id(gen_locs[0][0]), gen_locs[0][1])) if gen_locs else None
            entry = self.entries.get(b.key)
            if entry is None:
                entry = _Entry(self)
                self.entries[b.key] = entry
                self._warn_retraces()
            b.entry = entry
            old = self._bindings.pop(ids, None)
            if old is not None:
                old.signal.valid = False
            if len(self._bindings) >= _MAX_BINDINGS:
                self._bindings.pop(next(iter(self._bindings)))
            self._bindings[ids] = b
            b.ids = ids
            # Forget the binding when any of its participants is collected.
            self_ref, b_ref = weakref.ref(self), weakref.ref(b)
            b.finalizers = [weakref.ref(p, functools.partial(_drop_binding, self_ref, b_ref)) for p in b.participants()]
            self._last = b
            dyn = b.match(leaves)
            return b, dyn

    def _forget(self, b: Binding) -> None:
        with self._bind_lock:
            if self._bindings.get(b.ids) is b:
                del self._bindings[b.ids]
            if self._last is b:
                self._last = None

    def _warn_retraces(self) -> None:
        if len(self.entries) >= _RETRACE_WARN_AT and not self._warned:
            self._warned = True
            warnings.warn(
                f"jmod.jit({getattr(self.fn, '__qualname__', self.fn)!r}) has been compiled for "
                f"{len(self.entries)} different static configurations. Something that is compiled in "
                "(a non-array attribute, a Python scalar argument, a hook, a shape) changes between calls; "
                "keep changing numbers in arrays or buffers to reuse the compiled code.",
                RetraceWarning,
                stacklevel=4,
            )

    # -------------------------------------------------------------------- calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        generator = _FORKED.get() or default_generator  # current_generator(), inlined
        b = self._last
        dyn = None
        if (
            b is not None
            and b.signal.valid
            and b.signal.epoch == structure._EPOCH[0]
            and b.generator_ref() is generator
            and (not CALL_CONTEXT_PROVIDERS or b.context == call_context())
        ):
            leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_participant)
            if treedef == b.treedef:
                dyn = b.match(leaves)
        if dyn is None:
            b, dyn = self._bind(args, kwargs, generator)
        entry = b.entry
        locks = b.locks
        # Two threads using one object in compiled calls take turns; the generator is
        # held only by code that draws from it.
        use_gen = entry.uses_generator or entry.compiled is None
        for lock in locks:
            lock.acquire()
        if use_gen:
            b.generator_lock.acquire()
        locs = b.locs
        try:
            state = [c[k] for c, k in locs]
            _CALL.binding = b
            if entry.compiled is None:
                with entry.lock:
                    if entry.compiled is None:
                        entry.build(b, state, dyn)
            mut = [state[i] for i in entry.mut_idx]
            handouts = HANDOUTS[0]
            if entry.donate:
                getrefcount = sys.getrefcount
                # Parameter arrays handed out since this binding's last call: none, usually.
                handed_out = HANDED_OUT if b.handouts_seen != handouts else ()
                for j in range(len(mut)):
                    if getrefcount(mut[j]) > _OWN_REFS or id(mut[j]) in handed_out:
                        # Someone else holds this array (a user variable, a second location)
                        # or was handed it (and may hold an alias): donate a copy so their
                        # array stays valid.
                        mut[j] = jnp.copy(mut[j])
            const = [state[i] for i in entry.const_idx]
            del state
            donated_dyn = b.donate_dyn
            if donated_dyn:
                dd = set(donated_dyn)
                args = (mut, const, [dyn[j] for j in donated_dyn], [x for j, x in enumerate(dyn) if j not in dd])
            else:
                args = (mut, const, [], dyn)
            # The result goes straight into `done` (C code, no bytecode in between): a
            # KeyboardInterrupt delivered right after the call cannot drop it.
            done: list = []
            try:
                done.extend(starmap(entry.compiled, (args,)))
                if _TEST_AFTER_DISPATCH is not None:
                    _TEST_AFTER_DISPATCH()
                out = self._commit(b, done[0])
                b.handouts_seen = handouts
                return out
            except BaseException as e:
                if done:
                    self._commit(b, done[0])  # finish the write-back, then report
                elif entry.donate and any(x.is_deleted() for x in mut):  # pragma: no cover - runtime-specific
                    e.add_note(
                        "jmod: the compiled call failed after the runtime had consumed its donated inputs; "
                        "the participants' state could not be kept. Use jmod.jit(..., donate=False) to keep it."
                    )
                raise
        except Exception as e:
            raise filter_traceback(e)  # noqa: B904 - the same exception, re-raised
        finally:
            _CALL.binding = None
            if use_gen:
                b.generator_lock.release()
            for lock in reversed(locks):
                lock.release()

    @staticmethod
    def _commit(b: Binding, result: tuple) -> Any:
        """Write a call's results into the participants (idempotent: an interrupted
        write-back is simply done again)."""
        out_dyn, changed_vals, new_vals, static = result
        meta: _Meta = next(iter(static))
        changes = meta.changes
        if b.meta is not meta:
            b.write_locs = [b.locs[i] for i in changes.changed_idx]
            b.meta = meta
        for (c, k), v in zip(b.write_locs, changed_vals):
            c[k] = v
        if changes.new_paths or changes.effects or meta.bump:
            participants = b.participants()
            if changes.new_paths:
                write_new(participants, changes.new_paths, new_vals)
            if changes.effects:
                apply_effects(participants, changes.effects)
            if meta.bump:
                for p in participants:
                    structure.bump(p)
                b.signal.valid = False
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
        """Forget every compiled version (and every binding to participants)."""
        with self._bind_lock:
            self.entries.clear()
            self._bindings.clear()
            self._last = None

    # ------------------------------------------------------------ jax.jit's stages
    def _traced_for(self, args: tuple, kwargs: dict) -> Any:
        b, dyn = self._bind(args, kwargs, current_generator())
        state = [c[k] for c, k in b.locs]
        _CALL.binding = b
        try:
            return jax.jit(b.entry.body, **self.jit_kwargs).trace(state, dyn)
        finally:
            _CALL.binding = None

    def trace(self, *args: Any, **kwargs: Any) -> Any:
        """``jax.jit(...).trace`` of the function on these arguments (a ``jax.stages.Traced``
        whose inputs are the participants' state then the array arguments); nothing is
        written back."""
        return self._traced_for(args, kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        """Lower for these arguments (``jax.stages.Lowered``: ``.as_text()``, ``.compile()``,
        ``.compile().memory_analysis()``, ``.cost_analysis()``)."""
        return self._traced_for(args, kwargs).lower()

    def eval_shape(self, *args: Any, **kwargs: Any) -> Any:
        """The output's shapes and dtypes (``jax.ShapeDtypeStruct`` leaves), computed
        abstractly: no FLOPs spent, nothing written back."""
        traced = self._traced_for(args, kwargs)
        out_dyn, _, _, static = traced.out_info
        meta = next(iter(static))
        leaves: list = list(out_dyn)
        for i, x in meta.out_static:
            leaves.insert(i, x)
        return jax.tree_util.tree_unflatten(meta.out_tree, leaves)


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
    if model is None:
        return functools.partial(compile, **jit_kwargs)
    if hasattr(type(model), "_jmod_modules"):  # a Module (participant protocol)
        model.compile(**jit_kwargs)
        return model
    return jit(model, **jit_kwargs)
