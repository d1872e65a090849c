"""``jmod.amp``: automatic mixed precision (``torch.amp``).

``autocast`` runs regions with torch's per-op, per-device casting rules;
``GradScaler`` scales a float16 loss and skips optimizer steps whose gradients
overflowed. See docs/mixed-precision.md.
"""

from jmod._src.amp import (
    autocast as autocast,
    get_autocast_dtype as get_autocast_dtype,
    is_autocast_available as is_autocast_available,
    is_autocast_enabled as is_autocast_enabled,
)
from jmod.amp.grad_scaler import GradScaler as GradScaler, OptState as OptState

__all__ = ["autocast", "GradScaler", "OptState", "is_autocast_available", "is_autocast_enabled", "get_autocast_dtype"]
