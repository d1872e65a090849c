"""Recurrent layers: RNN, LSTM, GRU and their cells (``torch/nn/modules/rnn.py``).

Parameter names, shapes, order and default initialisation are torch's, so a torch
``state_dict`` loads as is. Each layer runs as one ``jax.lax.scan`` over time, both
directions together (see ``jmod/_src/functional/rnn.py``). Inputs may be batched or unbatched, or a
:class:`~jmod.nn.utils.rnn.PackedSequence`.

Differences from torch: ``flatten_parameters()`` is a no-op (there is no cuDNN weight
buffer to compact); ``_flat_weights`` is computed from the current parameters on each
read instead of being a cached list.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import random as _random
from jmod._src.arrays import host_empty
from jmod._src.functional import rnn as _rnn
from jmod.nn import init
from jmod.nn.modules.batchnorm import _factory_dtype
from jmod.nn.modules.module import Module
from jmod.nn.parameter import Parameter
from jmod.nn.utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _uniform_reset(module: Module, bound: float) -> None:
    """torch's ``for w in self.parameters(): init.uniform_(w, -bound, bound)``."""
    for weight in module.parameters():
        init.uniform_(weight, -bound, bound)


def _apply_permutation(tensor: jax.Array, permutation: Any, dim: int = 1) -> jax.Array:
    return jnp.take(tensor, jnp.asarray(permutation), axis=dim)


