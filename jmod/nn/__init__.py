"""``jmod.nn``: the names ``torch.nn`` has, on JAX."""

from typing import Any

from jmod.nn import functional as functional, grad as grad, init as init, parallel as parallel, parameter as parameter
from jmod.nn.modules import *  # noqa: F403  (the layer classes; see jmod/nn/modules/__init__.py)
from jmod.nn.modules import __all__ as _modules_all
from jmod.nn.parallel import DataParallel as DataParallel
from jmod.nn.parameter import (
    Buffer as Buffer,
    Parameter as Parameter,
    UninitializedBuffer as UninitializedBuffer,
    UninitializedParameter as UninitializedParameter,
)


def factory_kwargs(kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """torch's canonical ``device``/``dtype``/``memory_format`` keyword arguments for array
    factories, with its checks: unexpected keys, or a key given both directly and in
    ``factory_kwargs``, raise ``TypeError``."""
    if kwargs is None:
        return {}
    simple_keys = {"device", "dtype", "memory_format"}
    expected_keys = simple_keys | {"factory_kwargs"}
    if not kwargs.keys() <= expected_keys:
        raise TypeError(f"unexpected kwargs {kwargs.keys() - expected_keys}")
    out = dict(kwargs.get("factory_kwargs", {}))
    for k in simple_keys:
        if k in kwargs:
            if k in out:
                raise TypeError(f"{k} specified twice, in **kwargs and in factory_kwargs")
            out[k] = kwargs[k]
    return out


__all__ = [
    "factory_kwargs",
    "functional",
    "grad",
    "parallel",
    "DataParallel",
    "init",
    "parameter",
    "Parameter",
    "Buffer",
    "UninitializedParameter",
    "UninitializedBuffer",
    *_modules_all,
]
