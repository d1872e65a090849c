"""The layer classes of ``jmod.nn`` (one family per file, as in torch)."""

from jmod.nn.modules.container import (
    Container as Container,
    ModuleDict as ModuleDict,
    ModuleList as ModuleList,
    ParameterDict as ParameterDict,
    ParameterList as ParameterList,
    Sequential as Sequential,
)
from jmod.nn.modules.linear import Bilinear as Bilinear, Identity as Identity, Linear as Linear
from jmod.nn.modules.module import Module as Module

# isort: split
# --- layers-a: activations, losses, dropout, flatten, embeddings (sparse), pixel shuffle ---
from jmod.nn.modules.activation import CELU as CELU
from jmod.nn.modules.activation import ELU as ELU
from jmod.nn.modules.activation import GELU as GELU
from jmod.nn.modules.activation import GLU as GLU
from jmod.nn.modules.activation import SELU as SELU
from jmod.nn.modules.activation import Hardshrink as Hardshrink
from jmod.nn.modules.activation import Hardsigmoid as Hardsigmoid
from jmod.nn.modules.activation import Hardswish as Hardswish
from jmod.nn.modules.activation import Hardtanh as Hardtanh
from jmod.nn.modules.activation import LeakyReLU as LeakyReLU
from jmod.nn.modules.activation import LogSigmoid as LogSigmoid
from jmod.nn.modules.activation import LogSoftmax as LogSoftmax
from jmod.nn.modules.activation import Mish as Mish
from jmod.nn.modules.activation import PReLU as PReLU
from jmod.nn.modules.activation import ReLU as ReLU
from jmod.nn.modules.activation import ReLU6 as ReLU6
from jmod.nn.modules.activation import RReLU as RReLU
from jmod.nn.modules.activation import Sigmoid as Sigmoid
from jmod.nn.modules.activation import SiLU as SiLU
from jmod.nn.modules.activation import Softmax as Softmax
from jmod.nn.modules.activation import Softmax2d as Softmax2d
from jmod.nn.modules.activation import Softmin as Softmin
from jmod.nn.modules.activation import Softplus as Softplus
from jmod.nn.modules.activation import Softshrink as Softshrink
from jmod.nn.modules.activation import Softsign as Softsign
from jmod.nn.modules.activation import Tanh as Tanh
from jmod.nn.modules.activation import Tanhshrink as Tanhshrink
from jmod.nn.modules.activation import Threshold as Threshold
from jmod.nn.modules.dropout import AlphaDropout as AlphaDropout
from jmod.nn.modules.dropout import Dropout as Dropout
from jmod.nn.modules.dropout import Dropout1d as Dropout1d
from jmod.nn.modules.dropout import Dropout2d as Dropout2d
from jmod.nn.modules.dropout import Dropout3d as Dropout3d
from jmod.nn.modules.dropout import FeatureAlphaDropout as FeatureAlphaDropout
from jmod.nn.modules.flatten import Flatten as Flatten
from jmod.nn.modules.flatten import Unflatten as Unflatten
from jmod.nn.modules.loss import BCELoss as BCELoss
from jmod.nn.modules.loss import BCEWithLogitsLoss as BCEWithLogitsLoss
from jmod.nn.modules.loss import CosineEmbeddingLoss as CosineEmbeddingLoss
from jmod.nn.modules.loss import CrossEntropyLoss as CrossEntropyLoss
from jmod.nn.modules.loss import GaussianNLLLoss as GaussianNLLLoss
from jmod.nn.modules.loss import HingeEmbeddingLoss as HingeEmbeddingLoss
from jmod.nn.modules.loss import HuberLoss as HuberLoss
from jmod.nn.modules.loss import KLDivLoss as KLDivLoss
from jmod.nn.modules.loss import L1Loss as L1Loss
from jmod.nn.modules.loss import MarginRankingLoss as MarginRankingLoss
from jmod.nn.modules.loss import MSELoss as MSELoss
from jmod.nn.modules.loss import MultiLabelMarginLoss as MultiLabelMarginLoss
from jmod.nn.modules.loss import MultiLabelSoftMarginLoss as MultiLabelSoftMarginLoss
from jmod.nn.modules.loss import MultiMarginLoss as MultiMarginLoss
from jmod.nn.modules.loss import NLLLoss as NLLLoss
from jmod.nn.modules.loss import NLLLoss2d as NLLLoss2d
from jmod.nn.modules.loss import PoissonNLLLoss as PoissonNLLLoss
from jmod.nn.modules.loss import SmoothL1Loss as SmoothL1Loss
from jmod.nn.modules.loss import SoftMarginLoss as SoftMarginLoss
from jmod.nn.modules.loss import TripletMarginLoss as TripletMarginLoss
from jmod.nn.modules.pixelshuffle import PixelShuffle as PixelShuffle
from jmod.nn.modules.pixelshuffle import PixelUnshuffle as PixelUnshuffle
from jmod.nn.modules.sparse import Embedding as Embedding
from jmod.nn.modules.sparse import EmbeddingBag as EmbeddingBag

# --- end layers-a ---

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