class RNNBase(Module):
    r"""Base class of :class:`RNN`, :class:`LSTM` and :class:`GRU` (torch's ``RNNBase``).

    Holds the per-layer, per-direction parameters under torch's names
    (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``,
    ``weight_hr_l{k}``, with a ``_reverse`` suffix for the backward direction), the
    input and hidden-state checks, and ``extra_repr``.
    """

    __constants__ = [
        "mode",
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
        "proj_size",
    ]
    __jit_unused_properties__ = ["all_weights"]

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    proj_size: int

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1

        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last "
                "recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
        if not isinstance(input_size, int):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")

        if mode == "LSTM":
            gate_size = 4 * hidden_size
        elif mode == "GRU":
            gate_size = 3 * hidden_size
        elif mode == "RNN_TANH":
            gate_size = hidden_size
        elif mode == "RNN_RELU":
            gate_size = hidden_size
        else:
            raise ValueError("Unrecognized RNN mode: " + mode)

        dtype = _factory_dtype(dtype)
        self._flat_weights_names: list[str] = []
        # range() below raises torch's TypeError for a non-integer num_layers.
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                real_hidden_size = proj_size if proj_size > 0 else hidden_size
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                w_ih = Parameter(host_empty((gate_size, layer_input_size), dtype))
                w_hh = Parameter(host_empty((gate_size, real_hidden_size), dtype))
                b_ih = Parameter(host_empty((gate_size,), dtype))
                b_hh = Parameter(host_empty((gate_size,), dtype))
                if self.proj_size == 0:
                    layer_params: tuple[Parameter, ...] = (w_ih, w_hh, b_ih, b_hh) if bias else (w_ih, w_hh)
                else:
                    w_hr = Parameter(host_empty((proj_size, hidden_size), dtype))
                    layer_params = (w_ih, w_hh, b_ih, b_hh, w_hr) if bias else (w_ih, w_hh, w_hr)

                suffix = "_reverse" if direction == 1 else ""
                param_names = ["weight_ih_l{}{}", "weight_hh_l{}{}"]
                if bias:
                    param_names += ["bias_ih_l{}{}", "bias_hh_l{}{}"]
                if self.proj_size > 0:
                    param_names += ["weight_hr_l{}{}"]
                param_names = [x.format(layer, suffix) for x in param_names]
                for name, param in zip(param_names, layer_params):
                    setattr(self, name, param)
                self._flat_weights_names.extend(param_names)
                self._all_weights.append(param_names)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    # -- torch keeps a cached list of the weights; jmod reads the current ones.
    @property
    def _flat_weights(self) -> list[jax.Array | None]:
        return [getattr(self, wn) if hasattr(self, wn) else None for wn in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[jax.Array]]:
        """The parameters grouped per layer and direction, in torch's order."""
        return [[getattr(self, weight) for weight in weights] for weights in self._all_weights]

    def _init_flat_weights(self) -> None:
        """Kept for ported code; jmod's ``_flat_weights`` is always current."""

    def flatten_parameters(self) -> None:
        """No-op: torch compacts the weights for cuDNN here; jmod has nothing to compact."""

    def reset_parameters(self) -> None:
        """Draw every weight and bias from :math:`\\mathcal{U}(-1/\\sqrt{H}, 1/\\sqrt{H})`."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        _uniform_reset(self, stdv)

    def check_input(self, input: jax.Array, batch_sizes: Any) -> None:
        weight_dtype = self._flat_weights[0].dtype
        if input.dtype != weight_dtype:
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                f"Convert input: input.astype({weight_dtype}), or convert model: model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.ndim != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.ndim}")
        if self.input_size != input.shape[-1]:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.shape[-1]}"
            )

    def get_expected_hidden_size(self, input: jax.Array, batch_sizes: Any) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.shape[0] if self.batch_first else input.shape[1]
        num_directions = 2 if self.bidirectional else 1
        if self.proj_size > 0:
            expected_hidden_size = (self.num_layers * num_directions, mini_batch, self.proj_size)
        else:
            expected_hidden_size = (self.num_layers * num_directions, mini_batch, self.hidden_size)
        return expected_hidden_size

    def check_hidden_size(
        self, hx: jax.Array, expected_hidden_size: tuple[int, int, int], msg: str = "Expected hidden size {}, got {}"
    ) -> None:
        if tuple(hx.shape) != tuple(expected_hidden_size):
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.shape)))

    def check_forward_args(self, input: jax.Array, hidden: jax.Array, batch_sizes: Any) -> None:
        self.check_input(input, batch_sizes)
        expected_hidden_size = self.get_expected_hidden_size(input, batch_sizes)
        self.check_hidden_size(hidden, expected_hidden_size)

    def permute_hidden(self, hx: jax.Array, permutation: Any) -> jax.Array:
        if permutation is None:
            return hx
        return _apply_permutation(hx, permutation)

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    def __setstate__(self, d: dict) -> None:
        super().__setstate__(d)
        if "proj_size" not in d:
            self.proj_size = 0

    # ------------------------------------------------------------------ running
    def _layer_weights(self) -> list[dict[str, jax.Array | None]]:
        out = []
        for names in self._all_weights:
            by_kind = {n.split("_l")[0]: getattr(self, n) for n in names}
            out.append(
                {
                    "w_ih": by_kind["weight_ih"],
                    "w_hh": by_kind["weight_hh"],
                    "b_ih": by_kind.get("bias_ih"),
                    "b_hh": by_kind.get("bias_hh"),
                    "w_hr": by_kind.get("weight_hr"),
                }
            )
        return out

    def _run(
        self, input: jax.Array, h0: jax.Array, c0: jax.Array | None, lengths: Any
    ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        """Run the stack on a batched input in the module's layout; returns ``(out, h_n, c_n)``."""
        if input.shape[0 if lengths is not None or not self.batch_first else 1] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        x = jnp.swapaxes(input, 0, 1) if (self.batch_first and lengths is None) else input
        keys = None
        if self.training and 0 < self.dropout < 1 and self.num_layers > 1:
            # Drawn here, outside the compiled scans: the generator cannot advance inside them.
            keys = jnp.stack([_random.next_key() for _ in range(self.num_layers - 1)])
        out, h_n, c_n = _rnn.rnn_layers(
            x,
            h0,
            c0,
            self._layer_weights(),
            None if lengths is None else jnp.asarray(lengths),
            keys,
            mode=self.mode,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            training=self.training,
        )
        if self.batch_first and lengths is None:
            out = jnp.swapaxes(out, 0, 1)
        return out, h_n, c_n

    def _run_packed(
        self, packed: PackedSequence, h0: jax.Array, c0: jax.Array | None
    ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        """Run on packed data: pad to ``(T, B, I)``, mask past each length, re-pack."""
        t_idx, b_idx, lengths = packed._layout()
        steps, batch = len(packed._batch_sizes), int(packed._batch_sizes[0])
        padded = _rnn.scatter_steps(packed.data, t_idx, b_idx, steps=steps, batch=batch)
        out, h_n, c_n = self._run(padded, h0, c0, lengths)
        return _rnn.gather_steps(out, t_idx, b_idx), h_n, c_n


class RNN(RNNBase):
    r"""Apply a multi-layer Elman RNN with :math:`\tanh` or :math:`\text{ReLU}` to a sequence.

    For each element in the input sequence, each layer computes

    .. math::

        h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1}W_{hh}^T + b_{hh})

    Args:
        input_size: the number of expected features in the input ``x``.
        hidden_size: the number of features in the hidden state ``h``.
        num_layers: number of stacked recurrent layers. Default: 1
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``
        bias: if ``False``, no ``b_ih`` and ``b_hh``. Default: ``True``
        batch_first: if ``True``, input and output are ``(batch, seq, feature)``
            (not the hidden state). Default: ``False``
        dropout: if non-zero, dropout on the outputs of each layer except the last,
            in training mode. Default: 0
        bidirectional: if ``True``, a bidirectional RNN. Default: ``False``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Inputs: input, hx
        * **input**: :math:`(L, H_{in})` unbatched, :math:`(L, N, H_{in})` or with
          ``batch_first`` :math:`(N, L, H_{in})`, or a packed sequence.
        * **hx**: :math:`(D * \text{num\_layers}, H_{out})` or
          :math:`(D * \text{num\_layers}, N, H_{out})`; zeros if not given.

    Outputs: output, h_n
        * **output**: :math:`(L, D * H_{out})`, :math:`(L, N, D * H_{out})` or
          :math:`(N, L, D * H_{out})`: the last layer's :math:`h_t` for each ``t``.
        * **h_n**: :math:`(D * \text{num\_layers}, [N,] H_{out})`: the final hidden
          state of every layer and direction.

    Shape:
        :math:`D = 2` if bidirectional else 1, :math:`H_{out}` = ``hidden_size``.

    Attributes:
        weight_ih_l[k]: shape ``(hidden_size, input_size)`` for ``k = 0``, otherwise
            ``(hidden_size, D * hidden_size)``.
        weight_hh_l[k]: shape ``(hidden_size, hidden_size)``.
        bias_ih_l[k], bias_hh_l[k]: shape ``(hidden_size,)``.

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`; the
    backward direction's have a ``_reverse`` suffix.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> rnn = nn.RNN(10, 20, 2)
        >>> output, hn = rnn(jnp.ones((5, 3, 10)), jnp.zeros((2, 3, 20)))
        >>> output.shape, hn.shape
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, jax.Array]:
        num_directions = 2 if self.bidirectional else 1
        orig_input = input
        if isinstance(orig_input, PackedSequence):
            input, batch_sizes, sorted_indices, unsorted_indices = input
            max_batch_size = int(batch_sizes[0])
            if hx is None:
                hx = jnp.zeros((self.num_layers * num_directions, max_batch_size, self.hidden_size), input.dtype)
            else:
                hx = self.permute_hidden(jnp.asarray(hx), sorted_indices)
        else:
            input = jnp.asarray(input)
            batch_sizes = None
            if input.ndim not in (2, 3):
                raise ValueError(f"RNN: Expected input to be 2D or 3D, got {input.ndim}D tensor instead")
            is_batched = input.ndim == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = jnp.expand_dims(input, batch_dim)
                if hx is not None:
                    hx = jnp.asarray(hx)
                    if hx.ndim != 2:
                        raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.ndim}-D tensor")
                    hx = jnp.expand_dims(hx, 1)
            else:
                if hx is not None:
                    hx = jnp.asarray(hx)
                    if hx.ndim != 3:
                        raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.ndim}-D tensor")
            max_batch_size = input.shape[0] if self.batch_first else input.shape[1]
            sorted_indices = None
            unsorted_indices = None
            if hx is None:
                hx = jnp.zeros((self.num_layers * num_directions, max_batch_size, self.hidden_size), input.dtype)
            else:
                hx = self.permute_hidden(hx, sorted_indices)

        self.check_forward_args(input, hx, batch_sizes)
        if self.mode != "RNN_TANH" and self.mode != "RNN_RELU":
            raise AssertionError(f"mode must be RNN_TANH or RNN_RELU, got {self.mode}")
        if batch_sizes is None:
            output, hidden, _ = self._run(input, hx, None, None)
        else:
            output, hidden, _ = self._run_packed(orig_input, hx, None)

        if isinstance(orig_input, PackedSequence):
            output_packed = orig_input._replace_data(output)
            return output_packed, self.permute_hidden(hidden, unsorted_indices)
        if not is_batched:
            output = jnp.squeeze(output, batch_dim)
            hidden = jnp.squeeze(hidden, 1)
        return output, self.permute_hidden(hidden, unsorted_indices)


class LSTM(RNNBase):
    r"""Apply a multi-layer long short-term memory (LSTM) RNN to a sequence.

    For each element in the input sequence, each layer computes

    .. math::

        \begin{array}{ll}
        i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t = o_t \odot \tanh(c_t)
        \end{array}

    With ``proj_size > 0``, :math:`h_t = W_{hr}(o_t \odot \tanh(c_t))` has
    ``proj_size`` features.

    Args:
        input_size: the number of expected features in the input ``x``.
        hidden_size: the number of features in the hidden state ``h``.
        num_layers: number of stacked recurrent layers. Default: 1
        bias: if ``False``, no ``b_ih`` and ``b_hh``. Default: ``True``
        batch_first: if ``True``, input and output are ``(batch, seq, feature)``.
            Default: ``False``
        dropout: if non-zero, dropout on the outputs of each layer except the last,
            in training mode. Default: 0
        bidirectional: if ``True``, a bidirectional LSTM. Default: ``False``
        proj_size: if ``> 0``, an LSTM with projections of that size. Default: 0
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Inputs: input, (h_0, c_0)
        * **input**: :math:`(L, H_{in})`, :math:`(L, N, H_{in})` or with
          ``batch_first`` :math:`(N, L, H_{in})`, or a packed sequence.
        * **h_0**: :math:`(D * \text{num\_layers}, [N,] H_{out})`; **c_0**:
          :math:`(D * \text{num\_layers}, [N,] H_{cell})`; zeros if not given.

    Outputs: output, (h_n, c_n)
        * **output**: :math:`(L, [N,] D * H_{out})` (batch first with ``batch_first``).
        * **h_n**: :math:`(D * \text{num\_layers}, [N,] H_{out})`; **c_n**:
          :math:`(D * \text{num\_layers}, [N,] H_{cell})`.

    Shape:
        :math:`H_{cell}` = ``hidden_size``, :math:`H_{out}` = ``proj_size`` if
        ``proj_size > 0`` else ``hidden_size``, :math:`D = 2` if bidirectional.

    Attributes:
        weight_ih_l[k]: :math:`(W_{ii}|W_{if}|W_{ig}|W_{io})`, shape
            ``(4 * hidden_size, input_size)`` for ``k = 0``, otherwise
            ``(4 * hidden_size, D * H_out)``.
        weight_hh_l[k]: shape ``(4 * hidden_size, H_out)``.
        bias_ih_l[k], bias_hh_l[k]: shape ``(4 * hidden_size,)``.
        weight_hr_l[k]: shape ``(proj_size, hidden_size)`` (only with ``proj_size > 0``).

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`;
    ``_reverse`` suffix for the backward direction.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> rnn = nn.LSTM(10, 20, 2)
        >>> output, (hn, cn) = rnn(jnp.ones((5, 3, 10)), (jnp.zeros((2, 3, 20)), jnp.zeros((2, 3, 20))))
        >>> output.shape, hn.shape, cn.shape
        ((5, 3, 20), (2, 3, 20), (2, 3, 20))
        >>> nn.LSTM(10, 20, proj_size=5, batch_first=True)(jnp.ones((3, 5, 10)))[0].shape
        (3, 5, 5)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def get_expected_cell_size(self, input: jax.Array, batch_sizes: Any) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.shape[0] if self.batch_first else input.shape[1]
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, mini_batch, self.hidden_size)

    def check_forward_args(self, input: jax.Array, hidden: tuple[jax.Array, jax.Array], batch_sizes: Any) -> None:  # type: ignore[override]
        self.check_input(input, batch_sizes)
        self.check_hidden_size(
            hidden[0], self.get_expected_hidden_size(input, batch_sizes), "Expected hidden[0] size {}, got {}"
        )
        self.check_hidden_size(
            hidden[1], self.get_expected_cell_size(input, batch_sizes), "Expected hidden[1] size {}, got {}"
        )

    def permute_hidden(self, hx: tuple[jax.Array, jax.Array], permutation: Any) -> tuple[jax.Array, jax.Array]:  # type: ignore[override]
        if permutation is None:
            return hx
        return _apply_permutation(hx[0], permutation), _apply_permutation(hx[1], permutation)

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, tuple[jax.Array, jax.Array]]:
        orig_input = input
        batch_sizes = None
        num_directions = 2 if self.bidirectional else 1
        real_hidden_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        if hx is not None:
            hx = _as_pair(hx)
        if isinstance(orig_input, PackedSequence):
            input, batch_sizes, sorted_indices, unsorted_indices = input
            max_batch_size = int(batch_sizes[0])
            if hx is None:
                h_zeros = jnp.zeros((self.num_layers * num_directions, max_batch_size, real_hidden_size), input.dtype)
                c_zeros = jnp.zeros((self.num_layers * num_directions, max_batch_size, self.hidden_size), input.dtype)
                hx = (h_zeros, c_zeros)
            else:
                hx = self.permute_hidden(hx, sorted_indices)
        else:
            input = jnp.asarray(input)
            if input.ndim not in (2, 3):
                raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.ndim}D instead")
            is_batched = input.ndim == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = jnp.expand_dims(input, batch_dim)
            max_batch_size = input.shape[0] if self.batch_first else input.shape[1]
            sorted_indices = None
            unsorted_indices = None
            if hx is None:
                h_zeros = jnp.zeros((self.num_layers * num_directions, max_batch_size, real_hidden_size), input.dtype)
                c_zeros = jnp.zeros((self.num_layers * num_directions, max_batch_size, self.hidden_size), input.dtype)
                hx = (h_zeros, c_zeros)
                self.check_forward_args(input, hx, batch_sizes)
            else:
                if is_batched:
                    if hx[0].ndim != 3 or hx[1].ndim != 3:
                        msg = (
                            "For batched 3-D input, hx and cx should "
                            f"also be 3-D but got ({hx[0].ndim}-D, {hx[1].ndim}-D) tensors"
                        )
                        raise RuntimeError(msg)
                else:
                    if hx[0].ndim != 2 or hx[1].ndim != 2:
                        msg = (
                            "For unbatched 2-D input, hx and cx should "
                            f"also be 2-D but got ({hx[0].ndim}-D, {hx[1].ndim}-D) tensors"
                        )
                        raise RuntimeError(msg)
                    hx = (jnp.expand_dims(hx[0], 1), jnp.expand_dims(hx[1], 1))
                self.check_forward_args(input, hx, batch_sizes)
                hx = self.permute_hidden(hx, sorted_indices)
        if batch_sizes is None:
            output, h_n, c_n = self._run(input, hx[0], hx[1], None)
        else:
            self.check_forward_args(input, hx, batch_sizes)
            output, h_n, c_n = self._run_packed(orig_input, hx[0], hx[1])
        hidden = (h_n, c_n)
        if isinstance(orig_input, PackedSequence):
            output_packed = orig_input._replace_data(output)
            return output_packed, self.permute_hidden(hidden, unsorted_indices)
        if not is_batched:
            output = jnp.squeeze(output, batch_dim)
            hidden = (jnp.squeeze(hidden[0], 1), jnp.squeeze(hidden[1], 1))
        return output, self.permute_hidden(hidden, unsorted_indices)


def _as_pair(hx: Any) -> tuple[jax.Array, jax.Array]:
    """``(h_0, c_0)``; a single array is indexed like torch indexes a tensor ``hx``."""
    if isinstance(hx, (tuple, list)):
        return jnp.asarray(hx[0]), jnp.asarray(hx[1])
    hx = jnp.asarray(hx)
    if hx.ndim == 0 or hx.shape[0] < 2:
        size = hx.shape[0] if hx.ndim else 0
        raise IndexError(f"index 1 is out of bounds for dimension 0 with size {size}")
    return hx[0], hx[1]


class GRU(RNNBase):
    r"""Apply a multi-layer gated recurrent unit (GRU) RNN to a sequence.

    For each element in the input sequence, each layer computes

    .. math::

        \begin{array}{ll}
            r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{(t-1)} + b_{hr}) \\
            z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{(t-1)} + b_{hz}) \\
            n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{(t-1)}+ b_{hn})) \\
            h_t = (1 - z_t) \odot n_t + z_t \odot h_{(t-1)}
        \end{array}

    Args:
        input_size: the number of expected features in the input ``x``.
        hidden_size: the number of features in the hidden state ``h``.
        num_layers: number of stacked recurrent layers. Default: 1
        bias: if ``False``, no ``b_ih`` and ``b_hh``. Default: ``True``
        batch_first: if ``True``, input and output are ``(batch, seq, feature)``.
            Default: ``False``
        dropout: if non-zero, dropout on the outputs of each layer except the last,
            in training mode. Default: 0
        bidirectional: if ``True``, a bidirectional GRU. Default: ``False``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Inputs: input, h_0
        * **input**: :math:`(L, H_{in})`, :math:`(L, N, H_{in})` or with
          ``batch_first`` :math:`(N, L, H_{in})`, or a packed sequence.
        * **h_0**: :math:`(D * \text{num\_layers}, [N,] H_{out})`; zeros if not given.

    Outputs: output, h_n
        * **output**: :math:`(L, [N,] D * H_{out})` (batch first with ``batch_first``).
        * **h_n**: :math:`(D * \text{num\_layers}, [N,] H_{out})`.

    Shape:
        :math:`H_{out}` = ``hidden_size``, :math:`D = 2` if bidirectional else 1.

    Attributes:
        weight_ih_l[k]: :math:`(W_{ir}|W_{iz}|W_{in})`, shape
            ``(3 * hidden_size, input_size)`` for ``k = 0``, otherwise
            ``(3 * hidden_size, D * hidden_size)``.
        weight_hh_l[k]: :math:`(W_{hr}|W_{hz}|W_{hn})`, shape ``(3 * hidden_size, hidden_size)``.
        bias_ih_l[k], bias_hh_l[k]: shape ``(3 * hidden_size,)``.

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`;
    ``_reverse`` suffix for the backward direction.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> rnn = nn.GRU(10, 20, 2, bidirectional=True)
        >>> output, hn = rnn(jnp.ones((5, 3, 10)))
        >>> output.shape, hn.shape
        ((5, 3, 40), (4, 3, 20))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, jax.Array]:
        orig_input = input
        if isinstance(orig_input, PackedSequence):
            input, batch_sizes, sorted_indices, unsorted_indices = input
            max_batch_size = int(batch_sizes[0])
            if hx is None:
                num_directions = 2 if self.bidirectional else 1
                hx = jnp.zeros((self.num_layers * num_directions, max_batch_size, self.hidden_size), input.dtype)
            else:
                hx = self.permute_hidden(jnp.asarray(hx), sorted_indices)
        else:
            input = jnp.asarray(input)
            batch_sizes = None
            if input.ndim not in (2, 3):
                raise ValueError(f"GRU: Expected input to be 2D or 3D, got {input.ndim}D instead")
            is_batched = input.ndim == 3
            batch_dim = 0 if self.batch_first else 1
            if not is_batched:
                input = jnp.expand_dims(input, batch_dim)
                if hx is not None:
                    hx = jnp.asarray(hx)
                    if hx.ndim != 2:
                        raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.ndim}-D tensor")
                    hx = jnp.expand_dims(hx, 1)
            else:
                if hx is not None:
                    hx = jnp.asarray(hx)
                    if hx.ndim != 3:
                        raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.ndim}-D tensor")
            max_batch_size = input.shape[0] if self.batch_first else input.shape[1]
            sorted_indices = None
            unsorted_indices = None
            if hx is None:
                num_directions = 2 if self.bidirectional else 1
                hx = jnp.zeros((self.num_layers * num_directions, max_batch_size, self.hidden_size), input.dtype)
            else:
                hx = self.permute_hidden(hx, sorted_indices)

        self.check_forward_args(input, hx, batch_sizes)
        if batch_sizes is None:
            output, hidden, _ = self._run(input, hx, None, None)
        else:
            output, hidden, _ = self._run_packed(orig_input, hx, None)

        if isinstance(orig_input, PackedSequence):
            output_packed = orig_input._replace_data(output)
            return output_packed, self.permute_hidden(hidden, unsorted_indices)
        if not is_batched:
            output = jnp.squeeze(output, batch_dim)
            hidden = jnp.squeeze(hidden, 1)
        return output, self.permute_hidden(hidden, unsorted_indices)


