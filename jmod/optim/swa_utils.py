r"""``jmod.optim.swa_utils``: torch.optim.swa_utils for jmod (SWA and EMA of a model's weights).

``AveragedModel`` keeps a copy of a model whose parameters (and, with
``use_buffers=True``, buffers) are a running average of the model's: the equal-weight
average of Stochastic Weight Averaging, or an exponential moving average with
``get_ema_multi_avg_fn(decay)``. ``SWALR`` anneals the learning rate to a constant,
``update_bn`` recomputes BatchNorm statistics for the averaged weights. Names,
signatures, state dict keys (``module.*``, ``n_averaged``) and numbers are torch's;
the code follows torch's ``torch/optim/swa_utils.py`` (BSD-3-Clause).

One difference: arrays are immutable, so a ``multi_avg_fn`` *returns* the new list of
averaged arrays instead of updating the first list in place (``get_ema_multi_avg_fn``
and ``get_swa_multi_avg_fn`` do). ``update_parameters`` works eagerly and inside
``jmod.jit`` (take both models as arguments of the compiled step).

Examples:
    >>> import jax.numpy as jnp, jmod
    >>> from jmod import nn
    >>> from jmod.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    >>> model = nn.Linear(2, 1)
    >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    >>> sorted(ema.state_dict())
    ['module.bias', 'module.weight', 'n_averaged']
    >>> ema.update_parameters(model)          # the first call copies the weights
    >>> model.bias = model.bias + 1.0
    >>> ema.update_parameters(model)          # then 0.9 * ema + 0.1 * model
    >>> bool(jnp.allclose(ema.module.bias, model.bias - 0.9))
    True
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.arrays import is_tracer, to_jax
from jmod.nn.modules.module import Module
from jmod.optim.lr_scheduler import LRScheduler, _format_param, _warn_get_lr_called_within_step
from jmod.optim.optimizer import Optimizer

__all__ = [
    "AveragedModel",
    "update_bn",
    "SWALR",
    "get_ema_multi_avg_fn",
    "get_swa_multi_avg_fn",
    "get_ema_avg_fn",
    "get_swa_avg_fn",
]


def _is_float(x: jax.Array) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


def _lerp(start: jax.Array, end: jax.Array, weight: Any) -> jax.Array:
    """torch.lerp's formula (it switches form at weight 0.5, for accuracy near 1)."""
    weight = jnp.asarray(weight, start.dtype)
    return jnp.where(weight < 0.5, start + weight * (end - start), end - (end - start) * (1 - weight))


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[list, list, Any], list]:
    r"""The function updating a list of averaged arrays with an exponential moving average.

    :math:`W^{EMA}_{t+1} = decay \cdot W^{EMA}_t + (1 - decay) \cdot W^{model}_{t+1}`
    (``W^{EMA}_0`` is the model's first weights).

    Args:
        decay (float): decay rate, in [0, 1]. Default: 0.999.

    Returns:
        Callable: ``fn(averaged_list, current_list, num_averaged) -> new averaged_list``
        (jmod returns the new list; torch's updates the first in place).
    """
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")

    def ema_update(ema_param_list: list, current_param_list: list, _: Any) -> list:
        if _is_float(ema_param_list[0]):
            return [_lerp(e, c, 1 - decay) for e, c in zip(ema_param_list, current_param_list, strict=True)]
        return [
            (e * decay + c * (1 - decay)).astype(e.dtype)
            for e, c in zip(ema_param_list, current_param_list, strict=True)
        ]

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[list, list, Any], list]:
    r"""The function updating a list of averaged arrays with the equal-weight (SWA) average.

    :math:`W^{SWA}_{n+1} = W^{SWA}_n + (W^{model} - W^{SWA}_n) / (n + 1)`.

    Returns:
        Callable: ``fn(averaged_list, current_list, num_averaged) -> new averaged_list``.
    """

    def swa_update(averaged_param_list: list, current_param_list: list, num_averaged: Any) -> list:
        if _is_float(averaged_param_list[0]):
            w = 1 / (jnp.asarray(num_averaged, jnp.float32) + 1)
            return [_lerp(a, c, w) for a, c in zip(averaged_param_list, current_param_list, strict=True)]
        return [
            (a + (c - a) / (num_averaged + 1)).astype(a.dtype)
            for a, c in zip(averaged_param_list, current_param_list, strict=True)
        ]

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[jax.Array, jax.Array, Any], jax.Array]:
    r"""The function giving one array's exponential moving average.

    Args:
        decay (float): decay rate, in [0, 1]. Default: 0.999.

    Returns:
        Callable: ``fn(ema_param, current_param, num_averaged) -> new ema_param``.
    """
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")

    def ema_update(ema_param: jax.Array, current_param: jax.Array, num_averaged: Any) -> jax.Array:
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable[[jax.Array, jax.Array, Any], jax.Array]:
    r"""The function giving one array's equal-weight (SWA) running average.

    Returns:
        Callable: ``fn(averaged_param, current_param, num_averaged) -> new averaged_param``.
    """

    def swa_update(averaged_param: jax.Array, current_param: jax.Array, num_averaged: Any) -> jax.Array:
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


