"""``jmod.nn.functional``: torch.nn.functional's functions on ``jax.Array``.

Pure functions (no state); the layers in ``jmod.nn`` call them. Random ones
(``dropout``...) draw from jmod's generator. Implementations live in
``jmod/_src/functional/``, one file per family.
"""

from jmod._src.functional.linear import bilinear as bilinear, linear as linear

# --- attention family (layers-d) ---
# isort: split
from jmod._src.functional.attention import multi_head_attention_forward as multi_head_attention_forward
from jmod._src.functional.attention import scaled_dot_product_attention as scaled_dot_product_attention

# torch.nn.functional's private helpers that ported transformer code calls (F._canonical_mask...).
# isort: split
from jmod._src.functional.attention import _canonical_mask as _canonical_mask
from jmod._src.functional.attention import _in_projection as _in_projection
from jmod._src.functional.attention import _in_projection_packed as _in_projection_packed
from jmod._src.functional.attention import _mha_shape_check as _mha_shape_check
from jmod._src.functional.attention import _none_or_dtype as _none_or_dtype

# --- end attention family ---
