r"""``skip_init``: build a module without initializing its parameters (torch's
``torch.nn.utils.skip_init``)."""

from __future__ import annotations

import inspect
from typing import Any

from jmod._src import random as _random
from jmod.nn import init as _init

__all__ = ["skip_init"]


def skip_init(module_cls: Any, *args: Any, **kwargs: Any) -> Any:
    r"""Given a module class object and args / kwargs, instantiate the module without
    initializing parameters / buffers.

    Useful when initialization is slow or a custom initialization follows. torch builds
    the module on the ``meta`` device and calls ``to_empty``; JAX has no meta device, so
    jmod builds it with uniform/normal initializers allocating instead of drawing
    (the global generator is left exactly as it was, as torch's is), then calls
    ``to_empty(device=...)``: every parameter and buffer is **zeros** (jmod's
    "uninitialized" memory), where torch's hold arbitrary values.

    The module must accept a ``device`` argument in its constructor, which is passed on
    to ``to_empty`` (default: jmod's default device; torch's is ``"cpu"``).

    Args:
        module_cls: Class object; should be a subclass of ``jmod.nn.Module``
        args: args to pass to the module's constructor
        kwargs: kwargs to pass to the module's constructor

    Returns:
        Instantiated module with uninitialized parameters / buffers

    Examples:
        >>> from jmod import nn
        >>> from jmod.nn.utils import skip_init
        >>> m = skip_init(nn.Linear, 5, 1)
        >>> m.weight.shape, float(abs(m.weight).sum())
        ((1, 5), 0.0)
    """
    from jmod.nn.modules.module import Module

    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")

    final_device = kwargs.pop("device", None)
    generator = _random.current_generator()
    key = generator._key
    _init._SKIP_DRAWS[0] += 1
    try:
        module = module_cls(*args, **kwargs)
    finally:
        _init._SKIP_DRAWS[0] -= 1
        generator._key = key
    return module.to_empty(device=final_device)
