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

# --- attention and transformer family (layers-d) ---
# LayerNorm and Dropout are the transformer layers' building blocks; the normalization
# and dropout families export the same classes from the same files.
# isort: split
from jmod.nn.modules.attention import MultiheadAttention as MultiheadAttention
from jmod.nn.modules.dropout import Dropout as Dropout
from jmod.nn.modules.normalization import LayerNorm as LayerNorm
from jmod.nn.modules.transformer import Transformer as Transformer
from jmod.nn.modules.transformer import TransformerDecoder as TransformerDecoder
from jmod.nn.modules.transformer import TransformerDecoderLayer as TransformerDecoderLayer
from jmod.nn.modules.transformer import TransformerEncoder as TransformerEncoder
from jmod.nn.modules.transformer import TransformerEncoderLayer as TransformerEncoderLayer

# --- end attention and transformer family ---

__all__ = [name for name in dir() if not name.startswith("_") and name[0].isupper()]
