r"""``jmod.nn.utils.parametrize``: torch's parametrizations on JAX arrays.

``register_parametrization(module, "weight", P())`` moves ``module.weight`` into
``module.parametrizations.weight.original`` and makes ``module.weight`` compute
``P()(original)`` on every read. As in torch this works by changing the module's
class to a generated subclass (``ParametrizedLinear``...) that has a ``property`` per
parametrized name: a class attribute wins over ``Module.__getattr__``, so every read
of ``module.weight`` (inside ``forward``, under ``jmod.jit``, ``jmod.grad`` or
``functional_call``) runs the parametrization on the current (possibly traced)
original. The state dict therefore has torch's keys
(``parametrizations.weight.original``, or ``original0``, ``original1``... when
``right_inverse`` returns several arrays) and loads torch's state dicts unchanged;
gradients from ``jmod.grad`` are keyed ``parametrizations.weight.original``.

Differences from torch (see ``docs/differences.md``):

* a parametrized module can be pickled (``pickle``, ``jmod.save`` of the object);
  torch raises and only supports ``state_dict()``. ``copy.deepcopy`` gives the copy
  its own generated class, so removing a parametrization from the copy leaves the
  original parametrized (torch's copies share the class and its properties);
* ``cached()`` keeps a value only while the original arrays are the ones it was
  computed from: a step that replaces a parameter inside the ``with`` block, and a
  ``jmod.jit`` trace (whose originals are traced values), recompute instead of
  reusing a stale or foreign value. torch refuses to trace while caching.
"""

from __future__ import annotations

import collections.abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import jax

from jmod._src import structure
from jmod._src.arrays import is_array_like, to_jax
from jmod.nn.modules.container import ModuleDict, ModuleList
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter, owner_of

__all__ = [
    "cached",
    "ParametrizationList",
    "register_parametrization",
    "is_parametrized",
    "remove_parametrizations",
    "type_before_parametrizations",
    "transfer_parametrizations_and_params",
]

_cache_enabled = 0
# (id(module), tensor_name) -> (the original arrays the value was computed from, value)
_cache: dict[tuple[int, str], tuple[tuple, jax.Array]] = {}


@contextmanager
def cached() -> Iterator[None]:
    r"""Context manager that enables the caching system within parametrizations
    registered with :func:`register_parametrization`.

    The value of a parametrized array is computed the first time it is read inside the
    context and reused afterwards; the cached values are discarded when leaving it.
    Useful when a parametrized weight is read several times in one forward (an RNN's
    recurrent kernel, shared weights).

    A cached value is reused only while the original arrays are the ones it was
    computed from (jmod arrays are replaced, not mutated, so a parameter update inside
    the block recomputes), and values computed inside a ``jmod.jit`` trace are not
    mixed with eager ones.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> import jmod.nn.utils.parametrize as P
        >>> class Double(nn.Module):
        ...     def forward(self, X):
        ...         return 2 * X
        >>> m = P.register_parametrization(nn.Linear(2, 2), "weight", Double())
        >>> with P.cached():
        ...     m.weight is m.weight
        True
    """
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _is_tensor(x: Any) -> bool:
    return isinstance(x, (jax.Array, Parameter))


def _register_parameter_or_buffer(module: Module, name: str, X: Any) -> None:
    if isinstance(X, Parameter):
        module.register_parameter(name, X)
    else:
        module.register_buffer(name, X)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Parameter) else x


def _maybe_set(holder: Module, name: str, value: jax.Array) -> None:
    """torch's ``original.set_(value)``: a new value in the same parameter slot (so an
    optimizer holding the slot keeps updating it) or buffer."""
    value = jax.lax.stop_gradient(value)  # torch assigns under no_grad
    slot = holder._parameters.get(name)
    if slot is not None:
        old = slot.data
        slot.data = value
    else:
        old = holder._buffers[name]
        holder._buffers[name] = value
    if old.shape != value.shape or old.dtype != value.dtype:
        structure.bump()


def _fresh_parameter(x: Any, requires_grad: bool) -> Parameter:
    p = Parameter(_data(x), requires_grad)
    # torch's Parameter(t) shares t's storage, and the old parameter goes away: no alias.
    p._alias_of = None
    return p


