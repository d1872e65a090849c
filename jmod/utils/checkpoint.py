"""``jmod.utils.checkpoint``: activation checkpointing (torch.utils.checkpoint's names) on ``jax.checkpoint``.

``checkpoint(fn, *args, use_reentrant=False)`` runs ``fn`` so that its intermediate
activations are not kept for the backward pass but recomputed from its inputs when
the gradient is taken: memory for time, exactly what torch's checkpoint trades.

How a stateful call becomes something ``jax.checkpoint`` can recompute: the modules
(and the random generator) ``fn`` uses are found from ``fn`` itself (a Module, a
bound method of one, a ``functools.partial``, the variables a function closes over or
the module-level names it reads, and Module arguments), and their arrays are passed
to a pure function as inputs: it swaps them into the modules, runs ``fn`` on the real
objects (hooks included), and returns the output together with every array ``fn``
changed (BatchNorm running statistics, the advanced random key). Those are written
back once, after the call. The backward pass recomputes the same jaxpr from the same
inputs (the same random key among them), so

* buffer updates happen once per call, as without checkpointing (torch's
  recomputation updates BatchNorm's running statistics a second time);
* dropout masks in the recomputation equal the forward's whatever
  ``preserve_rng_state`` says (JAX randomness is a function of the key input);
* Python code (``forward``, hooks) runs once per trace: the recomputation replays the
  recorded operations, it does not call Python again.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jmod._src.random import default_generator
from jmod._src.scope import Scope, apply_effects, is_participant, write_new

__all__ = ["checkpoint", "checkpoint_sequential", "noop_context_fn"]

_DETERMINISM_CHECKS = ("default", "none")
_DYNAMIC = (jax.Array, np.ndarray, np.generic)


def noop_context_fn() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
    """The default ``context_fn``: two ``contextlib.nullcontext()`` (torch's name)."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def _find_participants(obj: Any, out: dict[int, Any], depth: int = 0) -> None:
    """Collect the Modules/Generators ``obj`` (a callable or an argument) can reach."""
    if depth > 4 or obj is None:
        return
    if is_participant(obj):
        out.setdefault(id(obj), obj)
        return
    if isinstance(obj, functools.partial):
        _find_participants(obj.func, out, depth + 1)
        for a in (*obj.args, *obj.keywords.values()):
            _find_participants(a, out, depth + 1)
    elif inspect.ismethod(obj):
        _find_participants(obj.__self__, out, depth + 1)
        _find_participants(obj.__func__, out, depth + 1)
    elif isinstance(obj, types.FunctionType):
        for cell in obj.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell (a variable assigned later)
                continue
            _find_participants(value, out, depth + 1)
        # Module-level names the function reads (``model`` in ``lambda x: model(x)``).
        g = obj.__globals__
        for name in _code_names(obj.__code__):
            value = g.get(name)
            if value is not None and (is_participant(value) or isinstance(value, types.FunctionType)):
                _find_participants(value, out, depth + 1)
        if obj.__defaults__:
            for a in obj.__defaults__:
                _find_participants(a, out, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for a in obj:
            _find_participants(a, out, depth + 1)
    elif isinstance(obj, dict):
        for a in obj.values():
            _find_participants(a, out, depth + 1)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _resolve_policy(policy: Any) -> Any:
    if policy is None or callable(policy):
        return policy
    if isinstance(policy, str) and hasattr(jax.checkpoint_policies, policy):
        return getattr(jax.checkpoint_policies, policy)
    raise ValueError(
        f"policy should be None, a callable from jax.checkpoint_policies or one of its names "
        f"(e.g. 'dots_saveable'), but got {policy!r}"
    )


def _checkpointed_call(function: Callable, args: tuple, kwargs: dict, policy: Any, prevent_cse: bool) -> Any:
    found: dict[int, Any] = {}
    _find_participants(function, found)
    _find_participants(args, found)
    _find_participants(kwargs, found)
    participants = list(found.values())
    if default_generator not in participants:
        participants.append(default_generator)
    scope = Scope(participants)
    locs = scope.locs
    state = [c[k] for c, k in locs]

    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs), is_leaf=is_participant)
    dyn_pos = [i for i, x in enumerate(leaves) if isinstance(x, _DYNAMIC)]
    dyn = [leaves[i] for i in dyn_pos]
    record: dict[str, Any] = {}

    def pure(state: list, dyn: list) -> tuple:
        scope.enter(state)
        try:
            call_leaves = list(leaves)
            for i, v in zip(dyn_pos, dyn):
                call_leaves[i] = v
            a, kw = jax.tree_util.tree_unflatten(treedef, call_leaves)
            out = function(*a, **kw)
            changes = scope.collect()
        finally:
            scope.restore()
        out_leaves, out_tree = jax.tree_util.tree_flatten(out)
        is_dyn = [isinstance(x, jax.Array) for x in out_leaves]
        record["out"] = (out_tree, is_dyn, [None if d else x for x, d in zip(out_leaves, is_dyn)])
        record["changes"] = changes._replace(changed_vals=[], new_vals=[])
        return [x for x, d in zip(out_leaves, is_dyn) if d], changes.changed_vals, changes.new_vals

    out_dyn, changed_vals, new_vals = jax.checkpoint(pure, prevent_cse=prevent_cse, policy=policy)(state, dyn)
    changes = record["changes"]
    from jmod.nn.utils.scan import _check_threaded

    gen = default_generator.__dict__
    keys = [(state[i], v) for i, v in zip(changes.changed_idx, changed_vals) if locs[i][0] is gen]
    _check_threaded([b for b, _ in keys], [a for _, a in keys])
    for i, v in zip(changes.changed_idx, changed_vals):
        c, k = locs[i]
        c[k] = v
    if changes.new_paths:
        write_new(participants, changes.new_paths, new_vals)
    if changes.effects:
        apply_effects(participants, changes.effects)
    out_tree, is_dyn, statics = record["out"]
    it = iter(out_dyn)
    return jax.tree_util.tree_unflatten(out_tree, [next(it) if d else s for d, s in zip(is_dyn, statics)])


