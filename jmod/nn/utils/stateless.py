r"""``jmod.nn.utils.stateless``: torch's deprecated location of ``functional_call``."""

from __future__ import annotations

import warnings
from typing import Any

from jmod import func as _func

__all__ = ["functional_call"]


def functional_call(
    module: Any,
    parameters_and_buffers: Any,
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    r"""Deprecated alias of :func:`jmod.func.functional_call` (torch's
    ``torch.nn.utils.stateless.functional_call``, with its signature); emits torch's
    ``FutureWarning``.

    Args:
        module: the module to call.
        parameters_and_buffers: a dict ``{dotted_name: array}`` (or a tuple of dicts).
        args: positional arguments (a non-tuple is one argument).
        kwargs: keyword arguments.
        tie_weights: tied parameters take the value given for any of their names.
        strict: require the names to match the module's parameters and buffers.

    Returns:
        The module's output.
    """
    warnings.warn(
        "`torch.nn.utils.stateless.functional_call` is deprecated as of PyTorch 2.0 "
        "and will be removed in a future version of PyTorch. "
        "Please use `torch.func.functional_call` instead which is a drop-in replacement.",
        FutureWarning,
        stacklevel=2,
    )
    return _func.functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)