class ParametrizationList(ModuleList):
    r"""A sequential container that holds and manages the original parameters or
    buffers of a parametrized :class:`jmod.nn.Module`.

    It is the type of ``module.parametrizations[tensor_name]`` when
    ``module[tensor_name]`` has been parametrized with :func:`register_parametrization`.

    If the first registered parametrization has a ``right_inverse`` that returns one
    array or does not have a ``right_inverse`` (in which case it is the identity), it
    holds the array under the name ``original``. If it has a ``right_inverse`` that
    returns several arrays, these are registered as ``original0``, ``original1``, ...

    Warning:
        This class is used internally by :func:`register_parametrization`. It is
        documented here for completeness. It shall not be instantiated by the user.

    Args:
        modules (sequence): sequence of modules representing the parametrizations
        original (Parameter or array): parameter or buffer that is parametrized (an
            array read from a parameter stands for that parameter)
        unsafe (bool): whether the parametrization may change the dtype and shape of
            the array. Default: ``False``
    """

    original: jax.Array
    unsafe: bool

    def __init__(self, modules: Sequence[Module], original: Any, unsafe: bool = False) -> None:
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")

        super().__init__(modules)
        self.unsafe = unsafe

        if isinstance(original, jax.Array) and owner_of(original) is not None:
            original = owner_of(original)
        elif not isinstance(original, (Parameter, jax.Array)) and is_array_like(original):
            original = to_jax(original)
        original_shape = original.shape
        original_dtype = original.dtype

        new = _data(original)
        for module in reversed(self):
            if hasattr(module, "right_inverse"):
                try:
                    new = module.right_inverse(new)
                except NotImplementedError:
                    pass
            # else, or if it throws, right_inverse is the identity

        if not _is_tensor(new) and not isinstance(new, Sequence):
            raise ValueError(
                "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                f"Got {type(new).__name__}"
            )

        self.is_tensor = _is_tensor(new)
        self.ntensors = 1 if self.is_tensor else len(new)

        if self.is_tensor:
            new = jax.lax.stop_gradient(_data(new))
            if original_dtype != new.dtype:
                raise ValueError(
                    "When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                    f"original.dtype: {original_dtype}\n"
                    f"right_inverse(original).dtype: {new.dtype}"
                )
            if isinstance(original, Parameter):
                # The same slot, with the new value: an optimizer holding it keeps working.
                original.data = new
            else:
                original = new
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, originali in enumerate(new):
                if not _is_tensor(originali):
                    raise ValueError(
                        "'right_inverse' must return a Tensor or a Sequence of tensors "
                        "(list, tuple...). "
                        f"Got element {i} of the sequence with type {type(originali).__name__}."
                    )
                originali = jax.lax.stop_gradient(_data(originali))
                if isinstance(original, Parameter):
                    originali = _fresh_parameter(originali, original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", originali)

        if not self.unsafe:
            # Z = forward(right_inverse(original)) must look like original.
            Z = self()
            if not isinstance(Z, jax.Array):
                raise ValueError(f"A parametrization must return a tensor. Got {type(Z).__name__}.")
            if Z.dtype != original_dtype:
                raise ValueError(
                    "Registering a parametrization may not change the dtype of the tensor, unless `unsafe` flag is "
                    "enabled.\n"
                    f"unparametrized dtype: {original_dtype}\n"
                    f"parametrized dtype: {Z.dtype}"
                )
            if Z.shape != original_shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, unless `unsafe` flag is "
                    "enabled.\n"
                    f"unparametrized shape: {_torch_size(original_shape)}\n"
                    f"parametrized shape: {_torch_size(Z.shape)}"
                )

    def right_inverse(self, value: Any) -> None:
        r"""Call the ``right_inverse`` methods of the parametrizations in the inverse
        registration order, then store the result in ``self.original`` (one array) or
        ``self.original0``, ``self.original1``, ... (several).

        The parameter slots are kept (their values are replaced), so an optimizer
        built before keeps updating them.

        Args:
            value (array): value to which initialize the module
        """
        if is_array_like(value) and not isinstance(value, jax.Array):
            value = to_jax(value)
        for module in reversed(self):
            if hasattr(module, "right_inverse"):
                value = module.right_inverse(value)
            else:
                raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
        if self.is_tensor:
            if not _is_tensor(value):
                raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
            value = _data(value)
            if value.dtype != self.original.dtype:
                raise ValueError(
                    f"The tensor returned by `right_inverse` has dtype {value.dtype} "
                    f"while `original` has dtype {self.original.dtype}"
                )
            _maybe_set(self, "original", value)
        else:
            if not isinstance(value, collections.abc.Sequence):
                raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(value).__name__}.")
            if len(value) != self.ntensors:
                raise ValueError(
                    "'right_inverse' must return a sequence of tensors of length "
                    f"{self.ntensors}. Got a sequence of length {len(value)}."
                )
            for i, tensor in enumerate(value):
                original_i = getattr(self, f"original{i}")
                if not _is_tensor(tensor):
                    raise ValueError(
                        f"'right_inverse' must return a sequence of tensors "
                        f"or reference-type opaques. Got element {i} of type "
                        f"{type(tensor).__name__}."
                    )
                tensor = _data(tensor)
                if original_i.dtype != tensor.dtype:
                    raise ValueError(
                        f"Tensor {i} returned by `right_inverse` has dtype {tensor.dtype} "
                        f"while `original{i}` has dtype {original_i.dtype}"
                    )
                _maybe_set(self, f"original{i}", tensor)

    def forward(self) -> jax.Array:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            originals = (getattr(self, f"original{i}") for i in range(self.ntensors))
            x = self[0](*originals)
        # Later parametrizations take the previous one's output; skip non-integer keys.
        curr_idx = 1
        while hasattr(self, str(curr_idx)):
            x = self[curr_idx](x)
            curr_idx += 1
        return x

    def _originals(self) -> tuple:
        names = ("original",) if self.is_tensor else tuple(f"original{i}" for i in range(self.ntensors))
        return tuple(self._parameters[n].data if n in self._parameters else self._buffers.get(n) for n in names)


