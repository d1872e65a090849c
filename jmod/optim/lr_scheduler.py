r"""``jmod.optim.lr_scheduler``: torch.optim.lr_scheduler's schedulers for jmod optimizers.

Same classes, arguments, defaults, formulas (the chainable ``get_lr`` forms and the
closed forms used by the deprecated ``step(epoch)``), errors, warnings and
``state_dict()`` contents as torch 2.13, so ported training loops with
``scheduler.step()`` run unchanged and give torch's learning rates float for float.
The code follows torch's ``torch/optim/lr_scheduler.py`` (BSD-3-Clause).

A scheduler writes ``optimizer.param_groups[i]["lr"]`` (and, for ``CyclicLR`` /
``OneCycleLR``, ``"momentum"`` or ``"betas"``). In jmod's optimizers those options
live in the optax state, so the next ``optimizer.step`` sees them, eagerly or inside
a ``jmod.jit`` step compiled once: the schedule never causes a recompilation.
Bookkeeping entries (``"initial_lr"``, ``"max_lr"``, ...) are stored in the group
dicts as in torch.

Examples:
    >>> import jax.numpy as jnp, jmod
    >>> from jmod import nn
    >>> from jmod.optim.lr_scheduler import StepLR
    >>> model = nn.Linear(2, 1)
    >>> optimizer = jmod.optim.SGD(model, lr=0.1, momentum=0.9)
    >>> scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    >>> loss_fn = lambda m: (m(jnp.ones((4, 2))) ** 2).mean()
    >>> for epoch in range(5):
    ...     optimizer.step(jmod.grad(loss_fn)(model))  # trained with this lr
    ...     print(epoch, scheduler.get_last_lr())
    ...     scheduler.step()
    0 [0.1]
    1 [0.1]
    2 [0.05]
    3 [0.05]
    4 [0.025]
"""

from __future__ import annotations

import math
import types
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from jmod.optim.optimizer import Optimizer

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "PolynomialLR",
    "LRScheduler",
]

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)

inf = math.inf


