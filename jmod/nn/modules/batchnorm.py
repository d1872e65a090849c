"""Batch normalization: BatchNorm1d/2d/3d (``torch/nn/modules/batchnorm.py``).

``_NormBase`` (shared with the instance norms) holds torch's parameters, buffers,
``reset_*`` methods, ``extra_repr`` and the version-2 ``state_dict`` migration that
adds ``num_batches_tracked``. In training, ``forward`` writes the updated running
statistics back by assignment (``self.running_mean = new``), which ``jmod.jit`` and
``functional_call(..., return_buffers=True)`` pick up.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import devices
from jmod._src.arrays import host_empty, host_ones, host_zeros, long_dtype
from jmod._src.functional import normalization as F
from jmod.nn import init
from jmod.nn.modules.lazy import LazyModuleMixin
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter, UninitializedBuffer, UninitializedParameter

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
]


def _factory_dtype(dtype: Any) -> Any:
    """The parameter dtype for a ``dtype=`` constructor argument (torch or jax spelling)."""
    return jnp.dtype(jnp.float32) if dtype is None else devices.check_module_dtype(dtype)


class _NormBase(Module):
    """Common base of ``_InstanceNorm`` and ``_BatchNorm`` (torch's ``_NormBase``)."""

    _version = 2
    __constants__ = ["track_running_stats", "momentum", "eps", "num_features", "affine"]
    num_features: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        dtype = _factory_dtype(dtype)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if self.affine:
            self.weight = Parameter(host_empty((num_features,), dtype))
            if bias:
                self.bias = Parameter(host_empty((num_features,), dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", host_zeros((num_features,), dtype))
            self.register_buffer("running_var", host_ones((num_features,), dtype))
            self.register_buffer("num_batches_tracked", host_zeros((), long_dtype()))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_running_stats(self) -> None:
        """Reset ``running_mean`` to 0, ``running_var`` to 1 and ``num_batches_tracked`` to 0."""
        if self.track_running_stats:
            # Built on the host: eager jnp.zeros_like would compile per shape.
            self.running_mean = host_zeros(self.running_mean.shape, self.running_mean.dtype)
            self.running_var = host_ones(self.running_var.shape, self.running_var.dtype)
            self.num_batches_tracked = host_zeros((), self.num_batches_tracked.dtype)

    def reset_parameters(self) -> None:
        """Reset the running statistics, then ``weight`` to 1 and ``bias`` to 0."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input: Any) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            "{num_features}, eps={eps}, momentum={momentum}, affine={affine}, "
            "bias={use_bias}, track_running_stats={track_running_stats}".format(
                **self.__dict__, use_bias=self.bias is not None
            )
        )

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
        if (version is None or version < 2) and self.track_running_stats:
            # At version 2 torch added the num_batches_tracked buffer; older
            # checkpoints load with the current value (0 for a fresh module).
            num_batches_tracked_key = prefix + "num_batches_tracked"
            if num_batches_tracked_key not in state_dict:
                state_dict[num_batches_tracked_key] = (
                    self.num_batches_tracked if self.num_batches_tracked is not None else host_zeros((), long_dtype())
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class _BatchNorm(_NormBase):
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input: Any) -> jax.Array:
        input = jnp.asarray(input)
        self._check_input_dim(input)

        if self.momentum is None:
            exponential_average_factor: Any = 0.0
        else:
            exponential_average_factor = self.momentum

        if self.training and self.track_running_stats:
            if self.num_batches_tracked is not None:
                self.num_batches_tracked = self.num_batches_tracked + 1
                if self.momentum is None:  # cumulative moving average
                    exponential_average_factor = 1.0 / self.num_batches_tracked
                else:  # exponential moving average
                    exponential_average_factor = self.momentum

        # Batch statistics normalise in training mode, and in eval mode when the
        # buffers are None.
        if self.training:
            bn_training = True
        else:
            bn_training = (self.running_mean is None) and (self.running_var is None)

        # The buffers are passed only when they are to be updated (training and
        # tracked) or used (eval).
        use_buffers = not self.training or self.track_running_stats
        running_mean = self.running_mean if use_buffers else None
        running_var = self.running_var if use_buffers else None
        out, new_mean, new_var = F.batch_norm_with_stats(
            input,
            running_mean,
            running_var,
            self.weight,
            self.bias,
            bn_training,
            exponential_average_factor,
            self.eps,
        )
        if bn_training and running_mean is not None:
            self.running_mean = new_mean
        if bn_training and running_var is not None:
            self.running_var = new_var
        return out


class BatchNorm1d(_BatchNorm):
    r"""Apply Batch Normalization over a 2D or 3D input.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    Statistics are per channel over the batch (and length). In training the output is
    normalised with the biased batch variance while ``running_var`` is updated with the
    unbiased one: :math:`\hat{x}_\text{new} = (1 - \text{momentum})\hat{x} +
    \text{momentum}\, x_t`. In eval mode the running estimates are used.

    Args:
        num_features: number of features or channels :math:`C` of the input.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        momentum: the factor of the running statistics update; ``None`` for a
            cumulative moving average (simple average, factor
            ``1 / num_batches_tracked``). Default: 0.1
        affine: whether the layer has learnable affine parameters. Default: ``True``
        track_running_stats: whether to keep running estimates of the mean and
            variance (used in eval mode). If ``False`` the buffers are ``None`` and
            batch statistics are used in both modes. Default: ``True``
        device: where to place the parameters and buffers.
        dtype: dtype of the floating point parameters and buffers (default float32).
        bias: (keyword only) if ``False``, no additive bias even when ``affine``.
            Default: ``True``

    Shape:
        - Input: :math:`(N, C)` or :math:`(N, C, L)`.
        - Output: same shape as the input.

    Attributes:
        weight: :math:`\gamma`, shape ``(num_features,)``, initialised to 1 (``None``
            when ``affine=False``).
        bias: :math:`\beta`, shape ``(num_features,)``, initialised to 0.
        running_mean: buffer of shape ``(num_features,)``, initialised to 0 (``None``
            when ``track_running_stats=False``).
        running_var: buffer of shape ``(num_features,)``, initialised to 1.
        num_batches_tracked: integer scalar buffer counting the training batches seen,
            initialised to 0 (torch's int64; int32 unless JAX's x64 mode is on).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.BatchNorm1d(3)
        >>> m
        BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
        >>> out = m(jnp.arange(12.0).reshape(4, 3))
        >>> out.shape
        (4, 3)
        >>> m.running_mean.round(4), int(m.num_batches_tracked)
        (Array([0.45, 0.55, 0.65], dtype=float32), 1)
    """

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim != 2 and input.ndim != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    r"""Apply Batch Normalization over a 4D input :math:`(N, C, H, W)`.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    Statistics are per channel over :math:`(N, H, W)`. In training the output is
    normalised with the biased batch variance while ``running_var`` is updated with the
    unbiased one. In eval mode the running estimates are used.

    Args:
        num_features: number of features or channels :math:`C` of the input.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        momentum: the factor of the running statistics update; ``None`` for a
            cumulative moving average (simple average, factor
            ``1 / num_batches_tracked``). Default: 0.1
        affine: whether the layer has learnable affine parameters. Default: ``True``
        track_running_stats: whether to keep running estimates of the mean and
            variance (used in eval mode). If ``False`` the buffers are ``None`` and
            batch statistics are used in both modes. Default: ``True``
        device: where to place the parameters and buffers.
        dtype: dtype of the floating point parameters and buffers (default float32).
        bias: (keyword only) if ``False``, no additive bias even when ``affine``.
            Default: ``True``

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H, W)`.

    Attributes:
        weight: :math:`\gamma`, shape ``(num_features,)``, initialised to 1 (``None``
            when ``affine=False``).
        bias: :math:`\beta`, shape ``(num_features,)``, initialised to 0.
        running_mean: buffer of shape ``(num_features,)``, initialised to 0 (``None``
            when ``track_running_stats=False``).
        running_var: buffer of shape ``(num_features,)``, initialised to 1.
        num_batches_tracked: integer scalar buffer counting the training batches seen,
            initialised to 0 (torch's int64; int32 unless JAX's x64 mode is on).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.BatchNorm2d(2, affine=False)
        >>> m(jnp.ones((4, 2, 3, 3))).shape
        (4, 2, 3, 3)
        >>> m.running_mean, m.running_var  # momentum 0.1: 0.9 * (0, 1) + 0.1 * (1, 0)
        (Array([0.1, 0.1], dtype=float32), Array([0.9, 0.9], dtype=float32))
        >>> [round(v, 4) for v in m.eval()(jnp.ones((1, 2, 1, 1))).ravel().tolist()]  # (1 - 0.1) / sqrt(0.9 + eps)
        [0.9487, 0.9487]
    """

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")


class BatchNorm3d(_BatchNorm):
    r"""Apply Batch Normalization over a 5D input :math:`(N, C, D, H, W)`.

    .. math::

        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta

    Statistics are per channel over :math:`(N, D, H, W)` ("volumetric" batch norm).
    In training the output is normalised with the biased batch variance while
    ``running_var`` is updated with the unbiased one. In eval mode the running
    estimates are used.

    Args:
        num_features: number of features or channels :math:`C` of the input.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        momentum: the factor of the running statistics update; ``None`` for a
            cumulative moving average (simple average, factor
            ``1 / num_batches_tracked``). Default: 0.1
        affine: whether the layer has learnable affine parameters. Default: ``True``
        track_running_stats: whether to keep running estimates of the mean and
            variance (used in eval mode). If ``False`` the buffers are ``None`` and
            batch statistics are used in both modes. Default: ``True``
        device: where to place the parameters and buffers.
        dtype: dtype of the floating point parameters and buffers (default float32).
        bias: (keyword only) if ``False``, no additive bias even when ``affine``.
            Default: ``True``

    Shape:
        - Input: :math:`(N, C, D, H, W)`.
        - Output: :math:`(N, C, D, H, W)`.

    Attributes:
        weight: :math:`\gamma`, shape ``(num_features,)``, initialised to 1 (``None``
            when ``affine=False``).
        bias: :math:`\beta`, shape ``(num_features,)``, initialised to 0.
        running_mean: buffer of shape ``(num_features,)``, initialised to 0 (``None``
            when ``track_running_stats=False``).
        running_var: buffer of shape ``(num_features,)``, initialised to 1.
        num_batches_tracked: integer scalar buffer counting the training batches seen,
            initialised to 0 (torch's int64; int32 unless JAX's x64 mode is on).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.BatchNorm3d(2, momentum=None)
        >>> _ = m(jnp.ones((2, 2, 2, 2, 2)))
        >>> _ = m(3 * jnp.ones((2, 2, 2, 2, 2)))
        >>> m.running_mean  # the plain average of the two batch means
        Array([2., 2.], dtype=float32)
    """

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim != 5:
            raise ValueError(f"expected 5D input (got {input.ndim}D input)")


class SyncBatchNorm(_BatchNorm):
    r"""Batch Normalization with statistics over the whole (possibly sharded) batch.

    torch's ``SyncBatchNorm`` all-reduces the batch statistics across processes. In
    JAX, a ``jax.jit``-compiled (or ``jmod.jit``) step whose batch is *sharded* across
    devices already computes global statistics (``jnp.mean`` over a sharded axis is a
    global mean; XLA inserts the all-reduce), so this layer is
    :class:`BatchNorm1d`/``2d``/``3d`` for inputs of any rank ``>= 2``.
    ``process_group`` is accepted and stored for ported code; it has no effect.

    Args:
        num_features: number of channels :math:`C` of the input :math:`(N, C, +)`.
        eps: value added to the denominator for numerical stability. Default: 1e-5
        momentum: the factor of the running statistics update; ``None`` for a
            cumulative moving average. Default: 0.1
        affine: whether the layer has learnable affine parameters. Default: ``True``
        track_running_stats: whether to keep running estimates. Default: ``True``
        process_group: ignored (kept for torch code).
        device: where to place the parameters and buffers.
        dtype: dtype of the floating point parameters and buffers (default float32).
        bias: (keyword only) if ``False``, no additive bias. Default: ``True``

    Shape:
        - Input: :math:`(N, C, +)`.
        - Output: same shape as the input.

    Attributes:
        weight: shape ``(num_features,)``, initialised to 1.
        bias: shape ``(num_features,)``, initialised to 0.
        running_mean: buffer of shape ``(num_features,)``, initialised to 0.
        running_var: buffer of shape ``(num_features,)``, initialised to 1.
        num_batches_tracked: integer scalar buffer, initialised to 0.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> net = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)))
        >>> net
        Sequential(
          (0): Linear(in_features=4, out_features=3, bias=True)
          (1): SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
        )
        >>> net(jnp.ones((5, 4))).shape
        (5, 3)
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim < 2:
            raise ValueError(f"expected at least 2D input (got {input.ndim}D input)")

    def _check_non_zero_input_channels(self, input: Any) -> None:
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")

    def forward(self, input: Any) -> jax.Array:
        input = jnp.asarray(input)
        self._check_input_dim(input)
        self._check_non_zero_input_channels(input)
        return super().forward(input)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """Replace every ``BatchNorm*D`` in ``module`` by a ``SyncBatchNorm`` sharing its
        parameters and statistics (torch's helper); returns the converted module."""
        module_output = module
        if isinstance(module, _BatchNorm):
            module_output = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
                bias=module.bias is not None,
            )
            if module.affine:
                module_output.weight = module.weight  # an array read from a parameter ties, as torch shares it
                module_output.bias = module.bias
            module_output.running_mean = module.running_mean
            module_output.running_var = module.running_var
            module_output.num_batches_tracked = module.num_batches_tracked
            module_output.training = module.training
            if hasattr(module, "qconfig"):
                module_output.qconfig = module.qconfig
        for name, child in module.named_children():
            module_output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        del module
        return module_output


class _LazyNormBase(LazyModuleMixin, _NormBase):
    """What the lazy batch and instance norms share (torch's ``_LazyNormBase``)."""

    def __init__(
        self,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        # affine, bias and track_running_stats are hardcoded to False to avoid creating
        # arrays that will soon be replaced.
        super().__init__(0, eps, momentum, False, False, device=device, dtype=dtype, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if self.affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
        if self.track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            num_batches_tracked = host_zeros((), long_dtype())
            if device is not None:
                num_batches_tracked = devices.place(num_batches_tracked, devices.resolve_device(device))
            self.num_batches_tracked = num_batches_tracked

    def reset_parameters(self) -> None:
        """Reset the statistics and affine parameters once they are materialized."""
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Any) -> None:  # type: ignore[override]
        """Infer ``num_features`` from ``input.shape[1]`` and initialize the state."""
        if self.has_uninitialized_params():
            self.num_features = int(jnp.shape(input)[1])
            if self.affine:
                if not isinstance(self._parameters["weight"], UninitializedParameter):
                    raise AssertionError("self.weight must be an UninitializedParameter")
                self.weight.materialize((self.num_features,))
                if self.bias is not None:
                    if not isinstance(self._parameters["bias"], UninitializedParameter):
                        raise AssertionError("self.bias must be an UninitializedParameter")
                    self.bias.materialize((self.num_features,))
            if self.track_running_stats:
                self.running_mean.materialize((self.num_features,))
                self.running_var.materialize((self.num_features,))
            self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, _BatchNorm):
    r"""A :class:`BatchNorm1d` whose ``num_features`` is inferred from the first input
    (``input.shape[1]``).

    ``weight``, ``bias``, ``running_mean`` and ``running_var`` are uninitialized until
    the first call, which materializes them as :class:`BatchNorm1d` initializes them
    and turns the module into a :class:`BatchNorm1d`. See
    :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        eps, momentum, affine, track_running_stats, device, dtype, bias: as for
            :class:`BatchNorm1d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyBatchNorm1d()
        >>> m(jnp.ones((2, 4))).shape
        (2, 4)
        >>> m.running_mean.shape
        (4,)
    """

    cls_to_become = BatchNorm1d

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim != 2 and input.ndim != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class LazyBatchNorm2d(_LazyNormBase, _BatchNorm):
    r"""A :class:`BatchNorm2d` whose ``num_features`` is inferred from the first input
    (``input.shape[1]``).

    ``weight``, ``bias``, ``running_mean`` and ``running_var`` are uninitialized until
    the first call, which materializes them as :class:`BatchNorm2d` initializes them
    and turns the module into a :class:`BatchNorm2d`. See
    :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        eps, momentum, affine, track_running_stats, device, dtype, bias: as for
            :class:`BatchNorm2d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyBatchNorm2d()
        >>> m(jnp.ones((2, 4, 5, 5))).shape
        (2, 4, 5, 5)
        >>> m.running_mean.shape
        (4,)
    """

    cls_to_become = BatchNorm2d

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")


class LazyBatchNorm3d(_LazyNormBase, _BatchNorm):
    r"""A :class:`BatchNorm3d` whose ``num_features`` is inferred from the first input
    (``input.shape[1]``).

    ``weight``, ``bias``, ``running_mean`` and ``running_var`` are uninitialized until
    the first call, which materializes them as :class:`BatchNorm3d` initializes them
    and turns the module into a :class:`BatchNorm3d`. See
    :class:`~jmod.nn.modules.lazy.LazyModuleMixin`.

    Args:
        eps, momentum, affine, track_running_stats, device, dtype, bias: as for
            :class:`BatchNorm3d`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> m = nn.LazyBatchNorm3d()
        >>> m(jnp.ones((2, 4, 5, 5, 5))).shape
        (2, 4, 5, 5, 5)
        >>> m.running_mean.shape
        (4,)
    """

    cls_to_become = BatchNorm3d

    def _check_input_dim(self, input: Any) -> None:
        if input.ndim != 5:
            raise ValueError(f"expected 5D input (got {input.ndim}D input)")
