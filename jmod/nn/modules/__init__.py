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
# -- layers-b: convolution, padding, pooling, upsampling, fold/unfold, channel shuffle
from jmod.nn.modules.channelshuffle import ChannelShuffle as ChannelShuffle
from jmod.nn.modules.conv import Conv1d as Conv1d
from jmod.nn.modules.conv import Conv2d as Conv2d
from jmod.nn.modules.conv import Conv3d as Conv3d
from jmod.nn.modules.conv import ConvTranspose1d as ConvTranspose1d
from jmod.nn.modules.conv import ConvTranspose2d as ConvTranspose2d
from jmod.nn.modules.conv import ConvTranspose3d as ConvTranspose3d
from jmod.nn.modules.fold import Fold as Fold
from jmod.nn.modules.fold import Unfold as Unfold
from jmod.nn.modules.padding import CircularPad1d as CircularPad1d
from jmod.nn.modules.padding import CircularPad2d as CircularPad2d
from jmod.nn.modules.padding import CircularPad3d as CircularPad3d
from jmod.nn.modules.padding import ConstantPad1d as ConstantPad1d
from jmod.nn.modules.padding import ConstantPad2d as ConstantPad2d
from jmod.nn.modules.padding import ConstantPad3d as ConstantPad3d
from jmod.nn.modules.padding import ReflectionPad1d as ReflectionPad1d
from jmod.nn.modules.padding import ReflectionPad2d as ReflectionPad2d
from jmod.nn.modules.padding import ReflectionPad3d as ReflectionPad3d
from jmod.nn.modules.padding import ReplicationPad1d as ReplicationPad1d
from jmod.nn.modules.padding import ReplicationPad2d as ReplicationPad2d
from jmod.nn.modules.padding import ReplicationPad3d as ReplicationPad3d
from jmod.nn.modules.padding import ZeroPad1d as ZeroPad1d
from jmod.nn.modules.padding import ZeroPad2d as ZeroPad2d
from jmod.nn.modules.padding import ZeroPad3d as ZeroPad3d
from jmod.nn.modules.pooling import AdaptiveAvgPool1d as AdaptiveAvgPool1d
from jmod.nn.modules.pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from jmod.nn.modules.pooling import AdaptiveAvgPool3d as AdaptiveAvgPool3d
from jmod.nn.modules.pooling import AdaptiveMaxPool1d as AdaptiveMaxPool1d
from jmod.nn.modules.pooling import AdaptiveMaxPool2d as AdaptiveMaxPool2d
from jmod.nn.modules.pooling import AdaptiveMaxPool3d as AdaptiveMaxPool3d
from jmod.nn.modules.pooling import AvgPool1d as AvgPool1d
from jmod.nn.modules.pooling import AvgPool2d as AvgPool2d
from jmod.nn.modules.pooling import AvgPool3d as AvgPool3d
from jmod.nn.modules.pooling import LPPool1d as LPPool1d
from jmod.nn.modules.pooling import LPPool2d as LPPool2d
from jmod.nn.modules.pooling import LPPool3d as LPPool3d
from jmod.nn.modules.pooling import MaxPool1d as MaxPool1d
from jmod.nn.modules.pooling import MaxPool2d as MaxPool2d
from jmod.nn.modules.pooling import MaxPool3d as MaxPool3d
from jmod.nn.modules.pooling import MaxUnpool1d as MaxUnpool1d
from jmod.nn.modules.pooling import MaxUnpool2d as MaxUnpool2d
from jmod.nn.modules.pooling import MaxUnpool3d as MaxUnpool3d
from jmod.nn.modules.upsampling import Upsample as Upsample
from jmod.nn.modules.upsampling import UpsamplingBilinear2d as UpsamplingBilinear2d
from jmod.nn.modules.upsampling import UpsamplingNearest2d as UpsamplingNearest2d

# -- end layers-b

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
