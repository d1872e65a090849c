"""``jmod.nn.Module``: torch's stateful module, holding JAX arrays.

The class mirrors ``torch/nn/modules/module.py`` method for method: the same
registration rules in ``__setattr__``, the same traversal order, the same hook order
in ``_call_impl``, the same ``repr``. What JAX forces to differ is listed in
``docs/differences.md``; the main points:

* reading a parameter attribute returns a ``jax.Array``; the ``Parameter`` slot lives
  in ``_parameters`` (see ``jmod/nn/parameter.py``);
* assigning an array to a parameter's name replaces its value (arrays are immutable,
  so this is how an update is written) instead of raising;
* every change that compiled code depends on bumps ``jmod._src.structure``.

State-dict methods live in ``_state_dict.py`` (a mixin) to keep this file readable.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from jax.core import Tracer

from jmod._src import structure
from jmod._src.arrays import host_zeros, is_array_like, to_jax, typename
from jmod._src.errors import SharedStorageError, TracerEscapeError
from jmod._src.host_hooks import HostHook, call_hook
from jmod._src.porting_notes import add_porting_note
from jmod._src.state import in_managed_scope
from jmod.nn.modules import hooks as _hooks
from jmod.nn.modules._state_dict import StateDictMixin
from jmod.nn.modules.hooks import (
    RemovableHandle,
    _HookDict,
    register_module_backward_hook,
    register_module_buffer_registration_hook,
    register_module_forward_hook,
    register_module_forward_pre_hook,
    register_module_full_backward_hook,
    register_module_full_backward_pre_hook,
    register_module_module_registration_hook,
    register_module_parameter_registration_hook,
)
from jmod.nn.parameter import Buffer, Parameter, UninitializedBuffer, buffer_mark, is_lazy, owner_of

__all__ = [
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
    "register_module_full_backward_pre_hook",
    "register_module_backward_hook",
    "register_module_full_backward_hook",
    "register_module_buffer_registration_hook",
    "register_module_module_registration_hook",
    "register_module_parameter_registration_hook",
    "Module",
]

T = TypeVar("T", bound="Module")

# The global hook registries live here, as in torch: torch code rebinds them
# (``nn.modules.module._global_forward_hooks = OrderedDict()``, as torch's own test
# tearDown does), so registration (hooks.py) and calls both look them up here.
_global_buffer_registration_hooks = _hooks._global_buffer_registration_hooks
_global_module_registration_hooks = _hooks._global_module_registration_hooks
_global_parameter_registration_hooks = _hooks._global_parameter_registration_hooks
_global_is_full_backward_hook: bool | None = None
_global_forward_pre_hooks = _hooks._global_forward_pre_hooks
_global_forward_hooks = _hooks._global_forward_hooks
_global_forward_hooks_always_called = _hooks._global_forward_hooks_always_called
_global_forward_hooks_with_kwargs = _hooks._global_forward_hooks_with_kwargs
_global_backward_pre_hooks = _hooks._global_backward_pre_hooks
_global_backward_hooks = _hooks._global_backward_hooks

_MISSING = object()


class _HookRegistryModule(types.ModuleType):
    """This module's type: rebinding a ``_global_*`` registry (torch code does
    ``nn.modules.module._global_forward_hooks = OrderedDict()``) changes what every
    call runs, so compiled code must retrace."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name.startswith("_global_"):
            structure.bump_global()


sys.modules[__name__].__class__ = _HookRegistryModule


def _check_not_a_storage_alias(module: Module, name: str, param: Parameter) -> None:
    """Refuse ``nn.Parameter(other.weight)`` registered anywhere but in ``other.weight``'s place.

    torch's ``Parameter(t)`` shares ``t``'s storage: two parameters, one memory. jmod
    cannot share storage, and a silent copy would drift apart at the first update.
    """
    ref = param._alias_of
    if ref is None:
        return
    source = ref()
    if source is not None and source is not module._parameters.get(name):
        where = f" '{source._last_name}'" if source._last_name else ""
        raise SharedStorageError(
            f"cannot register parameter '{name}': it is nn.Parameter(...) of the current value of another "
            f"parameter{where}. In torch the two would share storage; jmod parameters cannot, and a copy would "
            f"drift apart. To tie them (one parameter, nanoGPT's `self.transformer.wte.weight = "
            f"self.lm_head.weight`), assign the array itself: `module.{name} = other.weight`. For an "
            f"independent copy write `nn.Parameter(jnp.array(other.weight))`."
        )
    if source is None:
        param._alias_of = None
    # Re-wrapped in the source's own place (lin.bias = nn.Parameter(lin.bias, ...)): fine
    # unless the source is still registered elsewhere (it was tied), which
    # named_parameter_slots notices: the marker stays while the source lives.


def _shared_storage_in_tree(rewrapped: str, source: str) -> SharedStorageError:
    return SharedStorageError(
        f"parameter '{rewrapped}' was made with nn.Parameter(...) of the current value of '{source}', which is "
        f"still registered: in torch the two would share storage (e.g. re-wrapping one side of a tied weight to "
        f"freeze it); jmod parameters cannot, and they would drift apart. To freeze a tied parameter set the flag "
        f"on the one parameter (`module._parameters[name].requires_grad = False`, which both uses share); for an "
        f"independent parameter write `nn.Parameter(jnp.array(...))`."
    )


def _addindent(s_: str, numSpaces: int) -> str:
    s = s_.split("\n")
    if len(s) == 1:
        return s_
    first = s.pop(0)
    s = [(numSpaces * " ") + line if line.strip() else "" for line in s]
    return first + "\n" + "\n".join(s)