# ------------------------------------------------------------------------ cells


def _check_cell_input(input: jax.Array, input_size: int) -> None:
    if input.shape[1] != input_size:
        raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]} expected {input_size}")


def _check_cell_hidden(input: jax.Array, hx: jax.Array, hidden_size: int, label: int) -> None:
    if input.shape[0] != hx.shape[0]:
        raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match hidden{label} batch size {hx.shape[0]}")
    if hx.shape[1] != hidden_size:
        raise RuntimeError(f"hidden{label} has inconsistent hidden_size: got {hx.shape[1]}, expected {hidden_size}")


class RNNCellBase(Module):
    """Base class of the cells: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""

    __constants__ = ["input_size", "hidden_size", "bias"]

    input_size: int
    hidden_size: int
    bias: bool

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        dtype = _factory_dtype(dtype)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(host_empty((num_chunks * hidden_size, input_size), dtype))
        self.weight_hh = Parameter(host_empty((num_chunks * hidden_size, hidden_size), dtype))
        if bias:
            self.bias_ih = Parameter(host_empty((num_chunks * hidden_size,), dtype))
            self.bias_hh = Parameter(host_empty((num_chunks * hidden_size,), dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self) -> None:
        """Draw every weight and bias from :math:`\\mathcal{U}(-1/\\sqrt{H}, 1/\\sqrt{H})`."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        _uniform_reset(self, stdv)

    def _prepare(self, name: str, input: Any, hx: Any) -> tuple[jax.Array, Any, bool]:
        input = jnp.asarray(input)
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        return input, hx, input.ndim == 2


