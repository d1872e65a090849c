"""Recurrent computations behind ``jmod.nn.RNN``/``LSTM``/``GRU`` and the cells.

torch runs these in C++ (``torch._VF.rnn_tanh``, ``lstm``, ``gru``, ``*_cell``); here
each layer is one ``jax.lax.scan`` over time (both directions of a bidirectional
layer step together, the reverse one on the time-reversed sequence), with the input
projections of the whole sequence computed up front (as torch's CPU kernels do).
Gate order and formulas are torch's:

* RNN: :math:`h' = \\tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})` (or ReLU);
* LSTM: gates ``i, f, g, o`` in that order, :math:`c' = f c + i g`,
  :math:`h' = o \\tanh(c')`, then :math:`h' W_{hr}^T` with a projection;
* GRU: gates ``r, z, n``, :math:`n = \\tanh(W_{in} x + b_{in} + r (W_{hn} h + b_{hn}))`,
  :math:`h' = (1 - z) n + z h`.

The whole multi-layer network is one ``jax.jit``-compiled function (cached per shape
and configuration), so eager calls do not re-trace the scans. Dropout keys are drawn
by the caller *outside* (jmod's generator cannot advance inside a scan body) and
passed in.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src import amp
from jmod._src.amp import autocast_op

__all__ = ["rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "rnn_layers", "scatter_steps", "gather_steps"]


# torch's cells are composite ops over at::linear: autocast casts those linears (on CPU,
# where the cells themselves are not listed).
@autocast_op("linear")
def _linear(x: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
    out = jnp.matmul(x, w.T)
    return out if b is None else out + b


@autocast_op("rnn_tanh_cell")
def rnn_tanh_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> jax.Array:
    """One step of an Elman RNN with tanh: ``(B, I), (B, H) -> (B, H)``."""
    return jnp.tanh(_linear(hx, w_hh, b_hh) + _linear(input, w_ih, b_ih))


@autocast_op("rnn_relu_cell")
def rnn_relu_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> jax.Array:
    """One step of an Elman RNN with ReLU: ``(B, I), (B, H) -> (B, H)``."""
    return jax.nn.relu(_linear(hx, w_hh, b_hh) + _linear(input, w_ih, b_ih))


def _lstm_gates(gates: jax.Array, cx: jax.Array) -> tuple[jax.Array, jax.Array]:
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    cy = f * cx + i * g
    hy = o * jnp.tanh(cy)
    return hy, cy


@autocast_op("lstm_cell")
def lstm_cell(
    input: Any, hx: tuple[Any, Any], w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None
) -> tuple[jax.Array, jax.Array]:
    """One LSTM step: ``(B, I), ((B, H), (B, H)) -> (h', c')``; gate order ``i, f, g, o``."""
    h, c = hx
    return _lstm_gates(_linear(h, w_hh, b_hh) + _linear(input, w_ih, b_ih), c)


def _gru_update(gi: jax.Array, gh: jax.Array, h: jax.Array) -> jax.Array:
    i_r, i_z, i_n = jnp.split(gi, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(gh, 3, axis=-1)
    r = jax.nn.sigmoid(h_r + i_r)
    z = jax.nn.sigmoid(h_z + i_z)
    n = jnp.tanh(i_n + h_n * r)  # b_hn sits inside r * (W_hn h + b_hn), as torch
    return (h - n) * z + n


@autocast_op("gru_cell")
def gru_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> jax.Array:
    """One GRU step: ``(B, I), (B, H) -> (B, H)``; gate order ``r, z, n``."""
    return _gru_update(_linear(input, w_ih, b_ih), _linear(hx, w_hh, b_hh), hx)


def _bmm(x: jax.Array, w: jax.Array) -> jax.Array:
    """Per-direction ``x @ w.T``: ``x (D, ..., K)``, ``w (D, G, K)`` -> ``(D, ..., G)``."""
    return jnp.einsum("d...k,dgk->d...g", x, w)


def _add_bias(x: jax.Array, b: jax.Array | None) -> jax.Array:
    if b is None:
        return x
    return x + b.reshape(b.shape[:1] + (1,) * (x.ndim - 2) + b.shape[1:])


def _run_layer(
    mode: str,
    x: jax.Array,
    h0: jax.Array,
    c0: jax.Array | None,
    ws: list[dict[str, jax.Array | None]],
    mask: jax.Array | None,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """One layer, all its directions in a single scan.

    ``x``: ``(T, B, I)``; ``h0``/``c0``: ``(D, B, *)``; ``ws``: the ``D`` directions'
    weights. The reverse direction scans the time-reversed sequence (its padded steps,
    masked out, come first and leave the state at ``h0``). Returns ``(out (T, B, D * H'),
    h_T (D, B, H'), c_T)``.
    """
    num_directions = len(ws)

    def stacked(key: str) -> jax.Array | None:
        return None if ws[0][key] is None else jnp.stack([w[key] for w in ws])

    w_ih, w_hh, b_ih, b_hh, w_hr = (stacked(k) for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr"))
    # Input projections of the whole sequence up front, as torch's CPU kernels do.
    xw = _add_bias(jnp.einsum("tbi,dgi->dtbg", x, w_ih), b_ih)  # (D, T, B, G)
    if num_directions == 2:
        xw = jnp.stack([xw[0], xw[1, ::-1]])
    xw = jnp.swapaxes(xw, 0, 1)  # (T, D, B, G)
    masks = None
    if mask is not None:
        m = mask[:, None, :, None]  # (T, 1, B, 1)
        masks = m if num_directions == 1 else jnp.concatenate([m, m[::-1]], axis=1)

    def step(carry: Any, inputs: Any) -> Any:
        xw_t, m_t = inputs
        if mode == "LSTM":
            h, c = carry
            hy, cy = _lstm_gates(_add_bias(_bmm(h, w_hh), b_hh) + xw_t, c)
            if w_hr is not None:
                hy = _bmm(hy, w_hr)
            if m_t is not None:
                hy = jnp.where(m_t, hy, h)
                cy = jnp.where(m_t, cy, c)
            out = hy if m_t is None else jnp.where(m_t, hy, 0)
            return (hy, cy), out
        h = carry
        hw = _add_bias(_bmm(h, w_hh), b_hh)
        if mode == "GRU":
            hy = _gru_update(xw_t, hw, h)
        else:
            pre = hw + xw_t
            hy = jnp.tanh(pre) if mode == "RNN_TANH" else jax.nn.relu(pre)
        if m_t is not None:
            hy = jnp.where(m_t, hy, h)
        out = hy if m_t is None else jnp.where(m_t, hy, 0)
        return hy, out

    carry0 = (h0, c0) if mode == "LSTM" else h0
    carry, ys = jax.lax.scan(step, carry0, (xw, masks))  # ys: (T, D, B, H')
    outs = [ys[:, 0]] if num_directions == 1 else [ys[:, 0], ys[::-1, 1]]
    out = outs[0] if num_directions == 1 else jnp.concatenate(outs, axis=-1)
    if mode == "LSTM":
        return out, carry[0], carry[1]
    return out, carry, None


@autocast_op(amp.rnn_layers_op)
@functools.partial(jax.jit, static_argnames=("mode", "num_layers", "bidirectional", "dropout", "training"))
def rnn_layers(
    x: jax.Array,
    h0: jax.Array,
    c0: jax.Array | None,
    weights: list[dict[str, jax.Array | None]],
    lengths: jax.Array | None,
    dropout_keys: jax.Array | None,
    *,
    mode: str,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
    training: bool,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Run a stacked (bi)directional RNN, time-major.

    Args:
        x: ``(T, B, I)``.
        h0: ``(L * D, B, H_out)``; ``c0``: ``(L * D, B, H_cell)`` for LSTM, else ``None``.
        weights: per layer and direction (``L * D`` dicts, torch's order) with keys
            ``w_ih, w_hh, b_ih, b_hh, w_hr`` (``None`` where absent).
        lengths: ``(B,)`` valid lengths (packed sequences) or ``None``: steps past a
            sequence's length leave its state unchanged and output zeros.
        dropout_keys: ``(L - 1,)`` keys for the dropout between layers (training only).
        mode: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"``.

    Returns:
        ``(output (T, B, D * H_out), h_n, c_n)`` (``c_n`` is ``None`` unless LSTM).
    """
    num_directions = 2 if bidirectional else 1
    mask = None
    if lengths is not None:
        mask = jnp.arange(x.shape[0])[:, None] < lengths[None, :]  # (T, B)
    h_n, c_n = [], []
    layer_input = x
    for layer in range(num_layers):
        lo, hi = layer * num_directions, (layer + 1) * num_directions
        layer_input, h, c = _run_layer(
            mode, layer_input, h0[lo:hi], None if c0 is None else c0[lo:hi], weights[lo:hi], mask
        )
        h_n.append(h)
        c_n.append(c)
        if training and dropout > 0 and layer < num_layers - 1:
            if dropout >= 1:
                layer_input = jnp.zeros_like(layer_input)
            else:
                keep = jax.random.bernoulli(dropout_keys[layer], 1.0 - dropout, layer_input.shape)
                layer_input = jnp.where(keep, layer_input / (1.0 - dropout), 0).astype(layer_input.dtype)
    out_c = jnp.concatenate(c_n) if mode == "LSTM" else None
    return layer_input, jnp.concatenate(h_n), out_c


@functools.partial(jax.jit, static_argnames=("steps", "batch"))
def scatter_steps(data: jax.Array, t_idx: Any, b_idx: Any, *, steps: int, batch: int) -> jax.Array:
    """Packed rows ``(N, *)`` -> zero-padded time-major ``(steps, batch, *)``."""
    return jnp.zeros((steps, batch) + data.shape[1:], data.dtype).at[t_idx, b_idx].set(data)


@jax.jit
def gather_steps(padded: jax.Array, t_idx: Any, b_idx: Any) -> jax.Array:
    """Time-major ``(T, B, *)`` -> the packed rows ``padded[t_idx, b_idx]``."""
    return padded[t_idx, b_idx]
