r"""Spectral Normalization from https://arxiv.org/abs/1802.05957 (torch's hook-based
``torch.nn.utils.spectral_norm``).

The parameter ``weight`` becomes ``weight_orig``; the buffers ``weight_u`` /
``weight_v`` hold the power-iteration vectors; a forward pre-hook computes
``module.weight`` (a plain attribute) before every call, running
``n_power_iterations`` steps of the power method in training mode. torch updates the
buffers in place under ``no_grad``; here they are reassigned with
``jax.lax.stop_gradient`` values, which ``jmod.jit`` writes back.
"""

from __future__ import annotations

from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from jmod._src import structure
from jmod._src.random import randn
from jmod.nn.functional import normalize
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter, is_lazy
from jmod.nn.utils.weight_norm import _set_plain

__all__ = [
    "SpectralNorm",
    "SpectralNormLoadStateDictPreHook",
    "SpectralNormStateDictHook",
    "spectral_norm",
    "remove_spectral_norm",
]


class SpectralNorm:
    # Version 1: the buffer ``weight_v`` holds v (version 0 recomputed it from ``weight``).
    _version: int = 1

    name: str
    dim: int
    n_power_iterations: int
    eps: float

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise ValueError(
                f"Expected n_power_iterations to be positive, but got n_power_iterations={n_power_iterations}"
            )
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight: jax.Array) -> jax.Array:
        weight_mat = jnp.asarray(weight)
        if self.dim != 0:
            # permute dim to front
            weight_mat = jnp.moveaxis(weight_mat, self.dim, 0)
        height = weight_mat.shape[0]
        return weight_mat.reshape(height, -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> jax.Array:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            # torch: in place under no_grad, so the buffers hold the new vectors
            w = jax.lax.stop_gradient(weight_mat)
            for _ in range(self.n_power_iterations):
                v = normalize(w.T @ u, dim=0, eps=self.eps)
                u = normalize(w @ v, dim=0, eps=self.eps)
            setattr(module, self.name + "_u", u)
            setattr(module, self.name + "_v", v)
        u = jax.lax.stop_gradient(u)
        v = jax.lax.stop_gradient(v)
        sigma = jnp.dot(u, weight_mat @ v)
        return weight / sigma

    def remove(self, module: Module) -> None:
        weight = jax.lax.stop_gradient(self.compute_weight(module, do_power_iteration=False))
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    def _solve_v_and_rescale(self, weight_mat: jax.Array, u: jax.Array, target_sigma: jax.Array) -> jax.Array:
        # Tries to return a vector `v` s.t. `u = normalize(W @ v)`
        # (the invariant at top of this class) and `u @ W @ v = sigma`.
        v = (jnp.linalg.pinv(weight_mat.T @ weight_mat) @ weight_mat.T @ u[:, None])[:, 0]
        return v * (target_sigma / jnp.dot(u, weight_mat @ v))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float) -> SpectralNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")

        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        slot = module._parameters[name]
        if slot is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        if is_lazy(slot):
            raise ValueError(
                "The module passed to `SpectralNorm` can't have uninitialized parameters. "
                "Make sure to run the dummy forward before applying spectral normalization"
            )
        weight = slot.data
        weight_mat = fn.reshape_weight_to_matrix(weight)
        h, w = weight_mat.shape
        # randomly initialize `u` and `v`
        u = normalize(randn(h, dtype=weight.dtype), dim=0, eps=fn.eps)
        v = normalize(randn(w, dtype=weight.dtype), dim=0, eps=fn.eps)

        delattr(module, fn.name)
        # The same slot under the new name: an optimizer holding it keeps updating it.
        module.register_parameter(fn.name + "_orig", slot)
        # torch sets `module.weight = weight.data` (a plain tensor): a plain attribute here
        _set_plain(module, fn.name, weight)
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)

        module.register_forward_pre_hook(fn)
        module._register_state_dict_hook(SpectralNormStateDictHook(fn))
        module._register_load_state_dict_pre_hook(SpectralNormLoadStateDictPreHook(fn))
        return fn


