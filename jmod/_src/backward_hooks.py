"""Module backward hooks on JAX autodiff (torch's ``BackwardHook``).

torch wires ``register_full_backward_hook`` / ``register_full_backward_pre_hook`` into
autograd by passing the module's inputs and outputs through identity functions whose
backward runs the hooks. jmod does the same with ``jax.custom_vjp`` identities:

* the *output* identity's backward sees ``grad_output``: it runs the backward
  pre-hooks (which may replace it) and stores it;
* the *input* identity's backward sees ``grad_input``: it runs the full backward hooks
  with the stored ``grad_output`` (they may replace ``grad_input``).

Because they are ordinary custom-VJP functions they compose with ``jax.grad``,
``jax.vjp``, ``jax.jit`` and ``jax.vmap`` and with the parameters' own gradients.
``symbolic_zeros=True`` tells the forward which inputs/outputs are differentiated
("require grad" in torch), which gives torch's firing rules: fire at the input
gradient; if no input needs one, fire at the output gradient with ``grad_input`` all
``None``; if no output needs one, do not fire. As in torch, ``grad_output`` is
``None`` for outputs that need no gradient or get none, and ``grad_input`` holds
zeros for array inputs that get no gradient (torch materialises them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jmod._src.host_hooks import call_hook

__all__ = ["BackwardHook"]


def _none_if_zero(g: Any) -> Any:
    return None if isinstance(g, SymbolicZero) else g


def _keep_undifferentiated(new: tuple, old: list, perturbed: list[bool]) -> list:
    """The identity's outputs, except that arrays which are not differentiated keep their
    original value.

    A custom-VJP function's outputs are all differentiated when any input is, so an
    undifferentiated input would come out "requiring grad" and make later modules'
    hooks fire with gradients for it. torch marks those outputs non-differentiable
    (``BackwardHookFunction``); here, when the differentiation's forward ran at this
    call (``perturbed`` is known: jmod.grad / jax.grad around the call), they are
    passed on unwrapped. Otherwise (no differentiation, or ``jax.grad`` of an already
    compiled function) everything goes through the identity.
    """
    if len(perturbed) != len(old):
        return list(new)
    return [v if p else o for v, o, p in zip(new, old, perturbed)]


class BackwardHook:
    """Per-call state linking a module call's output gradients to its input gradients."""

    def __init__(self, module: Any, user_hooks: Sequence[Callable], user_pre_hooks: Sequence[Callable]) -> None:
        self.user_hooks = list(user_hooks)
        self.user_pre_hooks = list(user_pre_hooks)
        self.module = module
        self.grad_outputs: tuple | None = None
        self.n_outputs = -1
        self.output_tensors_index: list[int] | None = None
        self.n_inputs = -1
        self.input_tensors_index: list[int] | None = None
        self.inputs_need_grad = False

    def _pack_with_none(self, indices: Sequence[int], values: Sequence[Any], size: int) -> tuple:
        res: list[Any] = [None] * size
        for idx, val in zip(indices, values):
            res[idx] = val
        return tuple(res)

    # ------------------------------------------------------------------- inputs
    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        idx = [i for i, a in enumerate(args) if isinstance(a, jax.Array)]
        if not idx:
            self.input_tensors_index = None
            return args
        self.input_tensors_index = idx
        hook = self
        perturbed: list[bool] = []
        avals: list[tuple] = []

        @jax.custom_vjp
        def identity(*xs: Any) -> tuple:
            return xs

        def fwd(*xs: Any) -> tuple:
            perturbed[:] = [x.perturbed for x in xs]
            avals[:] = [(x.value.shape, x.value.dtype) for x in xs]
            hook.inputs_need_grad = any(perturbed)
            return tuple(x.value for x in xs), None

        def bwd(_: Any, grads: tuple) -> tuple:
            return hook._on_input_grads(grads, perturbed, avals)

        identity.defvjp(fwd, bwd, symbolic_zeros=True)
        new = _keep_undifferentiated(identity(*[args[i] for i in idx]), [args[i] for i in idx], perturbed)
        out = list(args)
        for i, v in zip(idx, new):
            out[i] = v
        return tuple(out)

    def _on_input_grads(self, grads: tuple, perturbed: list[bool], avals: list[tuple]) -> tuple:
        if self.grad_outputs is None:
            # The gradient reached the input without passing through this call's
            # output (e.g. double backward): torch does not fire either.
            return grads
        idx = self.input_tensors_index or []
        # torch's BackwardHookFunction materialises zeros for inputs that get no
        # gradient (not differentiated, or not used by the outputs).
        values = [
            g if p and not isinstance(g, SymbolicZero) else jnp.zeros(shape, dtype)
            for g, p, (shape, dtype) in zip(grads, perturbed, avals)
        ]
        res = self._pack_with_none(idx, values, self.n_inputs)
        for user_hook in self.user_hooks:
            out = call_hook(user_hook, self.module, res, self.grad_outputs)
            if out is None:
                continue
            if not isinstance(out, tuple):
                out = (out,) if self.n_inputs == 1 and not isinstance(out, list) else tuple(out)
            if len(out) != len(res):
                raise RuntimeError(
                    f"Backward hook returned an invalid number of grad_input, got {len(out)}, but expected {len(res)}"
                )
            res = out
        self.grad_outputs = None
        return tuple(res[i] if p else None for i, p in zip(idx, perturbed))

    # ------------------------------------------------------------------ outputs
    def setup_output_hook(self, result: Any) -> Any:
        is_tuple = isinstance(result, tuple)
        outs = result if is_tuple else (result,)
        self.n_outputs = len(outs)
        idx = [i for i, o in enumerate(outs) if isinstance(o, jax.Array)]
        if not idx:
            self.output_tensors_index = None
            return result
        self.output_tensors_index = idx
        hook = self
        perturbed: list[bool] = []

        @jax.custom_vjp
        def identity(*xs: Any) -> tuple:
            return xs

        def fwd(*xs: Any) -> tuple:
            perturbed[:] = [x.perturbed for x in xs]
            return tuple(x.value for x in xs), None

        def bwd(_: Any, grads: tuple) -> tuple:
            return hook._on_output_grads(grads, perturbed)

        identity.defvjp(fwd, bwd, symbolic_zeros=True)
        new = _keep_undifferentiated(identity(*[outs[i] for i in idx]), [outs[i] for i in idx], perturbed)
        out = list(outs)
        for i, v in zip(idx, new):
            out[i] = v
        if not is_tuple:
            return out[0]
        # A tuple subclass (a namedtuple) is rebuilt as torch's _apply_on_tensors does.
        return tuple(out) if type(result) is tuple else type(result)(*out)

    def _on_output_grads(self, grads: tuple, perturbed: list[bool]) -> tuple:
        idx = self.output_tensors_index or []
        # An output that needs no gradient has grad_output None in torch, even if the
        # loss uses it (custom_vjp outputs all get cotangents).
        values = [_none_if_zero(g) if p else None for g, p in zip(grads, perturbed)]
        self.grad_outputs = self._pack_with_none(idx, values, self.n_outputs)
        if self.user_pre_hooks:
            expected_len = len(self.grad_outputs)
            for user_pre_hook in self.user_pre_hooks:
                hook_grad_outputs = call_hook(user_pre_hook, self.module, self.grad_outputs)
                if hook_grad_outputs is None:
                    continue
                if not isinstance(hook_grad_outputs, tuple):
                    hook_grad_outputs = (hook_grad_outputs,)
                actual_len = len(hook_grad_outputs)
                if actual_len != expected_len:
                    raise RuntimeError(
                        "Backward pre hook returned an invalid number of grad_output, "
                        f"got {actual_len}, but expected {expected_len}"
                    )
                self.grad_outputs = hook_grad_outputs
        local_grad_outputs = self.grad_outputs
        if self.input_tensors_index is None or not self.inputs_need_grad:
            # No input needs a gradient: fire the full hooks now, with grad_input all None.
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to module outputs "
                "since no inputs require gradients. See "
                "https://docs.pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.register_full_backward_hook "
                "for more details.",
                stacklevel=5,
            )
            grad_inputs = self._pack_with_none([], [], self.n_inputs)
            for user_hook in self.user_hooks:
                res = call_hook(user_hook, self.module, grad_inputs, self.grad_outputs)
                if res is not None and not (isinstance(res, tuple) and all(el is None for el in res)):
                    raise RuntimeError(
                        "Backward hook for Modules where no input requires "
                        "gradient should always return None or None for all gradients."
                    )
            self.grad_outputs = None
        return tuple(local_grad_outputs[i] for i in idx)
