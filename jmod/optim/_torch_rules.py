"""torch.optim's update rules as optax ``GradientTransformation``s.

optax's ``sgd``/``adam``/``rmsprop`` differ from torch in details that change the
numbers: torch's SGD takes the first momentum buffer as the gradient itself and
applies dampening after that, RMSprop adds ``eps`` outside the square root, Adam
keeps a step count *per parameter*, and a parameter without a gradient is skipped
entirely (its state does not move). These transformations reproduce torch's
``_single_tensor_*`` implementations operation by operation, with torch's state
layout (``{name: {"step", "exp_avg", "exp_avg_sq", "momentum_buffer", ...}}``), so
``jmod.optim.SGD/Adam/AdamW/RMSprop`` give torch's numbers step for step.

Each takes the learning rate and other numeric options as arguments so that
``optax.inject_hyperparams`` can make them live state (``param_groups[i]["lr"] =
...`` between or inside compiled steps changes them without recompiling). The
``has_grad`` extra argument names the parameters that received a gradient this step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jmod._src.arrays import host_full, is_tracer

__all__ = ["sgd", "adam", "adamw", "rmsprop", "adagrad"]


def _is_masked(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def _zeros_like(p: jax.Array, fill: Any = 0) -> jax.Array:
    """Optimizer state buffers built on the host (eager ``jnp.zeros_like`` compiles per shape)."""
    if is_tracer(p):
        return jnp.full_like(p, fill)
    return host_full(p.shape, fill, p.dtype)


def _per_param(init_one: Any, update_one: Any, hyper: dict, **static: Any) -> optax.GradientTransformationExtraArgs:
    """Lift a per-parameter rule to a dict of parameters, skipping ones without grads.

    ``update_one(g, state, p, hyper, **static)`` is compiled once per parameter shape
    (``hyper`` holds the numeric options, live values from ``inject_hyperparams``), so an
    eager step does not dispatch and compile every small operation separately.
    """
    step = jax.jit(update_one, static_argnames=tuple(static))

    def init_fn(params: dict) -> dict:
        return {n: (p if _is_masked(p) else init_one(p)) for n, p in params.items()}

    def update_fn(updates: dict, state: dict, params: dict | None = None, has_grad: Any = None, **_: Any) -> Any:
        if params is None:
            raise ValueError("torch-style optimizers need the parameters: call update(grads, state, params)")
        new_updates = {}
        new_state = {}
        for n, g in updates.items():
            if _is_masked(g):
                new_updates[n], new_state[n] = g, state[n]
                continue
            p = params[n]
            if has_grad is not None and not has_grad.get(n, True):
                # torch skips parameters whose .grad is None: no update, state untouched.
                new_updates[n], new_state[n] = jnp.zeros_like(p), state[n]
                continue
            new_p, new_state[n] = step(g, state[n], p, hyper, **static)
            new_updates[n] = (new_p - p).astype(p.dtype)
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _sgd_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, nesterov: bool, maximize: bool) -> tuple:
    lr, momentum, dampening, weight_decay = h["lr"], h["momentum"], h["dampening"], h["weight_decay"]
    g = -g if maximize else g
    g = g + weight_decay * p
    step = s["step"] + 1
    # torch: the first buffer is the gradient itself (no dampening), then
    # buf = momentum * buf + (1 - dampening) * grad.
    buf = jnp.where(s["step"] == 0, g, momentum * s["momentum_buffer"] + (1 - dampening) * g)
    d = jnp.where(momentum != 0, g + momentum * buf if nesterov else buf, g)
    buf = jnp.where(momentum != 0, buf, s["momentum_buffer"])
    return p - lr * d, {"momentum_buffer": buf, "step": step}


def sgd(
    lr: Any = 1e-3,
    momentum: Any = 0.0,
    dampening: Any = 0.0,
    weight_decay: Any = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.SGD's rule (``_single_tensor_sgd``)."""

    def init_one(p: jax.Array) -> dict:
        return {"momentum_buffer": _zeros_like(p), "step": host_full((), 0, jnp.int32)}

    hyper = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay}
    return _per_param(init_one, _sgd_one, hyper, nesterov=nesterov, maximize=maximize)


