"""torch.optim's optimizers by name: SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam,
RAdam, Adadelta, Rprop, ASGD.

Same constructor arguments and defaults as torch, same numbers step for step (see
``_torch_rules.py``). Options live in the optax state (``optax.inject_hyperparams``)
so ``param_groups[i]["lr"] = ...`` takes effect at the next step without
recompiling, and a callable ``lr`` (an optax schedule of the step count) works too.
"""

from __future__ import annotations

import inspect
from typing import Any

import optax

from jmod.optim import _torch_rules, accumulation
from jmod.optim.optimizer import Optimizer

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam", "Adadelta", "Rprop", "ASGD"]


def _check_lr(lr: Any) -> None:
    if not callable(lr) and not 0.0 <= float(lr):
        raise ValueError(f"Invalid learning rate: {lr}")


class _TorchOptimizer(Optimizer):
    """Builds one ``inject_hyperparams`` transformation per parameter group."""

    _rule: Any = None
    _static: tuple[str, ...] = ()
    # torch option name -> rule argument name(s)
    _rename: dict[str, Any] = {}

    def __init__(self, params: Any, **defaults: Any) -> None:
        super().__init__(params, None, defaults=defaults)

    def _rule_args(self, options: dict) -> dict:
        def num(x: Any) -> Any:
            # a Python int (torch's ``momentum=0``, ``step_sizes=(1e-6, 50)``) would become an
            # int32 hyperparameter, and a later float assigned through param_groups truncated
            return float(x) if isinstance(x, int) and not isinstance(x, bool) else x

        # torch keeps a group's other keys (a name, another optimizer's option) and
        # ignores them; so does the rule
        accepted = inspect.signature(type(self)._rule).parameters
        args = {}
        for k, v in options.items():
            target = self._rename.get(k, k)
            if (target[0] if isinstance(target, tuple) else target) not in accepted:
                continue
            if isinstance(target, tuple):
                for t, x in zip(target, v):
                    args[t] = num(x)
            else:
                args[target] = v if k in self._static else num(v)
        return args

    def _build_tx(self, group_options: list[dict]) -> optax.GradientTransformation:
        txs = {}
        for gi, full in enumerate(group_options):
            self._validate(full)
            txs[f"group{gi}"] = optax.inject_hyperparams(type(self)._rule, static_args=self._static)(
                **self._rule_args(full)
            )
        tx = txs["group0"] if len(txs) == 1 else optax.multi_transform(txs, self._labels)
        multi_steps = getattr(self, "_multi_steps", None)  # set by jmod.optim.MultiSteps
        if multi_steps is not None:
            every_k, kwargs = multi_steps
            tx = accumulation.wrap(tx, every_k, kwargs)
        return tx

    def _find_hyperparams(self, state: Any, group_index: int) -> dict | None:
        return super()._find_hyperparams(accumulation.unwrap_state(state), group_index)

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])


class SGD(_TorchOptimizer):
    r"""Stochastic gradient descent (optionally with momentum), torch.optim.SGD's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        momentum (float): momentum factor.
        dampening (float): dampening for momentum.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        nesterov (bool): use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize (bool): maximize the objective instead of minimizing it.
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        differentiable (bool): accepted for torch compatibility.
        fused (bool | None): accepted for torch compatibility (XLA fuses the update).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]
        (0.1, 0.9)
    """

    _rule = staticmethod(_torch_rules.sgd)
    _static = ("nesterov", "maximize")

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: Any = None,
        differentiable: bool = False,
        fused: Any = None,
    ) -> None:
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )


def _check_adam(options: dict) -> None:
    _check_lr(options["lr"])
    if not 0.0 <= options["eps"]:
        raise ValueError(f"Invalid epsilon value: {options['eps']}")
    b1, b2 = options["betas"]
    if not 0.0 <= b1 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {b1}")
    if not 0.0 <= b2 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {b2}")
    if not 0.0 <= options["weight_decay"]:
        raise ValueError(f"Invalid weight_decay value: {options['weight_decay']}")


class Adam(_TorchOptimizer):
    r"""Adam (L2 weight decay added to the gradient), torch.optim.Adam's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        betas (tuple[float, float]): coefficients of the running averages of the gradient and its square.
        eps (float): term added to the denominator for numerical stability.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        amsgrad (bool): use the AMSGrad variant (the maximum of the second moments).
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).
        differentiable (bool): accepted for torch compatibility.
        fused (bool | None): accepted for torch compatibility (XLA fuses the update).
        decoupled_weight_decay (bool): ``True`` decays the weights directly, as AdamW does.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.Adam(model.parameters(), lr=1e-3)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["betas"], opt.param_groups[0]["eps"]
        ((0.9, 0.999), 1e-08)
    """

    _rule = staticmethod(_torch_rules.adam)
    _static = ("amsgrad", "maximize", "decoupled_weight_decay")
    _rename = {"betas": ("b1", "b2")}

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: Any = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Any = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        # an option like the others (torch keeps it in each param group), read by the rule:
        # never a per-instance rule, which the builder (reading the class) would not see
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )

    def _validate(self, options: dict) -> None:
        _check_adam(options)