def _check_optimizer(optimizer: Any) -> None:
    """torch's type check, plus: every group's ``lr`` must be a number the optimizer
    reads from its live state (a jmod torch-style optimizer), else writing it would
    change nothing."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
    for i, group in enumerate(optimizer.param_groups):
        if "lr" not in group:
            raise KeyError(
                f"param 'lr' is not specified in param_groups[{i}]: learning rate schedulers need a torch-style "
                "optimizer (jmod.optim.SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam, RAdam, Adadelta, Rprop, ASGD); "
                "for Optimizer(model, tx) use an optax "
                "schedule inside tx instead"
            )
        if callable(group["lr"]):
            raise TypeError(
                f"param_groups[{i}]['lr'] is an optax schedule (a function of the step); a learning rate scheduler "
                "needs a float lr to scale"
            )
        hp = optimizer._find_hyperparams(optimizer.opt_state, i)
        if hp is None or "lr" not in hp:
            raise TypeError(
                f"param_groups[{i}]['lr'] of {type(optimizer).__name__} is not a live hyperparameter of its optax "
                "state (optax.inject_hyperparams), so a scheduler's writes would not reach the update"
            )


def _format_param(name: str, optimizer: Optimizer, param: Any) -> list[Any]:
    """Return correctly formatted lr/momentum for each param group."""
    if isinstance(param, (list, tuple)):
        if len(param) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(param)} values, param_groups has {len(optimizer.param_groups)}."
            )
    else:
        param = [param] * len(optimizer.param_groups)
    return list(param)


def _param_groups_val_list(optimizer: Optimizer, key: str) -> list[Any]:
    """``group[key]`` for each param group (KeyError when missing)."""
    return [group[key] for group in optimizer.param_groups]


def _update_param_group_val(param_group: dict[str, Any], key: str, val: Any) -> None:
    """Set ``param_group[key]`` (for jmod's groups this writes the optax state too)."""
    param_group[key] = val


class LRScheduler:
    r"""Base class for all learning rate schedulers (torch.optim.lr_scheduler.LRScheduler).

    Subclasses implement :meth:`get_lr` and optionally override :meth:`step`.

    Args:
        optimizer: the jmod optimizer whose ``param_groups[i]["lr"]`` this scheduler
            adjusts (``jmod.optim.SGD``, ``Adam``, ...).
        last_epoch: index of the last epoch seen by the scheduler. ``-1`` (default)
            starts the schedule; other values resume it and need ``"initial_lr"`` in
            every param group (restored by ``optimizer.load_state_dict``).

    Attributes:
        base_lrs: each group's ``"initial_lr"``.
        last_epoch: the number of ``step()`` calls (the epoch index).

    .. warning::
        Initializing a scheduler overwrites its optimizer's ``param_group["lr"]``\s.
        When restoring a checkpoint, initialize the scheduler **before** calling the
        optimizer's ``load_state_dict`` to avoid overwriting the loaded learning rates.
    """

    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        self.optimizer = optimizer

        # Initialize epoch and base learning rates
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming scheduler with "
                        "last_epoch >= 0.\n"
                        "This typically happens when:\n"
                        "1. You're trying to resume training from a checkpoint but haven't properly loaded the "
                        "optimizer state\n"
                        "2. You're using last_epoch >= 0 for a fresh training run (not recommended)"
                    )
        self.base_lrs: list[float] = _param_groups_val_list(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        # torch wraps optimizer.step to notice `scheduler.step()` before
        # `optimizer.step()`; jmod's Optimizer.step sets `_opt_called` itself.
        self._initial_step()

    def _initial_step(self) -> None:
        """Initialize step counts and perform a step."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def state_dict(self) -> dict[str, Any]:
        """Return the state of the scheduler as a :class:`dict`.

        It contains an entry for every variable in ``self.__dict__`` which is not the
        optimizer.
        """
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the scheduler's state.

        Args:
            state_dict: scheduler state, as returned by :meth:`state_dict`.
        """
        self.__dict__.update(state_dict)

    def get_last_lr(self) -> list[float]:
        r"""The learning rates of the optimizer's param groups after the last :meth:`step`."""
        return self._last_lr

    def get_lr(self) -> list[float]:
        r"""Compute the next learning rate for each param group (called by :meth:`step`;
        to read the current learning rates use :meth:`get_last_lr`)."""
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Step the scheduler: call it after ``optimizer.step(grads)``.

        Args:
            epoch: deprecated (as in torch). If given, sets :attr:`last_epoch` to
                ``epoch`` and uses the closed form of the schedule where there is one.
        """
        # Raise a warning if old pattern is detected
        # https://github.com/pytorch/pytorch/issues/20124
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
                "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
                "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
                "will result in PyTorch skipping the first value of the learning rate schedule. "
                "See more details at "
                "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                if hasattr(self, "_get_closed_form_lr"):
                    values = self._get_closed_form_lr()
                else:
                    values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False

        for param_group, lr in zip(self.optimizer.param_groups, values, strict=True):
            _update_param_group_val(param_group, "lr", lr)

        self._last_lr: list[float] = _param_groups_val_list(self.optimizer, "lr")


def _warn_get_lr_called_within_step(lr_scheduler: LRScheduler) -> None:
    if not lr_scheduler._get_lr_called_within_step:
        warnings.warn(
            "To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
            UserWarning,
            stacklevel=2,
        )


class _LRScheduler(LRScheduler):
    """torch's old name, kept for code that subclasses it."""


def _lambdas(optimizer: Optimizer, lr_lambda: Any) -> list[Callable[[int], float]]:
    if not isinstance(lr_lambda, (list, tuple)):
        return [lr_lambda] * len(optimizer.param_groups)
    if len(lr_lambda) != len(optimizer.param_groups):
        raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}")
    return list(lr_lambda)


class _LambdaState:
    """state_dict/load_state_dict of the lambda schedulers: functions are not saved,
    callable objects' ``__dict__`` are."""

    lr_lambdas: list[Callable[[int], float]]

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state; ``lr_lambdas`` holds the ``__dict__`` of callable
        objects and ``None`` for plain functions and lambdas."""
        state_dict = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "lr_lambdas")}
        state_dict["lr_lambdas"] = [None] * len(self.lr_lambdas)
        for idx, fn in enumerate(self.lr_lambdas):
            if not isinstance(fn, types.FunctionType):
                state_dict["lr_lambdas"][idx] = fn.__dict__.copy()
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state returned by :meth:`state_dict`."""
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        # Restore state_dict keys in order to prevent side effects
        # https://github.com/pytorch/pytorch/issues/32756
        state_dict["lr_lambdas"] = lr_lambdas
        for idx, fn in enumerate(lr_lambdas):
            if fn is not None:
                self.lr_lambdas[idx].__dict__.update(fn)


