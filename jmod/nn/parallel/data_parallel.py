"""``nn.DataParallel`` (``torch/nn/parallel/data_parallel.py``) as one SPMD program.

torch splits the batch, copies the module to every GPU, runs the copies in threads and
gathers the outputs. On JAX the same result comes from placing the batch split over a
1-D device mesh and the module's state replicated on it: the module runs once, and
XLA partitions the computation across the devices (eagerly and under ``jmod.jit``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jmod._src.arrays import is_tracer
from jmod._src.devices import place, resolve_device
from jmod.nn.modules.module import Module

__all__ = ["DataParallel"]


def _device_index(device: Any) -> int:
    """An index into ``jax.devices()`` from an int, a ``jax.Device`` or a torch-style
    string (``"cpu:3"``, ``"cuda:1"``; parsed by ``resolve_device``, as ``Module.to``)."""
    devices = jax.devices()
    if isinstance(device, int) and not 0 <= device < len(devices):
        raise RuntimeError(f"device index {device} out of range: {len(devices)} device(s) available")
    resolved = resolve_device(device)
    if resolved not in devices:
        raise RuntimeError(f"DataParallel needs devices of the default backend ({devices[0].platform}), got {device!r}")
    return devices.index(resolved)


@functools.cache
def _mesh(device_ids: tuple[int, ...]) -> jax.sharding.Mesh:
    devices = jax.devices()
    return jax.sharding.Mesh(np.array([devices[i] for i in device_ids]), ("data",))


class DataParallel(Module):
    r"""Run ``module`` with its input batch split over several devices (torch's
    ``nn.DataParallel``).

    The module's parameters and buffers are replicated on ``device_ids``; each call
    splits every array argument along ``dim`` over those devices (an argument whose
    size there is not divisible by the device count stays whole) and runs the module
    once as an SPMD program. The wrapped module is ``self.module``, so the state dict
    keys carry torch's ``module.`` prefix.

    Args:
        module: the module to parallelize.
        device_ids: indices into ``jax.devices()`` (or ``jax.Device`` objects); all
            devices by default.
        output_device: accepted for torch compatibility; the output stays split over
            the devices (JAX moves it when it is used).
        dim: the batch dimension of the inputs. Default: 0.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> model = nn.DataParallel(nn.Linear(4, 2))
        >>> model(jnp.ones((8, 4))).shape
        (8, 2)
        >>> list(model.state_dict())
        ['module.weight', 'module.bias']
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None, dim: int = 0) -> None:
        super().__init__()
        ids = list(range(len(jax.devices()))) if device_ids is None else [_device_index(d) for d in device_ids]
        if not ids:
            raise RuntimeError("no available devices were found")
        self.dim = dim
        self.module = module
        self.device_ids = ids
        self.output_device = ids[0] if output_device is None else _device_index(output_device)
        if len(ids) == 1:
            module.to(jax.devices()[ids[0]])
        else:
            from jmod.parallel import replicate

            replicate(module, _mesh(tuple(ids)))

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if len(self.device_ids) == 1:
            return self.module(*inputs, **kwargs)
        inputs, kwargs = jax.tree_util.tree_map(self._scatter, (inputs, kwargs))
        return self.module(*inputs, **kwargs)

    def _scatter(self, x: Any) -> Any:
        """Split ``x`` along ``dim`` over the devices (torch's ``scatter``); a value that
        cannot be split evenly, or is not an array, is passed as it is."""
        n = len(self.device_ids)
        if not isinstance(x, (jax.Array, np.ndarray)) or x.ndim <= self.dim or x.shape[self.dim] % n:
            return x
        spec = PartitionSpec(*([None] * (self.dim % x.ndim)), "data")
        sharding = NamedSharding(_mesh(tuple(self.device_ids)), spec)
        if is_tracer(x):
            return jax.lax.with_sharding_constraint(x, sharding)
        return place(x, sharding)
