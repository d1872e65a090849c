"""Instance normalization: InstanceNorm1d/2d/3d (``torch/nn/modules/instancenorm.py``)."""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.functional import normalization as F
from jmod.nn.modules.batchnorm import _LazyNormBase, _NormBase

__all__ = [
    "InstanceNorm1d",
    "InstanceNorm2d",
    "InstanceNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
]


class _InstanceNorm(_NormBase):
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def _check_input_dim(self, input: Any) -> None:
        raise NotImplementedError

    def _get_no_batch_dim(self) -> int:
        raise NotImplementedError

    def _handle_no_batch_input(self, input: jax.Array) -> jax.Array:
        return self._apply_instance_norm(input[None])[0]

    def _apply_instance_norm(self, input: jax.Array) -> jax.Array:
        use_input_stats = self.training or not self.track_running_stats
        out, new_mean, new_var = F.instance_norm_with_stats(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_input_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
        # torch writes the (batch-averaged) statistics back whenever it was given them.
        if use_input_stats and self.running_mean is not None:
            self.running_mean = new_mean
        if use_input_stats and self.running_var is not None:
            self.running_var = new_var
        return out

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        version = local_metadata.get("version", None)
        # At version 1 torch removed running_mean and running_var when
        # track_running_stats=False (the default).
        if version is None and not self.track_running_stats:
            running_stats_keys = []
            for name in ("running_mean", "running_var"):
                key = prefix + name
                if key in state_dict:
                    running_stats_keys.append(key)
            if len(running_stats_keys) > 0:
                error_msgs.append(
                    "Unexpected running stats buffer(s) {names} for {klass} "
                    "with track_running_stats=False. If state_dict is a "
                    "checkpoint saved before 0.4.0, this may be expected "
                    "because {klass} does not track running stats by default "
                    "since 0.4.0. Please remove these keys from state_dict. If "
                    "the running stats are actually needed, instead set "
                    "track_running_stats=True in {klass} to enable them. See "
                    "the documentation of {klass} for details.".format(
                        names=" and ".join(f'"{k}"' for k in running_stats_keys),
                        klass=self.__class__.__name__,
                    )
                )
                for key in running_stats_keys:
                    state_dict.pop(key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, input: Any) -> jax.Array:
        input = jnp.asarray(input)
        self._check_input_dim(input)
        feature_dim = input.ndim - self._get_no_batch_dim()
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"expected input's size at dim={feature_dim} to match num_features"
                    f" ({self.num_features}), but got: {input.shape[feature_dim]}."
                )
            else:
                warnings.warn(
                    f"input's size at dim={feature_dim} does not match num_features. "
                    "You can silence this warning by not passing in num_features, "
                    "which is not used because affine=False",
                    stacklevel=2,
                )
        if input.ndim == self._get_no_batch_dim():
            return self._handle_no_batch_input(input)
        return self._apply_instance_norm(input)


class InstanceNorm1d(_InstanceNorm):
    r"""Apply Instance Normalization over a 2D (unbatched) or 3D (batched) input.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{ \sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    Mean and (biased) variance are computed per sample and per channel over the
    length. With ``track_running_stats=True`` running estimates are kept in training
    (each instance's statistics averaged over the batch, ``running_var`` with the
    unbiased variance) and used in eval mode; by default the instance statistics are
    used in both modes.

    Args:
        num_features: number of features or channels :math:`C` of the input.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        momentum: factor of the running statistics update; ``None`` leaves them
            unchanged (torch passes 0). Default: 0.1
        affine: whether to learn per-channel affine parameters, initialised to ones
            (weight) and zeros (bias). Default: ``False``
        track_running_stats: keep running mean and variance for eval mode.
            Default: ``False``
        device: where to place the parameters and buffers.
        dtype: dtype of the floating point parameters and buffers (default float32).
        bias: (keyword only) if ``False``, no additive bias even when ``affine``.

    Shape:
        - Input: :math:`(N, C, L)` or :math:`(C, L)`.
        - Output: same shape as the input.

    Attributes:
        weight: shape ``(num_features,)``, initialised to 1 (``None`` unless ``affine``).
        bias: shape ``(num_features,)``, initialised to 0.
        running_mean: buffer of shape ``(num_features,)``, initialised to 0 (``None``
            unless ``track_running_stats``).
        running_var: buffer of shape ``(num_features,)``, initialised to 1.
        num_batches_tracked: integer scalar buffer, initialised to 0 (never
            incremented by instance norm, as in torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.InstanceNorm1d(2)
        >>> m
        InstanceNorm1d(2, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)
        >>> m(jnp.array([[0.0, 2.0], [1.0, 5.0]])).round(3)  # unbatched (C, L)
        Array([[-1.,  1.],
               [-1.,  1.]], dtype=float32)
    """

    def _get_no_batch_dim(self) -> int:
        return 2

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class InstanceNorm2d(_InstanceNorm):
    r"""Apply Instance Normalization over a 3D (unbatched) or 4D (batched) input.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{ \sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    Mean and (biased) variance are computed per sample and per channel over
    :math:`(H, W)`. See :class:`InstanceNorm1d` for the running statistics.

    Args:
        num_features: number of channels :math:`C` of the input.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        momentum: factor of the running statistics update; ``None`` leaves them
            unchanged. Default: 0.1
        affine: whether to learn per-channel affine parameters. Default: ``False``
        track_running_stats: keep running mean and variance for eval mode.
            Default: ``False``
        device: where to place the parameters and buffers.
        dtype: dtype of the floating point parameters and buffers (default float32).
        bias: (keyword only) if ``False``, no additive bias even when ``affine``.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: same shape as the input.

    Attributes:
        weight: shape ``(num_features,)``, initialised to 1 (``None`` unless ``affine``).
        bias: shape ``(num_features,)``, initialised to 0.
        running_mean: buffer of shape ``(num_features,)``, initialised to 0 (``None``
            unless ``track_running_stats``).
        running_var: buffer of shape ``(num_features,)``, initialised to 1.
        num_batches_tracked: integer scalar buffer, initialised to 0.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
        >>> m(jnp.ones((2, 3, 4, 4)) * jnp.arange(4.0)).shape
        (2, 3, 4, 4)
        >>> m.running_mean
        Array([0.15, 0.15, 0.15], dtype=float32)
    """

    def _get_no_batch_dim(self) -> int:
        return 3

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim not in (3, 4):
            raise ValueError(f"expected 3D or 4D input (got {input.ndim}D input)")