class LambdaLR(_LambdaState, LRScheduler):
    """Set each group's learning rate to its initial lr times ``lr_lambda(epoch)``.

    Args:
        optimizer: wrapped optimizer.
        lr_lambda: a function of the integer epoch giving a multiplicative factor, or
            a list of such functions, one per param group.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> opt = jmod.optim.SGD(nn.Linear(2, 1), lr=0.1)
        >>> scheduler = jmod.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda epoch: 1 / (epoch + 1))
        >>> scheduler.get_last_lr()  # epoch 0
        [0.1]
        >>> scheduler.lr_lambdas[0](1) * scheduler.base_lrs[0]  # the lr after one step()
        0.05
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""``base_lr * lr_lambda(last_epoch)`` for each group."""
        _warn_get_lr_called_within_step(self)
        return [base_lr * lmbda(self.last_epoch) for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class MultiplicativeLR(_LambdaState, LRScheduler):
    """Multiply each group's learning rate by ``lr_lambda(epoch)`` at every step.

    Args:
        optimizer: wrapped optimizer.
        lr_lambda: a function of the integer epoch giving a multiplicative factor, or
            a list of such functions, one per param group.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.MultiplicativeLR(optimizer, lr_lambda=lambda epoch: 0.5)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.05, 0.025, 0.0125]
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""``group["lr"] * lr_lambda(last_epoch)`` for each group (unchanged at construction)."""
        _warn_get_lr_called_within_step(self)
        if not self._is_initial:
            return [
                group["lr"] * lmbda(self.last_epoch)
                for lmbda, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)
            ]
        return _param_groups_val_list(self.optimizer, "lr")


