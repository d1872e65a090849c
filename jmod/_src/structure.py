"""The structure counter: one integer that says "nothing static changed".

Compiled code (``jmod.jit``, ``Module.compile``) is specialised on everything about a
model that is not an array value: the module tree, parameter and buffer names,
shapes and dtypes, ``requires_grad`` flags, hooks, ``training`` and every other
non-array attribute. Re-deriving that description on every call would cost as much
as Equinox's per-call flattening, so instead every operation that can change it
bumps this counter (``Module.__setattr__`` for non-array values, hook registration
and removal, ``train``/``eval``, ``requires_grad_``, dtype/device casts, ...). A
repeat call compares one integer; only when it moved is the model walked again.

Writing a new *value* into an existing array slot does not bump: that is the
per-step write-back of a training loop and must stay free.
"""

from __future__ import annotations

#: Incremented by every structural change to any module, parameter, hook or optimizer.
VERSION = 0


def bump() -> None:
    """Record that some static structure changed somewhere."""
    global VERSION
    VERSION += 1


def version() -> int:
    """The current structure version (for tests and the jit cache)."""
    return VERSION