def _torch_size(shape: tuple) -> str:
    return f"torch.Size([{', '.join(str(int(s)) for s in shape)}])"


def _rebuild_parametrized(base: type, names: tuple[str, ...]) -> Module:
    """Unpickling / deepcopy: a fresh generated class with the properties; the state
    follows through ``Module.__setstate__``."""
    obj = base.__new__(base)
    _inject_new_class(obj)
    for name in names:
        setattr(type(obj), name, _make_property(name))
    return obj


def _inject_new_class(module: Module) -> None:
    r"""Set up a module to be parametrized: replace its class by a generated subclass
    into which properties can be injected (one class per module, as in torch)."""
    cls = module.__class__

    def __reduce_ex__(self: Module, protocol: int) -> tuple:
        names = tuple(self.parametrizations.keys()) if is_parametrized(self) else ()
        return (_rebuild_parametrized, (cls, names), self.__getstate__())

    def __setattr__(self: Module, name: str, value: Any) -> None:
        # ``m.weight = X`` runs the property's setter (right_inverse), also for an array
        # read from some parameter, which Module.__setattr__ would take as a tie.
        prop = type(self).__dict__.get(name)
        if isinstance(prop, property) and not isinstance(value, Parameter):
            prop.__set__(self, value)
        else:
            cls.__setattr__(self, name, value)

    dct: dict[str, Any] = {"__reduce_ex__": __reduce_ex__, "__setattr__": __setattr__}
    param_cls = type(f"Parametrized{cls.__name__}", (cls,), dct)
    param_cls.__qualname__ = param_cls.__name__
    module.__class__ = param_cls
    structure.bump()


def _make_property(tensor_name: str) -> property:
    def get_parametrized(self: Module) -> jax.Array:
        parametrization = self.parametrizations[tensor_name]
        if _cache_enabled:
            key = (id(self), tensor_name)
            originals = parametrization._originals()
            hit = _cache.get(key)
            if hit is not None and len(hit[0]) == len(originals) and all(a is b for a, b in zip(hit[0], originals)):
                return hit[1]
            tensor = parametrization()
            # A traced value is not cached: it would outlive its trace (inside compiled
            # code XLA computes a repeated parametrization once anyway).
            if not any(isinstance(o, jax.core.Tracer) for o in originals):
                _cache[key] = (originals, tensor)
            return tensor
        return parametrization()

    def set_original(self: Module, value: Any) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    return property(get_parametrized, set_original)


def _inject_property(module: Module, tensor_name: str) -> None:
    r"""Inject a property into ``module[tensor_name]`` (the class was already replaced
    by :func:`_inject_new_class` and the array moved out)."""
    if hasattr(module, tensor_name):
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")
    setattr(module.__class__, tensor_name, _make_property(tensor_name))
    structure.bump()


