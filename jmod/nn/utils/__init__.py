"""``jmod.nn.utils``: torch.nn.utils' helpers on JAX arrays.

Gradient clipping works on the gradient dict ``jmod.grad`` returns (changed in place);
``vector_to_parameters`` writes into the module the arrays were read from.
"""

from jmod.nn.utils import rnn as rnn  # noqa: F401  (layers-c: packed sequences)
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

__all__ = [
    "clip_grad_norm",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "parameters_to_vector",
    "rnn",
    "vector_to_parameters",
]
