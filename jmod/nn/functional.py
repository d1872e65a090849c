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
from jmod._src.functional.fold import channel_shuffle as channel_shuffle
from jmod._src.functional.fold import fold as fold
from jmod._src.functional.fold import unfold as unfold
from jmod._src.functional.padding import pad as pad
from jmod._src.functional.pooling import adaptive_avg_pool1d as adaptive_avg_pool1d
from jmod._src.functional.pooling import adaptive_avg_pool2d as adaptive_avg_pool2d
from jmod._src.functional.pooling import adaptive_avg_pool3d as adaptive_avg_pool3d
from jmod._src.functional.pooling import adaptive_max_pool1d as adaptive_max_pool1d
from jmod._src.functional.pooling import adaptive_max_pool1d_with_indices as adaptive_max_pool1d_with_indices
from jmod._src.functional.pooling import adaptive_max_pool2d as adaptive_max_pool2d
from jmod._src.functional.pooling import adaptive_max_pool2d_with_indices as adaptive_max_pool2d_with_indices
from jmod._src.functional.pooling import adaptive_max_pool3d as adaptive_max_pool3d
from jmod._src.functional.pooling import adaptive_max_pool3d_with_indices as adaptive_max_pool3d_with_indices
from jmod._src.functional.pooling import avg_pool1d as avg_pool1d
from jmod._src.functional.pooling import avg_pool2d as avg_pool2d
from jmod._src.functional.pooling import avg_pool3d as avg_pool3d
from jmod._src.functional.pooling import lp_pool1d as lp_pool1d
from jmod._src.functional.pooling import lp_pool2d as lp_pool2d
from jmod._src.functional.pooling import lp_pool3d as lp_pool3d
from jmod._src.functional.pooling import max_pool1d as max_pool1d
from jmod._src.functional.pooling import max_pool1d_with_indices as max_pool1d_with_indices
from jmod._src.functional.pooling import max_pool2d as max_pool2d
from jmod._src.functional.pooling import max_pool2d_with_indices as max_pool2d_with_indices
from jmod._src.functional.pooling import max_pool3d as max_pool3d
from jmod._src.functional.pooling import max_pool3d_with_indices as max_pool3d_with_indices
from jmod._src.functional.pooling import max_unpool1d as max_unpool1d
from jmod._src.functional.pooling import max_unpool2d as max_unpool2d
from jmod._src.functional.pooling import max_unpool3d as max_unpool3d
from jmod._src.functional.upsampling import interpolate as interpolate
from jmod._src.functional.upsampling import upsample as upsample
from jmod._src.functional.upsampling import upsample_bilinear as upsample_bilinear
from jmod._src.functional.upsampling import upsample_nearest as upsample_nearest

# -- end layers-b
