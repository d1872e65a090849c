"""torch.optim's update rules as optax ``GradientTransformation``s.

optax's ``sgd``/``adam``/``rmsprop`` differ from torch in details that change the
numbers: torch's SGD takes the first momentum buffer as the gradient itself and
applies dampening after that, RMSprop adds ``eps`` outside the square root, Adam
keeps a step count *per parameter*, and a parameter without a gradient is skipped
entirely (its state does not move). These transformations reproduce torch's
``_single_tensor_*`` implementations operation by operation, with torch's state
layout (``{name: {"step", "exp_avg", "exp_avg_sq", "momentum_buffer", ...}}``), so
``jmod.optim.SGD/Adam/AdamW/RMSprop/Adagrad/Adamax/NAdam/RAdam/Adadelta/Rprop/ASGD``
give torch's numbers step for step.

Each takes the learning rate and other numeric options as arguments so that
``optax.inject_hyperparams`` can make them live state (``param_groups[i]["lr"] =
...`` between or inside compiled steps changes them without recompiling). The
``has_grad`` extra argument names the parameters that received a gradient this step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jmod._src.arrays import host_full, is_tracer

__all__ = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adamax", "nadam", "radam", "adadelta", "rprop", "asgd"]


def _is_masked(x: Any) -> bool:
    return isinstance(x, optax.MaskedNode)


def _zeros_like(p: jax.Array, fill: Any = 0) -> jax.Array:
    """Optimizer state buffers built on the host (eager ``jnp.zeros_like`` compiles per shape)."""
    if is_tracer(p) or is_tracer(fill):
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


def _adam_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, decoupled: bool, amsgrad: bool, maximize: bool) -> tuple:
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


def adam(
    lr: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.Adam's rule: L2 weight decay added to the gradient, or with
    ``decoupled_weight_decay=True`` AdamW's (``p *= 1 - lr * wd`` first)."""

    def init_one(p: jax.Array) -> dict:
        s = {"step": host_full((), 0, jnp.float32), "exp_avg": _zeros_like(p), "exp_avg_sq": _zeros_like(p)}
        if amsgrad:
            s["max_exp_avg_sq"] = _zeros_like(p)
        return s

    hyper = {"lr": lr, "b1": b1, "b2": b2, "eps": eps, "weight_decay": weight_decay}
    return _per_param(
        init_one, _adam_one, hyper, decoupled=bool(decoupled_weight_decay), amsgrad=amsgrad, maximize=maximize
    )


def adamw(
    lr: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.AdamW's rule (Adam with decoupled weight decay: p *= 1 - lr * wd first)."""
    return adam(lr, b1, b2, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay)


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


def _step0(p: jax.Array) -> jax.Array:
    return host_full((), 0, jnp.float32)


def _scalar(x: Any) -> jax.Array:
    """A float32 scalar state entry holding ``x`` (torch keeps these as 0-d tensors)."""
    if is_tracer(x):
        return jnp.asarray(x, jnp.float32)
    return host_full((), np.asarray(x), jnp.float32)


def _adamax_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, maximize: bool) -> tuple:
    lr, b1, b2, eps, weight_decay = h["lr"], h["b1"], h["b2"], h["eps"], h["weight_decay"]
    g = -g if maximize else g
    step = s["step"] + 1
    g = g + weight_decay * p
    exp_avg = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)
    exp_inf = jnp.maximum(s["exp_inf"] * b2, jnp.abs(g) + eps)
    clr = lr / (1 - b1**step)
    return p - clr * (exp_avg / exp_inf), {"step": step, "exp_avg": exp_avg, "exp_inf": exp_inf}


