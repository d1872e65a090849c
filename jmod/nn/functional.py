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
