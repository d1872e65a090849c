"""``jmod.optim``: optimizers that update a model's parameters in place.

``Optimizer(model, tx)`` binds any optax transformation; ``SGD``, ``Adam``,
``AdamW``, ``RMSprop`` and ``Adagrad`` take torch.optim's arguments and give its
numbers.
"""

from jmod.optim.optimizer import Optimizer as Optimizer, ParamGroup as ParamGroup
from jmod.optim.torch_optimizers import (
    SGD as SGD,
    Adagrad as Adagrad,
    Adam as Adam,
    AdamW as AdamW,
    RMSprop as RMSprop,
)

__all__ = ["Optimizer", "ParamGroup", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
