"""Hook handles and the global (all-module) hook registries.

Mirrors ``torch.utils.hooks.RemovableHandle`` and the ``register_module_*`` functions
of ``torch/nn/modules/module.py``. The ``_global_*`` dictionaries themselves are
looked up in ``jmod.nn.modules.module`` (where torch has them, and where torch code
rebinds them); the ones defined below are their initial values. Hooks are part of a
model's static structure: compiled code runs them while tracing, so registering or
removing one bumps the structure counter and the next compiled call retraces.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jmod._src import structure

__all__ = [
    "RemovableHandle",
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
    "register_module_full_backward_pre_hook",
    "register_module_full_backward_hook",
    "register_module_backward_hook",
    "register_module_buffer_registration_hook",
    "register_module_module_registration_hook",
    "register_module_parameter_registration_hook",
]


class _HookDict(OrderedDict):
    """An OrderedDict of hooks that bumps the structure counter when it changes.

    Plain dicts cannot be weakly referenced; torch's ``RemovableHandle`` keeps weak
    references to its dicts, so jmod's hook dicts are this subclass.
    """

    # The module whose hooks these are (a weak reference set by Module.__init__): a
    # change invalidates only compiled code that involves that module. Without an
    # owner (a global registry, an unpickled dict) every compiled function re-checks.
    _owner: Any = None

    def _bump(self) -> None:
        owner = self._owner() if self._owner is not None else None
        structure.bump(owner)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._bump()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._bump()

    def move_to_end(self, key: Any, last: bool = True) -> None:
        super().move_to_end(key, last)
        self._bump()

    def clear(self) -> None:
        super().clear()
        self._bump()

    def pop(self, *args: Any) -> Any:
        out = super().pop(*args)
        self._bump()
        return out

    def __reduce__(self):
        return (type(self), (list(self.items()),))


class RemovableHandle:
    """A handle that removes the hook it was returned for.

    ``handle.remove()`` deletes the hook; ``handle.id`` is its key; ``with handle:``
    removes it on exit. The handle keeps only weak references to the hook dicts, so
    it does not keep a deleted module alive.

    Args:
        hooks_dict: the dictionary the hook lives in, keyed by ``id``.
        extra_dict: further dictionaries (or one) whose ``id`` entry goes too.
    """

    id: int
    next_id: int = 0

    def __init__(self, hooks_dict: Any, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        self.extra_dict_ref: tuple = ()
        if isinstance(extra_dict, dict):
            self.extra_dict_ref = (weakref.ref(extra_dict),)
        elif isinstance(extra_dict, list):
            self.extra_dict_ref = tuple(weakref.ref(d) for d in extra_dict)

    def remove(self) -> None:
        hooks_dict = self.hooks_dict_ref()
        if hooks_dict is not None and self.id in hooks_dict:
            del hooks_dict[self.id]
        for ref in self.extra_dict_ref:
            extra = ref()
            if extra is not None and self.id in extra:
                del extra[self.id]
        if not isinstance(hooks_dict, _HookDict):
            structure.bump()  # a plain dict (a rebound global registry) does not report changes

    def __getstate__(self):
        return (self.hooks_dict_ref(), self.id, tuple(ref() for ref in self.extra_dict_ref))

    def __setstate__(self, state) -> None:
        if state[0] is None:
            self.hooks_dict_ref = weakref.ref(_HookDict())
        else:
            self.hooks_dict_ref = weakref.ref(state[0])
        self.id = state[1]
        RemovableHandle.next_id = max(RemovableHandle.next_id, self.id + 1)
        if len(state) < 3 or state[2] is None:
            self.extra_dict_ref = ()
        else:
            self.extra_dict_ref = tuple(weakref.ref(d) for d in state[2] if d is not None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, type: Any, value: Any, tb: Any) -> None:
        self.remove()


# Hooks common to all modules (torch: "global state used for debugging/profiling").
_global_buffer_registration_hooks: _HookDict = _HookDict()
_global_module_registration_hooks: _HookDict = _HookDict()
_global_parameter_registration_hooks: _HookDict = _HookDict()
_global_backward_pre_hooks: _HookDict = _HookDict()
_global_backward_hooks: _HookDict = _HookDict()
_global_forward_pre_hooks: _HookDict = _HookDict()
_global_forward_hooks: _HookDict = _HookDict()
_global_forward_hooks_always_called: _HookDict = _HookDict()
_global_forward_hooks_with_kwargs: _HookDict = _HookDict()


def _g() -> Any:
    """``jmod.nn.modules.module``, whose ``_global_*`` names are the live registries."""
    from jmod.nn.modules import module

    return module


def global_hooks_state() -> tuple:
    """Everything about the global hooks that compiled code depends on (for jit keys)."""
    g = _g()
    return (
        tuple(g._global_forward_pre_hooks.items()),
        tuple(g._global_forward_hooks.items()),
        tuple(g._global_forward_hooks_always_called),
        tuple(g._global_forward_hooks_with_kwargs),
        tuple(g._global_backward_pre_hooks.items()),
        tuple(g._global_backward_hooks.items()),
        g._global_is_full_backward_hook,
    )


# Compiled code depends on the global hooks: their state is part of every static key
# (their registries move the global structure epoch when they change).
from jmod._src.binding import BIND_CONTEXT_PROVIDERS as _BIND_CONTEXT_PROVIDERS  # noqa: E402

_BIND_CONTEXT_PROVIDERS.append(global_hooks_state)


def _register(hooks: Any, hook: Callable, *, extra: Any = None) -> RemovableHandle:
    handle = RemovableHandle(hooks, extra_dict=extra)
    hooks[handle.id] = hook
    structure.bump()  # a rebound registry may be a plain OrderedDict
    return handle


def register_module_buffer_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register ``hook(module, name, buffer) -> None or new buffer`` run by every
    ``register_buffer`` call."""
    return _register(_g()._global_buffer_registration_hooks, hook)


