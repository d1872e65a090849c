"""Recording lazy-module initialization during a dry run (``jmod.value_and_grad``).

Differentiating a model whose lazy layers have no shapes yet needs one call to give
them their parameters; the call's other effects are undone. While :func:`recording`
is active *in this thread*, each lazy module that materializes appends
``(module, {name: array}, {name: array}, key)``: its new parameters and buffers and
the random key right after; :func:`apply_recorded` puts them back after the dry run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["recording", "apply_recorded", "recorders"]


class _Recorders(threading.local):
    def __init__(self) -> None:
        self.logs: list[list] = []


_LOCAL = _Recorders()


def recorders() -> list[list]:
    """The open recordings of this thread (innermost last)."""
    return _LOCAL.logs


@contextlib.contextmanager
def recording() -> Iterator[list]:
    """Collect ``(module, {name: array}, {name: array}, key)`` for every lazy module
    initialized inside the block: its new parameters and buffers as
    ``initialize_parameters`` left them, and the global generator's key after it."""
    log: list = []
    _LOCAL.logs.append(log)
    try:
        yield log
    finally:
        _LOCAL.logs.remove(log)


def apply_recorded(log: list) -> None:
    """Put back what ``recording`` saw (after a dry run's state was restored)."""
    from jmod._src.random import current_generator

    for module, params, buffers, _ in log:
        for name, value in params.items():
            module._parameters[name].data = value
        for name, value in buffers.items():
            module._buffers[name] = value
    if log:
        current_generator()._key = log[-1][3]
