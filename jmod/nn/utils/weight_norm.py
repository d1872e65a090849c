r"""Weight Normalization from https://arxiv.org/abs/1602.07868 (torch's legacy,
hook-based ``torch.nn.utils.weight_norm``).

The parameter ``weight`` is replaced by ``weight_g`` (magnitude) and ``weight_v``
(direction); a forward pre-hook recomputes ``module.weight`` as a plain attribute
before every call. Under ``jmod.jit`` the hook runs inside the trace and the
attribute is carried like other array state (written back after the call); under
``jmod.grad`` gradients reach ``weight_g`` and ``weight_v``.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

import jax

from jmod._src import structure
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter, is_lazy
from jmod.nn.utils.parametrizations import _norm_except_dim, _weight_norm

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


def _set_plain(module: Module, name: str, value: jax.Array) -> None:
    """``setattr(module, name, value)`` as a plain (non-parameter) attribute, also when
    ``value`` was read from a parameter (which Module.__setattr__ would take as a tie)."""
    old = module.__dict__.get(name)
    module.__dict__[name] = value
    if old is None or getattr(old, "shape", None) != value.shape or getattr(old, "dtype", None) != value.dtype:
        structure.bump()


class WeightNorm:
    name: str
    dim: int

    def __init__(self, name: str, dim: int | None) -> None:
        if dim is None:
            dim = -1
        self.name = name
        self.dim = dim

    def compute_weight(self, module: Module) -> Any:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _weight_norm(v, g, self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        warnings.warn(
            "`torch.nn.utils.weight_norm` is deprecated in favor of `torch.nn.utils.parametrizations.weight_norm`.",
            FutureWarning,
            stacklevel=3,
        )
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        if dim is None:
            dim = -1
        fn = WeightNorm(name, dim)
        slot = module._parameters.get(name)
        if slot is not None and is_lazy(slot):
            raise ValueError(
                "The module passed to `WeightNorm` can't have uninitialized parameters. "
                "Make sure to run the dummy forward before applying weight normalization"
            )
        weight = getattr(module, name)
        # remove w from parameter list
        del module._parameters[name]
        structure.bump()
        # add g and v as new parameters and express w as g/||v|| * v
        module.register_parameter(name + "_g", Parameter(jax.lax.stop_gradient(_norm_except_dim(weight, 2, dim))))
        v = Parameter(weight)
        v._alias_of = None  # the old parameter is gone: torch's shared storage is no tie here
        module.register_parameter(name + "_v", v)
        _set_plain(module, name, fn.compute_weight(module))
        # recompute weight before every forward()
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = jax.lax.stop_gradient(self.compute_weight(module))
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        structure.bump()
        setattr(module, self.name, Parameter(weight))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


T_module = TypeVar("T_module", bound=Module)


def weight_norm(module: T_module, name: str = "weight", dim: int | None = 0) -> T_module:
    r"""Apply weight normalization to a parameter in the given module (deprecated).

    .. math::
         \mathbf{w} = g \dfrac{\mathbf{v}}{\|\mathbf{v}\|}

    Replaces the parameter :attr:`name` (e.g. ``'weight'``) with a magnitude
    (``'weight_g'``) and a direction (``'weight_v'``); a forward pre-hook recomputes
    the weight before every ``forward``. With ``dim=0`` the norm is per output channel;
    ``dim=None`` takes the norm of the whole array.

    Warning:
        Deprecated (a ``FutureWarning``, as in torch): use
        :func:`jmod.nn.utils.parametrizations.weight_norm`, which loads state dicts of
        this one.

    Args:
        module (Module): containing module
        name (str, optional): name of weight parameter
        dim (int, optional): dimension over which to compute the norm

    Returns:
        The original module with the weight norm hook

    Examples:
        >>> import warnings
        >>> from jmod import nn
        >>> from jmod.nn.utils import weight_norm
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", FutureWarning)
        ...     m = weight_norm(nn.Linear(20, 40), name="weight")
        >>> m
        Linear(in_features=20, out_features=40, bias=True)
        >>> m.weight_g.shape, m.weight_v.shape
        ((40, 1), (40, 20))
    """
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: T_module, name: str = "weight") -> T_module:
    r"""Remove the weight normalization reparameterization from a module.

    Args:
        module (Module): containing module
        name (str, optional): name of weight parameter

    Examples:
        >>> import warnings
        >>> from jmod import nn
        >>> from jmod.nn.utils import remove_weight_norm, weight_norm
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", FutureWarning)
        ...     m = weight_norm(nn.Linear(20, 40))
        >>> list(remove_weight_norm(m).state_dict())
        ['bias', 'weight']
    """
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            structure.bump()
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
