"""``state_dict`` / ``load_state_dict`` for ``Module`` (a mixin, split out for size).

Semantics follow ``torch.nn.Module``: keys in registration order (own parameters, own
persistent buffers, then children), ``_metadata`` with each module's ``_version``, the
four state-dict hook kinds, an overridable ``_load_from_state_dict`` for versioned
migrations, torch's error text. One deliberate strengthening: a load that fails
changes nothing. Values are written module by module as torch copies them (so hooks
and overrides see what was loaded so far); ``load_state_dict`` snapshots every
parameter and buffer first and puts them back if the load raises.
"""

from __future__ import annotations

import contextvars
import itertools
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax

from jmod._src import structure
from jmod._src.arrays import is_array_like, is_tracer, to_jax, unaliased
from jmod.nn.parameter import _SHAPE_ERROR, Parameter, is_lazy

if TYPE_CHECKING:
    from jmod.nn.modules.module import Module

_EXTRA_STATE_KEY_SUFFIX = "_extra_state"

# While load_state_dict runs: (module, previous extra state) for every module whose
# set_extra_state was called, so a failed load can restore it.
_EXTRA_STATE_UNDO: contextvars.ContextVar[list | None] = contextvars.ContextVar("jmod_extra_state_undo", default=None)
_NO_EXTRA_STATE = object()


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _write(module: Module, name: str, value: jax.Array, is_param: bool) -> None:
    """Store ``value`` as parameter/buffer ``name`` of ``module`` now."""
    if is_param:
        module._parameters[name].data = value
    else:
        module._buffers[name] = value


def _snapshot(root: Module) -> list[tuple]:
    """Everything ``load_state_dict`` may write, to put back if it fails (arrays are
    immutable, so keeping references is a snapshot)."""
    out = []
    for module in root.modules(remove_duplicate=True):
        params = dict(module._parameters)
        values = {name: (slot.data, type(slot)) for name, slot in params.items() if slot is not None}
        out.append((module, params, values, dict(module._buffers), set(module._non_persistent_buffers_set)))
    return out


def _restore(snapshot: list[tuple], extra_undo: list[tuple]) -> None:
    for module, old_extra in reversed(extra_undo):
        if old_extra is not _NO_EXTRA_STATE:
            module.set_extra_state(old_extra)
    for module, params, values, buffers, non_persistent in snapshot:
        module._parameters.clear()
        module._parameters.update(params)
        for name, (value, cls) in values.items():
            params[name].data = value
            if type(params[name]) is not cls:  # a lazy load hook materialized it
                params[name].__class__ = cls
        module._buffers.clear()
        module._buffers.update(buffers)
        module._non_persistent_buffers_set.clear()
        module._non_persistent_buffers_set.update(non_persistent)
    structure.bump()  # a failed load: rare, so every compiled function re-checks


def _place_like(new: jax.Array, old: jax.Array) -> jax.Array:
    """``param.copy_(input)``: keep the destination's dtype and placement."""
    if new.dtype != old.dtype:
        new = new.astype(old.dtype)
    if not is_tracer(old) and not is_tracer(new):
        sharding = getattr(old, "sharding", None)
        if sharding is not None and getattr(new, "sharding", None) != sharding:
            # devices.place never returns an array sharing a buffer with `new` (which the
            # caller's state dict still holds): a compiled step donating the model's
            # state would otherwise delete the caller's array.
            from jmod._src.devices import place

            new = place(new, sharding)
    return new


