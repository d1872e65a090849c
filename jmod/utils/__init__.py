"""``jmod.utils``: torch.utils' helpers that apply to jmod (``jmod.utils.checkpoint``)."""

from jmod.utils import checkpoint as checkpoint

__all__ = ["checkpoint"]