class RNNCell(RNNCellBase):
    r"""An Elman RNN cell with tanh or ReLU non-linearity.

    .. math::

        h' = \tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})

    Args:
        input_size: the number of expected features in the input ``x``.
        hidden_size: the number of features in the hidden state ``h``.
        bias: if ``False``, no ``b_ih`` and ``b_hh``. Default: ``True``
        nonlinearity: ``'tanh'`` or ``'relu'`` (checked when called, as torch).
            Default: ``'tanh'``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Inputs: input, hidden
        * **input**: :math:`(N, H_{in})` or :math:`(H_{in})`.
        * **hidden**: :math:`(N, H_{out})` or :math:`(H_{out})`; zeros if not given.

    Outputs: h'
        * **h'**: :math:`(N, H_{out})` or :math:`(H_{out})`.

    Shape:
        :math:`H_{in}` = ``input_size``, :math:`H_{out}` = ``hidden_size``.

    Attributes:
        weight_ih: shape ``(hidden_size, input_size)``.
        weight_hh: shape ``(hidden_size, hidden_size)``.
        bias_ih, bias_hh: shape ``(hidden_size,)``.

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> cell = nn.RNNCell(10, 20)
        >>> hx = jnp.zeros((3, 20))
        >>> for x in jnp.ones((6, 3, 10)):
        ...     hx = cell(x, hx)
        >>> hx.shape
        (3, 20)
    """

    __constants__ = ["input_size", "hidden_size", "bias", "nonlinearity"]
    nonlinearity: str

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> jax.Array:
        input, hx, is_batched = self._prepare("RNNCell", input, hx)
        if hx is not None:
            hx = jnp.asarray(hx)
            if hx.ndim not in (1, 2):
                raise ValueError(f"RNNCell: Expected hidden to be 1D or 2D, got {hx.ndim}D instead")
        if not is_batched:
            input = input[None]
        if hx is None:
            hx = jnp.zeros((input.shape[0], self.hidden_size), input.dtype)
        else:
            hx = hx[None] if not is_batched else hx
        _check_cell_input(input, self.input_size)
        _check_cell_hidden(input, hx, self.hidden_size, 0)
        if self.nonlinearity == "tanh":
            ret = _rnn.rnn_tanh_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        elif self.nonlinearity == "relu":
            ret = _rnn.rnn_relu_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        if not is_batched:
            ret = ret[0]
        return ret


