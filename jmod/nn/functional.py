"""``jmod.nn.functional``: torch.nn.functional's functions on ``jax.Array``.

Pure functions (no state); the layers in ``jmod.nn`` call them. Random ones
(``dropout``...) draw from jmod's generator. Implementations live in
``jmod/_src/functional/``, one file per family.
"""

from jmod._src.functional.linear import bilinear as bilinear, linear as linear

# isort: split
# layers-c: normalization (batch, instance, layer, group, RMS, local response norm).
from jmod._src.functional.normalization import (
    batch_norm as batch_norm,
    batch_norm_with_stats as batch_norm_with_stats,
    group_norm as group_norm,
    instance_norm as instance_norm,
    instance_norm_with_stats as instance_norm_with_stats,
    layer_norm as layer_norm,
    local_response_norm as local_response_norm,
    rms_norm as rms_norm,
)

# end layers-c

# --- attention family (layers-d) ---
# isort: split
from jmod._src.functional.attention import (
    multi_head_attention_forward as multi_head_attention_forward,
    scaled_dot_product_attention as scaled_dot_product_attention,
)

# torch.nn.functional's private helpers that ported transformer code calls (F._canonical_mask...).
# isort: split
from jmod._src.functional.attention import (
    _canonical_mask as _canonical_mask,
    _in_projection as _in_projection,
    _in_projection_packed as _in_projection_packed,
    _mha_shape_check as _mha_shape_check,
    _none_or_dtype as _none_or_dtype,
)

# --- end attention family ---