class InstanceNorm3d(_InstanceNorm):
    r"""Apply Instance Normalization over a 4D (unbatched) or 5D (batched) input.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{ \sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    Mean and (biased) variance are computed per sample and per channel over
    :math:`(D, H, W)`. See :class:`InstanceNorm1d` for the running statistics.

    Args:
        num_features: number of channels :math:`C` of the input.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        momentum: factor of the running statistics update; ``None`` leaves them
            unchanged. Default: 0.1
        affine: whether to learn per-channel affine parameters. Default: ``False``
        track_running_stats: keep running mean and variance for eval mode.
            Default: ``False``
        device: where to place the parameters and buffers.
        dtype: dtype of the floating point parameters and buffers (default float32).
        bias: (keyword only) if ``False``, no additive bias even when ``affine``.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: same shape as the input.

    Attributes:
        weight: shape ``(num_features,)``, initialised to 1 (``None`` unless ``affine``).
        bias: shape ``(num_features,)``, initialised to 0.
        running_mean: buffer of shape ``(num_features,)``, initialised to 0 (``None``
            unless ``track_running_stats``).
        running_var: buffer of shape ``(num_features,)``, initialised to 1.
        num_batches_tracked: integer scalar buffer, initialised to 0.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.InstanceNorm3d(4)(jnp.ones((2, 4, 2, 2, 2))).shape
        (2, 4, 2, 2, 2)
    """

    def _get_no_batch_dim(self) -> int:
        return 4

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim not in (4, 5):
            raise ValueError(f"expected 4D or 5D input (got {input.ndim}D input)")


class LazyInstanceNorm1d(_LazyNormBase, _InstanceNorm):
    r"""An :class:`InstanceNorm1d` whose ``num_features`` is inferred from the first input
    (``input.shape[1]``).

    ``weight``, ``bias``, ``running_mean`` and ``running_var`` are uninitialized until
    the first call, which materializes them and turns the module into an
    :class:`InstanceNorm1d`. As in torch, ``affine`` and ``track_running_stats``
    default to ``True`` here (the lazy norms share one constructor). See
    :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        eps, momentum, affine, track_running_stats, device, dtype, bias: as for
            :class:`InstanceNorm1d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyInstanceNorm1d()
        >>> m(jnp.ones((2, 4, 5))).shape
        (2, 4, 5)
    """

    cls_to_become = InstanceNorm1d

    def _get_no_batch_dim(self) -> int:
        return 2

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class LazyInstanceNorm2d(_LazyNormBase, _InstanceNorm):
    r"""An :class:`InstanceNorm2d` whose ``num_features`` is inferred from the first input
    (``input.shape[1]``).

    ``weight``, ``bias``, ``running_mean`` and ``running_var`` are uninitialized until
    the first call, which materializes them and turns the module into an
    :class:`InstanceNorm2d`. As in torch, ``affine`` and ``track_running_stats``
    default to ``True`` here (the lazy norms share one constructor). See
    :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        eps, momentum, affine, track_running_stats, device, dtype, bias: as for
            :class:`InstanceNorm2d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyInstanceNorm2d()
        >>> m(jnp.ones((2, 4, 5, 5))).shape
        (2, 4, 5, 5)
    """

    cls_to_become = InstanceNorm2d

    def _get_no_batch_dim(self) -> int:
        return 3

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim not in (3, 4):
            raise ValueError(f"expected 3D or 4D input (got {input.ndim}D input)")


class LazyInstanceNorm3d(_LazyNormBase, _InstanceNorm):
    r"""An :class:`InstanceNorm3d` whose ``num_features`` is inferred from the first input
    (``input.shape[1]``).

    ``weight``, ``bias``, ``running_mean`` and ``running_var`` are uninitialized until
    the first call, which materializes them and turns the module into an
    :class:`InstanceNorm3d`. As in torch, ``affine`` and ``track_running_stats``
    default to ``True`` here (the lazy norms share one constructor). See
    :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        eps, momentum, affine, track_running_stats, device, dtype, bias: as for
            :class:`InstanceNorm3d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyInstanceNorm3d()
        >>> m(jnp.ones((2, 4, 5, 5, 5))).shape
        (2, 4, 5, 5, 5)
    """

    cls_to_become = InstanceNorm3d

    def _get_no_batch_dim(self) -> int:
        return 4

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim not in (4, 5):
            raise ValueError(f"expected 4D or 5D input (got {input.ndim}D input)")
