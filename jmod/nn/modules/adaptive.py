"""Adaptive softmax (``torch/nn/modules/adaptive.py``)."""

from __future__ import annotations

import itertools
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.arrays import long_dtype
from jmod._src.functional._torch_ops import is_concrete, size_str
from jmod.nn.modules.container import ModuleList, Sequential
from jmod.nn.modules.linear import Linear
from jmod.nn.modules.module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    r"""Efficient softmax approximation (Grave et al., 2016) for large, Zipf-distributed label sets.

    The classes are split by ``cutoffs`` into a shortlist, predicted by the ``head``
    together with one logit per tail cluster, and tail clusters, each predicted by a
    two-layer projection whose hidden size shrinks by ``div_value`` per cluster:
    :math:`\lfloor \text{in\_features} / \text{div\_value}^{i} \rfloor` for cluster
    :math:`i \geq 1`. The log-probability of a tail class is its cluster's head
    log-probability plus its log-probability within the cluster. Labels should be sorted
    by frequency (0 the most frequent).

    torch evaluates only the clusters some target falls in, gathering those rows
    (data-dependent shapes). jmod evaluates every cluster for every row and selects with
    masks, so ``forward`` compiles under ``jax.jit`` with static shapes; the values and
    gradients are the same.

    Args:
        in_features: number of features of the input.
        n_classes: number of classes.
        cutoffs: increasing, unique integers in ``[1, n_classes - 1]``: e.g. ``[10, 100,
            1000]`` puts classes 0-9 in the head and 10-99, 100-999, 1000-
            ``n_classes - 1`` in three clusters.
        div_value: the divisor of the clusters' hidden sizes. Default: 4.0.
        head_bias: give the head a bias. Default: ``False``.
        device, dtype: of the parameters.

    Raises:
        ValueError: empty or invalid ``cutoffs`` (torch's messages).

    Returns:
        ``forward`` returns the named tuple ``_ASMoutput(output, loss)``: ``output`` is
        the log-probability of each target, ``loss`` the mean negative log likelihood.

    Shape:
        - input: :math:`(N, \text{in\_features})` or :math:`(\text{in\_features})`.
        - target: :math:`(N)` or :math:`()` class indices in ``[0, n_classes)``.
        - output: :math:`(N)` or :math:`()`; loss: scalar.

    Attributes:
        head: ``Linear(in_features, shortlist_size + n_clusters)``.
        tail: ``ModuleList`` of ``Sequential(Linear(in_features, hsz), Linear(hsz, osz))``
            per cluster (parameter names ``tail.i.0.weight``/``tail.i.1.weight``, as torch).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> asm = nn.AdaptiveLogSoftmaxWithLoss(16, 10, cutoffs=[4, 8], div_value=2.0)
        >>> out = asm(jnp.ones((3, 16)), jnp.array([0, 5, 9]))
        >>> out.output.shape, out.loss.shape
        ((3,), ())
        >>> asm.log_prob(jnp.ones((3, 16))).shape
        (3, 10)
        >>> asm.predict(jnp.ones((3, 16))).shape
        (3,)
        >>> sorted(asm.state_dict())
        ['head.weight', 'tail.0.0.weight', 'tail.0.1.weight', 'tail.1.0.weight', 'tail.1.1.weight']
    """

    in_features: int
    n_classes: int
    cutoffs: list[int]
    div_value: float
    head_bias: bool
    head: Linear
    tail: ModuleList

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        head_bias: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (
            (cutoffs != sorted(cutoffs))
            or (min(cutoffs) <= 0)
            or (max(cutoffs) > (n_classes - 1))
            or (len(set(cutoffs)) != len(cutoffs))
            or any(int(c) != c for c in cutoffs)
        ):
            raise ValueError(
                "cutoffs should be a sequence of unique, positive "
                "integers sorted in an increasing order, where "
                "each value is between 1 and n_classes-1"
            )
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(self.in_features, self.head_size, bias=self.head_bias, **factory_kwargs)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(self.in_features // (self.div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            projection = Sequential(
                Linear(self.in_features, hsz, bias=False, **factory_kwargs),
                Linear(hsz, osz, bias=False, **factory_kwargs),
            )
            self.tail.append(projection)

    def reset_parameters(self) -> None:
        """Re-draw the parameters from their initial distributions."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Any, target_: Any) -> _ASMoutput:
        """Log-probabilities of the targets and the mean negative log likelihood.

        Raises:
            RuntimeError: shape mismatches and (for concrete targets) targets outside
                ``[0, n_classes)``, with torch's messages. Under a trace out-of-range
                targets give NaN.
        """
        input_, target_ = jnp.asarray(input_), jnp.asarray(target_)
        targ_dim = target_.ndim
        if targ_dim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input_.ndim != 2:
                raise RuntimeError(
                    f"1D target tensor expects 2D input tensors, but found inputs with size {size_str(input_.shape)}"
                )
        elif targ_dim == 0:
            if input_.ndim != 1:
                raise RuntimeError(
                    f"0D target tensor expects 1D input tensors, but found inputs with size {size_str(input_.shape)}"
                )
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        is_batched = targ_dim > 0
        input = input_ if is_batched else input_[None]
        target = target_ if is_batched else target_[None]
        if is_concrete(target) and target.size:
            t = np.asarray(target)
            if ((t < 0) | (t >= self.n_classes)).any():
                raise RuntimeError(
                    f"Target values should be in [0, {self.n_classes - 1}], "
                    f"but values in range [{t.min()}, {t.max()}] were found. "
                )

        output = jnp.zeros(target.shape, input.dtype)
        gather_inds = jnp.where(target < self.shortlist_size, target, 0)
        cutoff_values = [0] + self.cutoffs
        for i in range(1, len(cutoff_values) - 1):
            low_idx, high_idx = cutoff_values[i], cutoff_values[i + 1]
            mask = (target >= low_idx) & (target < high_idx)
            relative = jnp.where(mask, target - low_idx, 0)
            cluster_logprob = jax.nn.log_softmax(self.tail[i - 1](input), axis=1)
            local = jnp.take_along_axis(cluster_logprob, relative[:, None], axis=1)[:, 0]
            output = jnp.where(mask, local, output)
            gather_inds = jnp.where(mask, self.shortlist_size + i - 1, gather_inds)
        # Out-of-range targets (only possible under a trace) give NaN, not a silent value.
        in_range = (target >= 0) & (target < self.n_classes)
        head_logprob = jax.nn.log_softmax(self.head(input), axis=1)
        output = output + jnp.take_along_axis(head_logprob, gather_inds[:, None], axis=1)[:, 0]
        output = jnp.where(in_range, output, jnp.full((), jnp.nan, output.dtype))
        loss = jnp.mean(-output)
        if not is_batched:
            output = output[0]
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, input: jax.Array, head_output: jax.Array) -> jax.Array:
        """Log-probabilities of all classes from the input and the head's output."""
        head_logprob = jax.nn.log_softmax(head_output, axis=1)
        parts = [head_logprob[:, : self.shortlist_size]]
        for i, _ in enumerate(itertools.pairwise(self.cutoffs)):
            cluster_logprob = jax.nn.log_softmax(self.tail[i](input), axis=1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i][:, None])
        return jnp.concatenate(parts, axis=1)

    def log_prob(self, input: Any) -> jax.Array:
        r"""Log-probabilities of all ``n_classes`` classes.

        Args:
            input: a minibatch :math:`(N, \text{in\_features})`.

        Returns:
            :math:`(N, \text{n\_classes})` log-probabilities.
        """
        input = jnp.asarray(input)
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input: Any) -> jax.Array:
        r"""The most probable class of each example: ``log_prob(input).argmax(1)``.

        Rows whose head prediction is in the shortlist return it directly (as torch);
        the full distribution is computed for all rows and used for the others (static
        shapes instead of torch's row selection).

        Args:
            input: a minibatch :math:`(N, \text{in\_features})`.

        Returns:
            :math:`(N)` class indices.
        """
        input = jnp.asarray(input)
        head_output = self.head(input)
        output = jnp.argmax(head_output, axis=1)
        full = jnp.argmax(self._get_full_log_prob(input, head_output), axis=1)
        return jnp.where(output >= self.shortlist_size, full, output).astype(long_dtype())
