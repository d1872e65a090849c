"""``Parameter`` and ``Buffer``: how an array is registered with a Module.

In torch a ``Parameter`` is a mutable tensor. JAX arrays are immutable, so jmod
splits the two roles:

* ``nn.Parameter(array, requires_grad=True)`` is the *slot* that holds a parameter's
  current value. Assigning one to a module attribute registers it; reading the
  attribute back returns the plain ``jax.Array`` (``module.weight``), which is what
  JAX functions want. ``module._parameters["weight"]`` is the slot itself.
  Two modules holding the same slot share the parameter (tied weights): one entry in
  ``parameters()``, one gradient (the sum of both uses), one optimizer update.
* ``nn.Buffer(array, persistent=True)`` is only a marker: assigning one registers the
  array as a buffer, as ``register_buffer`` does.

Because reading gives a plain array, jmod remembers which slot an array read from a
module came from (see :func:`owner_of`). That is what lets torch code written as
``self.head.weight = self.embed.weight`` tie the two, and ``nn.init.normal_(m.weight)``
update the parameter it was given.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import jax

from jmod._src import structure
from jmod._src.arrays import to_jax
from jmod._src.state import HANDED_OUT, HANDOUTS

__all__ = [
    "Parameter",
    "Buffer",
    "UninitializedParameter",
    "UninitializedBuffer",
    "is_lazy",
    "owner_of",
    "requires_grad",
    "is_parameter",
]

# id(array) -> weakref(Parameter) for arrays handed out by a module read. An entry is
# trusted only while the slot is alive and still holds that very array, so stale
# entries (the array died and its id was reused) are harmless; each slot keeps at most
# one entry, so the table does not grow with training steps.
# The table lives in jmod._src.state (HANDED_OUT): jmod.jit also reads it, to donate a
# copy of a parameter array the user was handed (they may hold it, or an alias of it).
_OWNERS: dict[int, weakref.ref] = HANDED_OUT


def _forget(cell: list, ref: weakref.ref, owners: dict = _OWNERS) -> None:
    # ``owners`` is bound at definition: at interpreter exit this module's globals are
    # cleared (set to None) before the last parameters die and call this.
    if owners.get(cell[0]) is ref:
        del owners[cell[0]]


class Parameter:
    """A trainable array registered on a Module.

    Args:
        data: the initial value (``jax.Array``, NumPy array, torch tensor or scalar).
        requires_grad: ``False`` freezes the parameter: ``jmod.grad`` leaves it out
            and optimizers never update it.

    Attributes:
        data (jax.Array): the current value. Writing it changes the parameter in every
            module that holds this slot.
        requires_grad (bool): whether gradients are taken with respect to it.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.Module()
        >>> m.scale = nn.Parameter(jnp.ones(2))
        >>> m.scale
        Array([1., 1.], dtype=float32)
        >>> m._parameters["scale"].requires_grad
        True
    """

    # Arrays in parameters take part in jax arithmetic through ``__jax_array__``.
    __array_priority__ = 100
    # The dotted name this slot was last listed under by ``named_parameters()``, and
    # the name ``jmod.grad`` last keyed its gradient by: how an optimizer built from
    # ``model.parameters()`` finds each parameter's gradient.
    _last_name: str | None = None
    _grad_name: str | None = None

    # The slot whose array this one was made from (``Parameter(m.weight)``), until the
    # new slot is registered: torch's Parameter(t) shares t's storage, which jmod cannot
    # do, so Module.register_parameter refuses it anywhere but in the source's own place.
    _alias_of: weakref.ref | None = None

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        source = None
        if isinstance(data, Parameter):
            source = data
            data = data.data
        elif isinstance(data, jax.Array):
            source = owner_of(data)
        if data is None:
            data = jax.numpy.zeros((0,))
        self.data = data if isinstance(data, jax.Array) else to_jax(data)
        self._requires_grad = bool(requires_grad)
        self._init_owner_slot()
        if source is not None:
            self._alias_of = weakref.ref(source)

    def _init_owner_slot(self) -> None:
        cell = [None]
        self._owner_cell = cell
        self._wref = weakref.ref(self, functools.partial(_forget, cell))

    # -- requires_grad is static structure: flipping it changes what is differentiated.
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if value != self._requires_grad:
            self._requires_grad = value
            structure.bump(self)

    def requires_grad_(self, requires_grad: bool = True) -> Parameter:
        self.requires_grad = requires_grad
        return self

    def _note_read(self) -> jax.Array:
        """Return ``data`` and remember that this array belongs to this slot."""
        data = self.data
        key = id(data)
        cell = self._owner_cell
        if cell[0] != key:
            old = cell[0]
            if old is not None and _OWNERS.get(old) is self._wref:
                del _OWNERS[old]
            _OWNERS[key] = self._wref
            cell[0] = key
            HANDOUTS[0] += 1
        return data

    # -- array-like conveniences for code that holds the slot itself
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def numel(self) -> int:
        return self.data.size

    def __jax_array__(self) -> jax.Array:
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        return np.asarray(self.data, dtype=dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        suffix = "" if self._requires_grad else ", requires_grad=False"
        return f"Parameter containing:\n{self.data!r}{suffix}"

    # -- pickling / deepcopy: the weakref bookkeeping is rebuilt, never copied
    def __getstate__(self) -> dict:
        return {"data": self.data, "requires_grad": self._requires_grad}

    def __setstate__(self, state: dict) -> None:
        self.data = state["data"]
        self._requires_grad = state["requires_grad"]
        self._init_owner_slot()

    def __reduce_ex__(self, protocol: int):
        return (_rebuild_parameter, (type(self), self.__getstate__()))

    def __deepcopy__(self, memo: dict) -> Parameter:
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new


def _rebuild_parameter(cls: type, state: dict) -> Parameter:
    p = cls.__new__(cls)
    p.__setstate__(state)
    return p


class Buffer:
    """Marker that registers an array as a buffer when assigned to a Module attribute.

    ``self.running_mean = nn.Buffer(jnp.zeros(3))`` is ``self.register_buffer(
    "running_mean", jnp.zeros(3))``; ``persistent=False`` keeps it out of
    ``state_dict()``. Reading the attribute returns the array.

    Args:
        data: the buffer's value.
        persistent: whether the buffer is saved by ``state_dict()``.
    """

    def __init__(self, data: Any = None, *, persistent: bool = True) -> None:
        if data is None:
            data = jax.numpy.zeros((0,))
        # A new array, as torch's Buffer is a new (detached) tensor: the marker below must
        # not turn the caller's own array into a buffer, and Buffer(t) twice is two buffers.
        self.data = jax.numpy.array(data, copy=True) if isinstance(data, jax.Array) else to_jax(data)
        self.persistent = persistent
        _mark_buffer(self.data, persistent)

    def __repr__(self) -> str:
        return f"Buffer(persistent={self.persistent}):\n{self.data!r}"


# id(array) -> (weakref(array), persistent) for arrays made into buffers by ``Buffer``.
# torch's ``nn.Buffer`` returns a tensor flagged ``_is_buffer``, and assigning that
# tensor to any module attribute registers it as a buffer (``self.b2 = self.b1``).
# jmod keeps the flag here, keyed by identity, trusted only while the array is alive.
_BUFFER_MARKS: dict[int, tuple[weakref.ref, bool]] = {}


def _forget_buffer_mark(key: int, ref: weakref.ref, marks: dict = _BUFFER_MARKS) -> None:
    entry = marks.get(key)  # ``marks`` bound at definition: globals are gone at exit
    if entry is not None and entry[0] is ref:
        del marks[key]


def _mark_buffer(array: Any, persistent: bool) -> None:
    key = id(array)
    try:
        ref = weakref.ref(array, functools.partial(_forget_buffer_mark, key))
    except TypeError:  # an array type without weak references: no marker
        return
    _BUFFER_MARKS[key] = (ref, persistent)


def buffer_mark(array: Any) -> bool | None:
    """``persistent`` if ``array`` was made a buffer with ``nn.Buffer(...)``, else ``None``."""
    entry = _BUFFER_MARKS.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    return entry[1]


def owner_of(array: Any) -> Parameter | None:
    """The Parameter slot whose current value is ``array``, if ``array`` was read from one.

    This is how an array read from a module (``m.weight``, ``named_parameters()``
    values, ``state_dict()`` values) is traced back to its parameter.
    """
    ref = _OWNERS.get(id(array))
    if ref is None:
        return None
    slot = ref()
    if slot is None or slot.data is not array:
        return None
    return slot


def is_parameter(array: Any) -> bool:
    """True if ``array`` is the current value of a registered parameter."""
    return isinstance(array, Parameter) or owner_of(array) is not None


def requires_grad(array: Any) -> bool:
    """torch's ``p.requires_grad`` for an array read from a module.

    ``jmod.nn.parameter.requires_grad(p)`` answers for a parameter array obtained from
    ``model.named_parameters()`` or an attribute read (also accepts the
    ``Parameter`` slot). Arrays that are not parameters (buffers, activations) give
    ``False``, like torch's buffers.

    Examples:
        >>> from jmod import nn
        >>> lin = nn.Linear(2, 2)
        >>> lin.bias = nn.Parameter(lin.bias, requires_grad=False)
        >>> [(n, nn.parameter.requires_grad(p)) for n, p in lin.named_parameters()]
        [('weight', True), ('bias', False)]
    """
    if isinstance(array, Parameter):
        return array.requires_grad
    slot = owner_of(array)
    return slot is not None and slot.requires_grad


# --------------------------------------------------------------------------- lazy state
_SHAPE_ERROR = (
    "Can't access the shape of an uninitialized parameter or buffer. "
    "This error usually happens in `load_state_dict` when trying to load "
    "an uninitialized parameter into an initialized one. "
    "Call `forward` to initialize the parameters before accessing their attributes."
)


def _use_error(cls: type, what: str) -> ValueError:
    return ValueError(
        f"Attempted to use an uninitialized parameter in {what}. "
        "This error happens when you are using a `LazyModule` or "
        f"explicitly manipulating `torch.nn.parameter.{cls.__name__}` "
        "objects. When using LazyModules Call `forward` with a dummy batch "
        "to initialize the parameters before calling torch functions"
    )


class UninitializedTensorMixin:
    """What ``UninitializedParameter`` and ``UninitializedBuffer`` share (torch's mixin).

    The object holds no values: ``data`` is an empty array that only carries the dtype
    and placement the materialized array will get. ``shape`` and any use in a
    computation raise torch's errors; ``materialize(shape)`` turns it into a real
    parameter or buffer.
    """

    data: jax.Array
    cls_to_become: type | None = None
    _jmod_uninitialized = True  # how jmod._src recognizes it (no import of jmod.nn there)

    @property
    def shape(self) -> tuple[int, ...]:
        raise RuntimeError(_SHAPE_ERROR)

    @property
    def ndim(self) -> int:
        raise RuntimeError(_SHAPE_ERROR)

    @property
    def size(self) -> Any:
        raise RuntimeError(_SHAPE_ERROR)

    def numel(self) -> int:
        raise RuntimeError(_SHAPE_ERROR)

    def __len__(self) -> int:
        raise RuntimeError(_SHAPE_ERROR)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def device(self) -> Any:
        return getattr(self.data, "device", None)

    @property
    def sharding(self) -> Any:
        return self.data.sharding

    def share_memory_(self) -> Any:
        raise RuntimeError(
            "Can't share memory on an uninitialized parameter or buffer. "
            "Call `forward` to initialize the parameters before calling "
            "`module.share_memory()`."
        )

    def __jax_array__(self) -> Any:
        raise _use_error(type(self), "a JAX operation")

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise _use_error(type(self), "a NumPy conversion")

    def __getattr__(self, name: str) -> Any:
        # torch allows only a few Tensor methods on an uninitialized tensor; array
        # methods (``.T``, ``.sum()``...) raise its error.
        if name.startswith("_"):
            raise AttributeError(name)
        raise _use_error(type(self), f"'{name}'")

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}>"

    def _empty_like_target(self, shape: Any, device: Any, dtype: Any) -> jax.Array:
        from jmod._src import devices
        from jmod._src.arrays import host_zeros, is_tracer

        old = self.data
        dtype = old.dtype if dtype is None else devices.as_dtype(dtype)
        new = host_zeros(tuple(int(s) for s in shape), dtype)
        if device is not None:
            new = devices.place(new, devices.resolve_device(device))
        elif not is_tracer(old) and getattr(old, "committed", False):
            new = jax.device_put(new, old.sharding)
        return new


def _arith_error(self: Any, *args: Any) -> Any:
    raise _use_error(type(self), "an arithmetic operation")


for _op in (
    "add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "matmul", "rmatmul",
    "pow", "rpow", "neg", "pos", "abs", "getitem", "floordiv", "rfloordiv", "mod", "lt", "le", "gt", "ge",
):  # fmt: skip
    setattr(UninitializedTensorMixin, f"__{_op}__", _arith_error)
del _op


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (torch's ``nn.UninitializedParameter``).

    Lazy modules (``nn.LazyLinear``...) hold these until their first forward infers
    the shapes; reading ``module.weight`` before that returns this object, and using it
    raises torch's errors. ``materialize(shape)`` gives it a value (zeros; the lazy
    module then runs ``reset_parameters``) and turns it into a plain ``Parameter``:
    the same slot, so modules and ties holding it see the new array.

    Args:
        requires_grad: as for ``Parameter``.
        device: where the materialized array goes (default: the default device).
        dtype: the materialized array's dtype (default float32).

    Examples:
        >>> from jmod import nn
        >>> p = nn.UninitializedParameter()
        >>> p
        <UninitializedParameter>
        >>> p.materialize((2, 3))
        >>> type(p).__name__, p.shape
        ('Parameter', (2, 3))
    """

    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device: Any = None, dtype: Any = None) -> None:
        from jmod._src import devices
        from jmod._src.arrays import host_zeros

        data = host_zeros((0,), jax.numpy.float32 if dtype is None else devices.as_dtype(dtype))
        if device is not None:
            data = devices.place(data, devices.resolve_device(device))
        super().__init__(data, requires_grad)

    def _note_read(self) -> Any:
        # torch's module.weight is the UninitializedParameter itself.
        return self

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Give the parameter an array of ``shape`` (zeros) and make it a ``Parameter``.

        Args:
            shape: the shape of the materialized array.
            device: where to put it (default: where the placeholder is).
            dtype: its dtype (default: the placeholder's dtype).
        """
        self.data = self._empty_like_target(shape, device, dtype)
        self.__class__ = self.cls_to_become
        structure.bump(self)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}>"

    def __deepcopy__(self, memo: dict) -> UninitializedParameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.requires_grad, None, self.data.dtype)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol: int):
        return (type(self), (self.requires_grad, None, self.data.dtype))


class UninitializedBuffer(UninitializedTensorMixin):
    """A buffer whose shape is not known yet (torch's ``nn.UninitializedBuffer``).

    Registered as a module's buffer (``self.running_mean = UninitializedBuffer()``), it
    stands in that module's ``_buffers`` until ``materialize(shape)`` replaces it, in
    every module that registered it, with an array of zeros (the lazy module then runs
    ``reset_parameters``). ``state_dict()`` lists it as the object itself, as torch does.

    Args:
        requires_grad: kept for torch's signature (buffers take no gradient).
        device: where the materialized array goes.
        dtype: the materialized array's dtype (default float32).
        persistent: whether the buffer is part of ``state_dict()``.
    """

    cls_to_become = None  # a plain array

    def __init__(
        self, requires_grad: bool = False, device: Any = None, dtype: Any = None, persistent: bool = True
    ) -> None:
        from jmod._src import devices
        from jmod._src.arrays import host_zeros

        data = host_zeros((0,), jax.numpy.float32 if dtype is None else devices.as_dtype(dtype))
        if device is not None:
            data = devices.place(data, devices.resolve_device(device))
        self.__dict__["data"] = data
        self.__dict__["requires_grad"] = requires_grad
        self.__dict__["persistent"] = persistent
        self.__dict__["_is_buffer"] = True
        # (weakref(module), name) for each module holding this in its _buffers.
        self.__dict__["_owners"] = []

    def _link(self, module: Any, name: str) -> None:
        self._owners[:] = [(r, n) for r, n in self._owners if r() is not None and not (r() is module and n == name)]
        self._owners.append((weakref.ref(module), name))

    def materialize(self, shape: Any, device: Any = None, dtype: Any = None) -> None:
        """Replace this placeholder, in the modules holding it, with zeros of ``shape``.

        Args:
            shape: the shape of the materialized array.
            device: where to put it (default: where the placeholder is).
            dtype: its dtype (default: the placeholder's dtype).
        """
        new = self._empty_like_target(shape, device, dtype)
        for ref, name in self._owners:
            module = ref()
            if module is not None and module.__dict__.get("_buffers", {}).get(name) is self:
                module._buffers[name] = new
        structure.bump()

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __deepcopy__(self, memo: dict) -> UninitializedBuffer:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.requires_grad, None, self.data.dtype, self.persistent)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol: int):
        return (type(self), (self.requires_grad, None, self.data.dtype, self.persistent))


def is_lazy(param: Any) -> bool:
    """Whether ``param`` is an ``UninitializedParameter`` or ``UninitializedBuffer``."""
    return isinstance(param, UninitializedTensorMixin)
