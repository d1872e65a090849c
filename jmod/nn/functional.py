"""``jmod.nn.functional``: torch.nn.functional's functions on ``jax.Array``.

Pure functions (no state); the layers in ``jmod.nn`` call them. Random ones
(``dropout``...) draw from jmod's generator. Implementations live in
``jmod/_src/functional/``, one file per family.
"""

from jmod._src.functional.linear import bilinear as bilinear, grouped_mm as grouped_mm, linear as linear

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
# -- end layers-b
# --- layers-a: activations, losses, dropout, embeddings (sparse), pixel shuffle ---
from jmod._src.functional.activation import (
    celu as celu,
    elu as elu,
    gelu as gelu,
    glu as glu,
    gumbel_softmax as gumbel_softmax,
    hardshrink as hardshrink,
    hardsigmoid as hardsigmoid,
    hardswish as hardswish,
    hardtanh as hardtanh,
    leaky_relu as leaky_relu,
    log_softmax as log_softmax,
    logsigmoid as logsigmoid,
    mish as mish,
    normalize as normalize,
    prelu as prelu,
    relu as relu,
    relu6 as relu6,
    rrelu as rrelu,
    selu as selu,
    sigmoid as sigmoid,
    silu as silu,
    softmax as softmax,
    softmin as softmin,
    softplus as softplus,
    softshrink as softshrink,
    softsign as softsign,
    tanh as tanh,
    tanhshrink as tanhshrink,
    threshold as threshold,
)
from jmod._src.functional.attention import (
    _canonical_mask as _canonical_mask,
    _in_projection as _in_projection,
    _in_projection_packed as _in_projection_packed,
    _mha_shape_check as _mha_shape_check,
    _none_or_dtype as _none_or_dtype,
)

# --- end attention family ---
# -- layers-b: convolution, padding, pooling, upsampling, fold/unfold, channel shuffle
from jmod._src.functional.conv import (
    conv1d as conv1d,
    conv2d as conv2d,
    conv3d as conv3d,
    conv_tbc as conv_tbc,
    conv_transpose1d as conv_transpose1d,
    conv_transpose2d as conv_transpose2d,
    conv_transpose3d as conv_transpose3d,
)
from jmod._src.functional.ctc import ctc_loss as ctc_loss
from jmod._src.functional.distance import (
    cosine_similarity as cosine_similarity,
    pairwise_distance as pairwise_distance,
    pdist as pdist,
)
from jmod._src.functional.dropout import (
    alpha_dropout as alpha_dropout,
    dropout as dropout,
    dropout1d as dropout1d,
    dropout2d as dropout2d,
    dropout3d as dropout3d,
    feature_alpha_dropout as feature_alpha_dropout,
)
from jmod._src.functional.fold import (
    channel_shuffle as channel_shuffle,
    fold as fold,
    native_channel_shuffle as native_channel_shuffle,
    unfold as unfold,
)
from jmod._src.functional.fractional_pooling import (
    fractional_max_pool2d as fractional_max_pool2d,
    fractional_max_pool2d_with_indices as fractional_max_pool2d_with_indices,
    fractional_max_pool3d as fractional_max_pool3d,
    fractional_max_pool3d_with_indices as fractional_max_pool3d_with_indices,
)
from jmod._src.functional.linear_cross_entropy import linear_cross_entropy as linear_cross_entropy
from jmod._src.functional.loss import (
    binary_cross_entropy as binary_cross_entropy,
    binary_cross_entropy_with_logits as binary_cross_entropy_with_logits,
    cosine_embedding_loss as cosine_embedding_loss,
    cross_entropy as cross_entropy,
    gaussian_nll_loss as gaussian_nll_loss,
    hinge_embedding_loss as hinge_embedding_loss,
    huber_loss as huber_loss,
    kl_div as kl_div,
    l1_loss as l1_loss,
    margin_ranking_loss as margin_ranking_loss,
    mse_loss as mse_loss,
    multi_margin_loss as multi_margin_loss,
    multilabel_margin_loss as multilabel_margin_loss,
    multilabel_soft_margin_loss as multilabel_soft_margin_loss,
    nll_loss as nll_loss,
    poisson_nll_loss as poisson_nll_loss,
    smooth_l1_loss as smooth_l1_loss,
    soft_margin_loss as soft_margin_loss,
    triplet_margin_loss as triplet_margin_loss,
    triplet_margin_with_distance_loss as triplet_margin_with_distance_loss,
)
from jmod._src.functional.padding import pad as pad
from jmod._src.functional.pixelshuffle import pixel_shuffle as pixel_shuffle, pixel_unshuffle as pixel_unshuffle
from jmod._src.functional.pooling import (
    adaptive_avg_pool1d as adaptive_avg_pool1d,
    adaptive_avg_pool2d as adaptive_avg_pool2d,
    adaptive_avg_pool3d as adaptive_avg_pool3d,
    adaptive_max_pool1d as adaptive_max_pool1d,
    adaptive_max_pool1d_with_indices as adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d as adaptive_max_pool2d,
    adaptive_max_pool2d_with_indices as adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d as adaptive_max_pool3d,
    adaptive_max_pool3d_with_indices as adaptive_max_pool3d_with_indices,
    avg_pool1d as avg_pool1d,
    avg_pool2d as avg_pool2d,
    avg_pool3d as avg_pool3d,
    lp_pool1d as lp_pool1d,
    lp_pool2d as lp_pool2d,
    lp_pool3d as lp_pool3d,
    max_pool1d as max_pool1d,
    max_pool1d_with_indices as max_pool1d_with_indices,
    max_pool2d as max_pool2d,
    max_pool2d_with_indices as max_pool2d_with_indices,
    max_pool3d as max_pool3d,
    max_pool3d_with_indices as max_pool3d_with_indices,
    max_unpool1d as max_unpool1d,
    max_unpool2d as max_unpool2d,
    max_unpool3d as max_unpool3d,
)
from jmod._src.functional.sparse import (
    embedding as embedding,
    embedding_bag as embedding_bag,
    embedding_renorm as embedding_renorm,
    one_hot as one_hot,
)
from jmod._src.functional.upsampling import (
    interpolate as interpolate,
    upsample as upsample,
    upsample_bilinear as upsample_bilinear,
    upsample_nearest as upsample_nearest,
)
from jmod._src.functional.vision import affine_grid as affine_grid, grid_sample as grid_sample

# --- end layers-a ---


# torch's in-place functions (``F.relu_``...) cannot exist on immutable arrays; asking for
# one says what to write instead rather than a bare AttributeError.
_IN_PLACE = {"celu_", "elu_", "hardtanh_", "leaky_relu_", "relu_", "rrelu_", "selu_", "threshold_"}


def __getattr__(name: str):
    if name in _IN_PLACE:
        raise AttributeError(
            f"module 'jmod.nn.functional' has no attribute '{name}': JAX arrays are immutable, so there are no "
            f"in-place functions; write `x = F.{name[:-1]}(x)` and use the returned array"
        )
    raise AttributeError(f"module 'jmod.nn.functional' has no attribute '{name}'")
