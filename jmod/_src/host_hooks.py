"""Hooks that see concrete values inside compiled code, and clear errors for those that don't.

Under ``jmod.jit``/``jax.jit`` a hook runs once, while the function is traced, and
sees tracers: it can transform values (that is compiled in) but cannot look at
them. A hook registered with ``host=True`` is instead staged as a
``jax.debug.callback``: every compiled call runs it on the host with real arrays,
in program order with the other host hooks (``ordered=True``). It can only observe:
its return value is ignored. Eagerly (no tracers) it is simply called.

A hook that tries to read a traced value without ``host=True`` (``float(x)``,
``x.item()``, ``np.asarray(x)``, ``if x > 0``) gets
:class:`~jmod._src.errors.HookTracerError` naming the hook and the fix.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import jax

from jmod._src.arrays import is_tracer
from jmod._src.errors import HookTracerError

__all__ = ["HostHook", "call_hook"]

try:  # "am I being traced by jit": public in jax.extend, with a warning-shaped name
    from jax.extend.core import unsafe_am_i_under_a_jit_DO_NOT_USE as _under_jit
except ImportError:  # pragma: no cover - older jax

    def _under_jit() -> bool:
        return False

_TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def _hook_name(hook: Any) -> str:
    inner = getattr(hook, "hook", hook)
    return getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None) or repr(inner)


class _HooksRun(threading.local):
    """The hooks called in this thread while jmod.jit traces (None when not recording):
    how a traced value that escaped the trace is traced back to the hook that stored it."""

    log: list | None = None


HOOKS_RUN = _HooksRun()


def call_hook(hook: Callable, *args: Any) -> Any:
    """Call a user hook, turning a tracer-conversion error into a :class:`HookTracerError`."""
    log = HOOKS_RUN.log
    if log is not None:
        log.append(hook)
    try:
        return hook(*args)
    except _TRACER_ERRORS as e:
        raise HookTracerError(
            f"hook {_hook_name(hook)!r} tried to read a concrete value from a traced array while compiled code "
            f"was being traced ({type(e).__name__}). A hook that only observes values can run on the host "
            f"with real numbers: register it with host=True, e.g. module.register_forward_hook(hook, host=True)."
        ) from e


class HostHook:
    """Wrap an observing hook so that, under tracing, it runs as a host callback."""

    def __init__(self, hook: Callable) -> None:
        self.hook = hook
        functools.update_wrapper(self, hook)

    def __call__(self, module: Any, *args: Any) -> None:
        leaves, treedef = jax.tree_util.tree_flatten(args, is_leaf=lambda x: x is None)
        traced = [i for i, x in enumerate(leaves) if is_tracer(x)]
        if not traced and not _under_jit():
            self.hook(module, *args)
            return None
        # Inside compiled code the hook must run on every call, even when its
        # arguments happen to be constants at trace time: stage it as a callback.
        static = [None if is_tracer(x) else x for x in leaves]
        hook = self.hook

        def on_host(*values: Any) -> None:
            full = list(static)
            for i, v in zip(traced, values):
                full[i] = v
            hook(module, *jax.tree_util.tree_unflatten(treedef, full))

        jax.debug.callback(on_host, *[leaves[i] for i in traced], ordered=True)
        return None

    def __reduce__(self):
        return (HostHook, (self.hook,))