def _adam_one(
    g: jax.Array, s: dict, p: jax.Array, h: dict, *, decoupled: bool, amsgrad: bool, maximize: bool
) -> tuple:
    lr, b1, b2, eps, weight_decay = h["lr"], h["b1"], h["b2"], h["eps"], h["weight_decay"]
    g = -g if maximize else g
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    step = s["step"] + 1
    exp_avg = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)  # torch: exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq = s["exp_avg_sq"] * b2 + (1 - b2) * g * g
    bias_correction1 = 1 - b1**step
    bias_correction2 = 1 - b2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = jnp.sqrt(bias_correction2)
    new = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    if amsgrad:
        max_sq = jnp.maximum(s["max_exp_avg_sq"], exp_avg_sq)
        new["max_exp_avg_sq"] = max_sq
        denom = jnp.sqrt(max_sq) / bias_correction2_sqrt + eps
    else:
        denom = jnp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    return p - step_size * (exp_avg / denom), new


def _adam_like(decoupled: bool) -> Any:
    def factory(
        lr: Any = 1e-3,
        b1: Any = 0.9,
        b2: Any = 0.999,
        eps: Any = 1e-8,
        weight_decay: Any = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> optax.GradientTransformationExtraArgs:
        def init_one(p: jax.Array) -> dict:
            s = {"step": host_full((), 0, jnp.float32), "exp_avg": _zeros_like(p), "exp_avg_sq": _zeros_like(p)}
            if amsgrad:
                s["max_exp_avg_sq"] = _zeros_like(p)
            return s

        hyper = {"lr": lr, "b1": b1, "b2": b2, "eps": eps, "weight_decay": weight_decay}
        return _per_param(init_one, _adam_one, hyper, decoupled=decoupled, amsgrad=amsgrad, maximize=maximize)

    return factory


adam = _adam_like(decoupled=False)
adam.__doc__ = "torch.optim.Adam's rule (L2 weight decay added to the gradient)."
adamw = _adam_like(decoupled=True)
adamw.__doc__ = "torch.optim.AdamW's rule (decoupled weight decay: p *= 1 - lr * wd first)."


def _rmsprop_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, centered: bool, maximize: bool) -> tuple:
    lr, alpha, eps, weight_decay, momentum = h["lr"], h["alpha"], h["eps"], h["weight_decay"], h["momentum"]
    g = -g if maximize else g
    g = g + weight_decay * p
    square_avg = s["square_avg"] * alpha + (1 - alpha) * g * g
    new = {"step": s["step"] + 1, "square_avg": square_avg, "momentum_buffer": s["momentum_buffer"]}
    if centered:
        grad_avg = s["grad_avg"] + (g - s["grad_avg"]) * (1 - alpha)
        new["grad_avg"] = grad_avg
        avg = jnp.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = jnp.sqrt(square_avg) + eps
    buf = s["momentum_buffer"] * momentum + g / avg
    new["momentum_buffer"] = jnp.where(momentum > 0, buf, s["momentum_buffer"])
    new_p = jnp.where(momentum > 0, p - lr * buf, p - lr * (g / avg))
    return new_p, new


def rmsprop(
    lr: Any = 1e-2,
    alpha: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    momentum: Any = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.RMSprop's rule: ``eps`` is added *after* the square root."""

    def init_one(p: jax.Array) -> dict:
        s = {"step": host_full((), 0, jnp.float32), "square_avg": _zeros_like(p), "momentum_buffer": _zeros_like(p)}
        if centered:
            s["grad_avg"] = _zeros_like(p)
        return s

    hyper = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum}
    return _per_param(init_one, _rmsprop_one, hyper, centered=centered, maximize=maximize)


def _adagrad_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, maximize: bool) -> tuple:
    lr, lr_decay, weight_decay, eps = h["lr"], h["lr_decay"], h["weight_decay"], h["eps"]
    g = -g if maximize else g
    step = s["step"] + 1
    g = g + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    total = s["sum"] + g * g
    std = jnp.sqrt(total) + eps
    return p - clr * (g / std), {"step": step, "sum": total}


def adagrad(
    lr: Any = 1e-2,
    lr_decay: Any = 0.0,
    weight_decay: Any = 0.0,
    initial_accumulator_value: Any = 0.0,
    eps: Any = 1e-10,
    maximize: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.Adagrad's rule."""

    def init_one(p: jax.Array) -> dict:
        return {"step": host_full((), 0, jnp.float32), "sum": _zeros_like(p, initial_accumulator_value)}

    hyper = {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay, "eps": eps}
    return _per_param(init_one, _adagrad_one, hyper, maximize=maximize)
