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

__all__ = ["Parameter", "Buffer", "owner_of", "requires_grad", "is_parameter"]

# id(array) -> weakref(Parameter) for arrays handed out by a module read. An entry is
# trusted only while the slot is alive and still holds that very array, so stale
# entries (the array died and its id was reused) are harmless; each slot keeps at most
# one entry, so the table does not grow with training steps.
_OWNERS: dict[int, weakref.ref] = {}


def _forget(cell: list, ref: weakref.ref) -> None:
    if _OWNERS.get(cell[0]) is ref:
        del _OWNERS[cell[0]]


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
            structure.bump()

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


def _forget_buffer_mark(key: int, ref: weakref.ref) -> None:
    entry = _BUFFER_MARKS.get(key)
    if entry is not None and entry[0] is ref:
        del _BUFFER_MARKS[key]


def _mark_buffer(array: Any, persistent: bool) -> None:
    key = id(array)
    try:
        ref = weakref.ref(array, lambda r, key=key: _forget_buffer_mark(key, r))
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