def adamax(
    lr: Any = 2e-3, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, weight_decay: Any = 0.0, maximize: bool = False
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.Adamax's rule (``_single_tensor_adamax``)."""

    def init_one(p: jax.Array) -> dict:
        return {"step": _step0(p), "exp_avg": _zeros_like(p), "exp_inf": _zeros_like(p)}

    hyper = {"lr": lr, "b1": b1, "b2": b2, "eps": eps, "weight_decay": weight_decay}
    return _per_param(init_one, _adamax_one, hyper, maximize=maximize)


def _nadam_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, decoupled_weight_decay: bool, maximize: bool) -> tuple:
    lr, b1, b2, eps, weight_decay = h["lr"], h["b1"], h["b2"], h["eps"], h["weight_decay"]
    momentum_decay = h["momentum_decay"]
    g = -g if maximize else g
    step = s["step"] + 1
    bias_correction2 = 1 - b2**step
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    mu = b1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product = s["mu_product"] * mu
    exp_avg = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)
    exp_avg_sq = s["exp_avg_sq"] * b2 + (1 - b2) * g * g
    denom = jnp.sqrt(exp_avg_sq / bias_correction2) + eps
    mu_product_next = mu_product * mu_next
    # torch: two addcdiv_ calls, each rounded into the parameter
    p = p + (-lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
    p = p + ((-lr * mu_next) / (1.0 - mu_product_next)) * (exp_avg / denom)
    return p, {"step": step, "mu_product": mu_product, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def nadam(
    lr: Any = 2e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    momentum_decay: Any = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.NAdam's rule (``_single_tensor_nadam``, with its ``mu_product`` state)."""

    def init_one(p: jax.Array) -> dict:
        return {
            "step": _step0(p),
            "mu_product": host_full((), 1, jnp.float32),
            "exp_avg": _zeros_like(p),
            "exp_avg_sq": _zeros_like(p),
        }

    hyper = {"lr": lr, "b1": b1, "b2": b2, "eps": eps, "weight_decay": weight_decay, "momentum_decay": momentum_decay}
    return _per_param(init_one, _nadam_one, hyper, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)


def _radam_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, decoupled_weight_decay: bool, maximize: bool) -> tuple:
    lr, b1, b2, eps, weight_decay = h["lr"], h["b1"], h["b2"], h["eps"], h["weight_decay"]
    g = -g if maximize else g
    step = s["step"] + 1
    if decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    exp_avg = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)
    exp_avg_sq = s["exp_avg_sq"] * b2 + (1 - b2) * g * g
    bias_correction1 = 1 - b1**step
    bias_correction2 = 1 - b2**step
    bias_corrected_exp_avg = exp_avg / bias_correction1
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * step * (b2**step) / bias_correction2
    # torch branches on rho_t > 5 in Python; both sides are computed here and selected
    # (the unselected rectification may be NaN, which `where` discards).
    rect = jnp.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    adaptive_lr = jnp.sqrt(bias_correction2) / (jnp.sqrt(exp_avg_sq) + eps)
    rectified = p - bias_corrected_exp_avg * lr * adaptive_lr * rect
    plain = p - bias_corrected_exp_avg * lr
    new_p = jnp.where(rho_t > 5.0, rectified, plain)
    return new_p, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def radam(
    lr: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.RAdam's rule (``_single_tensor_radam``): the rectified step once
    ``rho_t > 5``, plain bias-corrected momentum before."""

    def init_one(p: jax.Array) -> dict:
        return {"step": _step0(p), "exp_avg": _zeros_like(p), "exp_avg_sq": _zeros_like(p)}

    hyper = {"lr": lr, "b1": b1, "b2": b2, "eps": eps, "weight_decay": weight_decay}
    return _per_param(init_one, _radam_one, hyper, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)


def _adadelta_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, maximize: bool) -> tuple:
    lr, rho, eps, weight_decay = h["lr"], h["rho"], h["eps"], h["weight_decay"]
    step = s["step"] + 1
    g = -g if maximize else g
    g = g + weight_decay * p
    square_avg = s["square_avg"] * rho + (1 - rho) * g * g
    std = jnp.sqrt(square_avg + eps)
    delta = jnp.sqrt(s["acc_delta"] + eps) / std * g
    acc_delta = s["acc_delta"] * rho + (1 - rho) * delta * delta
    return p - lr * delta, {"step": step, "square_avg": square_avg, "acc_delta": acc_delta}


def adadelta(
    lr: Any = 1.0, rho: Any = 0.9, eps: Any = 1e-6, weight_decay: Any = 0.0, maximize: bool = False
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.Adadelta's rule (``_single_tensor_adadelta``)."""

    def init_one(p: jax.Array) -> dict:
        return {"step": _step0(p), "square_avg": _zeros_like(p), "acc_delta": _zeros_like(p)}

    hyper = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay}
    return _per_param(init_one, _adadelta_one, hyper, maximize=maximize)


def _rprop_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, maximize: bool) -> tuple:
    etaminus, etaplus = h["etaminus"], h["etaplus"]
    step_size_min, step_size_max = h["step_size_min"], h["step_size_max"]
    g = -g if maximize else g
    step = s["step"] + 1
    # torch creates the step sizes at the parameter's first step, from the lr of that moment
    step_size = jnp.where(s["step"] == 0, jnp.asarray(h["lr"], p.dtype), s["step_size"])
    sign = jnp.sign(g * s["prev"])
    # torch: sign[sign > 0] = etaplus; sign[sign < 0] = etaminus; sign[sign == 0] = 1 (NaN stays)
    sign = jnp.where(sign > 0, etaplus, sign)
    sign = jnp.where(sign < 0, etaminus, sign)
    sign = jnp.where(sign == 0, 1, sign).astype(p.dtype)
    step_size = jnp.clip(step_size * sign, step_size_min, step_size_max).astype(p.dtype)
    g = jnp.where(sign == etaminus.astype(p.dtype), 0, g)
    return p - jnp.sign(g) * step_size, {"step": step, "prev": g, "step_size": step_size}


