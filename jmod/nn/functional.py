"""``jmod.nn.functional``: torch.nn.functional's functions on ``jax.Array``.

Pure functions (no state); the layers in ``jmod.nn`` call them. Random ones
(``dropout``...) draw from jmod's generator. Implementations live in
``jmod/_src/functional/``, one file per family.
"""

from jmod._src.functional.linear import bilinear as bilinear, linear as linear

# isort: split
# --- layers-a: activations, losses, dropout, embeddings (sparse), pixel shuffle ---
from jmod._src.functional.activation import celu as celu
from jmod._src.functional.activation import elu as elu
from jmod._src.functional.activation import gelu as gelu
from jmod._src.functional.activation import glu as glu
from jmod._src.functional.activation import gumbel_softmax as gumbel_softmax
from jmod._src.functional.activation import hardshrink as hardshrink
from jmod._src.functional.activation import hardsigmoid as hardsigmoid
from jmod._src.functional.activation import hardswish as hardswish
from jmod._src.functional.activation import hardtanh as hardtanh
from jmod._src.functional.activation import leaky_relu as leaky_relu
from jmod._src.functional.activation import log_softmax as log_softmax
from jmod._src.functional.activation import logsigmoid as logsigmoid
from jmod._src.functional.activation import mish as mish
from jmod._src.functional.activation import normalize as normalize
from jmod._src.functional.activation import prelu as prelu
from jmod._src.functional.activation import relu as relu
from jmod._src.functional.activation import relu6 as relu6
from jmod._src.functional.activation import rrelu as rrelu
from jmod._src.functional.activation import selu as selu
from jmod._src.functional.activation import sigmoid as sigmoid
from jmod._src.functional.activation import silu as silu
from jmod._src.functional.activation import softmax as softmax
from jmod._src.functional.activation import softmin as softmin
from jmod._src.functional.activation import softplus as softplus
from jmod._src.functional.activation import softshrink as softshrink
from jmod._src.functional.activation import softsign as softsign
from jmod._src.functional.activation import tanh as tanh
from jmod._src.functional.activation import tanhshrink as tanhshrink
from jmod._src.functional.activation import threshold as threshold
from jmod._src.functional.dropout import alpha_dropout as alpha_dropout
from jmod._src.functional.dropout import dropout as dropout
from jmod._src.functional.dropout import dropout1d as dropout1d
from jmod._src.functional.dropout import dropout2d as dropout2d
from jmod._src.functional.dropout import dropout3d as dropout3d
from jmod._src.functional.dropout import feature_alpha_dropout as feature_alpha_dropout
from jmod._src.functional.loss import binary_cross_entropy as binary_cross_entropy
from jmod._src.functional.loss import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from jmod._src.functional.loss import cosine_embedding_loss as cosine_embedding_loss
from jmod._src.functional.loss import cross_entropy as cross_entropy
from jmod._src.functional.loss import gaussian_nll_loss as gaussian_nll_loss
from jmod._src.functional.loss import hinge_embedding_loss as hinge_embedding_loss
from jmod._src.functional.loss import huber_loss as huber_loss
from jmod._src.functional.loss import kl_div as kl_div
from jmod._src.functional.loss import l1_loss as l1_loss
from jmod._src.functional.loss import margin_ranking_loss as margin_ranking_loss
from jmod._src.functional.loss import mse_loss as mse_loss
from jmod._src.functional.loss import multi_margin_loss as multi_margin_loss
from jmod._src.functional.loss import multilabel_margin_loss as multilabel_margin_loss
from jmod._src.functional.loss import multilabel_soft_margin_loss as multilabel_soft_margin_loss
from jmod._src.functional.loss import nll_loss as nll_loss
from jmod._src.functional.loss import poisson_nll_loss as poisson_nll_loss
from jmod._src.functional.loss import smooth_l1_loss as smooth_l1_loss
from jmod._src.functional.loss import soft_margin_loss as soft_margin_loss
from jmod._src.functional.loss import triplet_margin_loss as triplet_margin_loss
from jmod._src.functional.pixelshuffle import pixel_shuffle as pixel_shuffle
from jmod._src.functional.pixelshuffle import pixel_unshuffle as pixel_unshuffle
from jmod._src.functional.sparse import embedding as embedding
from jmod._src.functional.sparse import embedding_bag as embedding_bag
from jmod._src.functional.sparse import embedding_renorm as embedding_renorm
from jmod._src.functional.sparse import one_hot as one_hot

# --- end layers-a ---
