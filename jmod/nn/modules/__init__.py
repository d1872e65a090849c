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
from jmod.nn.modules.batchnorm import BatchNorm1d as BatchNorm1d
from jmod.nn.modules.batchnorm import BatchNorm2d as BatchNorm2d
from jmod.nn.modules.batchnorm import BatchNorm3d as BatchNorm3d
from jmod.nn.modules.batchnorm import SyncBatchNorm as SyncBatchNorm
from jmod.nn.modules.instancenorm import InstanceNorm1d as InstanceNorm1d
from jmod.nn.modules.instancenorm import InstanceNorm2d as InstanceNorm2d
from jmod.nn.modules.instancenorm import InstanceNorm3d as InstanceNorm3d
from jmod.nn.modules.normalization import CrossMapLRN2d as CrossMapLRN2d
from jmod.nn.modules.normalization import GroupNorm as GroupNorm
from jmod.nn.modules.normalization import LayerNorm as LayerNorm
from jmod.nn.modules.normalization import LocalResponseNorm as LocalResponseNorm
from jmod.nn.modules.normalization import RMSNorm as RMSNorm
from jmod.nn.modules.rnn import GRU as GRU
from jmod.nn.modules.rnn import LSTM as LSTM
from jmod.nn.modules.rnn import RNN as RNN
from jmod.nn.modules.rnn import GRUCell as GRUCell
from jmod.nn.modules.rnn import LSTMCell as LSTMCell
from jmod.nn.modules.rnn import RNNBase as RNNBase
from jmod.nn.modules.rnn import RNNCell as RNNCell
from jmod.nn.modules.rnn import RNNCellBase as RNNCellBase

# end layers-c

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