def checkpoint(
    function: Callable,
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Callable[[], tuple[Any, Any]] = noop_context_fn,
    determinism_check: str = "default",
    debug: bool = False,
    early_stop: bool = True,
    policy: Any = None,
    prevent_cse: bool = True,
    **kwargs: Any,
) -> Any:
    """Checkpoint a model or part of the model: recompute its activations in the backward pass.

    torch's ``torch.utils.checkpoint.checkpoint`` on ``jax.checkpoint``. ``function``
    runs once, with its intermediate values marked for recomputation: the gradient
    (``jmod.grad``, ``jax.grad`` over ``functional_call``, a ``jmod.jit`` training step)
    recomputes them from ``function``'s inputs instead of storing them. Outputs and
    gradients equal those of ``function(*args, **kwargs)``.

    Modules used by ``function`` keep their behaviour: hooks run (once per trace),
    buffer updates (BatchNorm running statistics) are written back once, and random
    layers draw the same masks in the recomputation as in the forward. The modules
    are found from ``function`` (a Module, a bound method, a ``functools.partial``,
    closure variables or module-level names) and from Module arguments.

    Differences from torch (docs/differences.md): both ``use_reentrant`` variants run
    the same JAX mechanism (the argument keeps torch's checks: with ``True``, keyword
    arguments, ``context_fn`` and ``debug`` are refused); ``context_fn``'s forward context
    wraps the call and its recomputation context is never entered (the recomputation
    replays recorded operations, no Python runs); ``determinism_check``, ``debug`` and
    ``early_stop`` are validated and otherwise have no effect; ``preserve_rng_state=False``
    still gives equal dropout masks (JAX randomness is a function of its key).

    Args:
        function (Callable): what to run on ``args``; a Module, a bound method or any function.
        *args (Any): positional arguments of ``function``.
        use_reentrant (bool | None): torch's choice of implementation, which must be
            passed explicitly (a warning says so otherwise, as in torch). ``False`` is
            recommended; both behave the same in jmod.
        context_fn (Callable): returns two context managers; the first wraps the forward.
        determinism_check (str): ``"default"`` or ``"none"`` (validated only).
        debug (bool): accepted for torch compatibility (no effect).
        early_stop (bool): accepted for torch compatibility (no effect).
        policy (Any): jmod-specific: a JAX rematerialization policy deciding which
            intermediates are saved instead of recomputed, e.g.
            ``jax.checkpoint_policies.dots_saveable`` or its name ``"dots_saveable"``.
            ``None`` (the default) saves nothing, as torch does.
        prevent_cse (bool): jmod-specific: ``jax.checkpoint``'s ``prevent_cse`` (keep
            ``True`` unless the call is inside a ``lax.scan``).
        **kwargs (Any): keyword arguments of ``function`` (only with ``use_reentrant=False``),
            and ``preserve_rng_state`` (bool, default ``True``) as in torch.

    Returns:
        Whatever ``function(*args, **kwargs)`` returns.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jmod
        >>> from jmod import nn
        >>> from jmod.utils.checkpoint import checkpoint
        >>> block = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))
        >>> x = jnp.ones((2, 4))
        >>> g = jmod.grad(lambda m: checkpoint(m, x, use_reentrant=False).sum())(block)
        >>> bool(jnp.allclose(g["0.weight"], jmod.grad(lambda m: m(x).sum())(block)["0.weight"]))
        True
    """
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be "
            "passed explicitly. Starting in PyTorch 2.9, calling checkpoint "
            "without use_reentrant will raise an exception. use_reentrant=False is "
            "recommended, but if you need to preserve the current default "
            "behavior, you can pass use_reentrant=True. Refer to docs for more "
            "details on the differences between the two variants.",
            stacklevel=2,
        )
        use_reentrant = True
    kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if use_reentrant:
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
    else:
        if debug and context_fn is not noop_context_fn:
            raise ValueError("debug=True is incompatible with non-default context_fn")
        if determinism_check not in _DETERMINISM_CHECKS:
            raise ValueError(
                f"determinism_check should be one of {list(_DETERMINISM_CHECKS)}, but got {determinism_check}"
            )
    policy = _resolve_policy(policy)
    forward_ctx, _recompute_ctx = context_fn()
    with forward_ctx:
        return _checkpointed_call(function, args, kwargs, policy, prevent_cse)