class _WrappedHook:
    """A hook that may be called with its module bound (torch's ``_WrappedHook``)."""

    def __init__(self, hook: Callable, module: Module | None = None) -> None:
        self.hook = hook
        functools.update_wrapper(self, hook)
        self.with_module = False
        if module is not None:
            self.module = weakref.ref(module)
            self.with_module = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.with_module:
            module = self.module()
            if module is None:
                raise RuntimeError("You are trying to call the hook of a dead Module!")
            return self.hook(module, *args, **kwargs)
        return self.hook(*args, **kwargs)

    def __getstate__(self) -> dict:
        result = {"hook": self.hook, "with_module": self.with_module}
        if self.with_module:
            result["module"] = self.module()
        return result

    def __setstate__(self, state: dict) -> None:
        self.hook = state["hook"]
        self.with_module = state["with_module"]
        if self.with_module:
            if state["module"] is None:
                raise RuntimeError("You are trying to revive the hook of a dead Module!")
            self.module = weakref.ref(state["module"])


def _forward_unimplemented(self: Module, *input: Any) -> None:
    r"""Define the computation performed at every call.

    Should be overridden by all subclasses. Call the module instance (``model(x)``)
    rather than ``forward`` directly: ``__call__`` runs the registered hooks.
    """
    raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')


def _same_aval(a: Any, b: Any) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


