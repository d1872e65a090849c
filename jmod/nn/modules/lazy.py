"""``LazyModuleMixin``: modules that infer their parameter shapes from the first input
(``torch/nn/modules/lazy.py``).

A lazy module (``nn.LazyLinear(10)``...) holds :class:`~jmod.nn.UninitializedParameter`
and :class:`~jmod.nn.UninitializedBuffer` placeholders until its first call. A forward
pre-hook then runs ``initialize_parameters(*args)``, which materializes them with the
shapes the input implies and draws their initial values exactly as the eager layer's
``reset_parameters`` does, removes itself and turns the module into ``cls_to_become``
(``LazyLinear`` becomes ``Linear``).

The first call may happen inside ``jmod.jit`` / ``model.compile()``: the new arrays are
part of what the compiled call returns, so after it they are concrete arrays on the
module, and the next call compiles once for the new structure. Under
``jmod.grad``/``jmod.value_and_grad`` a first call runs the function once to
materialize (a dry run) before differentiating, so the gradients cover the new
parameters. Build optimizers after that first call, as torch's documentation says.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from jmod.nn import init as _init
from jmod.nn.parameter import is_lazy

__all__ = ["LazyModuleMixin"]

# The dry run of jmod.value_and_grad records lazy initializations (jmod/_src/lazy_init.py).
from jmod._src.lazy_init import apply_recorded as apply_recorded, recorders as _recorders, recording as recording  # noqa: E402,I001


class LazyModuleMixin:
    r"""A mixin for modules that lazily initialize parameters, also known as "lazy modules".

    Modules that lazily initialize parameters derive the shapes of their parameters
    from the first input(s) to their forward method. Until that first forward they
    contain :class:`~jmod.nn.UninitializedParameter` s that should not be accessed or
    used, and afterward they contain regular parameters.

    After construction, networks with lazy modules should first be converted to the
    desired dtype and placed on the expected device, then perform a "dry run": one
    call with inputs of the right shape and dtype, which initializes every lazy
    module. After this the network can be used as usual; build the optimizer after
    the dry run (it needs the parameters' shapes).

    Lazy modules are always initialized after the other modules, so the order of the
    random draws differs from a network built without them.

    Lazy modules can be serialized with a state dict like other modules: the state
    dict of an uninitialized module holds the ``UninitializedParameter`` s, and
    loading a state dict with real arrays into an uninitialized lazy module
    materializes its parameters with the loaded shapes (the loaded values are not
    replaced by the first forward).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> mlp = nn.Sequential(nn.LazyLinear(10), nn.ReLU(), nn.LazyLinear(1))
        >>> mlp
        Sequential(
          (0): LazyLinear(in_features=0, out_features=10, bias=True)
          (1): ReLU()
          (2): LazyLinear(in_features=0, out_features=1, bias=True)
        )
        >>> mlp(jnp.ones((4, 3))).shape  # the dry run
        (4, 1)
        >>> mlp
        Sequential(
          (0): Linear(in_features=3, out_features=10, bias=True)
          (1): ReLU()
          (2): Linear(in_features=10, out_features=1, bias=True)
        )
    """

    # modules inheriting from this will change their __class__ to the specified
    # one after they are fully initialized
    cls_to_become: type[Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._load_hook = self._register_load_state_dict_pre_hook(self._lazy_load_hook)  # type: ignore[attr-defined]
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters, with_kwargs=True)  # type: ignore[attr-defined]

    def _lazy_load_hook(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """load_state_dict pre-hook: materialize uninitialized parameters and buffers
        that the state dict has real values for, with the loaded shapes."""
        from jmod.nn.modules._state_dict import _is_uninitialized

        for name, param in itertools.chain(self._parameters.items(), self._buffers.items()):  # type: ignore[attr-defined]
            key = prefix + name
            if key in state_dict and param is not None:
                input_param = state_dict[key]
                if is_lazy(param) and not _is_uninitialized(input_param):
                    shape = getattr(input_param, "shape", None)
                    param.materialize(tuple(np.shape(input_param) if shape is None else shape))

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        r"""Initialize parameters according to the input batch properties.

        This adds an interface to isolate parameter initialization from the forward
        pass when doing parameter shape inference.
        """
        raise NotImplementedError(f"initialize_parameters is not implemented for {self.__class__.__name__}")

    def has_uninitialized_params(self) -> bool:
        r"""Check if a module has parameters that are not initialized."""
        params = self._parameters.values()  # type: ignore[attr-defined]
        buffers = self._buffers.values()  # type: ignore[attr-defined]
        for param in itertools.chain(params, buffers):
            if is_lazy(param):
                return True
        return False

    def _infer_parameters(self, module: Any, args: tuple, kwargs: dict | None = None) -> None:
        r"""Infer the shapes and initialize the parameters from the first input batch
        (the forward pre-hook), then become ``cls_to_become``."""
        kwargs = kwargs if kwargs else {}
        # Initial draws are made on the host even when the first call is being traced
        # (jmod.jit), so they are the values an eager first call gets (jmod/nn/init.py).
        _init._HOST_DRAWS_IN_TRACE[0] += 1
        try:
            module.initialize_parameters(*args, **kwargs)
        finally:
            _init._HOST_DRAWS_IN_TRACE[0] -= 1
        if _recorders():
            from jmod._src.random import current_generator

            _recorders()[-1].append(
                (
                    module,
                    {n: p.data for n, p in module._parameters.items() if p is not None and not is_lazy(p)},
                    {n: b for n, b in module._buffers.items() if b is not None and not is_lazy(b)},
                    current_generator()._key,
                )
            )
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")  # type: ignore[attr-defined]
        module._initialize_hook.remove()
        module._load_hook.remove()
        delattr(module, "_initialize_hook")
        delattr(module, "_load_hook")
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _replicate_for_data_parallel(self) -> Any:
        raise RuntimeError(
            "Modules with uninitialized parameters can't be used with `DataParallel`. "
            "Run a dummy forward pass to correctly initialize the modules"
        )