def checkpoint_sequential(
    functions: Any, segments: int, input: Any, use_reentrant: bool | None = None, **kwargs: Any
) -> Any:
    """Checkpoint a sequential model to save memory (torch's ``checkpoint_sequential``).

    The model is divided into ``segments`` chunks; every chunk but the last runs under
    :func:`checkpoint`, so only the chunk boundaries are stored for the backward pass.

    Args:
        functions (Any): an ``nn.Sequential`` or a list of modules/functions run in order.
        segments (int): number of chunks to create.
        input (Any): the input of the first function (one array, as in torch).
        use_reentrant (bool | None): as in :func:`checkpoint` (pass it explicitly).
        **kwargs (Any): ``preserve_rng_state`` (bool), and jmod's ``policy`` (Any) for
            each checkpointed chunk.

    Returns:
        The output of the last function.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.utils.checkpoint import checkpoint_sequential
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> checkpoint_sequential(model, 2, jnp.ones((3, 4)), use_reentrant=False).shape
        (3, 2)
    """
    from jmod.nn import Sequential

    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant "
            "parameter should be passed explicitly. "
            "In version 2.9 we will raise an exception if use_reentrant "
            "is not passed. use_reentrant=False is "
            "recommended, but if you need to preserve the current default "
            "behavior, you can pass use_reentrant=True. Refer to docs for more "
            "details on the differences between the two variants.",
            stacklevel=2,
        )
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    policy = kwargs.pop("policy", None)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))

    def run_function(start: int, end: int, functions: list) -> Callable:
        def forward(input: Any) -> Any:
            for j in range(start, end + 1):
                input = functions[j](input)
            return input

        return forward

    if isinstance(functions, Sequential):
        functions = list(functions.children())

    segment_size = len(functions) // segments
    # the last chunk has to be non-volatile
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(
            run_function(start, end, functions),
            input,
            use_reentrant=use_reentrant,
            preserve_rng_state=preserve,
            policy=policy,
        )
    return run_function(end + 1, len(functions) - 1, functions)(input)
