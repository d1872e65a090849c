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
# layers-c: normalization (batch, instance, layer, group, RMS, local response) and recurrent layers.
from jmod.nn.modules.batchnorm import (
    BatchNorm1d as BatchNorm1d,
    BatchNorm2d as BatchNorm2d,
    BatchNorm3d as BatchNorm3d,
    SyncBatchNorm as SyncBatchNorm,
)
from jmod.nn.modules.instancenorm import (
    InstanceNorm1d as InstanceNorm1d,
    InstanceNorm2d as InstanceNorm2d,
    InstanceNorm3d as InstanceNorm3d,
)
from jmod.nn.modules.normalization import (
    CrossMapLRN2d as CrossMapLRN2d,
    GroupNorm as GroupNorm,
    LayerNorm as LayerNorm,
    LocalResponseNorm as LocalResponseNorm,
    RMSNorm as RMSNorm,
)
from jmod.nn.modules.rnn import (
    GRU as GRU,
    LSTM as LSTM,
    RNN as RNN,
    GRUCell as GRUCell,
    LSTMCell as LSTMCell,
    RNNBase as RNNBase,
    RNNCell as RNNCell,
    RNNCellBase as RNNCellBase,
)

# end layers-c

# --- attention and transformer family (layers-d) ---
# LayerNorm and Dropout are the transformer layers' building blocks; the normalization
# and dropout families export the same classes from the same files.
# isort: split
from jmod.nn.modules.attention import MultiheadAttention as MultiheadAttention
from jmod.nn.modules.dropout import Dropout as Dropout
from jmod.nn.modules.transformer import (
    Transformer as Transformer,
    TransformerDecoder as TransformerDecoder,
    TransformerDecoderLayer as TransformerDecoderLayer,
    TransformerEncoder as TransformerEncoder,
    TransformerEncoderLayer as TransformerEncoderLayer,
)

# --- end attention and transformer family ---

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
