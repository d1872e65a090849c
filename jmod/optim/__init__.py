"""``jmod.optim``: optimizers that update a model's parameters in place.

``Optimizer(model, tx)`` binds any optax transformation; ``SGD``, ``Adam``,
``AdamW``, ``RMSprop``, ``Adagrad``, ``Adamax``, ``NAdam``, ``RAdam``, ``Adadelta``,
``Rprop`` and ``ASGD`` take torch.optim's arguments and give its numbers. ``param_groups(model, ...)`` builds torch-style parameter groups by name or
predicate. ``jmod.optim.lr_scheduler`` holds torch's learning rate schedulers
(``StepLR``, ``OneCycleLR``, ``ReduceLROnPlateau``, ...). ``LBFGS`` takes torch's
closure API (the closure returns ``(loss, grads)``), ``swa_utils`` is
``torch.optim.swa_utils`` (``AveragedModel``, ``SWALR``, ``update_bn``), and
``MultiSteps(optimizer, k)`` accumulates gradients across calls.
"""

from jmod.optim import lr_scheduler as lr_scheduler, swa_utils as swa_utils
from jmod.optim.accumulation import MultiSteps as MultiSteps
from jmod.optim.groups import param_groups as param_groups
from jmod.optim.lbfgs import LBFGS as LBFGS
from jmod.optim.optimizer import Optimizer as Optimizer, ParamGroup as ParamGroup
from jmod.optim.torch_optimizers import (
    ASGD as ASGD,
    SGD as SGD,
    Adadelta as Adadelta,
    Adagrad as Adagrad,
    Adam as Adam,
    Adamax as Adamax,
    AdamW as AdamW,
    NAdam as NAdam,
    RAdam as RAdam,
    RMSprop as RMSprop,
    Rprop as Rprop,
)

__all__ = [
    "Optimizer",
    "ParamGroup",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adamax",
    "NAdam",
    "RAdam",
    "Adadelta",
    "Rprop",
    "ASGD",
    "param_groups",
    "lr_scheduler",
    "MultiSteps",
    "swa_utils",
    "LBFGS",
]
