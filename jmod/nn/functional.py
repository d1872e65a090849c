"""``jmod.nn.functional``: torch.nn.functional's functions on ``jax.Array``.

Pure functions (no state); the layers in ``jmod.nn`` call them. Random ones
(``dropout``...) draw from jmod's generator. Implementations live in
``jmod/_src/functional/``, one file per family.
"""

from jmod._src.functional.linear import bilinear as bilinear, linear as linear

# isort: split
# -- layers-b: convolution, padding, pooling, upsampling, fold/unfold, channel shuffle
from jmod._src.functional.conv import conv1d as conv1d
from jmod._src.functional.conv import conv2d as conv2d
from jmod._src.functional.conv import conv3d as conv3d
from jmod._src.functional.conv import conv_transpose1d as conv_transpose1d
from jmod._src.functional.conv import conv_transpose2d as conv_transpose2d
from jmod._src.functional.conv import conv_transpose3d as conv_transpose3d
from jmod._src.functional.padding import pad as pad

# -- end layers-b