def register_parametrization(
    module: Module, tensor_name: str, parametrization: Module, *, unsafe: bool = False
) -> Module:
    r"""Register a parametrization to an array in a module.

    With ``tensor_name="weight"``: reading ``module.weight`` returns
    ``parametrization(module.parametrizations.weight.original)``, computed on every
    read (eagerly, and traced as part of the forward under ``jmod.jit`` / ``jmod.grad``).
    Gradients flow to ``parametrizations.weight.original``, the key ``jmod.grad`` and
    ``state_dict()`` use, as in torch.

    The first time a module registers a parametrization, its class is replaced by a
    generated subclass ``Parametrized<Class>`` and a ``ModuleDict`` is added under
    ``module.parametrizations``. Parametrizations may be chained by registering several
    on the same name. The training mode of a registered parametrization is set to the
    module's. Values can be cached with :func:`cached`.

    A parametrization may implement ``right_inverse(X) -> array | sequence of arrays``:
    it is called on the unparametrized array when the first parametrization is
    registered to compute the original(s) (several arrays are registered as
    ``original0``, ``original1``, ...), and on ``module.weight = X`` assignments.
    Without it the original is the unparametrized array itself. The parameter slot of
    the original array is kept (only its value changes), so an optimizer created before
    registration keeps updating it; with several originals the new parameters must be
    added to the optimizer, as in torch.

    Args:
        module (nn.Module): module on which to register the parametrization
        tensor_name (str): name of the parameter or buffer on which to register the
            parametrization
        parametrization (nn.Module): the parametrization to register

    Keyword args:
        unsafe (bool): whether the parametrization may change the dtype and shape of
            the array. Default: ``False`` (both ``forward`` and ``right_inverse`` are
            then called once to check them).

    Raises:
        ValueError: if the module does not have a parameter or a buffer named
            :attr:`tensor_name`

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> import jmod.nn.utils.parametrize as P
        >>> class Symmetric(nn.Module):
        ...     def forward(self, X):
        ...         return jnp.triu(X) + jnp.triu(X, 1).T
        ...     def right_inverse(self, A):
        ...         return jnp.triu(A)
        >>> m = P.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
        >>> bool(jnp.allclose(m.weight, m.weight.T))
        True
        >>> list(m.state_dict())
        ['bias', 'parametrizations.weight.original']
        >>> A = jnp.arange(9.0).reshape(3, 3)
        >>> m.weight = A + A.T  # right_inverse stores the upper triangle
        >>> bool(jnp.allclose(m.weight, A + A.T))
        True
        >>> type(m).__name__, P.type_before_parametrizations(m).__name__
        ('ParametrizedLinear', 'Linear')
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        # forward and right_inverse must map the space of module.weight to itself
        if not unsafe:
            Y = getattr(module, tensor_name)
            X = parametrization(Y)
            if not isinstance(X, jax.Array):
                raise ValueError(f"A parametrization must return a tensor. Got {type(X).__name__}.")
            if X.dtype != Y.dtype:
                raise ValueError(
                    "Registering a parametrization may not change the dtype of the tensor, unless the `unsafe` flag "
                    "is enabled.\n"
                    f"module.{tensor_name}.dtype: {Y.dtype}\n"
                    f"parametrization(module.{tensor_name}).dtype: {X.dtype}"
                )
            if X.shape != Y.shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, unless the `unsafe` flag "
                    "is enabled.\n"
                    f"module.{tensor_name}.shape: {_torch_size(Y.shape)}\n"
                    f"parametrization(module.{tensor_name}).shape: {_torch_size(X.shape)}"
                )
            if hasattr(parametrization, "right_inverse"):
                try:
                    Z = parametrization.right_inverse(X)
                except NotImplementedError:
                    pass
                else:
                    if not isinstance(Z, jax.Array):
                        raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(Z).__name__}")
                    if Z.dtype != Y.dtype:
                        raise ValueError(
                            "The tensor returned by parametrization.right_inverse must have the same dtype "
                            f"as module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                            f"module.{tensor_name}.dtype: {Y.dtype}\n"
                            f"returned dtype: {Z.dtype}"
                        )
                    if Z.shape != Y.shape:
                        raise ValueError(
                            "The tensor returned by parametrization.right_inverse must have the same shape "
                            f"as module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                            f"module.{tensor_name}.shape: {_torch_size(Y.shape)}\n"
                            f"returned shape: {_torch_size(Z.shape)}"
                        )
        module.parametrizations[tensor_name].append(parametrization)
        # If unsafe was True in a previous parametrization, keep it enabled
        plist = module.parametrizations[tensor_name]
        plist.unsafe = plist.unsafe or unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        # The original: the parameter slot itself (kept, so optimizers keep it) or the buffer.
        if tensor_name in module._parameters:
            original = module._parameters[tensor_name]
        else:
            original = module._buffers[tensor_name]
        # Created early to check for errors before the module is changed.
        parametrizations = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = parametrizations
    else:
        raise ValueError(
            f"Module '{module}' does not have a parameter, a buffer, or a "
            f"parametrized element with name '{tensor_name}'"
        )
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    r"""Determine if a module has a parametrization.

    Args:
        module (nn.Module): module to query
        tensor_name (str, optional): name of the parameter in the module. Default: ``None``

    Returns:
        ``True`` if :attr:`module` has a parametrization for the parameter named
        :attr:`tensor_name`, or if it has any parametrization when :attr:`tensor_name`
        is ``None``; otherwise ``False``
    """
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is None or not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    r"""Remove the parametrizations on an array in a module.

    - If ``leave_parametrized=True``, ``module[tensor_name]`` is set to its current
      output (the parametrization may not have changed the dtype).
    - If ``leave_parametrized=False``, ``module[tensor_name]`` is set to the
      unparametrized ``module.parametrizations[tensor_name].original``. This is only
      possible when the parametrization depends on just one array.

    With one original, its parameter slot is registered back (with the new value), so
    optimizers keep tracking it.

    Args:
        module (nn.Module): module from which remove the parametrization
        tensor_name (str): name of the parametrization to be removed
        leave_parametrized (bool, optional): leave the attribute :attr:`tensor_name`
            parametrized. Default: ``True``

    Returns:
        Module: module

    Raises:
        ValueError: if ``module[tensor_name]`` is not parametrized
        ValueError: if ``leave_parametrized=False`` and the parametrization depends on
            several arrays
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")

    parametrizations = module.parametrizations[tensor_name]
    if parametrizations.is_tensor:
        original: Any = parametrizations._parameters.get("original")
        if original is None:
            original = parametrizations._buffers["original"]
        if leave_parametrized:
            t = getattr(module, tensor_name)
            _maybe_set(parametrizations, "original", t)
            if not isinstance(original, Parameter):
                original = parametrizations._buffers["original"]
    else:
        if leave_parametrized:
            t = jax.lax.stop_gradient(getattr(module, tensor_name))
            requires_grad = any(
                s is not None and s.requires_grad
                for n, s in parametrizations._parameters.items()
                if n.startswith("original")
            )
            original = _fresh_parameter(t, True) if requires_grad else t
        else:
            raise ValueError(
                "Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                "that is parametrized in terms of a sequence of tensors."
            )

    # Delete the property that manages the parametrization, and the ParametrizationList
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)

    # Roll back the class if nothing else is parametrized
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    structure.bump()
    return module


