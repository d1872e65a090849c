"""``jmod.grad`` / ``jmod.value_and_grad``: ``jax.grad`` that understands Modules.

The gradient with respect to a Module argument is a flat dict keyed like
``named_parameters()`` (tied parameters once, frozen ones left out). The function is
run on the real module with its trainable parameters swapped for JAX's traced
values (see ``scope.py``); whatever else it changed (BatchNorm running statistics,
plain array attributes, the random key) is carried out of the differentiated
function as auxiliary output and written back, so a training step updates buffers
just as ``loss.backward()`` after a torch forward would.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

from jmod._src.binding import ordered_locks
from jmod._src.scope import Scope, apply_effects, is_participant, write_new
from jmod._src.state import commit

__all__ = ["grad", "value_and_grad"]


def _is_module(x: Any) -> bool:
    return hasattr(type(x), "_jmod_modules")  # a module tree (participant protocol)


def is_lazy(slot: Any) -> bool:
    """An uninitialized parameter (a lazy module's, before its first call)."""
    return getattr(type(slot), "_jmod_uninitialized", False)


def trainable_slots(module: Any) -> dict[str, Any]:
    """``{name: Parameter}`` for parameters that require grad (tied ones once)."""
    return {name: slot for name, slot in module.named_parameter_slots() if slot.requires_grad}


def _diff_value(arg: Any) -> tuple[Any, Any]:
    """What ``jax.grad`` differentiates for an argument, and a description to map back.

    A Module becomes its ``{name: array}`` dict of trainable parameters; containers
    holding Modules are mapped leaf by leaf; arrays stay as they are.
    """
    if _is_module(arg):
        slots = trainable_slots(arg)
        for name, slot in slots.items():
            slot._grad_name = name
        return {n: s.data for n, s in slots.items()}, slots
    if any(_is_module(x) for x in jax.tree_util.tree_leaves(arg, is_leaf=_is_module)):
        leaves, treedef = jax.tree_util.tree_flatten(arg, is_leaf=_is_module)
        pairs = [_diff_value(x) for x in leaves]
        return treedef.unflatten([p[0] for p in pairs]), ("tree", treedef, [p[1] for p in pairs])
    return arg, None


def _slot_list(desc: Any) -> list[Any]:
    """The Parameter slots behind a ``_diff_value`` description, in leaf order."""
    if desc is None:
        return []
    if isinstance(desc, tuple) and desc and desc[0] == "tree":
        return [s for d in desc[2] for s in _slot_list(d)]
    return list(desc.values())


def _values_in_slot_order(desc: Any, value: Any) -> list[Any]:
    """The differentiated values for ``desc``'s slots, in ``_slot_list`` order."""
    if desc is None:
        return []
    if isinstance(desc, tuple) and desc and desc[0] == "tree":
        parts = desc[1].flatten_up_to(value)
        return [x for d, v in zip(desc[2], parts) for x in _values_in_slot_order(d, v)]
    return [value[n] for n in desc]


def _reorder(desc: Any, grads: Any) -> Any:
    """Put gradient dicts in ``named_parameters()`` order (jax sorts dict keys)."""
    if desc is None:
        return grads
    if isinstance(desc, tuple) and desc and desc[0] == "tree":
        parts = desc[1].flatten_up_to(grads)
        return desc[1].unflatten([_reorder(d, g) for d, g in zip(desc[2], parts)])
    return {n: grads[n] for n in desc}


def value_and_grad(
    fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, **jax_kwargs: Any
) -> Callable:
    """Like ``jax.value_and_grad``, with Module arguments differentiated by parameter.

    Args:
        fn: the function to differentiate; it returns a scalar loss (or
            ``(loss, aux)`` with ``has_aux=True``).
        argnums: which positional argument(s) to differentiate. For a Module
            argument the gradient is ``{name: array}`` keyed like
            ``named_parameters()``, without frozen parameters.
        has_aux: ``fn`` returns ``(loss, aux)``.
        **jax_kwargs: passed to ``jax.value_and_grad`` (``holomorphic``,
            ``allow_int``, ``reduce_axes``).

    Returns:
        A function returning ``(loss, grads)`` (``((loss, aux), grads)`` with
        ``has_aux``). Buffers and attributes ``fn`` changed (BatchNorm statistics) and
        the random state are written back, eagerly and inside ``jmod.jit``.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> loss, grads = jmod.value_and_grad(lambda m, x: m(x).sum())(model, jnp.ones((3, 2)))
        >>> sorted(grads), grads["bias"]
        (['bias', 'weight'], Array([3.], dtype=float32))
    """
    single = isinstance(argnums, int)
    argnums_t = (argnums,) if single else tuple(argnums)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from jmod._src.random import current_generator

        for i in argnums_t:
            if i >= len(args):
                raise TypeError(
                    f"differentiating with respect to argnums={argnums} requires at least {i + 1} positional "
                    f"arguments to be passed by the caller, but got only {len(args)} positional arguments."
                )
        described = [_diff_value(args[i]) for i in argnums_t]
        slots_per_arg = [_slot_list(d[1]) for d in described]
        participants = [x for x in jax.tree_util.tree_leaves((args, kwargs), is_leaf=is_participant) if is_participant(x)]
        participants = list(dict.fromkeys(participants + [current_generator()]))
        if any(is_lazy(s) for slots in slots_per_arg for s in slots):
            # Lazy modules not initialized yet: their parameters get their shapes in the
            # call. Run it once to initialize them (a dry run, as torch's docs ask for),
            # then differentiate with respect to the real parameters.
            _dry_run(fn, args, kwargs, participants)
            described = [_diff_value(args[i]) for i in argnums_t]
            slots_per_arg = [_slot_list(d[1]) for d in described]
        diff_vals = [d[0] for d in described]
        scope = Scope(participants)
        loc_index = {(id(c), k): i for i, (c, k) in enumerate(scope.locs)}
        # Locations that receive the differentiated values, per argument.
        slot_locs = [[loc_index[(id(s.__dict__), "data")] for s in slots] for slots in slots_per_arg]
        record: dict[str, Any] = {}

        def inner(*vals: Any) -> Any:
            call_args = list(args)
            indices: list[int] = []
            values: list[Any] = []
            for k, (i, v) in enumerate(zip(argnums_t, vals)):
                if described[k][1] is not None:
                    indices += slot_locs[k]
                    values += _values_in_slot_order(described[k][1], v)
                else:
                    call_args[i] = v
            scope.enter(values, indices)
            try:
                out = fn(*call_args, **kwargs)
                changes = scope.collect()
            finally:
                scope.restore()
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError(
                        "value_and_grad with has_aux=True requires fn to return a (loss, aux) tuple, "
                        f"got {type(out).__name__}"
                    )
                loss, aux = out
            else:
                loss, aux = out, None
            written = set(indices)
            keep = [(i, v) for i, v in zip(changes.changed_idx, changes.changed_vals) if i not in written]
            record["changes"] = changes._replace(changed_vals=[], new_vals=[])
            record["changed_idx"] = [i for i, _ in keep]
            stop = jax.lax.stop_gradient
            return loss, (aux, [stop(v) for _, v in keep], [stop(v) for v in changes.new_vals])

        vg = jax.value_and_grad(inner, argnums=tuple(range(len(argnums_t))), has_aux=True, **jax_kwargs)
        # The participants hold traced values while the function runs: other threads'
        # compiled calls on them wait (eagerly; inside jmod.jit the call holds them).
        with _locked(participants):
            (loss, (aux, changed_vals, new_vals)), grads = vg(*diff_vals)
        changes = record["changes"]
        commit((*scope.locs[i], v) for i, v in zip(record["changed_idx"], changed_vals))
        if changes.new_paths:
            write_new(participants, changes.new_paths, new_vals)
        if changes.effects:
            apply_effects(participants, changes.effects)
        grads = tuple(_reorder(d[1], g) for d, g in zip(described, grads))
        grads = grads[0] if single else grads
        return ((loss, aux) if has_aux else loss), grads

    return wrapper


@contextlib.contextmanager
def _locked(participants: list) -> Any:
    locks = ordered_locks(participants)
    for lock in locks:
        lock.acquire()
    try:
        yield
    finally:
        for lock in reversed(locks):
            lock.release()


def _dry_run(fn: Callable, args: tuple, kwargs: dict, participants: list) -> None:
    """Call ``fn`` to initialize lazy modules, keeping only what their initialization
    made (parameters, buffers, the random key after the draws): every other state
    change of the call is undone, so the differentiated call that follows makes them."""
    from jmod._src.lazy_init import apply_recorded, recording

    scope = Scope(participants)
    with recording() as log:
        scope.enter()
        try:
            fn(*args, **kwargs)
        finally:
            scope.restore()
            apply_recorded(log)


def grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False, **jax_kwargs: Any) -> Callable:
    """Like ``jax.grad``, with Module arguments differentiated by parameter.

    See :func:`value_and_grad`; returns only the gradients (and ``aux`` with
    ``has_aux=True``: ``(grads, aux)``).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> model.bias = nn.Parameter(model.bias, requires_grad=False)
        >>> list(jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model))
        ['weight']
    """
    vg = value_and_grad(fn, argnums=argnums, has_aux=has_aux, **jax_kwargs)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value, grads = vg(*args, **kwargs)
        if has_aux:
            return grads, value[1]
        return grads

    return wrapper