class StepLR(LRScheduler):
    """Decay each group's learning rate by ``gamma`` every ``step_size`` epochs.

    Args:
        optimizer: wrapped optimizer.
        step_size: period of learning rate decay.
        gamma: multiplicative factor of learning rate decay. Default: 0.1.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.1, 0.01, 0.01, 0.001]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""``group["lr"] * gamma`` when ``last_epoch`` is a non-zero multiple of ``step_size``."""
        _warn_get_lr_called_within_step(self)
        if (self.last_epoch == 0) or (self.last_epoch % self.step_size != 0):
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Decay each group's learning rate by ``gamma`` at each of the ``milestones`` epochs.

    Args:
        optimizer: wrapped optimizer.
        milestones: epoch indices (a milestone listed ``n`` times decays by ``gamma**n``).
        gamma: multiplicative factor of learning rate decay. Default: 0.1.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    """

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""``group["lr"] * gamma**n`` when ``last_epoch`` is a milestone (listed ``n`` times)."""
        _warn_get_lr_called_within_step(self)
        if self.last_epoch not in self.milestones:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """Multiply each group's learning rate by ``factor`` until epoch ``total_iters``.

    Args:
        optimizer: wrapped optimizer.
        factor: the factor applied until the milestone. Default: 1/3.
        total_iters: the number of steps the factor is applied for. Default: 5.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.ConstantLR(optimizer, factor=0.5, total_iters=3)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.05, 0.05, 0.05, 0.1, 0.1]
    """

    def __init__(
        self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""Scale by ``factor`` at epoch 0 and by ``1 / factor`` at ``total_iters``."""
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
            for base_lr in self.base_lrs
        ]


class LinearLR(LRScheduler):
    """Scale each group's learning rate by a factor going linearly from
    ``start_factor`` to ``end_factor`` over ``total_iters`` epochs.

    Args:
        optimizer: wrapped optimizer.
        start_factor: the factor at the first epoch, in (0, 1]. Default: 1/3.
        end_factor: the factor at the end, in [0, 1]. Default: 1.0.
        total_iters: the number of steps until the end factor is reached. Default: 5.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=3)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.025, 0.05, 0.075, 0.1, 0.1]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""The chainable form: scale the current ``group["lr"]`` so that successive
        steps interpolate linearly from ``start_factor`` to ``end_factor``."""
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _param_groups_val_list(self.optimizer, "lr")
        return [
            group["lr"]
            * (
                1.0
                + (self.end_factor - self.start_factor)
                / (self.total_iters * self.start_factor + (self.last_epoch - 1) * (self.end_factor - self.start_factor))
            )
            for group in self.optimizer.param_groups
        ]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            base_lr
            * (
                self.start_factor
                + (self.end_factor - self.start_factor) * min(self.total_iters, self.last_epoch) / self.total_iters
            )
            for base_lr in self.base_lrs
        ]


class ExponentialLR(LRScheduler):
    """Decay each group's learning rate by ``gamma`` every epoch.

    Args:
        optimizer: wrapped optimizer.
        gamma: multiplicative factor of learning rate decay.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.05, 0.025, 0.0125]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""``group["lr"] * gamma`` (unchanged at construction)."""
        _warn_get_lr_called_within_step(self)
        # when loading from a checkpoint, we don't want _initial_step (called from the constructor)
        # to update the lr one more step ahead of itself.
        if self._is_initial:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]


def _check_schedulers(owner: Any, optimizer: Optimizer, schedulers: Sequence[LRScheduler]) -> None:
    name = owner.__class__.__name__
    for scheduler_idx, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{name} at index {scheduler_idx} should have `optimizer` as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{name} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {scheduler_idx} in the given schedulers sequence."
            )
        if optimizer != scheduler.optimizer:
            raise ValueError(
                f"{name} expects all schedulers to belong to the same optimizer, but "
                f"got scheduler {scheduler.__class__.__name__} at index {scheduler_idx} has {scheduler.optimizer}, "
                f"which is different from {optimizer.__class__.__name__}."
            )


class _NestedState:
    """state_dict/load_state_dict of schedulers made of schedulers."""

    _schedulers: Sequence[LRScheduler]

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state, with the wrapped schedulers' states in ``"_schedulers"``."""
        state_dict = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "_schedulers")}
        state_dict["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state_dict

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state returned by :meth:`state_dict`."""
        _schedulers = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        # Restore state_dict keys in order to prevent side effects
        # https://github.com/pytorch/pytorch/issues/32756
        state_dict["_schedulers"] = _schedulers
        for idx, s in enumerate(_schedulers):
            self._schedulers[idx].load_state_dict(s)


class SequentialLR(_NestedState, LRScheduler):
    """Run ``schedulers`` one after another, switching at the ``milestones`` epochs.

    Args:
        optimizer: wrapped optimizer.
        schedulers: the schedulers, all of ``optimizer``.
        milestones: the epochs at which the next scheduler takes over (one fewer
            than schedulers).
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler as S
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.SGD(model, lr=1.0)
        >>> warmup = S.LinearLR(opt, start_factor=0.25, total_iters=3)
        >>> decay = S.ExponentialLR(opt, gamma=0.5)
        >>> scheduler = S.SequentialLR(opt, [warmup, decay], milestones=[3])
        >>> lrs = []
        >>> for _ in range(6):
        ...     opt.step(jmod.grad(lambda m: m.bias.sum())(model))
        ...     lrs.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> lrs
        [0.25, 0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(
        self, optimizer: Optimizer, schedulers: list[LRScheduler], milestones: list[int], last_epoch: int = -1
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError(f"{self.__class__.__name__} expects at least one scheduler, but got no scheduler.")
        _check_schedulers(self, optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers {len(schedulers)} and the "
                f"number of milestones to be equal to {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer

        # Reset learning rates back to initial values
        for group in self.optimizer.param_groups:
            _update_param_group_val(group, "lr", group["initial_lr"])

        # "Undo" the step performed by other schedulers
        self.recursive_undo()

        # Perform the initial step for only the scheduler meant to run at step 0.
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def recursive_undo(self, sched: Any = None) -> None:
        """Recursively undo any step performed by the initialization of schedulers."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        """Perform a step."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class PolynomialLR(LRScheduler):
    r"""Decay each group's learning rate with a polynomial of the epoch over ``total_iters`` epochs.

    Args:
        optimizer: wrapped optimizer.
        total_iters: the number of steps the learning rate decays over. Default: 5.
        power: the power of the polynomial. Default: 1.0.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.PolynomialLR(optimizer, total_iters=4, power=1.0)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.075, 0.05, 0.025, 0.0, 0.0]
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""The chainable form of
        :math:`\text{base\_lr} \cdot (1 - \text{last\_epoch} / \text{total\_iters})^\text{power}`."""
        _warn_get_lr_called_within_step(self)
        if self._is_initial or self.last_epoch > self.total_iters:
            return _param_groups_val_list(self.optimizer, "lr")
        decay_factor = (
            (1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)
        ) ** self.power
        return [group["lr"] * decay_factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            (base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power)
            for base_lr in self.base_lrs
        ]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing of each group's learning rate from its initial value to ``eta_min``
    over ``T_max`` epochs (SGDR without restarts), in torch's recursive form:

    .. math::
        \eta_{t+1} = \eta_{\min} + (\eta_t - \eta_{\min}) \cdot
        \frac{1 + \cos\left(\frac{(T_{cur}+1) \pi}{T_{max}}\right)}
            {1 + \cos\left(\frac{T_{cur} \pi}{T_{max}}\right)}

    Past ``T_max`` the learning rate rises again (a cosine of period ``2 * T_max``).

    Args:
        optimizer: wrapped optimizer.
        T_max: maximum number of iterations.
        eta_min: minimum learning rate. Default: 0.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=4, eta_min=0.0)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.085355, 0.05, 0.014645, 0.0]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""The recursive step of the cosine schedule."""
        _warn_get_lr_called_within_step(self)
        if self._is_initial:
            return _param_groups_val_list(self.optimizer, "lr")
        elif self._step_count == 1 and self.last_epoch > 0:
            return [
                self.eta_min + (base_lr - self.eta_min) * (1 + math.cos((self.last_epoch) * math.pi / self.T_max)) / 2
                for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups, strict=True)
            ]
        elif (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [
                group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups, strict=True)
            ]
        return [
            (1 + math.cos(math.pi * self.last_epoch / self.T_max))
            / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
            * (group["lr"] - self.eta_min)
            + self.eta_min
            for group in self.optimizer.param_groups
        ]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


class ChainedScheduler(_NestedState, LRScheduler):
    """Step several chainable schedulers of one optimizer with one ``step()`` call
    (their effects multiply).

    Args:
        schedulers: the schedulers to chain.
        optimizer: their optimizer. Default: the first scheduler's.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=1.0)
        >>> scheduler = lr_scheduler.ChainedScheduler([lr_scheduler.ConstantLR(optimizer, factor=0.1, total_iters=2), lr_scheduler.ExponentialLR(optimizer, gamma=0.9)])
        >>> lrs = []
        >>> for epoch in range(4):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.09, 0.81, 0.729]
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{self.__class__.__name__} expects at least one scheduler to be chained, but got no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        _check_schedulers(self, optimizer, schedulers)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = _param_groups_val_list(self._schedulers[-1].optimizer, "lr")

    def step(self) -> None:  # type: ignore[override]
        """Perform a step."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _param_groups_val_list(self._schedulers[-1].optimizer, "lr")


class ReduceLROnPlateau(LRScheduler):
    """Reduce each group's learning rate by ``factor`` when a metric stops improving
    for more than ``patience`` epochs. ``step(metric)`` takes the metric (a float or
    a scalar array).

    Args:
        optimizer: wrapped optimizer.
        mode: ``"min"`` (the metric should decrease) or ``"max"``. Default: ``"min"``.
        factor: ``new_lr = lr * factor``. Default: 0.1.
        patience: the number of epochs without improvement tolerated before the
            learning rate is reduced. Default: 10.
        threshold: the margin a new value must beat the best by to count as an
            improvement. Default: 1e-4.
        threshold_mode: ``"rel"`` (``best * (1 -/+ threshold)``) or ``"abs"``
            (``best -/+ threshold``). Default: ``"rel"``.
        cooldown: epochs to wait after a reduction before counting bad epochs
            again. Default: 0.
        min_lr: a lower bound on the learning rate, one for all groups or a list.
            Default: 0.
        eps: a reduction smaller than ``eps`` is skipped. Default: 1e-8.

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> opt = jmod.optim.SGD(nn.Linear(2, 1), lr=0.1)
        >>> scheduler = jmod.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1)
        >>> for val_loss in [1.0, 0.9, 0.95, 0.97]:
        ...     scheduler.step(val_loss)
        >>> scheduler.get_last_lr()
        [0.010000000000000002]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: list[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        self.factor = factor

        # Attach optimizer
        _check_optimizer(optimizer)
        self.optimizer = optimizer

        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)

        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _param_groups_val_list(self.optimizer, "lr")
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self) -> None:
        """Reset num_bad_epochs counter and cooldown counter."""
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Perform a step with this epoch's metric (``epoch`` is deprecated, as in torch)."""
        # convert `metrics` to float, in case it's a zero-dim array
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch

        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1

        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # ignore any bad epochs in cooldown

        if self.num_bad_epochs > self.patience:
            self._reduce_lr(epoch)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

        self._last_lr = _param_groups_val_list(self.optimizer, "lr")

    def _reduce_lr(self, epoch: int) -> None:
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    "The number of param groups in the `optimizer` "
                    f"({len(self.optimizer.param_groups)}) differs "
                    f"from when `ReduceLROnPlateau` was initialized "
                    f"({len(self.min_lrs)}), usually due to a new "
                    "param group being added to the optimizer. Please "
                    "modify the `min_lrs` field to match the length "
                    "of the `optimizer` param groups."
                )
            else:
                self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)

        for i, param_group in enumerate(self.optimizer.param_groups):
            old_lr = float(param_group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                _update_param_group_val(param_group, "lr", new_lr)

    @property
    def in_cooldown(self) -> bool:
        """Whether the scheduler is waiting out its cooldown."""
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            rel_epsilon = 1.0 - self.threshold
            return a < best * rel_epsilon
        elif self.mode == "min" and self.threshold_mode == "abs":
            return a < best - self.threshold
        elif self.mode == "max" and self.threshold_mode == "rel":
            rel_epsilon = self.threshold + 1.0
            return a > best * rel_epsilon
        else:  # mode == 'max' and epsilon_mode == 'abs':
            return a > best + self.threshold

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in {"min", "max"}:
            raise ValueError("mode " + mode + " is unknown!")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError("threshold mode " + threshold_mode + " is unknown!")
        # the worse value for the chosen mode
        self.mode_worse = inf if mode == "min" else -inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the scheduler's state."""
        self.__dict__.update(state_dict)
        self._init_is_better(mode=self.mode, threshold=self.threshold, threshold_mode=self.threshold_mode)


def _momentum_setup(owner: Any, optimizer: Optimizer) -> None:
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
    owner.use_beta1 = "betas" in optimizer.defaults


def _set_momentum(group: dict[str, Any], use_beta1: bool, momentum: float) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


class CyclicLR(LRScheduler):
    r"""Cycle each group's learning rate between ``base_lr`` and ``max_lr`` (cyclical
    learning rates, Smith 2017), stepped after every batch; the momentum (SGD's
    ``"momentum"``, Adam's ``betas[0]``) cycles inversely between ``max_momentum``
    and ``base_momentum``.

    Args:
        optimizer: wrapped optimizer.
        base_lr: lower learning rate boundary, one for all groups or a list.
        max_lr: upper learning rate boundary, one for all groups or a list.
        step_size_up: iterations in the increasing half of a cycle. Default: 2000.
        step_size_down: iterations in the decreasing half. Default: ``step_size_up``.
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``; ignored when
            ``scale_fn`` is given. Default: ``"triangular"``.
        gamma: the constant of ``"exp_range"`` (``gamma**iterations``). Default: 1.0.
        scale_fn: a custom scaling policy, a function of one argument with values in
            [0, 1]. Default: None.
        scale_mode: ``"cycle"`` or ``"iterations"``: what ``scale_fn`` is evaluated
            on. Default: ``"cycle"``.
        cycle_momentum: cycle the momentum too. Default: True.
        base_momentum: lower momentum boundary (reached at ``max_lr``). Default: 0.8.
        max_momentum: upper momentum boundary (at ``base_lr``). Default: 0.9.
        last_epoch: the index of the last batch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> scheduler = lr_scheduler.CyclicLR(optimizer, base_lr=0.01, max_lr=0.1, step_size_up=2)
        >>> lrs = []
        >>> for epoch in range(6):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.01, 0.055, 0.1, 0.055, 0.01, 0.055]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        last_epoch: int = -1,
    ) -> None:
        # Attach optimizer
        _check_optimizer(optimizer)
        self.optimizer = optimizer

        base_lrs = _format_param("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups, strict=True):
                _update_param_group_val(group, "lr", lr)

        self.max_lrs = _format_param("max_lr", optimizer, max_lr)

        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size

        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")

        self.mode = mode
        self.gamma = gamma

        self._scale_fn_ref: Callable[[float], float]
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()

        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            _momentum_setup(self, optimizer)
            self.base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            self.max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for m_momentum, b_momentum, group in zip(
                    self.max_momentums, self.base_momentums, optimizer.param_groups, strict=True
                ):
                    _set_momentum(group, self.use_beta1, m_momentum)
                    group["max_momentum"] = m_momentum
                    group["base_momentum"] = b_momentum

        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        if self._scale_fn_custom is not None:
            return
        if self.mode == "triangular":
            self._scale_fn_ref = self._triangular_scale_fn
            self.scale_mode = "cycle"
        elif self.mode == "triangular2":
            self._scale_fn_ref = self._triangular2_scale_fn
            self.scale_mode = "cycle"
        elif self.mode == "exp_range":
            self._scale_fn_ref = partial(self._exp_range_scale_fn, self.gamma)
            self.scale_mode = "iterations"

    def scale_fn(self, x: float) -> float:
        """Get the scaling policy."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        return self._scale_fn_ref(x)  # static method

    @staticmethod
    def _triangular_scale_fn(x: float) -> float:
        return 1.0

    @staticmethod
    def _triangular2_scale_fn(x: float) -> float:
        return 1 / (2.0 ** (x - 1))

    @staticmethod
    def _exp_range_scale_fn(gamma: float, x: float) -> float:
        return gamma**x

    def get_lr(self) -> list[float]:
        r"""The learning rates at ``last_epoch`` in the cycle; when ``cycle_momentum``
        is True this also sets the groups' momentum."""
        _warn_get_lr_called_within_step(self)
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)

        lrs = []
        for base_lr, max_lr in zip(self.base_lrs, self.max_lrs, strict=True):
            base_height = (max_lr - base_lr) * scale_factor
            if self.scale_mode == "cycle":
                lr = base_lr + base_height * self.scale_fn(cycle)
            else:
                lr = base_lr + base_height * self.scale_fn(self.last_epoch)
            lrs.append(lr)

        if self.cycle_momentum:
            momentums = []
            for base_momentum, max_momentum in zip(self.base_momentums, self.max_momentums, strict=True):
                base_height = (max_momentum - base_momentum) * scale_factor
                if self.scale_mode == "cycle":
                    momentum = max_momentum - base_height * self.scale_fn(cycle)
                else:
                    momentum = max_momentum - base_height * self.scale_fn(self.last_epoch)
                momentums.append(momentum)
            for param_group, momentum in zip(self.optimizer.param_groups, momentums, strict=True):
                _set_momentum(param_group, self.use_beta1, momentum)

        return lrs

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state; a custom ``scale_fn`` is saved only if it is a
        callable object (its ``__dict__``), not a function or lambda."""
        state = super().state_dict()
        # `_scale_fn_ref` is rebuilt by load_state_dict.
        state.pop("_scale_fn_ref", None)
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = None
        if fn is not None and not isinstance(fn, types.FunctionType):
            # The _scale_fn_custom will only be saved if it is a callable object
            # and not if it is a function or lambda.
            state["_scale_fn_custom"] = fn.__dict__.copy()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the scheduler's state."""
        fn = state_dict.pop("_scale_fn_custom")
        super().load_state_dict(state_dict)
        if fn is not None:
            self._scale_fn_custom.__dict__.update(fn)
        self._init_scale_fn()


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR): the learning rate follows

    .. math::
        \eta_t = \eta_{min} + \frac{1}{2}(\eta_{max} - \eta_{min})\left(1 +
        \cos\left(\frac{T_{cur}}{T_{i}}\pi\right)\right)

    and restarts at the initial lr every :math:`T_i` epochs, :math:`T_i` growing by
    ``T_mult`` after each restart. ``step(epoch)`` with a fractional epoch (``epoch
    + i / iters``) may be called after every batch.

    Args:
        optimizer: wrapped optimizer.
        T_0: number of iterations until the first restart.
        T_mult: the factor :math:`T_i` grows by after a restart. Default: 1.
        eta_min: minimum learning rate. Default: 0.
        last_epoch: the index of the last epoch. Default: -1.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> from jmod.optim import lr_scheduler
        >>> model = nn.Linear(2, 1)
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> optimizer = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=3)
        >>> lrs = []
        >>> for epoch in range(7):
        ...     lrs.append(round(scheduler.get_last_lr()[0], 6))
        ...     optimizer.step(grads)  # an epoch of training with this lr
        ...     scheduler.step()
        >>> lrs
        [0.1, 0.075, 0.025, 0.1, 0.075, 0.025, 0.1]
    """

    def __init__(
        self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        r"""``eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``."""
        _warn_get_lr_called_within_step(self)
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
            for base_lr in self.base_lrs
        ]

    def step(self, epoch: float | None = None) -> None:
        """Step the schedule; ``epoch`` (not deprecated here) may be fractional, e.g.
        ``scheduler.step(epoch + i / iters)`` after batch ``i``."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0

        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)

        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for param_group, lr in zip(self.optimizer.param_groups, values, strict=True):
            _update_param_group_val(param_group, "lr", lr)

        self._last_lr = _param_groups_val_list(self.optimizer, "lr")


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin 2017): anneal each group's learning rate from
    ``max_lr / div_factor`` up to ``max_lr`` and then down to a much lower minimum,
    stepped after every batch, with the momentum (SGD's ``"momentum"``, Adam's
    ``betas[0]``) cycled inversely. Not chainable.

    Give either ``total_steps`` or both ``epochs`` and ``steps_per_epoch``.

    Args:
        optimizer: wrapped optimizer.
        max_lr: the peak learning rate, one for all groups or a list.
        total_steps: the number of steps in the cycle. Default: None.
        epochs, steps_per_epoch: give ``total_steps = epochs * steps_per_epoch``.
        pct_start: the fraction of the cycle spent increasing the learning rate.
            Default: 0.3.
        anneal_strategy: ``"cos"`` or ``"linear"``. Default: ``"cos"``.
        cycle_momentum: cycle the momentum inversely to the learning rate. Default: True.
        base_momentum: the momentum at the peak learning rate. Default: 0.85.
        max_momentum: the momentum at the start and end. Default: 0.95.
        div_factor: ``initial_lr = max_lr / div_factor``. Default: 25.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``. Default: 1e4.
        three_phase: use a third phase that annihilates the learning rate (the
            original paper) instead of fastai's two phases. Default: False.
        last_epoch: the index of the last batch. Default: -1.

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> opt = jmod.optim.Adam(nn.Linear(2, 1))
        >>> scheduler = jmod.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=10)
        >>> [round(lr, 6) for lr in scheduler.get_last_lr()], opt.param_groups[0]["betas"]
        ([0.0004], (0.95, 0.999))
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        # Validate optimizer
        _check_optimizer(optimizer)
        self.optimizer = optimizer

        # Validate total_steps
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")

        if three_phase:
            self._schedule_phases = [
                {
                    "end_step": float(pct_start * self.total_steps) - 1,
                    "start_lr": "initial_lr",
                    "end_lr": "max_lr",
                    "start_momentum": "max_momentum",
                    "end_momentum": "base_momentum",
                },
                {
                    "end_step": float(2 * pct_start * self.total_steps) - 2,
                    "start_lr": "max_lr",
                    "end_lr": "initial_lr",
                    "start_momentum": "base_momentum",
                    "end_momentum": "max_momentum",
                },
                {
                    "end_step": self.total_steps - 1,
                    "start_lr": "initial_lr",
                    "end_lr": "min_lr",
                    "start_momentum": "max_momentum",
                    "end_momentum": "max_momentum",
                },
            ]
        else:
            self._schedule_phases = [
                {
                    "end_step": float(pct_start * self.total_steps) - 1,
                    "start_lr": "initial_lr",
                    "end_lr": "max_lr",
                    "start_momentum": "max_momentum",
                    "end_momentum": "base_momentum",
                },
                {
                    "end_step": self.total_steps - 1,
                    "start_lr": "max_lr",
                    "end_lr": "min_lr",
                    "start_momentum": "base_momentum",
                    "end_momentum": "max_momentum",
                },
            ]

        # Validate pct_start
        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")

        # Validate anneal_strategy
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._anneal_func_type = anneal_strategy

        # Initialize learning rate variables
        max_lrs = _format_param("max_lr", self.optimizer, max_lr)
        if last_epoch == -1:
            for idx, group in enumerate(self.optimizer.param_groups):
                group["initial_lr"] = max_lrs[idx] / div_factor
                group["max_lr"] = max_lrs[idx]
                group["min_lr"] = group["initial_lr"] / final_div_factor

        # Initialize momentum variables
        self.cycle_momentum = cycle_momentum
        if self.cycle_momentum:
            _momentum_setup(self, optimizer)
            max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for m_momentum, b_momentum, group in zip(
                    max_momentums, base_momentums, optimizer.param_groups, strict=True
                ):
                    _set_momentum(group, self.use_beta1, m_momentum)
                    group["max_momentum"] = m_momentum
                    group["base_momentum"] = b_momentum

        super().__init__(optimizer, last_epoch)

    def _anneal_func(self, *args: Any, **kwargs: Any) -> float:
        if self._anneal_func_type == "cos":
            return self._annealing_cos(*args, **kwargs)
        elif self._anneal_func_type == "linear":
            return self._annealing_linear(*args, **kwargs)
        raise ValueError(f"Unknown _anneal_func_type: {self._anneal_func_type}")

    @staticmethod
    def _annealing_cos(start: float, end: float, pct: float) -> float:
        """Cosine anneal from `start` to `end` as pct goes from 0.0 to 1.0."""
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out

    @staticmethod
    def _annealing_linear(start: float, end: float, pct: float) -> float:
        """Linearly anneal from `start` to `end` as pct goes from 0.0 to 1.0."""
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        r"""The learning rates at ``last_epoch`` in the cycle; when ``cycle_momentum``
        is True this also sets the groups' momentum."""
        _warn_get_lr_called_within_step(self)
        lrs = []
        step_num = self.last_epoch

        if step_num > self.total_steps:
            raise ValueError(
                f"Tried to step {step_num} times. The specified number of total steps is {self.total_steps}"
            )

        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    computed_lr = self._anneal_func(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        computed_momentum = self._anneal_func(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct
                        )
                    break
                start_step = phase["end_step"]

            lrs.append(computed_lr)
            if self.cycle_momentum:
                _set_momentum(group, self.use_beta1, computed_momentum)

        return lrs
