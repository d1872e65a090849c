"""jmod's own errors and warnings (each says what went wrong and the fix).

Errors that torch also raises keep torch's types and wording instead.
"""

from jmod._src.errors import (
    HookTracerError as HookTracerError,
    JmodError as JmodError,
    RetraceWarning as RetraceWarning,
    SharedStorageError as SharedStorageError,
    TracerEscapeError as TracerEscapeError,
    UnthreadedRandomStateError as UnthreadedRandomStateError,
)
from jmod.serialization import CheckpointError as CheckpointError

__all__ = [
    "JmodError",
    "UnthreadedRandomStateError",
    "TracerEscapeError",
    "HookTracerError",
    "RetraceWarning",
    "SharedStorageError",
    "CheckpointError",
]