class StateDictMixin:
    """The state-dict half of ``Module``'s surface."""

    # --------------------------------------------------------------------- hooks
    def _register_state_dict_hook(self, hook: Any) -> Any:
        from jmod.nn.modules.hooks import RemovableHandle

        if getattr(hook, "_from_public_api", False):
            raise RuntimeError(
                "Cannot register the same function as the state dict post hook that was "
                "previously registered via register_state_dict_post_hook"
            )
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook: Any) -> Any:
        r"""Register ``hook(module, state_dict, prefix, local_metadata) -> None``, run after
        ``state_dict()`` collected this module; it may modify ``state_dict`` in place."""
        from jmod.nn.modules.hooks import RemovableHandle

        hook._from_public_api = True
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook: Any) -> Any:
        r"""Register ``hook(module, prefix, keep_vars) -> None``, run before
        ``state_dict()`` collects this module."""
        from jmod.nn.modules.hooks import RemovableHandle

        handle = RemovableHandle(self._state_dict_pre_hooks)
        self._state_dict_pre_hooks[handle.id] = hook
        return handle

    def _register_load_state_dict_pre_hook(self, hook: Any, with_module: bool = False) -> Any:
        from jmod.nn.modules.hooks import RemovableHandle
        from jmod.nn.modules.module import _WrappedHook

        handle = RemovableHandle(self._load_state_dict_pre_hooks)
        self._load_state_dict_pre_hooks[handle.id] = _WrappedHook(hook, self if with_module else None)
        return handle

    def register_load_state_dict_pre_hook(self, hook: Any) -> Any:
        r"""Register ``hook(module, state_dict, prefix, local_metadata, strict,
        missing_keys, unexpected_keys, error_msgs) -> None``, run before this module
        loads; it may rewrite ``state_dict`` (for example to rename old keys)."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_load_state_dict_post_hook(self, hook: Any) -> Any:
        r"""Register ``hook(module, incompatible_keys) -> None``, run after this module
        and its children loaded; it may edit ``missing_keys``/``unexpected_keys`` in
        place (clearing them avoids the strict-mode error)."""
        from jmod.nn.modules.hooks import RemovableHandle

        handle = RemovableHandle(self._load_state_dict_post_hooks)
        self._load_state_dict_post_hooks[handle.id] = hook
        return handle

    # --------------------------------------------------------------------- saving
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        r"""Save this module's own (not its children's) state into ``destination``."""
        from jmod.nn.modules.module import Module

        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param._note_read()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf
        if getattr(self.__class__, "get_extra_state", Module.get_extra_state) is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        r"""Return an ``OrderedDict`` of parameters and persistent buffers, keyed by name.

        Values are the current ``jax.Array``s (immutable, so the dict is a snapshot);
        with ``keep_vars=True`` parameters come as their ``Parameter`` slots. The dict
        carries ``_metadata`` with each module's ``_version``.

        Args:
            destination: a dict to fill and return instead of a new ``OrderedDict``.
            prefix: prepended to every key.
            keep_vars: return ``Parameter`` slots instead of arrays for parameters.

        Examples:
            >>> from jmod import nn
            >>> list(nn.Linear(2, 3).state_dict())
            ['weight', 'bias']
        """
        if len(args) > 0:
            warnings.warn(
                "Positional args are being deprecated, use kwargs instead. Refer to "
                "https://pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.state_dict"
                " for details.",
                FutureWarning,
                stacklevel=2,
            )
            if destination is None:
                destination = args[0]
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = dict(version=self._version)
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            hook_result = hook(self, destination, prefix, local_metadata)
            if not getattr(hook, "_from_public_api", False):
                if hook_result is not None:
                    destination = hook_result
            elif hook_result is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return destination

    # -------------------------------------------------------------------- loading
    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        r"""Load this module's own parameters and persistent buffers from ``state_dict``.

        Override to migrate checkpoints of an older ``_version`` (read it from
        ``local_metadata.get("version")``, rename keys in ``state_dict``, then call
        ``super()._load_from_state_dict(...)``). If the whole ``load_state_dict``
        fails, its writes are undone.
        """
        from jmod.nn.modules.module import Module

        for hook in self._load_state_dict_pre_hooks.values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

        persistent_buffers = {k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set}
        local_params = {k: (p.data if p is not None else None) for k, p in self._parameters.items()}
        local_state = {
            k: v for k, v in itertools.chain(local_params.items(), persistent_buffers.items()) if v is not None
        }
        # Uninitialized (lazy) parameters and buffers a load pre-hook did not materialize.
        lazy_names = {k for k, v in itertools.chain(self._parameters.items(), persistent_buffers.items()) if is_lazy(v)}
        assign = local_metadata.get("assign_to_params_buffers", False)
        extra_undo = _EXTRA_STATE_UNDO.get()

        for name, param in local_state.items():
            key = prefix + name
            if key in state_dict:
                input_param = state_dict[key]
                if _is_uninitialized(input_param):
                    if name in lazy_names:
                        continue  # uninitialized into uninitialized: nothing to copy
                    # torch reads the shape of the uninitialized input, which raises
                    raise RuntimeError(_SHAPE_ERROR)
                given_slot = input_param if isinstance(input_param, Parameter) else None
                if given_slot is not None:  # from state_dict(keep_vars=True)
                    input_param = given_slot.data
                if not is_array_like(input_param):
                    # torch's wording (users match on it), then what jmod accepts.
                    error_msgs.append(
                        f'While copying the parameter named "{key}", '
                        "expected torch.Tensor or Tensor-like object from checkpoint but "
                        f"received {type(input_param)} (jmod accepts jax.Array, numpy.ndarray or torch.Tensor)"
                    )
                    continue
                try:
                    new = to_jax(input_param)
                except Exception as ex:  # e.g. a dtype jax cannot represent
                    error_msgs.append(f'While copying the parameter named "{key}", an exception occurred : {ex.args}.')
                    continue
                # Backward compatibility: loading 1-dim tensor from 0.3.* to version 0.4+
                if name in lazy_names:
                    # torch copies into the empty placeholder, which fails
                    error_msgs.append(
                        f'While copying the parameter named "{key}", whose dimensions in the model are '
                        f"torch.Size([0]) and whose dimensions in the checkpoint are {_torch_size(new.shape)}, an "
                        f"exception occurred : ('The size of tensor a (0) must match the size of tensor b "
                        f"({new.shape[-1] if new.ndim else 1}) at non-singleton dimension {max(new.ndim - 1, 0)}',)."
                    )
                    continue
                if len(param.shape) == 0 and len(new.shape) == 1 and new.shape[0] == 1:
                    new = new[0]
                if new.shape != param.shape:
                    error_msgs.append(
                        f"size mismatch for {key}: copying a param with shape {_torch_size(new.shape)} from checkpoint, "
                        f"the shape in current model is {_torch_size(param.shape)}."
                    )
                    continue
                if not assign:
                    new = unaliased(_place_like(new, param), input_param)
                    _write(self, name, new, name in self._parameters)
                elif name in self._parameters:
                    # torch: setattr(self, name, Parameter(input)) with the module's
                    # requires_grad; a Parameter from the checkpoint is used itself.
                    old_slot = self._parameters[name]
                    slot = given_slot if given_slot is not None and given_slot.data is new else Parameter(new)
                    if slot is not given_slot:
                        # A checkpoint gives values: an array from another live model's
                        # state_dict() is loaded as a new parameter, not refused as an alias.
                        slot._alias_of = None
                    slot.requires_grad = old_slot.requires_grad
                    self.register_parameter(name, slot)
                else:
                    _write(self, name, new, False)
            elif strict:
                missing_keys.append(key)

        extra_state_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if getattr(self.__class__, "set_extra_state", Module.set_extra_state) is not Module.set_extra_state:
            if extra_state_key in state_dict:
                if extra_undo is not None:
                    has_get = (
                        getattr(self.__class__, "get_extra_state", Module.get_extra_state) is not Module.get_extra_state
                    )
                    extra_undo.append((self, self.get_extra_state() if has_get else _NO_EXTRA_STATE))
                self.set_extra_state(state_dict[extra_state_key])
            elif strict:
                missing_keys.append(extra_state_key)
        elif strict and (extra_state_key in state_dict):
            unexpected_keys.append(extra_state_key)

        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_state_key:
                    input_name = key[len(prefix) :].split(".", 1)
                    if len(input_name) > 1:
                        if input_name[0] not in self._modules:
                            unexpected_keys.append(key)
                    elif input_name[0] not in local_state:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        r"""Copy parameters and persistent buffers from ``state_dict`` into this module.

        Accepts ``jax.Array``, NumPy arrays and torch tensors, so a PyTorch
        checkpoint loads directly. Values are cast to the existing dtype and placed
        like the existing arrays (``assign=True`` keeps the checkpoint's dtype and
        placement). If anything is wrong nothing is changed.

        Args:
            state_dict: a mapping from names to arrays.
            strict: require the keys to match ``self.state_dict()`` exactly.
            assign: take the arrays as they are instead of casting to the module's
                dtype and placement.

        Returns:
            ``NamedTuple`` with ``missing_keys`` and ``unexpected_keys``.

        Raises:
            RuntimeError: ``Error(s) in loading state_dict for X: ...`` listing every
                missing and unexpected key and every size mismatch.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")

        missing_keys: list[str] = []
        unexpected_keys: list[str] = []
        error_msgs: list[str] = []

        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata

        def load(module: Any, local_state_dict: dict, prefix: str = "") -> None:
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(
                local_state_dict, prefix, local_metadata, True, missing_keys, unexpected_keys, error_msgs
            )
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state_dict = {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)}
                    load(child, child_state_dict, child_prefix)
            incompatible_keys = _IncompatibleKeys(missing_keys, unexpected_keys)
            for hook in module._load_state_dict_post_hooks.values():
                out = hook(module, incompatible_keys)
                if out is not None:
                    raise AssertionError(
                        "Hooks registered with ``register_load_state_dict_post_hook`` are not "
                        "expected to return new values, if incompatible_keys need to be modified, "
                        "it should be done inplace."
                    )

        snapshot = _snapshot(self)
        extra_undo: list = []
        token = _EXTRA_STATE_UNDO.set(extra_undo)
        try:
            load(self, state_dict)
            _raise_load_errors(self, strict, missing_keys, unexpected_keys, error_msgs)
        except BaseException:
            _restore(snapshot, extra_undo)
            raise
        finally:
            _EXTRA_STATE_UNDO.reset(token)
        return _IncompatibleKeys(missing_keys, unexpected_keys)


def _is_uninitialized(x: Any) -> bool:
    """An uninitialized (lazy) parameter or buffer, jmod's or torch's."""
    return is_lazy(x) or (
        type(x).__name__ in ("UninitializedParameter", "UninitializedBuffer") and type(x).__module__.startswith("torch")
    )


def _torch_size(shape: tuple[int, ...]) -> str:
    """Format a shape as torch prints it (``torch.Size([3, 4])``) so error text matches."""
    return f"torch.Size([{', '.join(str(int(d)) for d in shape)}])"


def _raise_load_errors(
    module: Any, strict: bool, missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]
) -> None:
    if strict:
        if len(unexpected_keys) > 0:
            error_msgs.insert(
                0,
                "Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected_keys)),
            )
        if len(missing_keys) > 0:
            error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing_keys)))
    if len(error_msgs) > 0:
        raise RuntimeError(
            "Error(s) in loading state_dict for {}:\n\t{}".format(module.__class__.__name__, "\n\t".join(error_msgs))
        )