class AdamW(Adam):
    r"""AdamW (decoupled weight decay), torch.optim.AdamW's numbers; ``weight_decay``
    defaults to 0.01 as in torch. As in torch it is ``Adam(..., decoupled_weight_decay=True)``.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        betas (tuple[float, float]): coefficients of the running averages of the gradient and its square.
        eps (float): term added to the denominator for numerical stability.
        weight_decay (float): decoupled weight decay: ``param *= 1 - lr * weight_decay`` each step.
        amsgrad (bool): use the AMSGrad variant (the maximum of the second moments).
        maximize (bool): maximize the objective instead of minimizing it.
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).
        differentiable (bool): accepted for torch compatibility.
        fused (bool | None): accepted for torch compatibility (XLA fuses the update).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.AdamW(model.parameters(), lr=1e-3)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["weight_decay"]
        0.01
    """

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: Any = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Any = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )


class RMSprop(_TorchOptimizer):
    r"""RMSprop, torch.optim.RMSprop's numbers (``eps`` outside the square root).

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        alpha (float): smoothing constant of the running average of the squared gradient.
        eps (float): term added to the denominator for numerical stability.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        momentum (float): momentum factor.
        centered (bool): normalize by an estimate of the gradient's variance.
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        differentiable (bool): accepted for torch compatibility.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.RMSprop(model.parameters(), lr=0.01)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["alpha"]
        0.99
    """

    _rule = staticmethod(_torch_rules.rmsprop)
    _static = ("centered", "maximize")

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: Any = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )


class Adagrad(_TorchOptimizer):
    r"""Adagrad, torch.optim.Adagrad's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        lr_decay (float): learning rate decay: the step uses ``lr / (1 + (step - 1) * lr_decay)``.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        initial_accumulator_value (float): starting value of the sum of squared gradients.
        eps (float): term added to the denominator for numerical stability.
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        differentiable (bool): accepted for torch compatibility.
        fused (bool | None): accepted for torch compatibility (XLA fuses the update).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.Adagrad(model.parameters(), lr=0.01)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["eps"]
        1e-10
    """

    _rule = staticmethod(_torch_rules.adagrad)
    _static = ("maximize",)

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])
        # the rest of torch's checks, in its order
        for key, what in [
            ("lr_decay", "lr_decay"),
            ("weight_decay", "weight_decay"),
            ("initial_accumulator_value", "initial_accumulator_value"),
            ("eps", "epsilon"),
        ]:
            if not 0.0 <= options[key]:
                raise ValueError(f"Invalid {what} value: {options[key]}")

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: Any = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: Any = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )


def _check(options: dict, checks: list) -> None:
    """torch's ``0.0 <= value`` checks, in its order: ``(key, what)`` pairs, or ``"betas"``."""
    for item in checks:
        if item == "betas":
            b1, b2 = options["betas"]
            if not 0.0 <= b1 < 1.0:
                raise ValueError(f"Invalid beta parameter at index 0: {b1}")
            if not 0.0 <= b2 < 1.0:
                raise ValueError(f"Invalid beta parameter at index 1: {b2}")
            continue
        key, what = item
        if not 0.0 <= options[key]:
            raise ValueError(f"Invalid {what} value: {options[key]}")


class Adamax(_TorchOptimizer):
    r"""Adamax (Adam with the infinity norm), torch.optim.Adamax's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        betas (tuple[float, float]): coefficients of the running averages of the gradient and its infinity norm.
        eps (float): term added to the denominator for numerical stability.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        differentiable (bool): accepted for torch compatibility.
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.Adamax(model.parameters())
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["lr"], opt.param_groups[0]["betas"]
        (0.002, (0.9, 0.999))
    """

    _rule = staticmethod(_torch_rules.adamax)
    _static = ("maximize",)
    _rename = {"betas": ("b1", "b2")}

    def __init__(
        self,
        params: Any,
        lr: Any = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: Any = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])
        _check(options, [("eps", "epsilon"), "betas", ("weight_decay", "weight_decay")])


