"""Hide jmod's own frames from the tracebacks of errors raised in user code.

A shape error in a layer called inside a compiled training step would otherwise show
the jit machinery (binding, tracing, scope, write-back) between the user's step
function and the layer. As JAX and Equinox do for theirs, those frames are removed
when the exception leaves ``jmod.jit``: what remains is the user's code, the module's
``forward`` and the functional that raised. ``JMOD_TRACEBACK_FILTERING=off`` keeps
every frame (for debugging jmod itself).
"""

from __future__ import annotations

import os
import types

_SRC = os.path.dirname(os.path.abspath(__file__))
_HIDDEN_FILES = frozenset(
    os.path.join(_SRC, name) for name in ("jit.py", "binding.py", "scope.py", "autodiff.py", "state.py")
)
# Module.__call__'s plumbing (torch shows it; it says nothing about the error).
_MODULE_PY = os.path.join(os.path.dirname(_SRC), "nn", "modules", "module.py")
_HIDDEN_MODULE_FUNCS = frozenset({"_wrapped_call_impl", "_call_impl", "_run_forward_pre_hooks", "_run_forward_hooks"})

ENABLED = os.environ.get("JMOD_TRACEBACK_FILTERING", "on").lower() not in ("off", "0", "false", "no")


def _hidden(tb: types.TracebackType) -> bool:
    code = tb.tb_frame.f_code
    name = code.co_filename
    return name in _HIDDEN_FILES or (name == _MODULE_PY and code.co_name in _HIDDEN_MODULE_FUNCS)


def filter_traceback(exc: BaseException) -> BaseException:
    """Drop jmod's internal frames from ``exc.__traceback__`` (in place; returns ``exc``)."""
    if not ENABLED:
        return exc
    kept = []
    tb = exc.__traceback__
    while tb is not None:
        if not _hidden(tb):
            kept.append(tb)
        tb = tb.tb_next
    new = None
    for t in reversed(kept):
        new = types.TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
    exc.__traceback__ = new
    return exc