def type_before_parametrizations(module: Module) -> type:
    r"""Return the module type before parametrizations were applied (its type if it
    has none).

    Args:
        module (nn.Module): module to get type of
    """
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def transfer_parametrizations_and_params(
    from_module: Module, to_module: Module, tensor_name: str | None = None
) -> Module:
    r"""Transfer parametrizations and the parameters they parametrize from
    :attr:`from_module` to :attr:`to_module`.

    If :attr:`tensor_name` is given, only that parameter is transferred, otherwise all
    parametrized ones. Parameters missing from ``to_module`` are created. Does nothing
    if ``from_module`` is not parametrized. As in torch, the parametrization modules are
    shared and the original parameters are assigned, which ties them (one parameter
    in both modules).

    Args:
        from_module (nn.Module): module to transfer from
        to_module (nn.Module): module to transfer to
        tensor_name (str, optional): parameter to transfer

    Returns:
        Module: to_module
    """
    if is_parametrized(from_module):
        parameters_to_transfer = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
        for parameter_name in parameters_to_transfer:
            if not hasattr(to_module, parameter_name):
                setattr(to_module, parameter_name, _fresh_parameter(getattr(from_module, parameter_name), True))
            for param_func in from_module.parametrizations[parameter_name]:
                register_parametrization(to_module, parameter_name, param_func)
            # make the values match: torch assigns the originals, which ties them
            src = from_module.parametrizations[parameter_name]
            dst = to_module.parametrizations[parameter_name]
            if hasattr(src, "original"):
                dst.original = src.original
            else:
                num = 0
                while hasattr(src, f"original{num}"):
                    setattr(dst, f"original{num}", getattr(src, f"original{num}"))
                    num += 1
    return to_module
