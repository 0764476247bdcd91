"""Numba kernel that runs a stacked GRU with a linear head, one sample at a time.

Memory layout (all float32, built once by :func:`ampnet.engine.gru_engine.pack_params`).

``params`` -- the header of :mod:`ampnet.engine.lstm_kernel` (``HEADER`` values:
``in_scale, skip_gain, out_gain, input_size, hidden, layers, padded, width``, then
up to 8 knob values from ``KNOBS``), followed by, for each layer ``l`` with
``n_in`` inputs (``input_size`` for layer 0, ``hidden`` above), its ``3 * hidden``
gate columns in PyTorch's order (r, z, n), padded with zero columns to ``padded``
and cut into tiles of ``width`` columns (one of ``lstm_kernel.TILE_WIDTHS``, the
one that pads least):

- ``b_ih`` ``(padded,)`` and ``b_hh`` ``(padded,)``;
- ``W_ih`` in tiles, ``(padded // width, n_in, width)``: ``W[t, r, k]`` is the weight
  from input ``r`` to gate column ``t * width + k``;
- ``W_hh`` in tiles, ``(padded // width, hidden, width)``.

The r and z columns (weights and biases) are pre-multiplied by 0.5, so that each
gate is one ``tanh``: ``sigmoid(a) = 0.5 + 0.5 * tanh(a / 2)``. The input and
recurrent products stay apart because the reset gate multiplies only the
recurrent part of the n gate, bias included (PyTorch's GRU). Each tile's sums stay
in a stack buffer for a whole pass over the rows (registers, as in the LSTM
kernel). The head follows: ``w_out`` ``(hidden,)``, ``b_out`` ``(1,)``.

``state`` -- ``(channels, input_size + layers * hidden)``. Per channel: the input
vector of layer 0, then each layer's hidden state; layer ``l > 0`` reads layer
``l - 1``'s new hidden state.

Gate sums live in two stack buffers of ``GATE_BUFFER`` values.

Numba's cache checks only this file: the tile passes, ``dot`` and ``tanh32`` come
from :mod:`lstm_kernel` and :mod:`activations`, so after editing those, touch this
module too (or delete ``ampnet/engine/__pycache__``).
"""

import numba
import numpy as np

from ampnet.engine.activations import tanh32
from ampnet.engine.lstm_kernel import (HEADER, KNOBS, SUMS_64, SUMS_80, SUMS_96, TILE_WIDTHS,
                                       dot, stack_float32)
from ampnet.limits import MAX_HIDDEN

GATE_BUFFER = 3 * MAX_HIDDEN + max(TILE_WIDTHS)  # 3H gate columns, padded to whole tiles
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_U = numba.uint64
_JIT = dict(cache=True, fastmath={"contract"}, error_model="numpy")


def tile_width(hidden):
    """The tile width in ``TILE_WIDTHS`` that pads ``3 * hidden`` columns least (the
    narrowest on a tie)."""
    return min(TILE_WIDTHS, key=lambda width: (padded_columns(hidden, width), width))


def padded_columns(hidden, width):
    """Gate columns ``3 * hidden`` rounded up to a whole number of tiles of ``width``."""
    return -(-3 * hidden // width) * width


@numba.njit(inline="always", **_JIT)
def _sums(out, params, b_off, w_off, vec, v_off, rows, tiles, width):
    """All tiles of one product (``W^T vec + b``) into ``out``."""
    for t in range(tiles):
        o_off = _U(t * width)
        b_t = _U(b_off + t * width)
        w_t = w_off + t * rows * width
        if width == 64:
            SUMS_64(out, o_off, params, b_t, w_t, vec, v_off, rows)
        elif width == 80:
            SUMS_80(out, o_off, params, b_t, w_t, vec, v_off, rows)
        else:
            SUMS_96(out, o_off, params, b_t, w_t, vec, v_off, rows)


@numba.njit(**_JIT)
def _run_channel(x, y, params, state):
    """Process one channel: ``x`` and ``y`` are 1-D float32 views of equal length
    (they may be the same array); ``state`` is this channel's state row."""
    gi = numba.carray(stack_float32(GATE_BUFFER), GATE_BUFFER)
    gh = numba.carray(stack_float32(GATE_BUFFER), GATE_BUFFER)
    in_scale = params[0]
    skip_gain = params[1]
    out_gain = params[2]
    n_in0 = int(params[3])
    hidden = int(params[4])
    n_layers = int(params[5])
    padded = int(params[6])
    width = int(params[7])
    tiles = padded // width
    head_off = HEADER
    for layer in range(n_layers):
        n_in = n_in0 if layer == 0 else hidden
        head_off += (2 + n_in + hidden) * padded
    top = n_in0 + (n_layers - 1) * hidden
    for n in range(x.shape[0]):
        x_raw = x[n]
        state[0] = x_raw * in_scale
        for k in range(n_in0 - 1):
            state[1 + k] = params[KNOBS + k]
        w_off = HEADER
        in_off = 0
        for layer in range(n_layers):
            n_in = n_in0 if layer == 0 else hidden
            h_off = n_in0 + layer * hidden
            w_ih = w_off + 2 * padded
            w_hh = w_ih + n_in * padded
            _sums(gi, params, w_off, w_ih, state, in_off, n_in, tiles, width)
            _sums(gh, params, w_off + padded, w_hh, state, h_off, hidden, tiles, width)
            for j in range(hidden):
                uj = _U(j)
                r = _HALF + _HALF * tanh32(gi[uj] + gh[uj])
                z = _HALF + _HALF * tanh32(gi[_U(hidden) + uj] + gh[_U(hidden) + uj])
                candidate = tanh32(gi[_U(2 * hidden) + uj] + r * gh[_U(2 * hidden) + uj])
                h = state[_U(h_off) + uj]
                state[_U(h_off) + uj] = (_ONE - z) * candidate + z * h
            in_off = h_off
            w_off = w_hh + hidden * padded
        head = dot(params, _U(head_off), state, _U(top), hidden) + params[_U(head_off + hidden)]
        y[n] = out_gain * (head + skip_gain * x_raw)


@numba.njit(**_JIT)
def process_channels(x, y, params, state):
    """Process ``x`` of shape ``(channels, frames)`` into ``y`` of the same shape;
    channel ``c`` uses row ``c`` of ``state``."""
    if x.shape[0] != y.shape[0] or x.shape[1] != y.shape[1] or x.shape[0] > state.shape[0]:
        raise ValueError("input and output blocks must have the same (channels, frames) shape")
    for c in range(x.shape[0]):
        _run_channel(x[c], y[c], params, state[c])


@numba.njit(**_JIT)
def process_mono(x, y, params, state):
    """Process a 1-D block ``x`` into ``y`` with state row 0."""
    if x.shape[0] != y.shape[0]:
        raise ValueError("input and output blocks must have the same number of frames")
    _run_channel(x, y, params, state[0])
