"""Numba kernels that run a stacked LSTM with a linear head, one sample at a time.

Memory layout (all float32, built once by :class:`ampnet.engine.LSTMEngine`):

``weights`` -- one flat array. For each layer ``l`` with ``n_in`` inputs
(``input_size`` for layer 0, ``hidden`` above it) and ``rows = n_in + hidden``:
``W_l`` of shape ``(rows, 4 * hidden)``, row-major: the transpose of
``[W_ih | W_hh]`` in PyTorch gate order (i, f, g, o); then the summed bias
``b_ih + b_hh`` of shape ``(4 * hidden,)``. The i, f and o columns are
pre-multiplied by 0.5 so that every gate is one ``tanh``:
``sigmoid(z) = 0.5 + 0.5 * tanh(z / 2)`` (scaling by 0.5 is exact in float).
The head follows: ``w_out`` ``(hidden,)`` and ``b_out`` ``(1,)``.

``vin`` -- per channel, ``(channels, sum_l rows_l)``: for each layer its input
vector followed by its own hidden state, so one matrix-vector product covers
``W_ih x + W_hh h``.

``cell`` -- per channel, ``(channels, layers * hidden)``.

``gates`` -- scratch, ``(4 * hidden,)``.

Speed notes. Layer 0's few direct inputs (the sample and the knobs) are folded
into the bias pass; the hidden rows are walked eight at a time with the
``4 * hidden`` gate columns innermost, so LLVM vectorises the columns and each
gate is loaded and stored once per eight rows. Every computed index is cast to
unsigned: Numba then omits its negative-index wraparound, which would otherwise
stop vectorisation. ``error_model="numpy"`` removes the division-by-zero check
that would stop the activation loop from vectorising.
"""

import numba
import numpy as np

from ampnet.engine.activations import tanh32

_HALF = np.float32(0.5)
_U = numba.uint64
_JIT = dict(cache=True, fastmath={"contract"}, error_model="numpy")


@numba.njit(inline="always", **_JIT)
def _accumulate_rows(gates, weights, vin, w_off, v_off, first, rows, g4):
    """``gates += W[first:rows].T @ vin[first:rows]`` for one layer's weight block."""
    g = _U(g4)
    r = first
    while r + 8 <= rows:
        a0 = vin[_U(v_off + r)]
        a1 = vin[_U(v_off + r + 1)]
        a2 = vin[_U(v_off + r + 2)]
        a3 = vin[_U(v_off + r + 3)]
        a4 = vin[_U(v_off + r + 4)]
        a5 = vin[_U(v_off + r + 5)]
        a6 = vin[_U(v_off + r + 6)]
        a7 = vin[_U(v_off + r + 7)]
        r0 = _U(w_off + r * g4)
        r1 = r0 + g
        r2 = r1 + g
        r3 = r2 + g
        r4 = r3 + g
        r5 = r4 + g
        r6 = r5 + g
        r7 = r6 + g
        for k in range(g4):
            uk = _U(k)
            gates[uk] += (((weights[r0 + uk] * a0 + weights[r1 + uk] * a1)
                           + (weights[r2 + uk] * a2 + weights[r3 + uk] * a3))
                          + ((weights[r4 + uk] * a4 + weights[r5 + uk] * a5)
                             + (weights[r6 + uk] * a6 + weights[r7 + uk] * a7)))
        r += 8
    while r < rows:
        a0 = vin[_U(v_off + r)]
        r0 = _U(w_off + r * g4)
        for k in range(g4):
            uk = _U(k)
            gates[uk] += weights[r0 + uk] * a0
        r += 1


