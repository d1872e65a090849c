"""``jmod.export``: a model's forward as a serializable ``jax.export.Exported``.

The artifact is StableHLO with the weights embedded: ``exported.serialize()`` gives
bytes; ``jax.export.deserialize(data).call(*inputs)`` runs it in any JAX process (no
jmod, no model code), on the platforms it was lowered for. This is jmod's counterpart of
``torch.export``; there is no ONNX exporter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

__all__ = ["export"]


def _spec(x: Any, batch: Any) -> jax.ShapeDtypeStruct:
    if isinstance(x, jax.ShapeDtypeStruct):
        shape, dtype = tuple(x.shape), x.dtype
    else:
        from jmod._src.arrays import to_jax

        if not isinstance(x, (jax.Array, np.ndarray)) and hasattr(x, "shape"):
            x = to_jax(x)  # torch tensors
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        shape, dtype = tuple(x.shape), x.dtype
    if batch is not None:
        if not shape:
            raise ValueError("dynamic_batch=True needs every input to have a batch dimension (dimension 0)")
        shape = (batch, *shape[1:])
    return jax.ShapeDtypeStruct(shape, dtype)


def export(
    model: Any,
    *example_inputs: Any,
    dynamic_batch: bool = False,
    kwargs: dict | None = None,
    platforms: Sequence[str] | None = None,
) -> jax.export.Exported:
    """Export ``model``'s forward, weights included, as a ``jax.export.Exported``.

    The forward is traced once on inputs shaped like ``example_inputs`` (the values are
    not used) with the model's current parameters and buffers as constants, and in its
    current mode: call ``model.eval()`` first for inference (dropout and BatchNorm as at
    test time). Buffer updates made by the forward are not part of the artifact.

    Args:
        model (Module): the model.
        *example_inputs (Any): the forward's positional arguments: arrays (jax, NumPy,
            torch tensors) or ``jax.ShapeDtypeStruct`` specs.
        dynamic_batch (bool): make dimension 0 of every input one symbolic size, so the
            artifact accepts any batch size. Default: ``False`` (the example shapes).
        kwargs (dict | None): keyword arguments of the forward, baked in as constants.
        platforms (Sequence[str] | None): lower for these platforms (``("cpu", "cuda",
            "tpu")``; one artifact serves all); default: the current backend.

    Returns:
        jax.export.Exported: ``.call(*inputs)`` runs it; ``.serialize()`` gives bytes that
        ``jax.export.deserialize`` reads back in any JAX process.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, jmod
        >>> from jmod import nn
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.Tanh()).eval()
        >>> exported = jmod.export(model, jnp.ones((2, 4)), dynamic_batch=True)
        >>> data = exported.serialize()                # bytes: write them to a file
        >>> restored = jax.export.deserialize(data)   # no model code needed from here on
        >>> x = jnp.ones((5, 4))
        >>> bool(np.allclose(restored.call(x), model(x)))
        True
    """
    from jmod.func import functional_call
    from jmod.nn.modules.module import Module

    if not isinstance(model, Module):
        raise TypeError(f"export() takes a jmod Module, got {type(model).__name__}")
    batch = jax.export.symbolic_shape("batch")[0] if dynamic_batch else None
    specs = tuple(_spec(x, batch) for x in example_inputs)
    params = {n: s.data for n, s in model.named_parameter_slots()}
    buffers = {n: b for n, b in model.named_buffers() if b is not None}
    kwargs = dict(kwargs or {})

    def forward(*inputs: Any) -> Any:
        # the weights are closed over: jax.export embeds them as constants
        return functional_call(model, (params, buffers), inputs, kwargs, key=jax.random.key(0))

    exp = jax.export.export(jax.jit(forward), platforms=platforms)
    return exp(*specs)