class SpectralNormLoadStateDictPreHook:
    """Loads state dicts of version 0 (``weight_u``, ``weight_orig`` and ``weight``, no
    ``weight_v``): solves for ``v``, as torch does."""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        fn = self.fn
        version = local_metadata.get("spectral_norm", {}).get(fn.name + ".version", None)
        if version is None or version < 1:
            weight_key = prefix + fn.name
            if (
                version is None
                and all(weight_key + s in state_dict for s in ("_orig", "_u", "_v"))
                and weight_key not in state_dict
            ):
                # Detect if it is the updated state dict and just missing metadata.
                return
            has_missing_keys = False
            for suffix in ("_orig", "", "_u"):
                key = weight_key + suffix
                if key not in state_dict:
                    has_missing_keys = True
                    if strict:
                        missing_keys.append(key)
            if has_missing_keys:
                return
            from jmod._src.arrays import to_jax

            weight_orig = to_jax(state_dict[weight_key + "_orig"])
            weight = to_jax(state_dict.pop(weight_key))
            sigma = (weight_orig / weight).mean()
            weight_mat = fn.reshape_weight_to_matrix(weight_orig)
            u = to_jax(state_dict[weight_key + "_u"])
            v = fn._solve_v_and_rescale(weight_mat, u, sigma)
            state_dict[weight_key + "_v"] = v


class SpectralNormStateDictHook:
    """Records the version in the state dict's metadata (``spectral_norm``), as torch."""

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(self, module: Module, state_dict: Any, prefix: str, local_metadata: dict) -> None:
        if "spectral_norm" not in local_metadata:
            local_metadata["spectral_norm"] = {}
        key = self.fn.name + ".version"
        if key in local_metadata["spectral_norm"]:
            raise RuntimeError(f"Unexpected key in metadata['spectral_norm']: {key}")
        local_metadata["spectral_norm"][key] = self.fn._version


T_module = TypeVar("T_module", bound=Module)


def spectral_norm(
    module: T_module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> T_module:
    r"""Apply spectral normalization to a parameter in the given module.

    .. math::
        \mathbf{W}_{SN} = \dfrac{\mathbf{W}}{\sigma(\mathbf{W})},
        \sigma(\mathbf{W}) = \max_{\mathbf{h}: \mathbf{h} \ne 0} \dfrac{\|\mathbf{W} \mathbf{h}\|_2}{\|\mathbf{h}\|_2}

    :math:`\sigma` is estimated with one (``n_power_iterations``) step of the power
    method each forward in training mode, from the buffers ``weight_u`` / ``weight_v``
    (drawn from jmod's global generator). The parameter becomes ``weight_orig``.
    torch keeps this hook-based version next to
    :func:`jmod.nn.utils.parametrizations.spectral_norm` without deprecating it.

    Args:
        module (nn.Module): containing module
        name (str, optional): name of weight parameter
        n_power_iterations (int, optional): number of power iterations to calculate
            spectral norm
        eps (float, optional): epsilon for numerical stability in calculating norms
        dim (int, optional): dimension corresponding to number of outputs, the default
            is ``0``, except for ``ConvTranspose{1,2,3}d``, when it is ``1``

    Returns:
        The original module with the spectral norm hook

    Examples:
        >>> from jmod import nn
        >>> from jmod.nn.utils import spectral_norm
        >>> m = spectral_norm(nn.Linear(20, 40))
        >>> m
        Linear(in_features=20, out_features=40, bias=True)
        >>> list(m.state_dict())
        ['bias', 'weight_orig', 'weight_u', 'weight_v']
        >>> m.weight_u.shape
        (40,)
    """
    if dim is None:
        from jmod.nn.modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: T_module, name: str = "weight") -> T_module:
    r"""Remove the spectral normalization reparameterization from a module.

    Args:
        module (Module): containing module
        name (str, optional): name of weight parameter

    Examples:
        >>> from jmod import nn
        >>> from jmod.nn.utils import remove_spectral_norm, spectral_norm
        >>> m = spectral_norm(nn.Linear(40, 10))
        >>> list(remove_spectral_norm(m).state_dict())
        ['bias', 'weight']
    """
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            break
    else:
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")

    for k, hook in module._state_dict_hooks.items():
        if isinstance(hook, SpectralNormStateDictHook) and hook.fn.name == name:
            del module._state_dict_hooks[k]
            break

    for k, hook in module._load_state_dict_pre_hooks.items():
        # registered hooks are wrapped (_WrappedHook): look at the hook inside, which
        # torch's search misses
        hook = getattr(hook, "hook", hook)
        if isinstance(hook, SpectralNormLoadStateDictPreHook) and hook.fn.name == name:
            del module._load_state_dict_pre_hooks[k]
            break
    structure.bump()
    return module
