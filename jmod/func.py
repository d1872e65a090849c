"""``jmod.func``: the functional view of modules (torch.func's names).

``functional_call`` runs a module with given parameter and buffer arrays as a pure
function of them; ``get_state``/``set_state`` split a module into its three state
pytrees and back; ``stack_module_state`` stacks the states of identical models for
``jax.vmap`` ensembles.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import random as _random
from jmod._src.arrays import to_jax
from jmod._src.state import (
    ModuleState as ModuleState,
    Snapshot,
    _locate,
    get_state as get_state,
    module_locations,
    named_buffer_locations,
    set_state as set_state,
    walk_modules,
)
from jmod.nn.parameter import Parameter

__all__ = ["functional_call", "stack_module_state", "get_state", "set_state", "ModuleState"]


def _merge_dicts(parameter_and_buffer_dicts: Any) -> dict[str, Any]:
    if isinstance(parameter_and_buffer_dicts, Mapping):
        return dict(parameter_and_buffer_dicts)
    if isinstance(parameter_and_buffer_dicts, Sequence):
        if not all(isinstance(d, Mapping) for d in parameter_and_buffer_dicts):
            raise ValueError(
                "Expected all elements of parameter_and_buffer_dicts to be dictionaries"
            )
        all_keys = [k for d in parameter_and_buffer_dicts for k in d.keys()]
        seen: set[str] = set()
        repeated = []
        for k in all_keys:
            if k in seen and k not in repeated:
                repeated.append(k)
            seen.add(k)
        if repeated:
            raise ValueError(
                f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous"
            )
        return {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    raise ValueError(
        f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, "
        f"but got {type(parameter_and_buffer_dicts)}"
    )


def _tied_names(module: Any) -> dict[str, set[str]]:
    """name -> all names sharing its Parameter slot (only for tied names)."""
    by_slot: dict[int, set[str]] = {}
    for name, slot in module.named_parameter_slots(remove_duplicate=False):
        by_slot.setdefault(id(slot), set()).add(name)
    return {n: names for names in by_slot.values() if len(names) > 1 for n in names}


def _check_strict(module: Any, names: set[str]) -> None:
    expected = {n for n, _ in module.named_parameter_slots(remove_duplicate=False)}
    expected |= {n for n, *_ in named_buffer_locations(module)}
    unexpected = sorted(names - expected)
    missing = sorted(expected - names)
    msgs = []
    if unexpected:
        msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if msgs:
        raise RuntimeError("Error(s) in reparametrizing for {}:\n\t{}".format(module._get_name(), "\n\t".join(msgs)))


def functional_call(
    module: Any,
    parameter_and_buffer_dicts: Any,
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
    return_buffers: bool = False,
    key: Any = None,
) -> Any:
    r"""Call ``module`` with its parameters and buffers replaced by the given arrays.

    Mirrors ``torch.func.functional_call``: the module's whole ``__call__`` runs
    (hooks included); names not given fall back to the module's own arrays. The call
    is a pure function of the arrays passed in: the module is left exactly as it was
    (also when forward raises), so it can be used inside ``jax.jit``, ``jax.grad``
    and ``jax.vmap``.

    Args:
        module: the module to call.
        parameter_and_buffer_dicts: a dict ``{dotted_name: array}``, or a tuple of
            dicts (keys must not repeat across them).
        args: positional arguments (a non-tuple is one argument).
        kwargs: keyword arguments.
        tie_weights: tied parameters take the value given for any of their names
            (giving different values for tied names is an error). ``False`` unties.
        strict: require the names to match the module's parameters and buffers.
        return_buffers: also return ``{name: new_value}`` for every buffer that
            forward changed (BatchNorm running statistics), since they are not
            written back to the module.
        key: a JAX key for random layers (dropout) inside the call; without it the
            global generator is used (which a plain ``jax.jit`` cannot thread).

    Returns:
        The module's output, or ``(output, new_buffers)`` with ``return_buffers``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.func import functional_call
        >>> m = nn.Linear(3, 1)
        >>> params = {"weight": jnp.ones((1, 3)), "bias": jnp.zeros(1)}
        >>> functional_call(m, params, (jnp.ones((2, 3)),))
        Array([[3.],
               [3.]], dtype=float32)
        >>> grads = jax.grad(lambda p: functional_call(m, p, jnp.ones((2, 3))).sum())(params)
        >>> grads["weight"]
        Array([[2., 2., 2.]], dtype=float32)
    """
    values = _merge_dicts(parameter_and_buffer_dicts)
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    if strict:
        _check_strict(module, set(values))
    if tie_weights:
        tied = _tied_names(module)
        for name in [n for n in values if n in tied]:
            given = [values[t] for t in sorted(tied[name]) if t in values]
            if len({id(v) for v in given}) > 1:
                raise ValueError(
                    f"functional_call got multiple values for keys {sorted(tied[name])}, "
                    "which are tied. Consider using tie_weights=False"
                )

    modules = walk_modules([module])
    snapshot = Snapshot(modules, module_locations(modules))
    try:
        for name, value in values.items():
            owner, attr, kind = _locate(module, name)
            value = value if isinstance(value, jax.Array) else to_jax(value)
            if kind == "parameter":
                slot = owner._parameters[attr]
                if tie_weights and slot is not None:
                    slot.data = value
                else:
                    requires_grad = slot.requires_grad if slot is not None else True
                    owner._parameters[attr] = Parameter(value, requires_grad=requires_grad)
            elif kind == "buffer":
                owner._buffers[attr] = value
            else:  # a plain array attribute, or (as torch does) a new attribute for the call
                owner.__dict__[attr] = value
        before = {name: bufs[k] for name, bufs, k, _ in named_buffer_locations(module)}
        rng = _random.fork_rng(key) if key is not None else contextlib.nullcontext()
        with rng:
            out = module(*args, **kwargs)
        if return_buffers:
            after = {name: bufs[k] for name, bufs, k, _ in named_buffer_locations(module)}
            new_buffers = {n: v for n, v in after.items() if before.get(n) is not v}
            return out, new_buffers
        return out
    finally:
        snapshot.restore()


def stack_module_state(models: Sequence[Any]) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """Stack the parameters and buffers of identical models along a new leading axis.

    For ensembles with ``jax.vmap`` (torch.func's ``stack_module_state``)::

        params, buffers = stack_module_state(models)
        out = jax.vmap(lambda p, b, x: functional_call(models[0], (p, b), (x,)),
                       in_axes=(0, 0, None))(params, buffers, x)

    Returns:
        ``(params, buffers)``: dicts of stacked arrays keyed like ``named_parameters``
        and ``named_buffers``.
    """
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    model0_typ = type(models[0])
    if not all(type(m) is model0_typ for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    all_params = [dict(m.named_parameters()) for m in models]
    params = {k: jnp.stack([p[k] for p in all_params]) for k in all_params[0]}
    all_buffers = [dict(m.named_buffers()) for m in models]
    buffers = {k: jnp.stack([b[k] for b in all_buffers]) for k in all_buffers[0]}
    return params, buffers