class NAdam(_TorchOptimizer):
    r"""NAdam (Adam with Nesterov momentum), torch.optim.NAdam's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        betas (tuple[float, float]): coefficients of the running averages of the gradient and its square.
        eps (float): term added to the denominator for numerical stability.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        momentum_decay (float): the momentum schedule's decay (psi in the paper).
        decoupled_weight_decay (bool): ``True`` gives NAdamW (decoupled weight decay, as torch).
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).
        differentiable (bool): accepted for torch compatibility.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.NAdam(model.parameters())
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["momentum_decay"]
        0.004
    """

    _rule = staticmethod(_torch_rules.nadam)
    _static = ("decoupled_weight_decay", "maximize")
    _rename = {"betas": ("b1", "b2")}

    def __init__(
        self,
        params: Any,
        lr: Any = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: Any = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])
        _check(
            options,
            [("eps", "epsilon"), "betas", ("weight_decay", "weight_decay"), ("momentum_decay", "momentum_decay")],
        )


class RAdam(_TorchOptimizer):
    r"""RAdam (rectified Adam), torch.optim.RAdam's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        betas (tuple[float, float]): coefficients of the running averages of the gradient and its square.
        eps (float): term added to the denominator for numerical stability.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        decoupled_weight_decay (bool): ``True`` decays the weights directly, as AdamW does.
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).
        differentiable (bool): accepted for torch compatibility.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.RAdam(model.parameters(), lr=1e-3)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["betas"]
        (0.9, 0.999)
    """

    _rule = staticmethod(_torch_rules.radam)
    _static = ("decoupled_weight_decay", "maximize")
    _rename = {"betas": ("b1", "b2")}

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: Any = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])
        _check(options, [("eps", "epsilon"), "betas", ("weight_decay", "weight_decay")])


class Adadelta(_TorchOptimizer):
    r"""Adadelta, torch.optim.Adadelta's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): coefficient that scales the delta before it is applied.
        rho (float): coefficient of the running averages of the squared gradient and the squared delta.
        eps (float): term added to the denominator for numerical stability.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).
        maximize (bool): maximize the objective instead of minimizing it.
        differentiable (bool): accepted for torch compatibility.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.Adadelta(model.parameters())
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["lr"], opt.param_groups[0]["rho"]
        (1.0, 0.9)
    """

    _rule = staticmethod(_torch_rules.adadelta)
    _static = ("maximize",)

    def __init__(
        self,
        params: Any,
        lr: Any = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: Any = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])
        if not 0.0 <= options["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {options['rho']}")
        _check(options, [("eps", "epsilon"), ("weight_decay", "weight_decay")])


class Rprop(_TorchOptimizer):
    r"""Rprop (resilient backpropagation), torch.optim.Rprop's numbers.

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): the initial per-element step size (taken when the state is created, as
            in torch; later changes of ``lr`` do not affect the step sizes).
        etas (tuple[float, float]): ``(etaminus, etaplus)``, the factors shrinking / growing a step size.
        step_sizes (tuple[float, float]): ``(min, max)`` step size.
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        differentiable (bool): accepted for torch compatibility.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.Rprop(model.parameters(), lr=0.01)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["etas"], opt.param_groups[0]["step_sizes"]
        ((0.5, 1.2), (1e-06, 50))
    """

    _rule = staticmethod(_torch_rules.rprop)
    _static = ("maximize",)
    _rename = {"etas": ("etaminus", "etaplus"), "step_sizes": ("step_size_min", "step_size_max")}

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: Any = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), maximize=maximize)

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])
        etaminus, etaplus = options["etas"]
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(f"Invalid eta values: {etaminus}, {etaplus}")


class ASGD(_TorchOptimizer):
    r"""Averaged SGD, torch.optim.ASGD's numbers (the average is kept in the ``"ax"``
    state, as torch does; the parameters follow the plain iterates).

    Args:
        params (iterable | Module): the model, ``model.parameters()``, ``model.named_parameters()``
            or a list of parameter-group dicts (see ``jmod.optim.param_groups``).
        lr (float | Callable): learning rate (a float, or an optax schedule of the step count).
        lambd (float): decay term.
        alpha (float): power for the eta update.
        t0 (float): the step at which averaging starts.
        weight_decay (float): L2 penalty: ``weight_decay * param`` is added to the gradient.
        foreach (bool | None): accepted for torch compatibility (XLA fuses the update loop).
        maximize (bool): maximize the objective instead of minimizing it.
        differentiable (bool): accepted for torch compatibility.
        capturable (bool): accepted for torch compatibility (every jmod step can be compiled).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.ASGD(model.parameters(), lr=0.01)
        >>> w0 = model.weight
        >>> opt.step(jmod.grad(lambda m: m(jnp.ones((4, 2))).sum())(model))
        >>> bool((model.weight != w0).all())  # one step taken
        True
        >>> opt.param_groups[0]["t0"]
        1000000.0
    """

    _rule = staticmethod(_torch_rules.asgd)
    _static = ("maximize",)

    def __init__(
        self,
        params: Any,
        lr: Any = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: Any = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)

    def _validate(self, options: dict) -> None:
        _check_lr(options["lr"])
        _check(options, [("weight_decay", "weight_decay")])