_HOOK_DICTS = (
    "_backward_pre_hooks",
    "_backward_hooks",
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


def _own_hook_dicts(module: Module) -> None:
    """Tell the module's hook dicts whose they are: adding or removing a hook then
    invalidates only compiled code that involves this module."""
    ref = weakref.ref(module)
    for name in _HOOK_DICTS:
        d = module.__dict__.get(name)
        if isinstance(d, _HookDict):
            d._owner = ref


class _DeviceAttribute:
    r"""``Module.device``: where the parameters and buffers live (a ``jax.Device`` or a ``Sharding``).

    What torch code gets from ``next(model.parameters()).device``, as
    ``jax.Array.device`` defines it: the ``jax.Device`` when every parameter and
    buffer is on that one device; the common ``jax.sharding.Sharding`` when all of
    them share one multi-device sharding (a replicated, data-parallel model). A
    module without parameters or buffers reports the default device.

    It raises ``RuntimeError`` when the arrays are on different devices or have
    different shardings (an FSDP or tensor-parallel model); see
    ``jmod.parallel.shardings(module)`` for each array's sharding.

    A subclass may still assign its own ``self.device = ...`` (common in torch code):
    the instance attribute then takes precedence, as does a parameter, buffer or
    submodule registered under that name.

    Examples:
        >>> import jax
        >>> from jmod import nn
        >>> model = nn.Linear(2, 2).to(jax.devices()[0])
        >>> model.device == jax.devices()[0]
        True
    """

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        for registry in ("_parameters", "_buffers", "_modules"):
            if "device" in obj.__dict__.get(registry, ()):
                return obj.__getattr__("device")
        from jmod._src import devices

        return devices.module_device(obj)


class Module(StateDictMixin):
    r"""Base class for all neural network modules; subclass it for your models.

    Modules hold parameters, buffers and submodules assigned as attributes, exactly as in
    PyTorch; calling the module runs ``__call__`` -> forward pre-hooks -> ``forward`` ->
    forward hooks, and wires backward hooks into JAX's autodiff.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jmod
        >>> from jmod import nn
        >>> class Model(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1 = nn.Linear(4, 8)
        ...         self.fc2 = nn.Linear(8, 2)
        ...         self.register_buffer("calls", jnp.zeros((), jnp.int32))
        ...     def forward(self, x):
        ...         self.calls = self.calls + 1
        ...         return self.fc2(jax.nn.relu(self.fc1(x)))
        >>> _ = jmod.manual_seed(0)
        >>> model = Model()
        >>> model(jnp.ones((3, 4))).shape
        (3, 2)
        >>> model
        Model(
          (fc1): Linear(in_features=4, out_features=8, bias=True)
          (fc2): Linear(in_features=8, out_features=2, bias=True)
        )
        >>> list(model.state_dict())
        ['calls', 'fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    dump_patches: bool = False
    _version: int = 1
    training: bool
    call_super_init: bool = False
    _compiled_call_impl: Callable | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.call_super_init is False and bool(kwargs):
            raise TypeError(
                f"{type(self).__name__}.__init__() got an unexpected keyword argument '{next(iter(kwargs))}'"
            )
        if self.call_super_init is False and bool(args):
            raise TypeError(f"{type(self).__name__}.__init__() takes 1 positional argument but {len(args) + 1} were given")
        # object.__setattr__ skips Module.__setattr__'s routing, as torch does.
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", {})
        setattr_(self, "_buffers", {})
        setattr_(self, "_non_persistent_buffers_set", set())
        setattr_(self, "_backward_pre_hooks", _HookDict())
        setattr_(self, "_backward_hooks", _HookDict())
        setattr_(self, "_is_full_backward_hook", None)
        setattr_(self, "_forward_hooks", _HookDict())
        setattr_(self, "_forward_hooks_with_kwargs", _HookDict())
        setattr_(self, "_forward_hooks_always_called", _HookDict())
        setattr_(self, "_forward_pre_hooks", _HookDict())
        setattr_(self, "_forward_pre_hooks_with_kwargs", _HookDict())
        setattr_(self, "_state_dict_hooks", OrderedDict())
        setattr_(self, "_state_dict_pre_hooks", OrderedDict())
        setattr_(self, "_load_state_dict_pre_hooks", OrderedDict())
        setattr_(self, "_load_state_dict_post_hooks", OrderedDict())
        setattr_(self, "_modules", {})
        _own_hook_dicts(self)
        if self.call_super_init:
            super().__init__(*args, **kwargs)

    forward: Callable[..., Any] = _forward_unimplemented

    # ------------------------------------------------------------------ registration
    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        r"""Add a buffer to the module.

        Buffers are state that is not a parameter, such as BatchNorm's
        ``running_mean``. Persistent buffers are part of ``state_dict()``;
        ``persistent=False`` ones are not (they are still carried through compiled
        calls and moved by ``to()``).

        Args:
            name: attribute name of the buffer.
            tensor: an array (jax, NumPy or torch) or ``None``. ``None`` registers the
                name without state; it is skipped by ``state_dict()``.
            persistent: whether the buffer is part of this module's ``state_dict``.

        Examples:
            >>> import jax.numpy as jnp
            >>> from jmod import nn
            >>> m = nn.Module()
            >>> m.register_buffer("running_mean", jnp.zeros(3))
            >>> m.register_buffer("cache", None, persistent=False)
            >>> list(m.state_dict())
            ['running_mean']
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        elif not isinstance(name, str):
            raise TypeError(f"buffer name should be a string. Got {typename(name)}")
        elif "." in name:
            raise KeyError('buffer name can\'t contain "."')
        elif name == "":
            raise KeyError('buffer name can\'t be empty string ""')
        elif hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        elif tensor is not None and not is_array_like(tensor) and not isinstance(tensor, UninitializedBuffer):
            raise TypeError(
                f"cannot assign '{typename(tensor)}' object to buffer '{name}' (jax.Array, array-like or None required)"
            )
        else:
            if isinstance(tensor, UninitializedBuffer):
                # A lazy module's placeholder: materialize() replaces it here.
                tensor._link(self, name)
            elif tensor is not None:
                tensor = to_jax(tensor)
            for hook in _global_buffer_registration_hooks.values():
                output = hook(self, name, tensor)
                if output is not None:
                    tensor = output
            self._buffers[name] = tensor
            if persistent:
                self._non_persistent_buffers_set.discard(name)
            else:
                self._non_persistent_buffers_set.add(name)
            structure.bump(self)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        r"""Add a parameter to the module.

        Args:
            name: attribute name of the parameter.
            param: a ``jmod.nn.Parameter`` or ``None`` (registers the name without
                state; skipped by ``state_dict()``). Registering a ``Parameter`` that
                another module already holds ties the two.
        """
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        elif not isinstance(name, str):
            raise TypeError(f"parameter name should be a string. Got {typename(name)}")
        elif "." in name:
            raise KeyError('parameter name can\'t contain "."')
        elif name == "":
            raise KeyError('parameter name can\'t be empty string ""')
        elif hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if isinstance(param, jax.Array) and owner_of(param) is not None:
            # torch passes the Parameter itself (which ties); in jmod reading m.weight gives
            # its array, which stands for that Parameter as in __setattr__.
            param = owner_of(param)
        if param is None:
            self._parameters[name] = None
        elif not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{typename(param)}' object to parameter '{name}' (jmod.nn.Parameter or None required)"
            )
        else:
            _check_not_a_storage_alias(self, name, param)
            for hook in _global_parameter_registration_hooks.values():
                output = hook(self, name, param)
                if output is not None:
                    param = output
            self._parameters[name] = param
        structure.bump(self)

    def add_module(self, name: str, module: Module | None) -> None:
        r"""Add a child module, accessible as an attribute under ``name``."""
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{typename(module)} is not a Module subclass")
        elif not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {typename(name)}")
        elif hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        elif "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        elif name == "":
            raise KeyError('module name can\'t be empty string ""')
        for hook in _global_module_registration_hooks.values():
            output = hook(self, name, module)
            if output is not None:
                module = output
        self._modules[name] = module
        structure.bump(self)

    def register_module(self, name: str, module: Module | None) -> None:
        r"""Alias for :meth:`add_module`."""
        self.add_module(name, module)

    def get_submodule(self, target: str) -> Module:
        """Return the submodule at dotted path ``target`` ("" is ``self``).

        Raises:
            AttributeError: if a step of the path does not exist or is not a Module.
        """
        if target == "":
            return self
        mod: Module = self
        for item in target.split("."):
            if not hasattr(mod, item):
                raise AttributeError(mod._get_name() + " has no attribute `" + item + "`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return mod

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Set the submodule at dotted path ``target`` (torch semantics, incl. ``strict``)."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        atoms = target.split(".")
        if not isinstance(module, Module):
            raise ValueError("`" + "module" + f"` is not an nn.Module, found {type(module)}")
        parent = self if len(atoms) == 1 else self.get_submodule(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(parent._get_name() + " has no attribute `" + atoms[-1] + "`")
        if hasattr(parent, atoms[-1]):
            mod = getattr(parent, atoms[-1])
            if not isinstance(mod, Module):
                raise AttributeError("`" + atoms[-1] + "` is not an nn.Module")
        setattr(parent, atoms[-1], module)

    def get_parameter(self, target: str) -> jax.Array:
        """Return the parameter array at dotted path ``target``.

        Raises:
            AttributeError: if the path is invalid or does not name a parameter.
        """
        module_path, _, param_name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, param_name):
            raise AttributeError(mod._get_name() + " has no attribute `" + param_name + "`")
        # torch checks isinstance(param, Parameter): a name registered as None is not one.
        if mod._parameters.get(param_name) is None:
            raise AttributeError("`" + param_name + "` is not an nn.Parameter")
        return getattr(mod, param_name)

    def get_buffer(self, target: str) -> jax.Array:
        """Return the buffer at dotted path ``target``.

        Raises:
            AttributeError: if the path is invalid or does not name a buffer.
        """
        module_path, _, buffer_name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, buffer_name):
            raise AttributeError(mod._get_name() + " has no attribute `" + buffer_name + "`")
        buffer = getattr(mod, buffer_name)
        if buffer_name not in mod._buffers:
            raise AttributeError("`" + buffer_name + "` is not a buffer")
        return buffer

    def get_extra_state(self) -> Any:
        """Return extra (non-array) state to include in ``state_dict()``; override with
        :meth:`set_extra_state`."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called. "
            "Please file an issue at https://github.com/jmod-dev/jmod/issues to report this bug."
        )

    def set_extra_state(self, state: Any) -> None:
        """Restore extra state saved by :meth:`get_extra_state`."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called. "
            "Please file an issue at https://github.com/jmod-dev/jmod/issues to report this bug."
        )

    # ------------------------------------------------------------ casts and devices
    def _apply(self: T, fn: Callable[[jax.Array], jax.Array], recurse: bool = True) -> T:
        """Replace every parameter and buffer value ``v`` with ``fn(v)`` (in place).

        Parameters keep their slot, so ties and ``requires_grad`` survive the cast.
        """
        if recurse:
            for module in self.children():
                module._apply(fn)
        for param in self._parameters.values():
            if param is not None:
                param.data = fn(param.data)
        for key, buf in self._buffers.items():
            if is_lazy(buf):
                buf.data = fn(buf.data)  # an uninitialized buffer keeps only dtype and placement
            elif buf is not None:
                self._buffers[key] = fn(buf)
        structure.bump(self)
        return self

    def apply(self: T, fn: Callable[[Module], None]) -> T:
        r"""Apply ``fn`` to every submodule (children first) and then to ``self``.

        Typical use is initialisation; in-place ``jmod.nn.init`` functions called on
        ``m.weight`` update the module's parameter, so torch's idiom works as written.

        Examples:
            >>> import jmod
            >>> from jmod import nn
            >>> def init_weights(m):
            ...     if type(m) is nn.Linear:
            ...         nn.init.constant_(m.weight, 1.0)
            >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)).apply(init_weights)
            >>> net[0].weight
            Array([[1., 1.],
                   [1., 1.]], dtype=float32)
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def to(self: T, *args: Any, **kwargs: Any) -> T:
        r"""Move and/or cast the parameters and buffers (in place).

        Called as ``to(device=None, dtype=None, non_blocking=False)``, ``to(dtype)``,
        ``to(array)`` (take its dtype and placement) or ``to(sharding)``. A device is a
        ``jax.Device``, ``"cpu"``, ``"cuda"``/``"gpu"``, ``"tpu"``, optionally with an
        index (``"cuda:1"``); a ``jax.sharding.Sharding`` shards every array. Dtype
        casts touch floating point and complex arrays only, as in torch.
        """
        from jmod._src import devices

        device, dtype, _non_blocking = devices.parse_to_args(*args, **kwargs)
        if dtype is not None:
            dtype = devices.check_module_dtype(dtype)
            if jnp.issubdtype(dtype, jnp.complexfloating):
                warnings.warn(
                    "Complex modules are a new feature under active development whose design may change, "
                    "and some modules might not work as expected when using complex tensors as parameters or buffers. "
                    "Please file an issue at https://github.com/jmod-dev/jmod/issues "
                    "if a complex module does not work as expected.",
                    stacklevel=2,
                )

        def convert(t: jax.Array) -> jax.Array:
            if dtype is not None and (jnp.issubdtype(t.dtype, jnp.floating) or jnp.issubdtype(t.dtype, jnp.complexfloating)):
                t = t.astype(dtype)
            if device is not None:
                t = devices.place(t, device)
            return t

        return self._apply(convert)

    def cuda(self: T, device: Any = None) -> T:
        r"""Move all parameters and buffers to a GPU (``jax.devices("gpu")``)."""
        from jmod._src import devices

        dev = devices.resolve_device("cuda", device)
        return self._apply(lambda t: devices.place(t, dev))

    def cpu(self: T) -> T:
        r"""Move all parameters and buffers to the CPU."""
        from jmod._src import devices

        dev = devices.resolve_device("cpu")
        return self._apply(lambda t: devices.place(t, dev))

    device = _DeviceAttribute()

    def type(self: T, dst_type: Any) -> T:
        r"""Cast all parameters and buffers to ``dst_type``."""
        from jmod._src import devices

        dtype = devices.as_dtype(dst_type)
        return self._apply(lambda t: t.astype(dtype))

    def _cast_floating(self: T, dtype: Any) -> T:
        from jmod._src import devices

        dtype = devices.check_module_dtype(dtype)
        return self._apply(lambda t: t.astype(dtype) if jnp.issubdtype(t.dtype, jnp.floating) else t)

    def float(self: T) -> T:
        r"""Cast all floating point parameters and buffers to ``float32``."""
        return self._cast_floating(jnp.float32)

    def double(self: T) -> T:
        r"""Cast all floating point parameters and buffers to ``float64`` (needs
        ``jax.config.update("jax_enable_x64", True)``)."""
        return self._cast_floating(jnp.float64)

    def half(self: T) -> T:
        r"""Cast all floating point parameters and buffers to ``float16``."""
        return self._cast_floating(jnp.float16)

    def bfloat16(self: T) -> T:
        r"""Cast all floating point parameters and buffers to ``bfloat16``."""
        return self._cast_floating(jnp.bfloat16)

    def to_empty(self: T, *, device: Any = None, recurse: bool = True) -> T:
        r"""Replace parameters and buffers with uninitialised (zero) arrays on ``device``."""
        from jmod._src import devices

        dev = None if device is None else devices.resolve_device(device)

        def empty(t: jax.Array) -> jax.Array:
            z = host_zeros(t.shape, t.dtype)
            return z if dev is None else jax.device_put(z, dev)

        return self._apply(empty, recurse=recurse)

    def share_memory(self: T) -> T:
        r"""No-op kept for ported code (JAX arrays are immutable and shareable)."""
        return self

    # ------------------------------------------------------------------------ hooks
    def register_forward_pre_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False, host: bool = False
    ) -> RemovableHandle:
        r"""Register a forward pre-hook, run before every ``forward``.

        ``hook(module, args) -> None or modified input``: a non-``None`` result
        replaces the positional input (a non-tuple result is wrapped in a tuple). With
        ``with_kwargs=True``: ``hook(module, args, kwargs) -> None or (args, kwargs)``.
        Global pre-hooks run first; ``prepend=True`` runs this hook before the
        module's existing ones. Hooks run eagerly and while compiled code is traced;
        ``host=True`` (jmod) makes an observing hook run on the host with concrete
        arrays on every compiled call (its return value is then ignored).

        Returns:
            RemovableHandle: ``handle.remove()`` unregisters the hook.
        """
        hook = HostHook(hook) if host else hook
        handle = RemovableHandle(self._forward_pre_hooks, extra_dict=self._forward_pre_hooks_with_kwargs)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
        host: bool = False,
    ) -> RemovableHandle:
        r"""Register a forward hook, run after every ``forward``.

        ``hook(module, args, output) -> None or modified output`` (with
        ``with_kwargs=True``: ``hook(module, args, kwargs, output)``). A non-``None``
        result replaces the output. ``always_call=True`` runs the hook even when
        forward raises. Global forward hooks run first. ``host=True`` (jmod) makes an
        observing hook run on the host with concrete arrays on every compiled call.

        Returns:
            RemovableHandle: ``handle.remove()`` unregisters the hook.

        Examples:
            >>> import jax.numpy as jnp
            >>> from jmod import nn
            >>> m = nn.Linear(2, 2)
            >>> h = m.register_forward_hook(lambda mod, args, out: out.clip(0, 0) + 1)
            >>> m(jnp.ones((1, 2)))
            Array([[1., 1.]], dtype=float32)
            >>> h.remove()
        """
        hook = HostHook(hook) if host else hook
        handle = RemovableHandle(
            self._forward_hooks, extra_dict=[self._forward_hooks_with_kwargs, self._forward_hooks_always_called]
        )
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False, *, host: bool = False
    ) -> RemovableHandle:
        r"""Register a backward pre-hook: ``hook(module, grad_output) -> None or new grad_output``.

        Runs when the gradient with respect to the module's outputs is known, before
        the module's own backward; a non-``None`` result replaces ``grad_output``.
        Fires under ``jmod.grad``, ``jax.grad``, ``jax.vjp`` and inside ``jmod.jit``;
        ``host=True`` makes an observing hook see concrete gradients under ``jit``.
        """
        hook = HostHook(hook) if host else hook
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        r"""Deprecated non-full backward hook (torch's ``register_backward_hook``).

        jmod runs it with the full-hook arguments (gradients with respect to the
        module's inputs and outputs), which is what torch documents as the intended
        behaviour; a ``FutureWarning`` says so. Prefer
        :meth:`register_full_backward_hook`.
        """
        if self._is_full_backward_hook is True:
            raise RuntimeError(
                "Cannot use both regular backward hooks and full backward hooks on a "
                "single Module. Please use only one of them."
            )
        warnings.warn(
            "register_backward_hook is deprecated; jmod calls the hook with the gradients with "
            "respect to the module's inputs and outputs, as register_full_backward_hook does.",
            FutureWarning,
            stacklevel=2,
        )
        object.__setattr__(self, "_is_full_backward_hook", False)
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def register_full_backward_hook(
        self, hook: Callable[..., Any], prepend: bool = False, *, host: bool = False
    ) -> RemovableHandle:
        r"""Register a backward hook: ``hook(module, grad_input, grad_output) -> None or new grad_input``.

        ``grad_input``/``grad_output`` are tuples aligned with the positional inputs
        and the outputs, ``None`` where an entry is not an array or needs no
        gradient. A non-``None`` result replaces ``grad_input``. It fires once per
        backward pass through a call: when the gradient with respect to the inputs is
        computed, or, if no input needs one, with respect to the outputs; not at all if
        nothing needs a gradient. ``host=True`` makes an observing hook see concrete
        gradients inside compiled code.

        Examples:
            >>> import jax, jax.numpy as jnp
            >>> from jmod import nn
            >>> m = nn.Linear(2, 1)
            >>> h = m.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 2,))
            >>> jax.grad(lambda x: m(x).sum())(jnp.ones((1, 2))) / m.weight
            Array([[2., 2.]], dtype=float32)
        """
        hook = HostHook(hook) if host else hook
        if self._is_full_backward_hook is False:
            raise RuntimeError(
                "Cannot use both regular backward hooks and full backward hooks on a "
                "single Module. Please use only one of them."
            )
        object.__setattr__(self, "_is_full_backward_hook", True)
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def _get_backward_hooks(self) -> tuple[list[Callable], list[Callable]]:
        full: list[Callable] = []
        if _global_is_full_backward_hook is True:
            full += _global_backward_hooks.values()
        if self._is_full_backward_hook is True:
            full += self._backward_hooks.values()
        non_full: list[Callable] = []
        if _global_is_full_backward_hook is False:
            non_full += _global_backward_hooks.values()
        if self._is_full_backward_hook is False:
            non_full += self._backward_hooks.values()
        return full, non_full

    def _get_backward_pre_hooks(self) -> list[Callable]:
        return [*_global_backward_pre_hooks.values(), *self._backward_pre_hooks.values()]

    # ------------------------------------------------------------------------- call
    def _wrapped_call_impl(self, *args: Any, **kwargs: Any) -> Any:
        try:  # free until something fails (zero-cost try)
            if self._compiled_call_impl is not None:
                return self._compiled_call_impl(*args, **kwargs)
            return self._call_impl(*args, **kwargs)
        except Exception as e:  # torch code's errors on jax arrays get a note with the jax spelling
            add_porting_note(e)
            raise

    def _call_impl(self, *args: Any, **kwargs: Any) -> Any:
        forward_call = self.forward
        # No hooks: call forward at once (torch's fast path).
        if not (
            self._backward_hooks
            or self._backward_pre_hooks
            or self._forward_hooks
            or self._forward_pre_hooks
            or _global_backward_pre_hooks
            or _global_backward_hooks
            or _global_forward_hooks
            or _global_forward_pre_hooks
        ):
            return forward_call(*args, **kwargs)
        # torch's order: forward pre-hooks, backward-hook wiring of the inputs, forward,
        # forward hooks, backward-hook wiring of the outputs. `called` records the
        # always-call forward hooks that ran, so that a failure runs only the others.
        called: set[int] = set()
        result = None
        try:
            args, kwargs = self._run_forward_pre_hooks(args, kwargs)
            bw_hook = self._backward_hook_wiring()
            if bw_hook is not None:
                args = bw_hook.setup_input_hook(args)
            result = forward_call(*args, **kwargs)
            result = self._run_forward_hooks(args, kwargs, result, called)
            if bw_hook is not None:
                if not isinstance(result, (jax.Array, tuple)):
                    warnings.warn(
                        # torch's words (users match on them), then jmod's types
                        "For backward hooks to be called, module output should be a Tensor or a tuple of Tensors"
                        f" (jax.Array or a tuple of jax.Array) but received {type(result)}",
                        stacklevel=2,
                    )
                result = bw_hook.setup_output_hook(result)
            return result
        except Exception:
            self._run_always_called_hooks_after_error(args, kwargs, result, called)
            raise

    def _run_forward_pre_hooks(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Global then module forward pre-hooks; each may replace the input."""
        if not (_global_forward_pre_hooks or self._forward_pre_hooks):
            return args, kwargs
        for hook_id, hook in (*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                args_kwargs_result = call_hook(hook, self, args, kwargs)
                if args_kwargs_result is not None:
                    if isinstance(args_kwargs_result, tuple) and len(args_kwargs_result) == 2:
                        args, kwargs = args_kwargs_result
                    else:
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple "
                            f"of (new_args, new_kwargs), but got {args_kwargs_result}."
                        )
            else:
                args_result = call_hook(hook, self, args)
                if args_result is not None:
                    if not isinstance(args_result, tuple):
                        args_result = (args_result,)
                    args = args_result
        return args, kwargs

    def _backward_hook_wiring(self) -> Any:
        """The BackwardHook that wires full backward (pre-)hooks into autodiff, or None."""
        full_backward_hooks: list[Callable] = []
        backward_pre_hooks: list[Callable] = []
        if self._backward_pre_hooks or _global_backward_pre_hooks:
            backward_pre_hooks = self._get_backward_pre_hooks()
        if self._backward_hooks or _global_backward_hooks:
            full, non_full = self._get_backward_hooks()
            # jmod runs the deprecated kind with full-hook arguments (see register_backward_hook).
            full_backward_hooks = full + non_full
        if not (full_backward_hooks or backward_pre_hooks):
            return None
        from jmod._src.backward_hooks import BackwardHook

        return BackwardHook(self, full_backward_hooks, backward_pre_hooks)

    def _run_forward_hooks(self, args: tuple, kwargs: dict, result: Any, called: set[int]) -> Any:
        """Global then module forward hooks; each may replace the output."""
        if not (_global_forward_hooks or self._forward_hooks):
            return result
        for hook_id, hook in (*_global_forward_hooks.items(), *self._forward_hooks.items()):
            if hook_id in self._forward_hooks_always_called or hook_id in _global_forward_hooks_always_called:
                called.add(hook_id)
            if hook_id in self._forward_hooks_with_kwargs or hook_id in _global_forward_hooks_with_kwargs:
                hook_result = call_hook(hook, self, args, kwargs, result)
            else:
                hook_result = call_hook(hook, self, args, result)
            if hook_result is not None:
                result = hook_result
        return result

    def _run_always_called_hooks_after_error(self, args: tuple, kwargs: dict, result: Any, called: set[int]) -> None:
        """Forward hooks registered with ``always_call=True`` that have not run yet run
        after forward (or a hook) raised; their own errors are reported as warnings."""
        for hook_id, hook in _global_forward_hooks.items():
            if hook_id in _global_forward_hooks_always_called and hook_id not in called:
                try:
                    hook_result = hook(self, args, result)
                    if hook_result is not None:
                        result = hook_result
                except Exception as e:
                    warnings.warn(
                        "global module forward hook with ``always_call=True`` raised an exception "
                        f"that was silenced as another error was raised in forward: {str(e)}",
                        stacklevel=3,
                    )
        for hook_id, hook in self._forward_hooks.items():
            if hook_id in self._forward_hooks_always_called and hook_id not in called:
                try:
                    if hook_id in self._forward_hooks_with_kwargs:
                        hook_result = hook(self, args, kwargs, result)
                    else:
                        hook_result = hook(self, args, result)
                    if hook_result is not None:
                        result = hook_result
                except Exception as e:
                    warnings.warn(
                        "module forward hook with ``always_call=True`` raised an exception "
                        f"that was silenced as another error was raised in forward: {str(e)}",
                        stacklevel=3,
                    )

    __call__: Callable[..., Any] = _wrapped_call_impl

    def compile(self, **jit_kwargs: Any) -> None:
        """Compile this module's ``__call__`` with ``jmod.jit`` (in place, like torch).

        Later calls run a ``jax.jit``-compiled forward (hooks included); buffer and
        attribute changes made by forward are written back to the module, and the
        random state advances as it does eagerly. Keyword arguments go to
        ``jmod.jit``.
        """
        from jmod._src.jit import jit

        compiled = jit(type(self)._call_impl, **jit_kwargs)
        object.__setattr__(self, "_compiled_call_impl", functools.partial(compiled, self))
        structure.bump(self)

    # ------------------------------------------------ participant protocol (jmod._src)
    # How jmod.jit, jmod.grad and functional_call see a module tree: the modules in it,
    # the locations of its arrays, and how to store an array a traced call created.
    def _jmod_modules(self) -> list[Module]:
        return list(self.modules())

    def _jmod_state_locations(self) -> list[tuple[Any, Any]]:
        from jmod._src.state import module_locations

        return module_locations(self._jmod_modules())

    def _jmod_store_new(self, kind: str, name: str, value: jax.Array) -> None:
        if kind == "param":
            slot = self._parameters.get(name)
            if slot is None:
                self._parameters[name] = Parameter(value)
            else:
                slot.data = value
        elif kind == "buffer":
            self._buffers[name] = value
        else:
            self.__dict__[name] = value

    # ------------------------------------------------------------ attribute protocol
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_compiled_call_impl", None)
        for name in structure.PRIVATE_ATTRIBUTES:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        defaults = {
            "_forward_pre_hooks": _HookDict,
            "_forward_pre_hooks_with_kwargs": _HookDict,
            "_forward_hooks_with_kwargs": _HookDict,
            "_forward_hooks_always_called": _HookDict,
            "_backward_pre_hooks": _HookDict,
            "_state_dict_hooks": OrderedDict,
            "_state_dict_pre_hooks": OrderedDict,
            "_load_state_dict_pre_hooks": OrderedDict,
            "_load_state_dict_post_hooks": OrderedDict,
            "_non_persistent_buffers_set": set,
        }
        for name, factory in defaults.items():
            if name not in self.__dict__:
                self.__dict__[name] = factory()
        if "_is_full_backward_hook" not in self.__dict__:
            self.__dict__["_is_full_backward_hook"] = None
        for name, buf in self.__dict__["_buffers"].items():
            if isinstance(buf, UninitializedBuffer):
                buf._link(self, name)
        _own_hook_dicts(self)
        structure.bump(self)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        if "_parameters" in d:
            _parameters = d["_parameters"]
            if name in _parameters:
                param = _parameters[name]
                return None if param is None else param._note_read()
        if "_buffers" in d:
            _buffers = d["_buffers"]
            if name in _buffers:
                return _buffers[name]
        if "_modules" in d:
            modules = d["_modules"]
            if name in modules:
                return modules[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        # torch's routing, step by step: what `value` is decides where it is registered.
        d = self.__dict__
        if isinstance(value, Tracer) and not in_managed_scope():
            raise TracerEscapeError(
                f"{type(self).__name__}.{name} was assigned a traced array inside a JAX transformation "
                "(jax.jit, jax.grad, jax.vmap, ...) that jmod does not manage, so the module would keep a "
                "dead tracer. Use jmod.jit / model.compile() and jmod.grad / jmod.value_and_grad, or call the "
                "module through jmod.func.functional_call (which returns buffer updates with return_buffers=True)."
            )
        params = d.get("_parameters")
        marked = None
        if isinstance(value, jax.Array) and params is not None:
            # An array read from some module's parameter stands for that Parameter,
            # as the Parameter object itself does in torch: assigning it ties.
            slot = owner_of(value)
            if slot is not None:
                if params.get(name) is slot:
                    return
                value = slot
            elif name not in params:
                # An array made by nn.Buffer stays a buffer marker, as torch's flagged tensor.
                marked = buffer_mark(value)
        if isinstance(value, Parameter):
            self._assign_new_parameter(name, value)
        elif params is not None and name in params:
            self._assign_parameter_value(name, value)
        elif isinstance(value, Module) or name in d.get("_modules", ()):
            self._assign_module(name, value)
        elif (
            isinstance(value, (Buffer, UninitializedBuffer))
            or marked is not None
            or name in d.get("_buffers", ())
        ):
            self._assign_buffer(name, value, marked)
        else:
            self._assign_plain(name, value)

    def _remove_from(self, name: str, *dicts_or_sets: Any) -> None:
        for c in dicts_or_sets:
            if name in c:
                if isinstance(c, dict):
                    del c[name]
                else:
                    c.discard(name)

    def _assign_new_parameter(self, name: str, value: Parameter) -> None:
        """``self.w = nn.Parameter(...)`` (or an array read from another parameter: a tie)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameters before Module.__init__() call")
        self._remove_from(name, self.__dict__, self._buffers, self._modules, self._non_persistent_buffers_set)
        self.register_parameter(name, value)

    def _assign_parameter_value(self, name: str, value: Any) -> None:
        """An array (or None) assigned to an existing parameter's name replaces its value:
        arrays are immutable, so this is how an update is written."""
        params = self._parameters
        if value is None:
            self.register_parameter(name, None)
            return
        if not is_array_like(value):
            raise TypeError(
                f"cannot assign '{typename(value)}' as parameter '{name}' (jmod.nn.Parameter, an array or None expected)"
            )
        slot = params[name]
        value = to_jax(value)
        if slot is None:
            self.register_parameter(name, Parameter(value))
        elif is_lazy(slot):
            # Assigning a value to an uninitialized parameter materializes it.
            slot.data = value
            slot.__class__ = slot.cls_to_become
            structure.bump(self)
            structure.bump(slot)
        else:
            if not _same_aval(slot.data, value):
                structure.bump(self)
            slot.data = value

    def _assign_module(self, name: str, value: Any) -> None:
        """A submodule, or None for an existing submodule's name."""
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name, self.__dict__, self._parameters, self._buffers, self._non_persistent_buffers_set)
        elif value is not None:
            raise TypeError(f"cannot assign '{typename(value)}' as child module '{name}' (jmod.nn.Module or None expected)")
        for hook in _global_module_registration_hooks.values():
            output = hook(self, name, value)
            if output is not None:
                value = output
        modules[name] = value
        structure.bump(self)

    def _assign_buffer(self, name: str, value: Any, marked: bool | None) -> None:
        """``nn.Buffer(...)``, an array made by one, or a new value for a buffer's name."""
        buffers = self.__dict__.get("_buffers")
        if value is not None and not isinstance(value, (Buffer, UninitializedBuffer)) and not is_array_like(value):
            raise TypeError(
                f"cannot assign '{typename(value)}' as buffer '{name}' (jmod.nn.Buffer, an array or None expected)"
            )
        if isinstance(value, Buffer):
            persistent = value.persistent
            value = value.data
        elif isinstance(value, UninitializedBuffer):
            persistent = value.persistent
        elif marked is not None:
            persistent = marked
        else:
            persistent = name not in self._non_persistent_buffers_set
        old = buffers.get(name) if buffers is not None else None
        if (
            value is not None
            and old is not None
            and not is_lazy(old)
            and not is_lazy(value)
            and persistent == (name not in self._non_persistent_buffers_set)
            # torch goes through register_buffer every time: keep that when it is
            # observable (registration hooks, an override)
            and not _global_buffer_registration_hooks
            and getattr(self.register_buffer, "__func__", None) is Module.register_buffer
        ):
            value = to_jax(value)
            if _same_aval(old, value):
                # A new value for an existing buffer (BatchNorm's running stats): not a
                # structural change.
                buffers[name] = value
                return
        self._register_buffer_compat(name, value, persistent)

    def _assign_plain(self, name: str, value: Any) -> None:
        """Any other attribute: ordinary Python state (compiled code carries arrays and
        is specialised on the rest)."""
        old = self.__dict__.get(name, _MISSING)
        object.__setattr__(self, name, value)
        if not (isinstance(value, jax.Array) and isinstance(old, jax.Array) and _same_aval(old, value)):
            structure.bump(self)

    def _register_buffer_compat(self, name: str, value: Any, persistent: bool) -> None:
        """``register_buffer(name, value, persistent)``, or without ``persistent`` for a
        subclass whose override lacks it (torch's ``__setattr__`` does the same)."""
        if getattr(self.register_buffer, "__func__", None) is Module.register_buffer:
            self.register_buffer(name, value, persistent)
        elif "persistent" in inspect.signature(self.register_buffer).parameters:
            self.register_buffer(name, value, persistent)
        else:
            if not persistent:
                raise RuntimeError(
                    "Registering a non-persistent buffer on a Module subclass that implements "
                    "register_buffer() without the persistent argument is not allowed."
                )
            self.register_buffer(name, value)

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            super().__delattr__(name)
        structure.bump(self)

    def __dir__(self) -> list[str]:
        module_attrs = dir(self.__class__)
        attrs = list(self.__dict__.keys())
        parameters = list(self._parameters.keys())
        modules = list(self._modules.keys())
        buffers = list(self._buffers.keys())
        keys = module_attrs + attrs + parameters + modules + buffers
        keys = [key for key in keys if not key[0].isdigit()]
        return sorted(keys)

    # -------------------------------------------------------------------- traversal
    def _named_members(
        self, get_members_fn: Callable, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Any]]:
        memo: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for k, v in get_members_fn(module):
                if v is None or id(v) in memo:
                    continue
                if remove_duplicate:
                    memo.add(id(v))
                name = module_prefix + ("." if module_prefix else "") + k
                yield name, v

    def named_parameter_slots(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Like :meth:`named_parameters` but yields the ``Parameter`` slots (with
        ``.data`` and ``.requires_grad``) instead of their arrays."""
        seen: dict[int, str] = {}
        aliases: dict[int, str] = {}  # id(source slot) -> name of a re-wrap of it
        for name, slot in self._named_members(
            lambda module: module._parameters.items(), prefix=prefix, recurse=recurse, remove_duplicate=remove_duplicate
        ):
            ref = slot._alias_of
            if ref is not None:
                source = ref()
                if source is None:
                    slot._alias_of = None
                elif id(source) in seen:
                    raise _shared_storage_in_tree(name, seen[id(source)])
                else:
                    aliases[id(source)] = name
            if id(slot) in aliases:
                raise _shared_storage_in_tree(aliases[id(slot)], name)
            seen[id(slot)] = name
            yield name, slot

    def parameters(self, recurse: bool = True) -> Iterator[jax.Array]:
        r"""Return an iterator over module parameters (arrays), tied ones once."""
        for _name, param in self.named_parameters(recurse=recurse):
            yield param

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, jax.Array]]:
        r"""Return an iterator over ``(name, array)`` for module parameters.

        Args:
            prefix: prefix to prepend to all parameter names.
            recurse: include parameters of submodules.
            remove_duplicate: yield a tied parameter once (under its first name).

        Use ``jmod.nn.parameter.requires_grad(p)`` for torch's ``p.requires_grad``.
        """
        for name, slot in self.named_parameter_slots(prefix, recurse, remove_duplicate):
            slot._last_name = name
            yield name, slot._note_read()

    def buffers(self, recurse: bool = True) -> Iterator[jax.Array]:
        r"""Return an iterator over module buffers."""
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, jax.Array]]:
        r"""Return an iterator over ``(name, array)`` for module buffers."""
        yield from self._named_members(
            lambda module: module._buffers.items(), prefix=prefix, recurse=recurse, remove_duplicate=remove_duplicate
        )

    def children(self) -> Iterator[Module]:
        r"""Return an iterator over immediate children modules."""
        for _name, module in self.named_children():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        r"""Return an iterator over ``(name, module)`` for immediate children."""
        memo: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in memo:
                memo.add(id(module))
                yield name, module

    def modules(self, remove_duplicate: bool = True) -> Iterator[Module]:
        r"""Return an iterator over all modules in the network, ``self`` first."""
        for _, module in self.named_modules(remove_duplicate=remove_duplicate):
            yield module

    def named_modules(
        self, memo: set[Module] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        r"""Return an iterator over ``(name, module)`` for all modules, depth first.

        Args:
            memo: a set of modules already yielded (shared across the recursion).
            prefix: a prefix added to every name.
            remove_duplicate: yield a module reachable twice only once.
        """
        if memo is None:
            memo = set()
        if self not in memo:
            if remove_duplicate:
                memo.add(self)
            yield prefix, self
            for name, module in self._modules.items():
                if module is None:
                    continue
                submodule_prefix = prefix + ("." if prefix else "") + name
                yield from module.named_modules(memo, submodule_prefix, remove_duplicate)

    # Modules hash and compare by identity (named_modules' memo relies on it).
    __hash__ = object.__hash__

    # ------------------------------------------------------------------------ modes
    def train(self: T, mode: bool = True) -> T:
        r"""Set training mode (``mode=True``) or evaluation mode on this module and its
        children. Dropout and BatchNorm behave differently in the two modes."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self: T) -> T:
        r"""Set evaluation mode; equivalent to ``self.train(False)``."""
        return self.train(False)

    def requires_grad_(self: T, requires_grad: bool = True) -> T:
        r"""Freeze (``False``) or unfreeze every parameter of this module.

        Frozen parameters get no gradient from ``jmod.grad`` and are never updated.
        """
        for _, slot in self.named_parameter_slots():
            slot.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        r"""No-op kept for ported training loops: jmod computes gradients functionally
        (``jmod.grad``), so nothing accumulates on the parameters."""

    # ------------------------------------------------------------------------- repr
    def _get_name(self) -> str:
        return self.__class__.__name__

    def extra_repr(self) -> str:
        r"""Return the extra representation of the module (override in layers)."""
        return ""

    def __repr__(self) -> str:
        extra_lines: list[str] = []
        extra_repr = self.extra_repr()
        if extra_repr:
            extra_lines = extra_repr.split("\n")
        child_lines = []
        for key, module in self._modules.items():
            mod_str = repr(module)
            mod_str = _addindent(mod_str, 2)
            child_lines.append("(" + key + "): " + mod_str)
        lines = extra_lines + child_lines
        main_str = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main_str += extra_lines[0]
            else:
                main_str += "\n  " + "\n  ".join(lines) + "\n"
        main_str += ")"
        return main_str