_copy = jax.jit(lambda xs: [jnp.copy(x) for x in xs])


@functools.partial(jax.jit, static_argnums=(0, 1))
def _average(avg_fn: Any, multi_avg_fn: Any, averaged: tuple, current: tuple, n: jax.Array) -> list:
    """The new averages (the model's values where ``n == 0``: the first update copies)."""
    if multi_avg_fn is not None or avg_fn is None:
        new = list(averaged)
        # torch groups the arrays by device and dtype for the multi-array function
        groups: dict[Any, list[int]] = {}
        for i, a in enumerate(averaged):
            groups.setdefault(a.dtype, []).append(i)
        for idx in groups.values():
            a_list = [averaged[i] for i in idx]
            c_list = [current[i] for i in idx]
            if multi_avg_fn is not None:
                out = multi_avg_fn(a_list, c_list, n)
                if out is None:
                    raise TypeError(
                        "multi_avg_fn returned None: in jmod arrays are immutable, so it must return the "
                        "list of new averaged arrays (torch's updates the first list in place)"
                    )
            else:
                swa = get_swa_avg_fn()  # torch's path on CPU (no foreach kernels there)
                out = [swa(a, c, n) for a, c in zip(a_list, c_list)]
            for i, v in zip(idx, out):
                new[i] = v
    else:
        new = [avg_fn(a, c, n) for a, c in zip(averaged, current)]
    return [jnp.where(n == 0, c, jnp.asarray(v).astype(a.dtype)) for a, c, v in zip(averaged, current, new)]


def _named_state(module: Module, use_buffers: bool) -> list[tuple[str, jax.Array]]:
    named = list(module.named_parameters())
    if use_buffers:
        named += [(n, b) for n, b in module.named_buffers() if b is not None]
    return named


def _write(module: Module, name: str, value: jax.Array) -> None:
    owner, _, leaf = name.rpartition(".")
    setattr(module.get_submodule(owner) if owner else module, leaf, value)