def register_module_module_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register ``hook(module, name, submodule) -> None or new submodule`` run by every
    ``register_module`` call."""
    return _register(_g()._global_module_registration_hooks, hook)


def register_module_parameter_registration_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register ``hook(module, name, param) -> None or new parameter`` run by every
    ``register_parameter`` call."""
    return _register(_g()._global_parameter_registration_hooks, hook)


def _host(hook: Callable, host: bool) -> Callable:
    if not host:
        return hook
    from jmod._src.host_hooks import HostHook

    return HostHook(hook)


def register_module_forward_pre_hook(hook: Callable[..., Any], *, host: bool = False) -> RemovableHandle:
    """Register a forward pre-hook common to all modules.

    ``hook(module, args) -> None or modified input``; it runs before the module's own
    forward pre-hooks. Adds global state: intended for debugging and profiling.
    ``host=True`` (jmod) runs an observing hook on the host inside compiled code.
    """
    return _register(_g()._global_forward_pre_hooks, _host(hook, host))


def register_module_forward_hook(
    hook: Callable[..., Any], *, with_kwargs: bool = False, always_call: bool = False, host: bool = False
) -> RemovableHandle:
    """Register a forward hook common to all modules.

    ``hook(module, args, output) -> None or modified output`` (with ``with_kwargs``:
    ``hook(module, args, kwargs, output)``); it runs before the module's own forward
    hooks. ``always_call=True`` runs it even when forward raises.
    """
    g = _g()
    handle = RemovableHandle(
        g._global_forward_hooks, extra_dict=[g._global_forward_hooks_always_called, g._global_forward_hooks_with_kwargs]
    )
    g._global_forward_hooks[handle.id] = _host(hook, host)
    if with_kwargs:
        g._global_forward_hooks_with_kwargs[handle.id] = True
    if always_call:
        g._global_forward_hooks_always_called[handle.id] = True
    structure.bump()
    return handle


def _set_global_full(full: bool) -> None:
    g = _g()
    if g._global_is_full_backward_hook is (not full):
        raise RuntimeError(
            "Cannot use both regular backward hooks and full backward hooks as a "
            "global Module hook. Please use only one of them."
        )
    g._global_is_full_backward_hook = full


def register_module_backward_hook(hook: Callable[..., Any]) -> RemovableHandle:
    """Register a (deprecated, non-full) backward hook common to all modules.

    jmod runs it with the same arguments as a full backward hook; see
    ``Module.register_backward_hook``.
    """
    _set_global_full(False)
    return _register(_g()._global_backward_hooks, hook)


def register_module_full_backward_pre_hook(hook: Callable[..., Any], *, host: bool = False) -> RemovableHandle:
    """Register ``hook(module, grad_output) -> None or new grad_output`` for all modules;
    runs before each module's own backward pre-hooks."""
    return _register(_g()._global_backward_pre_hooks, _host(hook, host))


def register_module_full_backward_hook(hook: Callable[..., Any], *, host: bool = False) -> RemovableHandle:
    """Register ``hook(module, grad_input, grad_output) -> None or new grad_input`` for all
    modules; runs before each module's own backward hooks."""
    _set_global_full(True)
    return _register(_g()._global_backward_hooks, _host(hook, host))