def rprop(
    lr: Any = 1e-2,
    etaminus: Any = 0.5,
    etaplus: Any = 1.2,
    step_size_min: Any = 1e-6,
    step_size_max: Any = 50.0,
    maximize: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.Rprop's rule (``_single_tensor_rprop``): per-element step sizes
    (starting at ``lr``) grown by ``etaplus`` while the gradient keeps its sign and
    shrunk by ``etaminus`` (skipping that element's update) when it flips."""

    def init_one(p: jax.Array) -> dict:
        return {"step": _step0(p), "prev": _zeros_like(p), "step_size": _zeros_like(p, lr)}

    hyper = {
        "lr": lr,
        "etaminus": etaminus,
        "etaplus": etaplus,
        "step_size_min": step_size_min,
        "step_size_max": step_size_max,
    }
    return _per_param(init_one, _rprop_one, hyper, maximize=maximize)


def _asgd_one(g: jax.Array, s: dict, p: jax.Array, h: dict, *, maximize: bool) -> tuple:
    lr, lambd, alpha, t0, weight_decay = h["lr"], h["lambd"], h["alpha"], h["t0"], h["weight_decay"]
    g = -g if maximize else g
    step = s["step"] + 1
    g = g + weight_decay * p
    # torch creates eta at the parameter's first step, from the lr of that moment
    eta = jnp.where(s["step"] == 0, jnp.asarray(lr, s["eta"].dtype), s["eta"])
    mu = s["mu"]
    p = p * (1 - lambd * eta)  # decay term
    p = p - eta * g
    ax = jnp.where(mu != 1, s["ax"] + (p - s["ax"]) * mu, p)
    new_eta = lr / ((1 + lambd * lr * step) ** alpha)
    new_mu = 1 / jnp.maximum(1, step - t0)
    return p, {"step": step, "eta": new_eta.astype(eta.dtype), "mu": new_mu.astype(mu.dtype), "ax": ax}


def asgd(
    lr: Any = 1e-2,
    lambd: Any = 1e-4,
    alpha: Any = 0.75,
    t0: Any = 1e6,
    weight_decay: Any = 0.0,
    maximize: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """torch.optim.ASGD's rule (``_single_tensor_asgd``), with its ``eta``, ``mu`` and
    averaged-parameter ``ax`` state."""

    def init_one(p: jax.Array) -> dict:
        return {
            "step": _step0(p),
            "eta": _scalar(lr),
            "mu": host_full((), 1, jnp.float32),
            "ax": _zeros_like(p),
        }

    hyper = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay}
    return _per_param(init_one, _asgd_one, hyper, maximize=maximize)
