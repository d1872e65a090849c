"""jmod: PyTorch's ``torch.nn`` programming model on JAX.

A model is a stateful ``jmod.nn.Module``; calling it runs ``__call__`` -> hooks ->
``forward``; its parameters, persistent and non-persistent buffers are kept as
separate pytrees; ``jmod.jit`` compiles training steps that mutate modules and
optimizers, and ``jmod.grad`` differentiates with respect to a module's parameters.
"""

from jmod import (
    amp as amp,
    errors as errors,
    func as func,
    nn as nn,
    optim as optim,
    parallel as parallel,
    utils as utils,
)
from jmod._src.amp import (
    autocast as autocast,
    get_autocast_dtype as get_autocast_dtype,
    is_autocast_enabled as is_autocast_enabled,
)
from jmod._src.autodiff import grad as grad, value_and_grad as value_and_grad
from jmod._src.jit import compile as compile, jit as jit
from jmod._src.random import (
    Generator as Generator,
    bernoulli as bernoulli,
    fork_rng as fork_rng,
    get_rng_state as get_rng_state,
    initial_seed as initial_seed,
    manual_seed as manual_seed,
    multinomial as multinomial,
    normal as normal,
    rand as rand,
    rand_like as rand_like,
    randint as randint,
    randn as randn,
    randn_like as randn_like,
    randperm as randperm,
    seed as seed,
    set_rng_state as set_rng_state,
)
from jmod.nn.modules.capture import capture as capture
from jmod.serialization import load as load, save as save

__version__ = "0.1.0"
from jmod._src.export import export as export  # noqa: E402
from jmod._src.summary import summary as summary  # noqa: E402


def __getattr__(name: str):
    # jmod.checkpoint needs the optional orbax-checkpoint; imported on first use.
    if name == "checkpoint":
        import importlib

        return importlib.import_module("jmod.checkpoint")
    raise AttributeError(f"module 'jmod' has no attribute {name!r}")
