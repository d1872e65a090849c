"""``jmod.nn.functional``: torch.nn.functional's functions on ``jax.Array``.

Pure functions (no state); the layers in ``jmod.nn`` call them. Random ones
(``dropout``...) draw from jmod's generator. Implementations live in
``jmod/_src/functional/``, one file per family.
"""

from jmod._src.functional.linear import bilinear as bilinear, linear as linear

# isort: split
# layers-c: normalization (batch, instance, layer, group, RMS, local response norm).
from jmod._src.functional.normalization import batch_norm as batch_norm
from jmod._src.functional.normalization import batch_norm_with_stats as batch_norm_with_stats
from jmod._src.functional.normalization import group_norm as group_norm
from jmod._src.functional.normalization import instance_norm as instance_norm
from jmod._src.functional.normalization import instance_norm_with_stats as instance_norm_with_stats
from jmod._src.functional.normalization import layer_norm as layer_norm
from jmod._src.functional.normalization import local_response_norm as local_response_norm
from jmod._src.functional.normalization import rms_norm as rms_norm
# end layers-c