@numba.njit(**_JIT)
def _run_channel(x, y, weights, vin, cell, gates, knobs, n_in0, hidden, n_layers,
                 in_scale, skip_gain, out_gain):
    """Process one channel: ``x`` and ``y`` are 1-D float32 views of equal length
    (they may be the same array); ``vin`` and ``cell`` are this channel's state."""
    g4 = 4 * hidden
    head_off = 0
    for layer in range(n_layers):
        n_in = n_in0 if layer == 0 else hidden
        head_off += (n_in + hidden + 1) * g4
    for n in range(x.shape[0]):
        x_raw = x[n]
        vin[0] = x_raw * in_scale
        for k in range(n_in0 - 1):
            vin[1 + k] = knobs[k]
        w_off = 0
        v_off = 0
        for layer in range(n_layers):
            n_in = n_in0 if layer == 0 else hidden
            rows = n_in + hidden
            b_off = _U(w_off + rows * g4)
            if layer == 0:
                # Direct inputs (sample, knobs) go with the bias pass.
                a0 = vin[0]
                for k in range(g4):
                    uk = _U(k)
                    gates[uk] = weights[b_off + uk] + weights[_U(w_off) + uk] * a0
                _accumulate_rows(gates, weights, vin, w_off, v_off, 1, n_in0, g4)
                _accumulate_rows(gates, weights, vin, w_off, v_off, n_in0, rows, g4)
            else:
                for k in range(g4):
                    uk = _U(k)
                    gates[uk] = weights[b_off + uk]
                _accumulate_rows(gates, weights, vin, w_off, v_off, 0, rows, g4)
            for k in range(g4):
                uk = _U(k)
                gates[uk] = tanh32(gates[uk])
            h_off = _U(v_off + n_in)
            c_off = _U(layer * hidden)
            for j in range(hidden):
                uj = _U(j)
                i_gate = _HALF + _HALF * gates[uj]
                f_gate = _HALF + _HALF * gates[_U(hidden) + uj]
                o_gate = _HALF + _HALF * gates[_U(3 * hidden) + uj]
                c_new = f_gate * cell[c_off + uj] + i_gate * gates[_U(2 * hidden) + uj]
                cell[c_off + uj] = c_new
                vin[h_off + uj] = o_gate * tanh32(c_new)
            v_off += rows
            if layer + 1 < n_layers:
                # The next layer's input is this layer's new hidden state.
                for j in range(hidden):
                    vin[_U(v_off) + _U(j)] = vin[h_off + _U(j)]
            w_off = b_off + _U(g4)
        h_off = _U(v_off - hidden)
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        s3 = np.float32(0.0)
        j = 0
        while j + 4 <= hidden:
            s0 += weights[_U(head_off + j)] * vin[h_off + _U(j)]
            s1 += weights[_U(head_off + j + 1)] * vin[h_off + _U(j + 1)]
            s2 += weights[_U(head_off + j + 2)] * vin[h_off + _U(j + 2)]
            s3 += weights[_U(head_off + j + 3)] * vin[h_off + _U(j + 3)]
            j += 4
        while j < hidden:
            s0 += weights[_U(head_off + j)] * vin[h_off + _U(j)]
            j += 1
        head = (s0 + s1) + (s2 + s3) + weights[_U(head_off + hidden)]
        y[n] = out_gain * (head + skip_gain * x_raw)


@numba.njit(**_JIT)
def process_channels(x, y, weights, vin, cell, gates, knobs, n_in0, hidden, n_layers,
                     in_scale, skip_gain, out_gain):
    """Process ``x`` of shape ``(channels, frames)`` into ``y`` of the same shape;
    channel ``c`` uses state row ``c`` of ``vin`` and ``cell``."""
    if x.shape[0] != y.shape[0] or x.shape[1] != y.shape[1] or x.shape[0] > vin.shape[0]:
        raise ValueError("input and output blocks must have the same (channels, frames) shape")
    for c in range(x.shape[0]):
        _run_channel(x[c], y[c], weights, vin[c], cell[c], gates, knobs, n_in0, hidden,
                     n_layers, in_scale, skip_gain, out_gain)


@numba.njit(**_JIT)
def process_mono(x, y, weights, vin, cell, gates, knobs, n_in0, hidden, n_layers,
                 in_scale, skip_gain, out_gain):
    """Process a 1-D block ``x`` into ``y`` with state row 0."""
    if x.shape[0] != y.shape[0]:
        raise ValueError("input and output blocks must have the same number of frames")
    _run_channel(x, y, weights, vin[0], cell[0], gates, knobs, n_in0, hidden,
                 n_layers, in_scale, skip_gain, out_gain)
