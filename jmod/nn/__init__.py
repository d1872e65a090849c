"""``jmod.nn``: the names ``torch.nn`` has, on JAX."""

from jmod.nn import functional as functional, init as init, parameter as parameter
from jmod.nn.modules import *  # noqa: F403  (the layer classes; see jmod/nn/modules/__init__.py)
from jmod.nn.modules import __all__ as _modules_all
from jmod.nn.parameter import (
    Buffer as Buffer,
    Parameter as Parameter,
    UninitializedBuffer as UninitializedBuffer,
    UninitializedParameter as UninitializedParameter,
)

__all__ = [
    "functional",
    "init",
    "parameter",
    "Parameter",
    "Buffer",
    "UninitializedParameter",
    "UninitializedBuffer",
    *_modules_all,
]