class AveragedModel(Module):
    r"""A model whose weights are a running average of another's: SWA or EMA (torch.optim.swa_utils.AveragedModel).

    ``AveragedModel(model)`` deep-copies ``model`` into ``self.module``; each
    ``update_parameters(model)`` folds ``model``'s current parameters into the average
    (the first call copies them). Calling the averaged model runs ``self.module``.

    Args:
        model (Module): the model to average.
        device (Any): if given, the copy is placed on this device (``"cpu"``, ``"cuda"``,
            a ``jax.Device``).
        avg_fn (Callable): ``avg_fn(averaged, current, num_averaged) -> new averaged``, applied
            to each array; default: the equal-weight average.
        multi_avg_fn (Callable): ``multi_avg_fn(averaged_list, current_list, num_averaged) ->
            new averaged_list``, applied to the arrays of one dtype together (e.g.
            ``get_ema_multi_avg_fn(0.999)``). jmod's returns the new list; torch's updates
            in place. At most one of ``avg_fn`` and ``multi_avg_fn``.
        use_buffers (bool): average the buffers too (BatchNorm statistics); else the
            buffers are copied from ``model`` at each update. Default: ``False``.

    Attributes:
        module (Module): the averaged copy of the model.
        n_averaged (jax.Array): buffer counting the updates (int32 without JAX's 64-bit
            mode; torch's is int64).

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> from jmod.optim.swa_utils import AveragedModel
        >>> model = nn.Linear(2, 1)
        >>> swa = AveragedModel(model)
        >>> for _ in range(3):
        ...     swa.update_parameters(model)
        >>> int(swa.n_averaged)
        3
    """

    def __init__(
        self,
        model: Module,
        device: Any = None,
        avg_fn: Callable[..., Any] | None = None,
        multi_avg_fn: Callable[..., Any] | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", jnp.zeros((), jnp.int32))
        if device is not None:
            self.to(device)
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the averaged copy."""
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters (and buffers with ``use_buffers``) into the average.

        Args:
            model (Module): the model being trained (the same architecture as ``self.module``).
        """
        mine = _named_state(self.module, self.use_buffers)
        theirs = [to_jax(v) for _, v in _named_state(model, self.use_buffers)]
        pairs = list(zip(mine, theirs))  # torch zips without strict checking
        n = self.n_averaged
        averaged = tuple(v for (_, v), _ in pairs)
        current = tuple(c.astype(a.dtype) for a, c in zip(averaged, theirs))
        if not is_tracer(n) and int(n) == 0:
            # torch copies the weights at the first update without calling the function. A
            # copy, not the model's arrays: assigning a parameter's own array would tie the
            # two models' parameters
            new = _copy(current)
        else:
            # one compiled function (eagerly, each small op would dispatch on its own)
            new = _average(self.avg_fn, self.multi_avg_fn, averaged, current, n)
        for ((name, _), _), v in zip(pairs, new):
            _write(self.module, name, v)
        if not self.use_buffers:
            # keep the buffers in sync with the source model
            for (name, _), (_, b) in zip(list(self.module.named_buffers()), list(model.named_buffers()), strict=True):
                _write(self.module, name, to_jax(b))
        self.n_averaged = self.n_averaged + 1


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    r"""Recompute the BatchNorm running statistics of ``model`` with one pass over ``loader``.

    As torch: every ``_BatchNorm`` layer's statistics are reset and re-estimated as the
    cumulative average over the batches (``momentum=None`` during the pass), in train
    mode; the model's mode and the layers' momenta are restored afterwards.

    Args:
        loader (Iterable): batches: arrays (jax, NumPy or torch tensors), or lists/tuples
            whose first element is the input.
        model (Module): the model (e.g. an ``AveragedModel``).
        device (Any): if given, each input is moved there first.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim.swa_utils import update_bn
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
        >>> update_bn([jnp.ones((4, 2)), jnp.zeros((4, 2))], model)
        >>> int(model[1].num_batches_tracked)
        2
    """
    from jmod._src import devices
    from jmod.nn.modules.batchnorm import _BatchNorm

    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        for input in loader:
            if isinstance(input, (list, tuple)):
                input = input[0]
            input = to_jax(input)
            if device is not None:
                input = devices.place(input, devices.resolve_device(device))
            model(input)
    finally:
        for bn_module in momenta:
            bn_module.momentum = momenta[bn_module]
        model.train(was_training)


class SWALR(LRScheduler):
    r"""Anneal each param group's learning rate to a fixed ``swa_lr`` (torch.optim.swa_utils.SWALR).

    Args:
        optimizer (Optimizer): the jmod optimizer (``SGD``, ``Adam``, ...).
        swa_lr (float | list): the final learning rate, for all groups or one per group.
        anneal_epochs (int): epochs of the annealing phase. Default: 10.
        anneal_strategy (str): ``"cos"`` or ``"linear"``. Default: ``"cos"``.
        last_epoch (int): the index of the last epoch. Default: -1.

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> opt = jmod.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
        >>> sched = jmod.optim.swa_utils.SWALR(opt, swa_lr=0.5, anneal_epochs=2, anneal_strategy="linear")
        >>> for _ in range(3):
        ...     opt._opt_called = True  # (an optimizer.step(grads) would go here)
        ...     sched.step()
        ...     print(sched.get_last_lr())
        [0.75]
        [0.5]
        [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: Any,
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for swa_lr_, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = swa_lr_
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[float]:
        """The next learning rate of each group, between its ``lr`` and its ``swa_lr``."""
        _warn_get_lr_called_within_step(self)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [
            self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha) for group in self.optimizer.param_groups
        ]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [
            group["swa_lr"] * alpha + lr * (1 - alpha)
            for group, lr in zip(self.optimizer.param_groups, prev_lrs, strict=True)
        ]

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: every attribute but the optimizer and the anneal function."""
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state returned by :meth:`state_dict`.

        Args:
            state_dict (dict): the scheduler state.
        """
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