class LSTMCell(RNNCellBase):
    r"""A long short-term memory (LSTM) cell.

    .. math::

        \begin{array}{ll}
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g = \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' = f \odot c + i \odot g \\
        h' = o \odot \tanh(c') \\
        \end{array}

    Args:
        input_size: the number of expected features in the input ``x``.
        hidden_size: the number of features in the hidden state ``h``.
        bias: if ``False``, no ``b_ih`` and ``b_hh``. Default: ``True``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Inputs: input, (h_0, c_0)
        * **input**: :math:`(N, H_{in})` or :math:`(H_{in})`.
        * **h_0**, **c_0**: :math:`(N, H_{out})` or :math:`(H_{out})`; zeros if not given.

    Outputs: (h_1, c_1)
        * **h_1**, **c_1**: :math:`(N, H_{out})` or :math:`(H_{out})`.

    Shape:
        :math:`H_{in}` = ``input_size``, :math:`H_{out}` = ``hidden_size``.

    Attributes:
        weight_ih: shape ``(4 * hidden_size, input_size)`` (gates ``i, f, g, o``).
        weight_hh: shape ``(4 * hidden_size, hidden_size)``.
        bias_ih, bias_hh: shape ``(4 * hidden_size,)``.

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> cell = nn.LSTMCell(10, 20)
        >>> hx, cx = cell(jnp.ones((3, 10)))
        >>> hx.shape, cx.shape
        ((3, 20), (3, 20))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Any, hx: Any = None) -> tuple[jax.Array, jax.Array]:
        input, hx, is_batched = self._prepare("LSTMCell", input, hx)
        if hx is not None:
            hx = tuple(jnp.asarray(v) for v in hx)
            for idx, value in enumerate(hx):
                if value.ndim not in (1, 2):
                    raise ValueError(f"LSTMCell: Expected hx[{idx}] to be 1D or 2D, got {value.ndim}D instead")
        if not is_batched:
            input = input[None]
        if hx is None:
            zeros = jnp.zeros((input.shape[0], self.hidden_size), input.dtype)
            hx = (zeros, zeros)
        else:
            hx = (hx[0][None], hx[1][None]) if not is_batched else hx
        _check_cell_input(input, self.input_size)
        _check_cell_hidden(input, hx[0], self.hidden_size, 0)
        _check_cell_hidden(input, hx[1], self.hidden_size, 1)
        ret = _rnn.lstm_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not is_batched:
            ret = (ret[0][0], ret[1][0])
        return ret


class GRUCell(RNNCellBase):
    r"""A gated recurrent unit (GRU) cell.

    .. math::

        \begin{array}{ll}
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' = (1 - z) \odot n + z \odot h
        \end{array}

    Args:
        input_size: the number of expected features in the input ``x``.
        hidden_size: the number of features in the hidden state ``h``.
        bias: if ``False``, no ``b_ih`` and ``b_hh``. Default: ``True``
        device: where to place the parameters.
        dtype: parameter dtype (default float32).

    Inputs: input, hidden
        * **input**: :math:`(N, H_{in})` or :math:`(H_{in})`.
        * **hidden**: :math:`(N, H_{out})` or :math:`(H_{out})`; zeros if not given.

    Outputs: h'
        * **h'**: :math:`(N, H_{out})` or :math:`(H_{out})`.

    Shape:
        :math:`H_{in}` = ``input_size``, :math:`H_{out}` = ``hidden_size``.

    Attributes:
        weight_ih: shape ``(3 * hidden_size, input_size)`` (gates ``r, z, n``).
        weight_hh: shape ``(3 * hidden_size, hidden_size)``.
        bias_ih, bias_hh: shape ``(3 * hidden_size,)``.

    All are initialised from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> cell = nn.GRUCell(10, 20)
        >>> cell(jnp.ones(10), jnp.zeros(20)).shape
        (20,)
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Any, hx: Any = None) -> jax.Array:
        input, hx, is_batched = self._prepare("GRUCell", input, hx)
        if hx is not None:
            hx = jnp.asarray(hx)
            if hx.ndim not in (1, 2):
                raise ValueError(f"GRUCell: Expected hidden to be 1D or 2D, got {hx.ndim}D instead")
        if not is_batched:
            input = input[None]
        if hx is None:
            hx = jnp.zeros((input.shape[0], self.hidden_size), input.dtype)
        else:
            hx = hx[None] if not is_batched else hx
        _check_cell_input(input, self.input_size)
        _check_cell_hidden(input, hx, self.hidden_size, 0)
        ret = _rnn.gru_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not is_batched:
            ret = ret[0]
        return ret
