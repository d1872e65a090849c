"""Loss layers (``torch/nn/modules/loss.py``).

Constructor signatures, the deprecated ``size_average``/``reduce`` arguments (mapped to
``reduction`` with torch's warning), and buffer names are torch's: class weights are
buffers named ``weight`` (``pos_weight`` for :class:`BCEWithLogitsLoss`), registered as
``None`` when not given, so ``state_dict()`` keys match torch's. An invalid
``reduction`` string raises when the loss is called, as in torch.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax

from jmod._src.functional import _reduction as _R, ctc, linear_cross_entropy as LCE, loss as F
from jmod._src.functional.linear_cross_entropy import LinearCrossEntropyOptions
from jmod.nn.modules.distance import PairwiseDistance
from jmod.nn.modules.linear import Linear
from jmod.nn.modules.module import Module

__all__ = [
    "L1Loss",
    "NLLLoss",
    "NLLLoss2d",
    "PoissonNLLLoss",
    "GaussianNLLLoss",
    "KLDivLoss",
    "MSELoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "HingeEmbeddingLoss",
    "MultiLabelMarginLoss",
    "SmoothL1Loss",
    "HuberLoss",
    "SoftMarginLoss",
    "CrossEntropyLoss",
    "MultiLabelSoftMarginLoss",
    "CosineEmbeddingLoss",
    "MarginRankingLoss",
    "MultiMarginLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "CTCLoss",
    "LinearCrossEntropyLoss",
    "LinearCrossEntropyOptions",
]


class _Loss(Module):
    reduction: str

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            self.reduction = _R.legacy_get_string(size_average, reduce, stacklevel=4)
        else:
            self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(
        self, weight: Any = None, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    r"""Mean absolute error :math:`|x_n - y_n|`.

    Args:
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.L1Loss()(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
        Array(1.5, dtype=float32)
    """

    __constants__ = ["reduction"]

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.l1_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    r"""Negative log likelihood loss for log-probabilities (``LogSoftmax`` outputs).

    Args:
        weight: optional ``(C,)`` rescaling weight per class (a buffer named ``weight``).
        size_average, reduce: deprecated (see ``reduction``).
        ignore_index: target value that is ignored (no loss, no gradient). Default: -100.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. ``'mean'`` divides by the sum of the
            weights of the non-ignored targets.

    Shape:
        - Input: :math:`(N, C)`, :math:`(C)` or :math:`(N, C, d_1, \dots, d_K)`.
        - Target: :math:`(N)`, :math:`()` or :math:`(N, d_1, \dots, d_K)` class indices.
        - Output: scalar, or the target's shape with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> loss = nn.NLLLoss(weight=jnp.array([1.0, 3.0]))
        >>> round(float(loss(jnp.log(jnp.array([[0.5, 0.5], [0.5, 0.5]])), jnp.array([0, 1]))), 4)
        0.6931
        >>> list(loss.state_dict())
        ['weight']
    """

    __constants__ = ["ignore_index", "reduction"]

    def __init__(
        self,
        weight: Any = None,
        size_average: Any = None,
        ignore_index: int = -100,
        reduce: Any = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class NLLLoss2d(NLLLoss):
    r"""Deprecated alias of :class:`NLLLoss` kept by torch (constructing it warns).

    Args:
        weight, size_average, ignore_index, reduce, reduction: as :class:`NLLLoss`.

    Shape:
        - Input: :math:`(N, C, H, W)` (any shape :class:`NLLLoss` accepts).
        - Target: :math:`(N, H, W)` class indices.
        - Output: scalar, or the target's shape with ``reduction='none'``.

    Examples:
        >>> import warnings, jax.numpy as jnp
        >>> from jmod import nn
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", FutureWarning)
        ...     loss = nn.NLLLoss2d()
        >>> loss(jnp.ones((1, 2, 3, 3)), jnp.zeros((1, 3, 3), jnp.int32))
        Array(-1., dtype=float32)
    """

    def __init__(
        self,
        weight: Any = None,
        size_average: Any = None,
        ignore_index: int = -100,
        reduce: Any = None,
        reduction: str = "mean",
    ) -> None:
        warnings.warn(
            "`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in replacement and see "
            "https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss for more details.",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__(weight, size_average, ignore_index, reduce, reduction)


class PoissonNLLLoss(_Loss):
    r"""Poisson negative log likelihood :math:`e^x - y x` (``log_input``) or :math:`x - y \log(x + \epsilon)`.

    Args:
        log_input: whether the input is the log of the rate. Default: ``True``.
        full: add the Stirling approximation term (for targets > 1). Default: ``False``.
        size_average, reduce: deprecated (see ``reduction``).
        eps: avoids :math:`\log 0` when ``log_input=False``. Default: 1e-8.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.PoissonNLLLoss()(jnp.zeros(2), jnp.ones(2))
        Array(1., dtype=float32)
    """

    __constants__ = ["log_input", "full", "eps", "reduction"]

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: Any = None,
        eps: float = 1e-8,
        reduce: Any = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Any, target: Any) -> jax.Array:
        return F.poisson_nll_loss(
            log_input, target, log_input=self.log_input, full=self.full, eps=self.eps, reduction=self.reduction
        )


class GaussianNLLLoss(_Loss):
    r"""Gaussian negative log likelihood :math:`\frac12(\log \max(v, \epsilon) + (x - y)^2 / \max(v, \epsilon))`.

    Args:
        full: include the constant :math:`\frac12 \log 2\pi`. Default: ``False``.
        eps: clamp of the variance. Default: 1e-6.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(N, *)` or :math:`(*)`.
        - Target: same shape as the input.
        - Var: same shape as the input, one dimension short, one mismatching dim of
          size 1, or a Python number.
        - Output: scalar, or the input's shape with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.GaussianNLLLoss()(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((2, 1)))
        Array(0., dtype=float32)
    """

    __constants__ = ["full", "eps", "reduction"]

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Any, target: Any, var: Any) -> jax.Array:
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class KLDivLoss(_Loss):
    r"""Kullback-Leibler divergence :math:`y (\log y - x)` for log-probability inputs.

    Args:
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'``. ``'batchmean'``
            matches the KL definition; ``'mean'`` (the default) divides by the number of
            elements and warns, as torch.
        log_target: whether the target is in log space. Default: ``False``.

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> p = jnp.array([[0.25, 0.75]])
        >>> nn.KLDivLoss(reduction="batchmean")(jnp.log(p), p)
        Array(0., dtype=float32)
    """

    __constants__ = ["reduction"]

    def __init__(
        self, size_average: Any = None, reduce: Any = None, reduction: str = "mean", log_target: bool = False
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MSELoss(_Loss):
    r"""Mean squared error :math:`(x_n - y_n)^2`.

    Args:
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.MSELoss()(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
        Array(2.5, dtype=float32)
    """

    __constants__ = ["reduction"]

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.mse_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    r"""Binary cross entropy between probabilities and targets (logs clamped at -100).

    Args:
        weight: optional rescaling weight broadcastable to the input (buffer ``weight``).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(*)`, values in ``[0, 1]``.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> round(float(nn.BCELoss()(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))), 4)
        0.6931
    """

    __constants__ = ["reduction"]

    def __init__(
        self, weight: Any = None, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    r"""Sigmoid + binary cross entropy, numerically stable.

    Args:
        weight: optional rescaling weight broadcastable to the input (buffer ``weight``).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        pos_weight: optional weight of positive examples broadcast with the target,
            e.g. ``(C,)`` for ``(N, C)`` targets (buffer ``pos_weight``).

    Shape:
        - Input: :math:`(*)` logits.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> loss = nn.BCEWithLogitsLoss(pos_weight=jnp.ones(3))
        >>> round(float(loss(jnp.zeros((2, 3)), jnp.ones((2, 3)))), 4)
        0.6931
        >>> sorted(loss.state_dict())
        ['pos_weight']
    """

    def __init__(
        self,
        weight: Any = None,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
        pos_weight: Any = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )


class HingeEmbeddingLoss(_Loss):
    r""":math:`x_n` where :math:`y_n = 1`, :math:`\max(0, \text{margin} - x_n)` where :math:`y_n = -1`.

    Args:
        margin: Default: 1.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input, values :math:`\pm 1`.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.HingeEmbeddingLoss()(jnp.array([0.3, 0.3]), jnp.array([1.0, -1.0]))
        Array(0.5, dtype=float32)
    """

    __constants__ = ["margin", "reduction"]

    def __init__(
        self, margin: float = 1.0, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    r"""Multi-label hinge loss; targets are class indices padded with -1.

    Args:
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(C)` or :math:`(N, C)`.
        - Target: same shape as the input (integer class indices, -1 terminated).
        - Output: scalar, or :math:`(N)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.MultiLabelMarginLoss()(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))
        Array(0.85, dtype=float32)
    """

    __constants__ = ["reduction"]

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.multilabel_margin_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    r"""Quadratic for :math:`|x - y| < \beta`, linear beyond (:math:`\beta = 0` is L1).

    Args:
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        beta: the threshold (non-negative). Default: 1.0.

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.SmoothL1Loss(reduction="sum")(jnp.array([0.5, 3.0]), jnp.zeros(2))
        Array(2.625, dtype=float32)
    """

    __constants__ = ["reduction"]

    def __init__(
        self, size_average: Any = None, reduce: Any = None, reduction: str = "mean", beta: float = 1.0
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    r"""Quadratic for :math:`|x - y| < \delta`, :math:`\delta`-scaled linear beyond.

    Args:
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.
        delta: the threshold (positive). Default: 1.0.

    Raises:
        TypeError: if ``delta`` is not a float or int (torch's message).

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.HuberLoss(delta=2.0)(jnp.array([0.5, 3.0]), jnp.zeros(2))
        Array(2.0625, dtype=float32)
    """

    __constants__ = ["reduction", "delta"]

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        if not isinstance(delta, (float, int)):
            raise TypeError(f"delta must be a float or int, got: {type(delta)}")
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SoftMarginLoss(_Loss):
    r"""Two-class logistic loss :math:`\log(1 + e^{-y x})`.

    Args:
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(*)`.
        - Target: :math:`(*)`, same shape as the input, values :math:`\pm 1`.
        - Output: scalar, or :math:`(*)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> round(float(nn.SoftMarginLoss()(jnp.zeros(2), jnp.array([1.0, -1.0]))), 4)
        0.6931
    """

    __constants__ = ["reduction"]

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    r"""Cross entropy between logits and class indices or class probabilities.

    Args:
        weight: optional ``(C,)`` rescaling weight per class (buffer ``weight``).
        size_average, reduce: deprecated (see ``reduction``).
        ignore_index: ignored target value (class-index targets only). Default: -100.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. With class indices, ``'mean'``
            divides by the summed weights of the non-ignored targets (NaN if all are
            ignored); with probabilities, by the number of samples.
        label_smoothing: in ``[0, 1]``. Default: 0.

    Shape:
        - Input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_K)` logits.
        - Target: class indices :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots, d_K)`;
          or probabilities with the input's shape.
        - Output: scalar, or the target's (indices) / input-without-C (probabilities)
          shape with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> loss = nn.CrossEntropyLoss(label_smoothing=0.1)
        >>> round(float(loss(jnp.zeros((3, 5)), jnp.array([1, 0, 4]))), 4)
        1.6094
        >>> loss
        CrossEntropyLoss()
    """

    __constants__ = ["ignore_index", "reduction", "label_smoothing"]

    def __init__(
        self,
        weight: Any = None,
        size_average: Any = None,
        ignore_index: int = -100,
        reduce: Any = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class MultiLabelSoftMarginLoss(_WeightedLoss):
    r"""Multi-label one-versus-all logistic loss, averaged over the classes.

    Args:
        weight: optional ``(C,)`` rescaling weight per class (buffer ``weight``).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input: :math:`(N, C)`.
        - Target: :math:`(N, C)` with values 0 or 1.
        - Output: scalar, or :math:`(N)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> round(float(nn.MultiLabelSoftMarginLoss()(jnp.zeros((1, 3)), jnp.array([[1.0, 0.0, 1.0]]))), 4)
        0.6931
    """

    __constants__ = ["reduction"]

    def __init__(
        self, weight: Any = None, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    r""":math:`1 - \cos(x_1, x_2)` for :math:`y = 1`, :math:`\max(0, \cos(x_1, x_2) - \text{margin})` for :math:`y = -1`.

    Args:
        margin: in ``[-1, 1]``. Default: 0.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input1: :math:`(N, D)` or :math:`(D)`.
        - Input2: same shape as Input1.
        - Target: :math:`(N)` or :math:`()`, values :math:`\pm 1`.
        - Output: scalar, or :math:`(N)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.CosineEmbeddingLoss()(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]]), jnp.array([1.0]))
        Array(1., dtype=float32)
    """

    __constants__ = ["margin", "reduction"]

    def __init__(
        self, margin: float = 0.0, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> jax.Array:
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    r""":math:`\max(0, -y (x_1 - x_2) + \text{margin})`.

    Args:
        margin: Default: 0.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Shape:
        - Input1: :math:`(N)` or :math:`()`.
        - Input2, Target: same shape as Input1.
        - Output: scalar, or :math:`(N)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> nn.MarginRankingLoss(margin=0.5)(jnp.array([1.0]), jnp.array([0.0]), jnp.array([-1.0]))
        Array(1.5, dtype=float32)
    """

    __constants__ = ["margin", "reduction"]

    def __init__(
        self, margin: float = 0.0, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> jax.Array:
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    r"""Multi-class hinge loss :math:`\frac1C \sum_{j \ne y} w_y \max(0, \text{margin} - x_y + x_j)^p`.

    Args:
        p: 1 or 2. Default: 1.
        margin: Default: 1.
        weight: optional ``(C,)`` weight per class (buffer ``weight``).
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: if ``p`` is not 1 or 2, or ``weight`` is not 1-D (torch's messages).

    Shape:
        - Input: :math:`(N, C)` or :math:`(C)`.
        - Target: :math:`(N)` or :math:`()` class indices.
        - Output: scalar, or the target's shape with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> round(float(nn.MultiMarginLoss()(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))), 4)
        0.325
    """

    __constants__ = ["p", "margin", "reduction"]

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: Any = None,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p != 1 and p != 2:
            raise ValueError("only p == 1 and p == 2 supported")
        if weight is not None and self.weight.ndim != 1:
            raise ValueError(
                f"MultiMarginLoss: expected weight to be None or 1D tensor, got {self.weight.ndim}D instead"
            )
        self.p = p
        self.margin = margin

    def forward(self, input: Any, target: Any) -> jax.Array:
        return F.multi_margin_loss(
            input, target, p=self.p, margin=self.margin, weight=self.weight, reduction=self.reduction
        )


class TripletMarginLoss(_Loss):
    r"""Triplet loss :math:`\max(d(a, p) - d(a, n) + \text{margin}, 0)` with the :math:`p`-norm distance.

    Args:
        margin: positive margin. Default: 1.
        p: norm degree of the pairwise distance. Default: 2.
        eps: small constant for numerical stability. Default: 1e-6.
        swap: use the distance swap. Default: ``False``.
        size_average, reduce: deprecated (see ``reduction``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``.

    Raises:
        ValueError: if ``margin <= 0`` (torch's message).

    Shape:
        - Input: :math:`(N, D)` or :math:`(D)` for anchor, positive and negative.
        - Output: scalar, or :math:`(N)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> loss = nn.TripletMarginLoss(margin=1.0, p=2)
        >>> loss(jnp.zeros((4, 3)), jnp.zeros((4, 3)), jnp.ones((4, 3))).shape
        ()
    """

    __constants__ = ["margin", "p", "eps", "swap", "reduction"]

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: Any, positive: Any, negative: Any) -> jax.Array:
        return F.triplet_margin_loss(
            anchor,
            positive,
            negative,
            margin=self.margin,
            p=self.p,
            eps=self.eps,
            swap=self.swap,
            reduction=self.reduction,
        )


class TripletMarginWithDistanceLoss(_Loss):
    r"""Triplet loss :math:`\max(d(a, p) - d(a, n) + \text{margin}, 0)` with a custom distance :math:`d`.

    Args:
        distance_function: a callable ``d(x1, x2)`` giving non-negative distances
            (a function or a module, e.g. ``lambda x, y: 1 - F.cosine_similarity(x, y)``).
            ``None`` uses ``PairwiseDistance()`` (the Euclidean distance over the last
            dimension), stored as the child module ``distance_function`` as in torch.
        margin: positive margin. Default: 1.
        swap: use the distance swap (min of :math:`d(a, n)` and :math:`d(p, n)`).
            Default: ``False``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.

    Raises:
        ValueError: if ``margin <= 0`` (torch's message).

    Shape:
        - Input: :math:`(N, *)` or :math:`(*)` for anchor, positive and negative (any
          shapes the distance takes; same number of dimensions).
        - Output: scalar, or :math:`(N)` with ``reduction='none'``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> l1 = lambda x, y: jnp.abs(x - y).sum(-1)
        >>> loss = nn.TripletMarginWithDistanceLoss(distance_function=l1, margin=2.0, reduction="none")
        >>> loss(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((2, 3)))
        Array([0., 0.], dtype=float32)
        >>> nn.TripletMarginWithDistanceLoss()
        TripletMarginWithDistanceLoss(
          (distance_function): PairwiseDistance()
        )
    """

    __constants__ = ["margin", "swap", "reduction"]

    def __init__(
        self, *, distance_function: Any = None, margin: float = 1.0, swap: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average=None, reduce=None, reduction=reduction)
        if margin <= 0:
            raise ValueError(
                f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} instead"
            )
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: Any, positive: Any, negative: Any) -> jax.Array:
        return F.triplet_margin_with_distance_loss(
            anchor,
            positive,
            negative,
            distance_function=self.distance_function,
            margin=self.margin,
            swap=self.swap,
            reduction=self.reduction,
        )


class CTCLoss(_Loss):
    r"""The Connectionist Temporal Classification loss.

    The negative log likelihood of each target sequence given an unsegmented input
    sequence, summed over all its alignments (the forward algorithm in log space, run
    with ``jax.lax.scan`` on static shapes, so it compiles under ``jax.jit``). The
    alignment is many-to-one, so each target must be at most as long as its input.
    Gradients with respect to ``log_probs`` are torch's (see
    :func:`~jmod.nn.functional.ctc_loss`).

    Args:
        blank: the blank label. Default: 0.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. ``'mean'`` divides each loss by
            its target length (at least 1), then averages over the batch.
            Default: ``'mean'``.
        zero_infinity: zero infinite losses (inputs too short to be aligned to their
            targets) and their gradients. Default: ``False``.

    Shape:
        - Log_probs: :math:`(T, N, C)` or :math:`(T, C)` log-probabilities (e.g.
          ``F.log_softmax(x, -1)``), with :math:`T` the input length, :math:`N` the
          batch size and :math:`C` the number of classes including the blank.
        - Targets: :math:`(N, S)` class indices padded to the longest target
          :math:`S`, or :math:`(\sum_n \text{target\_lengths}_n)`: the targets
          concatenated. Targets should not contain the blank.
        - Input_lengths: :math:`(N)` or :math:`()`: an integer array, tuple or list,
          each :math:`\leq T`.
        - Target_lengths: :math:`(N)` or :math:`()`, each :math:`\leq S` (padded
          targets) or summing to the concatenated targets' length.
        - Output: scalar; with ``reduction='none'``, :math:`(N)`, or :math:`()` for
          unbatched input.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jmod import nn
        >>> T, N, C, S = 50, 4, 20, 10
        >>> log_probs = jax.nn.log_softmax(jax.random.normal(jax.random.key(0), (T, N, C)), -1)
        >>> targets = jax.random.randint(jax.random.key(1), (N, S), 1, C)
        >>> loss = nn.CTCLoss()(log_probs, targets, (T,) * N, (10, 8, 6, 4))
        >>> loss.shape
        ()
        >>> nn.CTCLoss(reduction="none")(log_probs, targets, (T,) * N, (10, 8, 6, 4)).shape
        (4,)
    """

    __constants__ = ["blank", "reduction"]
    blank: int
    zero_infinity: bool

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any) -> jax.Array:
        return ctc.ctc_loss(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            self.blank,
            self.reduction,
            self.zero_infinity,
        )


class LinearCrossEntropyLoss(_WeightedLoss):
    r"""Cross entropy of the input transformed to logits by an internal :class:`Linear`.

    ``loss(input, target)`` is ``F.cross_entropy(linear(input), target, ...)`` with the
    logits reshaped to :math:`(N, C, d_1, \dots, d_K)` for a K-dimensional loss. The
    linear layer is the child ``linear`` with a flat weight
    :math:`(C \cdot \prod d_k, \text{in\_features})`, so ``state_dict()`` keys match
    torch's (``weight`` for the class weights, ``linear.weight``, ``linear.bias``).

    Args:
        in_features: size of each input sample.
        num_classes: number of classes :math:`C`.
        out_features: :math:`(d_1, \dots, d_K)` for a K-dimensional loss. Default: ``()``.
        bias: give the linear layer a bias. Default: ``False``.
        device, dtype: of the linear layer's parameters.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``.
        weight: optional ``(C,)`` rescaling weight per class (buffer ``weight``).
        ignore_index: ignored target value; ``None`` is -100 for class indices (and
            required for probability targets). Default: ``None``.
        label_smoothing: in ``[0, 1]``. Default: 0.
        options: ``None`` or a :class:`LinearCrossEntropyOptions` selecting the
            batch-chunked computation (see :func:`~jmod.nn.functional.linear_cross_entropy`).

    Raises:
        RuntimeError: a ``weight`` not of shape ``(C,)`` or ``label_smoothing`` outside
            ``[0, 1]`` (torch's messages).

    Shape:
        - Input: :math:`(\text{in\_features})` or :math:`(N, \text{in\_features})`.
        - Target: class indices :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots, d_K)`;
          or probabilities :math:`(C)` or :math:`(N, C, d_1, \dots, d_K)`.
        - Output: scalar, or the target's (indices) shape with ``reduction='none'``.

    Attributes:
        linear: the :class:`Linear` layer ``in_features -> C * prod(out_features)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> loss = nn.LinearCrossEntropyLoss(5, 10, out_features=(4, 3))
        >>> loss(jnp.ones((2, 5)), jnp.zeros((2, 4, 3), jnp.int32)).shape
        ()
        >>> sorted(nn.LinearCrossEntropyLoss(5, 10, bias=True).state_dict())
        ['linear.bias', 'linear.weight']
    """

    __constants__ = ["num_classes", "out_features", "reduction", "ignore_index", "label_smoothing"]
    num_classes: int
    out_features: tuple
    ignore_index: int | None
    label_smoothing: float

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        reduction: str = "mean",
        weight: Any = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: LinearCrossEntropyOptions | None = None,
    ) -> None:
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise RuntimeError(f"expected weight shape to be {(num_classes,)}, got {tuple(weight.shape)}")
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], got {label_smoothing}")
        super().__init__(weight=weight, size_average=None, reduce=None, reduction=reduction)
        self.num_classes = num_classes
        self.out_features = out_features
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.linear = Linear(
            in_features, math.prod(out_features, start=num_classes), bias=bias, device=device, dtype=dtype
        )
        self.options = options

    def forward(self, input: Any, target: Any) -> jax.Array:
        linear_weight = self.linear.weight.reshape((self.num_classes, *self.out_features, self.linear.in_features))
        linear_bias = (
            self.linear.bias.reshape((self.num_classes, *self.out_features)) if self.linear.bias is not None else None
        )
        return LCE.linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.linear.in_features},"
            f" num_classes={self.num_classes},"
            f" out_features={self.out_features},"
            f" bias={self.linear.bias is not None},"
            f" reduction={self.reduction},"
            f" ignore_index={self.ignore_index},"
            f" label_smoothing={self.label_smoothing},"
            f" options={self.options}"
        )
