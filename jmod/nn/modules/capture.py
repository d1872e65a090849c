"""``jmod.capture``: submodules' outputs as ordinary return values.

A torch user collects intermediate activations with forward hooks that append to a
list. Under compilation those hooks run once, at trace time, and would store
tracers. ``jmod.capture(model, names)`` gives the same result as a value: it wraps
the model in a module whose call returns ``(output, {name: activation})``, so the
activations come out of a compiled call like any output (torchvision's
``create_feature_extractor``, Flax's ``sow``), with no tracer left behind.

The hooks that collect are registered once, when the capture is built, and do
nothing outside a capturing call, so wrapping costs no recompilation per call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

from jmod.nn.modules.module import Module

__all__ = ["capture", "Capture"]

_ACTIVE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("jmod_capture", default=None)


class Capture(Module):
    """A model wrapped to also return chosen submodules' outputs (see :func:`capture`)."""

    def __init__(self, model: Module, names: Sequence[str], all_calls: bool = False) -> None:
        super().__init__()
        self.model = model
        self.names = tuple(names)
        self.all_calls = all_calls
        modules = dict(model.named_modules())
        unknown = [n for n in self.names if n not in modules]
        if unknown:
            available = ", ".join(repr(n) for n in list(modules)[:12])
            raise KeyError(
                f"jmod.capture: {type(model).__name__} has no submodule {unknown[0]!r}; names are dotted paths "
                f"as in named_modules(): {available}{', ...' if len(modules) > 12 else ''}"
            )
        self._handles = [modules[n].register_forward_hook(self._make_hook(n)) for n in self.names]

    def _make_hook(self, name: str) -> Any:
        all_calls = self.all_calls

        def hook(module: Module, args: Any, output: Any) -> None:
            store = _ACTIVE.get()
            if store is None:
                return None
            if all_calls:
                store[name] = (*store.get(name, ()), output)
            else:
                store[name] = output
            return None

        hook.__qualname__ = f"capture[{name}]"
        return hook

    def forward(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        store: dict[str, Any] = {}
        token = _ACTIVE.set(store)
        try:
            out = self.model(*args, **kwargs)
        finally:
            _ACTIVE.reset(token)
        return out, {n: store[n] for n in self.names if n in store}

    def remove(self) -> Module:
        """Unregister the collecting hooks and return the wrapped model."""
        for h in self._handles:
            h.remove()
        self._handles = []
        return self.model

    def extra_repr(self) -> str:
        return f"names={list(self.names)}"


def capture(model: Module, names: Sequence[str] | str, *, all_calls: bool = False) -> Capture:
    """Wrap ``model`` so that calling it also returns the outputs of submodules ``names``.

    Args:
        model: the model.
        names: dotted submodule names as in ``named_modules()`` (``"layer1.0.conv1"``).
        all_calls: a submodule called several times gives a tuple of all its outputs
            (default: its last output).

    Returns:
        A :class:`Capture` module: ``out, feats = capture(model, names)(x)``. It can be
        compiled (``jmod.jit``, ``.compile()``) like any module; ``.remove()`` undoes it.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
        >>> out, feats = jmod.capture(model, ["0"])(jnp.ones((3, 4)))
        >>> out.shape, feats["0"].shape
        ((3, 2), (3, 8))
    """
    if isinstance(names, str):
        names = [names]
    return Capture(model, names, all_calls=all_calls)
