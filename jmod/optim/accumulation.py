"""``jmod.optim.MultiSteps``: gradient accumulation across calls, for any jmod optimizer.

torch accumulates by calling ``loss.backward()`` on several micro-batches before one
``optimizer.step()``: ``.grad`` sums in place. jmod's gradients are values, so the sum
has to live somewhere that survives between (compiled) calls: the optimizer's state.
``MultiSteps(optimizer, k)`` is ``optax.MultiSteps`` around the optimizer's own
transformation: each ``step(grads)`` adds ``grads`` to a running mean, and every
``k``-th one applies the optimizer's update to that mean (the parameters do not move in
between). Inside one call, accumulate in a Python loop instead (see the Recipes page).
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import optax

from jmod.optim.optimizer import Optimizer, ParamGroup

__all__ = ["MultiSteps"]


def MultiSteps(optimizer: Optimizer, every_k_schedule: Any, **kwargs: Any) -> Optimizer:  # noqa: N802 (optax's name)
    """An optimizer that applies ``optimizer``'s update once every ``every_k_schedule`` steps.

    ``optax.MultiSteps`` for jmod's optimizers (``SGD``, ``Adam``, ... and
    ``Optimizer(model, tx)``): ``step(grads)`` on each micro-batch; the parameters change
    at every ``k``-th call, by the optimizer's update for the mean of the ``k`` gradients.
    That is torch's loop with the loss divided by ``k`` (``(loss / k).backward()`` on each
    micro-batch, ``optimizer.step(); optimizer.zero_grad()`` every ``k``). The result is a
    new optimizer of the same class over the same parameters, continuing ``optimizer``'s
    state (moments, step counts); use it instead of ``optimizer``. Its ``param_groups``
    stay live (``group["lr"] = ...`` and learning rate schedulers work), and it is an
    argument of ``jmod.jit`` like any optimizer.

    Args:
        optimizer (Optimizer): the optimizer to wrap.
        every_k_schedule (int | Callable): ``k``, or an optax schedule giving ``k`` from
            the number of updates made so far.
        **kwargs (Any): passed to ``optax.MultiSteps`` (``use_grad_mean``,
            ``should_skip_update_fn``).

    Returns:
        Optimizer: the accumulating optimizer.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.MultiSteps(jmod.optim.SGD(model.parameters(), lr=0.1), every_k_schedule=2)
        >>> before = model.bias
        >>> for _ in range(2):
        ...     grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        ...     opt.step(grads)
        ...     print(bool((model.bias == before).all()))
        True
        False
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"MultiSteps wraps a jmod optimizer, got {type(optimizer).__name__}")
    from jmod.optim.lbfgs import LBFGS

    if isinstance(optimizer, LBFGS):
        raise TypeError(
            "MultiSteps does not apply to LBFGS: its step evaluates the closure several times itself; "
            "accumulate inside the closure instead"
        )
    new = copy.copy(optimizer)
    # the copy shares the parameter slots (as two torch optimizers over the same
    # parameters do) but not the state list or the groups
    for name in ("_state_leaves", "_state_treedef"):
        new.__dict__.pop(name, None)
    new.param_groups = [ParamGroup(new, i, dict(g)) for i, g in enumerate(optimizer.param_groups)]
    new._multi_steps = (every_k_schedule, dict(kwargs))
    if optimizer._tx_from_options:
        new.tx = new._build_tx([{k: v for k, v in g.items() if k != "params"} for g in new.param_groups])
    else:
        new.tx = wrap(optimizer.tx, every_k_schedule, kwargs)
    state = new.tx.init(new._params())
    new.opt_state = state._replace(inner_opt_state=optimizer.opt_state)
    new._place_state()
    return new


def wrap(tx: optax.GradientTransformation, every_k_schedule: Any, kwargs: dict) -> optax.GradientTransformation:
    """``optax.MultiSteps(tx, ...)`` with its update compiled once per ``has_grad`` pattern.

    Its update traces a ``lax.cond`` over the wrapped update; run eagerly (a step outside
    ``jmod.jit``) that trace would be redone at every call, some 100x slower. ``has_grad``
    (which parameters got a gradient: jmod's torch rules skip the others) is a dict of
    Python bools, static structure, so it is part of the cache key.
    """
    multi = optax.MultiSteps(tx, every_k_schedule, **kwargs)
    compiled: dict = {}

    def update(updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        has_grad = extra.get("has_grad")
        key = None if has_grad is None else tuple(sorted(has_grad.items()))
        fn = compiled.get(key)
        if fn is None:
            args = {} if key is None else {"has_grad": dict(key)}
            fn = compiled[key] = jax.jit(lambda u, s, p: multi.update(u, s, p, **args))
        return fn(updates, state, params)

    return optax.GradientTransformationExtraArgs(multi.init, update)


def unwrap_state(state: Any) -> Any:
    """The wrapped optimizer's state inside a ``MultiSteps`` state (else ``state``)."""
    return state.inner_opt_state if isinstance(state, optax.MultiStepsState) else state
