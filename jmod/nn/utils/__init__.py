"""``jmod.nn.utils``: torch.nn.utils' helpers on JAX arrays.

Gradient clipping works on the gradient dict ``jmod.grad`` returns (changed in place);
``vector_to_parameters`` writes into the module the arrays were read from.
Parametrizations (``parametrize``, ``parametrizations``), the hook-based
``weight_norm`` / ``spectral_norm``, conv/linear-BatchNorm fusion and ``skip_init``
mirror torch's names, state-dict keys and numbers.
"""

from jmod.nn.utils import (
    parametrizations as parametrizations,
    parametrize as parametrize,
    rnn as rnn,  # noqa: F401  (layers-c: packed sequences)
    stateless as stateless,
)
from jmod.nn.utils.clip_grad import (
    clip_grad_norm as clip_grad_norm,
    clip_grad_norm_ as clip_grad_norm_,
    clip_grad_value_ as clip_grad_value_,
    clip_grads_with_norm_ as clip_grads_with_norm_,
    get_total_norm as get_total_norm,
)
from jmod.nn.utils.convert_parameters import (
    parameters_to_vector as parameters_to_vector,
    vector_to_parameters as vector_to_parameters,
)
from jmod.nn.utils.fusion import (
    fuse_conv_bn_eval as fuse_conv_bn_eval,
    fuse_conv_bn_weights as fuse_conv_bn_weights,
    fuse_linear_bn_eval as fuse_linear_bn_eval,
    fuse_linear_bn_weights as fuse_linear_bn_weights,
)
from jmod.nn.utils.init import skip_init as skip_init
from jmod.nn.utils.scan import scan_blocks as scan_blocks  # jmod-specific, so not in __all__
from jmod.nn.utils.spectral_norm import (
    remove_spectral_norm as remove_spectral_norm,
    spectral_norm as spectral_norm,
)
from jmod.nn.utils.weight_norm import (
    remove_weight_norm as remove_weight_norm,
    weight_norm as weight_norm,
)

__all__ = [
    "clip_grad_norm",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "get_total_norm",
    "parameters_to_vector",
    "parametrizations",
    "parametrize",
    "remove_spectral_norm",
    "remove_weight_norm",
    "rnn",
    "skip_init",
    "spectral_norm",
    "stateless",
    "vector_to_parameters",
    "weight_norm",
]
