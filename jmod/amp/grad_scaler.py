"""``jmod.amp.GradScaler``: dynamic loss scaling (``torch.amp.GradScaler``).

torch's scaler keeps its scale and growth tracker in tensors it updates in place,
unscales ``param.grad`` in place and skips ``optimizer.step()`` on the host when a
gradient is inf/NaN. jmod's gradients are returned, not stored, so ``unscale_`` and
``step`` take them and ``unscale_`` returns the unscaled ones. The scale, the growth
tracker and the "found inf" flag of the current iteration are arrays the scaler
exposes to ``jmod.jit`` as state (the participant protocol ``Optimizer`` uses), so a
compiled training step threads them like optimizer state: one trace, no host sync.
Inside compiled code the skip is a select (``jnp.where``) between the optimizer's
old and new state; eagerly it is torch's host-side ``if``.
"""

from __future__ import annotations

import warnings
from collections import abc, defaultdict
from collections.abc import Mapping
from enum import Enum
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import structure
from jmod._src.amp import _has_gpu
from jmod._src.arrays import is_tracer

__all__ = ["OptState", "GradScaler"]


class OptState(Enum):
    """Where an optimizer is in the scaler's iteration (torch's ``OptState``)."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_per_optimizer_state() -> dict[str, Any]:
    return {"stage": OptState.READY, "found_inf": None}


_FIX = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."


class GradScaler:
    """Scale the loss, unscale gradients, skip steps with inf/NaN gradients, adapt the scale.

    torch's ``torch.amp.GradScaler`` with its defaults and update rule: the scale
    starts at ``init_scale``; an iteration whose gradients contain inf/NaN skips the
    optimizer step and multiplies the scale by ``backoff_factor``; after
    ``growth_interval`` consecutive finite iterations it is multiplied by
    ``growth_factor`` (unless that overflows float32). Gradients are arguments and
    return values instead of ``.grad`` (see docs/differences.md):
    ``scaler.step(optimizer, grads)``, ``grads = scaler.unscale_(optimizer, grads)``.

    Pass the scaler to the ``jmod.jit`` function that steps (like the optimizer): its
    scale and growth tracker are then compiled state, and a whole run uses one trace.

    Args:
        device (str): ``"cuda"`` (torch's default; without a GPU backend the scaler is
            disabled with torch's warning) or ``"cpu"``.
        init_scale (float): initial scale factor.
        growth_factor (float): factor the scale is multiplied by after
            ``growth_interval`` finite iterations (must be > 1).
        backoff_factor (float): factor the scale is multiplied by after an iteration
            with inf/NaN gradients (must be < 1).
        growth_interval (int): number of consecutive finite iterations before growing.
        enabled (bool): ``False`` makes every method a pass-through.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> scaler = jmod.amp.GradScaler("cpu", init_scale=1024.0)
        >>> grads = jmod.grad(lambda m: scaler.scale(m(jnp.ones((1, 2))).sum()))(model)
        >>> scaler.step(opt, grads)
        >>> scaler.update()
        >>> scaler.get_scale()
        1024.0
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        self._device = device
        self._enabled = enabled
        if self._device == "cuda" and enabled and not _has_gpu():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.", stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            # Created now rather than at the first scale() (torch's lazy init): compiled
            # code threads existing arrays. _scale_used stands for torch's `_scale is not None`.
            self._scale = jnp.full((), init_scale, jnp.float32)
            self._growth_tracker = jnp.full((), 0, jnp.int32)
            # inf/NaN found since the last update(), summed over optimizers (torch keeps
            # one per optimizer and device and sums them in update()).
            self._found_inf = jnp.zeros((), jnp.float32)
            self._scale_used = False
            self._inf_checks = 0
            self._traced_checks = False
            self._per_optimizer_states: dict[int, dict[str, Any]] = defaultdict(_refresh_per_optimizer_state)

    # ------------------------------------------------------- jmod.jit participation
    def _jmod_state_locations(self) -> list[tuple[dict, str]]:
        if not self._enabled:
            return []
        d = self.__dict__
        return [(d, "_scale"), (d, "_growth_tracker"), (d, "_found_inf")]

    def _jmod_describe(self, slot_index: dict[int, int]) -> tuple:
        # Structure only: a fresh scaler with the same settings reuses the compiled step.
        if not self._enabled:
            return (type(self), False)
        return (type(self), True, self._growth_factor, self._backoff_factor, self._growth_interval)

    # ------------------------------------------------------------------- checks
    def _check_scale_growth_tracker(self, funcname: str) -> tuple[jax.Array, jax.Array]:
        if not self._scale_used:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + _FIX)
        return self._scale, self._growth_tracker

    # -------------------------------------------------------------------- scale
    def scale(self, outputs: Any) -> Any:
        """Multiply ``outputs`` (an array, or an iterable of arrays) by the scale.

        Args:
            outputs (Any): the loss, or several outputs in a list/tuple/iterable.

        Returns:
            The scaled outputs, in torch's result dtype (a 0-d float16 loss gives a
            float32 result, a float16 array stays float16).
        """
        if not self._enabled:
            return outputs
        self._scale_used = True
        scale = self._scale

        def apply_scale(val: Any) -> Any:
            if isinstance(val, jax.Array):
                if jnp.ndim(val) == 0 or not jnp.issubdtype(val.dtype, jnp.floating):
                    return val * scale  # torch: a 0-d tensor promotes with the 0-d float32 scale
                return (val.astype(jnp.promote_types(val.dtype, jnp.float32)) * scale).astype(val.dtype)
            if isinstance(val, abc.Iterable):
                iterable = map(apply_scale, val)
                if isinstance(val, (list, tuple)):
                    return type(val)(iterable)
                return iterable
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply_scale(outputs)

    # ------------------------------------------------------------------ unscale
    def _unscale_grads(self, grads: Mapping[str, Any], inv_scale: jax.Array) -> tuple[dict, jax.Array]:
        leaves = [g for g in jax.tree_util.tree_leaves(grads) if g is not None]
        for g in leaves:
            if g.dtype == jnp.float16:
                raise ValueError("Attempting to unscale FP16 gradients.")
        found_inf = jnp.zeros((), jnp.float32)
        if leaves:
            bad = jnp.stack([jnp.any(~jnp.isfinite(g)) for g in leaves]).any()
            found_inf = bad.astype(jnp.float32)
        unscaled = jax.tree_util.tree_map(lambda g: (g * inv_scale).astype(g.dtype), grads)
        return unscaled, found_inf

    def unscale_(self, optimizer: Any, grads: Mapping[str, Any] | None = None) -> Any:
        """Divide the gradients by the scale and check them for inf/NaN.

        torch unscales ``param.grad`` in place and returns ``None``; jmod's gradients
        are values, so this takes them and returns the unscaled ones (clip those, then
        pass them to :meth:`step`, which then does not unscale again).

        Args:
            optimizer (Any): the optimizer these gradients are for.
            grads (Mapping[str, Any] | None): the scaled gradients (``jmod.grad``'s dict).

        Returns:
            The unscaled gradients (``grads`` unchanged when the scaler is disabled).
        """
        if not self._enabled:
            return grads
        self._check_scale_growth_tracker("unscale_")
        optimizer_state = self._per_optimizer_states[id(optimizer)]
        if optimizer_state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        elif optimizer_state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        if grads is None:
            raise TypeError(
                "jmod's GradScaler needs the gradients explicitly: grads = scaler.unscale_(optimizer, grads) "
                "(gradients are returned by jmod.grad, not stored on the parameters)"
            )
        inv_scale = jnp.reciprocal(self._scale)
        unscaled, found_inf = self._unscale_grads(grads, inv_scale)
        optimizer_state["found_inf"] = found_inf
        optimizer_state["stage"] = OptState.UNSCALED
        self._found_inf = self._found_inf + found_inf
        self._inf_checks += 1
        self._traced_checks = self._traced_checks or is_tracer(found_inf)
        return unscaled

    # --------------------------------------------------------------------- step
    def step(self, optimizer: Any, grads: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        """Unscale ``grads`` (unless :meth:`unscale_` did) and step unless they hold inf/NaN.

        Args:
            optimizer (Any): a jmod optimizer.
            grads (Mapping[str, Any] | None): the scaled gradients, or the ones
                :meth:`unscale_` returned.
            *args (Any): passed on to ``optimizer.step``.
            **kwargs (Any): passed on to ``optimizer.step`` (no ``closure``).

        Returns:
            What ``optimizer.step`` returned, or ``None`` when the step was skipped
            eagerly.
        """
        if not self._enabled:
            return optimizer.step(grads, *args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        optimizer_state = self._per_optimizer_states[id(optimizer)]
        if optimizer_state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if optimizer_state["stage"] is OptState.READY:
            grads = self.unscale_(optimizer, grads)
        found_inf = optimizer_state["found_inf"]
        if found_inf is None:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        retval = None
        if not is_tracer(found_inf):
            if not float(found_inf):
                retval = optimizer.step(grads, *args, **kwargs)
        else:
            # Compiled: run the step, then keep the old state where inf/NaN was found.
            locs = list(optimizer._jmod_state_locations())
            before = [c[k] for c, k in locs]
            retval = optimizer.step(grads, *args, **kwargs)
            skip = found_inf > 0
            for (c, k), old in zip(locs, before):
                new = c[k]
                if new is not old:
                    c[k] = jnp.where(skip, old, new)
        optimizer_state["stage"] = OptState.STEPPED
        optimizer_state["found_inf"] = None  # folded into self._found_inf; no tracer kept
        return retval

    # ------------------------------------------------------------------- update
    def update(self, new_scale: Any = None) -> None:
        """Update the scale: back off after inf/NaN, grow after ``growth_interval`` finite steps.

        Args:
            new_scale (Any): set the scale to this value (a float or a 1-element
                array) instead.
        """
        if not self._enabled:
            return
        _scale, _growth_tracker = self._check_scale_growth_tracker("update")
        if new_scale is not None:
            reason = (
                "new_scale should be a float or a 1-element torch.cuda.FloatTensor or "
                "torch.FloatTensor with requires_grad=False."
            )
            if isinstance(new_scale, float):
                self._scale = jnp.full((), new_scale, jnp.float32)
            else:
                if jnp.size(new_scale) != 1:
                    raise AssertionError(reason)
                self._scale = jnp.reshape(jnp.asarray(new_scale, jnp.float32), ())
        else:
            if self._inf_checks == 0 and not self._traced_checks:
                raise AssertionError("No inf checks were recorded prior to update.")
            found = self._found_inf > 0
            successful = _growth_tracker + 1
            grow = successful == self._growth_interval
            grown = _scale * jnp.float32(self._growth_factor)
            self._scale = jnp.where(
                found,
                _scale * jnp.float32(self._backoff_factor),
                jnp.where(grow & jnp.isfinite(grown), grown, _scale),
            )
            self._growth_tracker = jnp.where(found | grow, jnp.zeros_like(successful), successful)
        self._found_inf = jnp.zeros((), jnp.float32)
        self._inf_checks = 0
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    # --------------------------------------------------------------- accessors
    def get_scale(self) -> float:
        """The current scale as a Python float (``1.0`` when disabled); syncs with the device."""
        if self._enabled:
            return float(self._scale)
        return 1.0

    def get_growth_factor(self) -> float:
        """The growth factor."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the growth factor (compiled code using the scaler recompiles).

        Args:
            new_factor (float): the new growth factor.
        """
        self._growth_factor = new_factor
        structure.bump()

    def get_backoff_factor(self) -> float:
        """The backoff factor."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the backoff factor (compiled code using the scaler recompiles).

        Args:
            new_factor (float): the new backoff factor.
        """
        self._backoff_factor = new_factor
        structure.bump()

    def get_growth_interval(self) -> int:
        """The growth interval."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the growth interval (compiled code using the scaler recompiles).

        Args:
            new_interval (int): the new growth interval.
        """
        self._growth_interval = new_interval
        structure.bump()

    def _get_growth_tracker(self) -> int:
        if self._enabled:
            return int(self._growth_tracker)
        return 0

    def is_enabled(self) -> bool:
        """Whether the scaler is enabled."""
        return self._enabled

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Any]:
        """torch's keys: ``scale``, ``growth_factor``, ``backoff_factor``,
        ``growth_interval``, ``_growth_tracker`` (empty when disabled)."""
        if self._enabled:
            return {
                "scale": self.get_scale(),
                "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker(),
            }
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict` (jmod's or torch's).

        Args:
            state_dict (Mapping[str, Any]): the saved state.
        """
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError(
                "The source state dict is empty, possibly because it was saved "
                "from a disabled instance of GradScaler."
            )
        self._init_scale = float(state_dict["scale"])
        self._scale = jnp.full((), state_dict["scale"], jnp.float32)
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        self._growth_tracker = jnp.full((), self._init_growth_tracker, jnp.int32)
        structure.bump()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._enabled:
            if any(s["stage"] is not OptState.READY for s in self._per_optimizer_states.values()):
                raise AssertionError(
                    "A GradScaler instance may only be pickled at the beginning "
                    "of an iteration, or at the end after scaler.update()."
                )
            state["_per_optimizer_states"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._enabled:
            self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)
