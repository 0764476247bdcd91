"""Numba kernels that run a stacked LSTM with a linear head, one sample at a time.

Memory layout (all float32, built once by :class:`ampnet.engine.Engine`).
The kernels take just four arrays, ``(x, y, params, state)``, because each array
argument costs time to unpack on every call.

``params`` -- a header of ``HEADER`` values (``in_scale, skip_gain, out_gain,
input_size, hidden, layers, padded, width``, then up to 8 knob values from
``KNOBS``), followed by the weights. The gate columns of each layer (4 * hidden, in
PyTorch order i, f, g, o) are cut into tiles of ``width`` columns (one of
``TILE_WIDTHS``, the one that needs the least padding: 64 for H=16, 32 and 64, 80
for H=40, 96 for H=24) and padded with zero columns to ``padded``. For each layer
``l`` with ``n_in`` inputs (``input_size`` for layer 0, ``hidden`` above it) and
``rows = n_in + hidden``: the bias ``b_ih + b_hh`` ``(padded,)``, then ``W_l`` in
tiles, shape ``(padded // width, rows, width)``, where ``W_l[t, r, k]`` is the
weight from input row ``r`` of ``[x; h]`` to gate column ``t * width + k``. The i,
f and o columns are pre-multiplied by 0.5 so that every gate is one ``tanh``:
``sigmoid(z) = 0.5 + 0.5 * tanh(z / 2)`` (scaling by 0.5 is exact in float).
The head follows: ``w_out`` ``(hidden,)``, ``b_out`` ``(1,)``.

``state`` -- ``(channels, sum_l rows_l + layers * hidden)``. Per channel: ``vin``,
for each layer its input vector followed by its own hidden state (so one
matrix-vector product covers ``W_ih x + W_hh h``); then the cells.

Gate sums live in a stack buffer of ``4 * MAX_HIDDEN`` values.

Speed notes. The matrix-vector product keeps one tile of gate sums in a stack
buffer for a whole pass over the rows: LLVM knows that buffer cannot alias the
weights, keeps it in AVX registers (8, 10 or 12 of the 16) and streams the tile's
weights through fused multiply-adds, one load each. Each width is its own
compiled loop, because the width must be a compile-time constant for that.
(Accumulating into the ``gates`` array instead costs a load and a store per row,
and is twice as slow.) Every computed index is cast to unsigned, so Numba omits
its negative-index wraparound, which would otherwise stop vectorisation;
``error_model="numpy"`` removes the division check that would stop the activation
loop from vectorising.
Successive samples visit the tiles in opposite orders: when a layer's weights
outgrow the L1 cache (H=64: 66 KB), the tiles used last are still cached when the
next sample starts, which halves the traffic from L2. Each tile's sums are
computed in the same order either way, so the output does not change.
"""

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ampnet.engine.activations import tanh32
from ampnet.limits import MAX_HIDDEN, MAX_KNOBS

TILE_WIDTHS = (64, 80, 96)
HEADER = 16
KNOBS = HEADER - MAX_KNOBS  # offset of the knob values in the header: 8
GATE_BUFFER = 4 * MAX_HIDDEN
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)
_U = numba.uint64
_JIT = dict(cache=True, fastmath={"contract"}, error_model="numpy")


@intrinsic
def stack_float32(typingctx, size):
    """A pointer to ``size`` (a compile-time constant) float32 values on the stack."""
    if not isinstance(size, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(types.float32),
                                   size=size.literal_value)

    return types.CPointer(types.float32)(size), codegen


def tile_width(hidden):
    """The tile width in ``TILE_WIDTHS`` that pads ``4 * hidden`` gate columns least
    (the narrowest on a tie)."""
    return min(TILE_WIDTHS, key=lambda width: (padded_gates(hidden, width), width))


def padded_gates(hidden, width):
    """Gate columns ``4 * hidden`` rounded up to a whole number of tiles of ``width``."""
    return -(-4 * hidden // width) * width


def _tile_pass(width, activate=True):
    """A compiled pass over one tile of ``width`` gate columns: the bias, the sums over
    all ``rows`` of ``vin`` from ``v_off``, and the tanh of each into ``gates`` (the
    sums themselves when not ``activate``: the GRU kernel's products)."""

    @numba.njit(inline="always", **_JIT)
    def tile_pass(gates, g_off, params, b_off, w_off, vin, v_off, rows):
        acc = numba.carray(stack_float32(width), width)
        for k in range(width):
            acc[k] = params[b_off + _U(k)]
        for r in range(rows):
            a = vin[_U(v_off + r)]
            r_off = _U(w_off + r * width)
            for k in range(width):
                acc[k] += params[r_off + _U(k)] * a
        for k in range(width):
            gates[g_off + _U(k)] = tanh32(acc[k]) if activate else acc[k]

    return tile_pass


_PASS_64, _PASS_80, _PASS_96 = (_tile_pass(width) for width in TILE_WIDTHS)
# Without the activation: the plain products W^T v + b, tile by tile (gru_kernel).
SUMS_64, SUMS_80, SUMS_96 = (_tile_pass(width, activate=False) for width in TILE_WIDTHS)


@numba.njit(cache=True, fastmath={"contract", "reassoc"}, error_model="numpy")
def dot(a, a_off, b, b_off, n):
    """``sum(a[a_off:a_off + n] * b[b_off:b_off + n])`` of 1-D float32 arrays, summed in
    whatever order vectorises (eight lanes at a time: about 4% off the whole kernel at
    H=32, as the head); the order is fixed at compile time, so the result is the same
    on every call. Also the live resampler's filter."""
    total = _ZERO
    for j in range(n):
        total += a[a_off + _U(j)] * b[b_off + _U(j)]
    return total


@numba.njit(**_JIT)
def _run_channel(x, y, params, state):
    """Process one channel: ``x`` and ``y`` are 1-D float32 views of equal length
    (they may be the same array); ``state`` is this channel's state row."""
    gates = numba.carray(stack_float32(GATE_BUFFER), GATE_BUFFER)
    in_scale = params[0]
    skip_gain = params[1]
    out_gain = params[2]
    n_in0 = int(params[3])
    hidden = int(params[4])
    n_layers = int(params[5])
    padded = int(params[6])
    width = int(params[7])
    tiles = padded // width
    vin = state
    rows_total = 0
    head_off = HEADER
    for layer in range(n_layers):
        n_in = n_in0 if layer == 0 else hidden
        rows_total += n_in + hidden
        head_off += (1 + n_in + hidden) * padded
    reverse = 0
    for n in range(x.shape[0]):
        reverse = 1 - reverse
        x_raw = x[n]
        vin[0] = x_raw * in_scale
        for k in range(n_in0 - 1):
            vin[1 + k] = params[KNOBS + k]
        w_off = HEADER
        v_off = 0
        for layer in range(n_layers):
            n_in = n_in0 if layer == 0 else hidden
            rows = n_in + hidden
            for tt in range(tiles):
                t = tiles - 1 - tt if reverse else tt
                g_off = _U(t * width)
                b_off = _U(w_off + t * width)
                t_off = w_off + padded + t * rows * width
                if width == 64:
                    _PASS_64(gates, g_off, params, b_off, t_off, vin, v_off, rows)
                elif width == 80:
                    _PASS_80(gates, g_off, params, b_off, t_off, vin, v_off, rows)
                else:
                    _PASS_96(gates, g_off, params, b_off, t_off, vin, v_off, rows)
            h_off = _U(v_off + n_in)
            c_off = _U(rows_total + layer * hidden)
            for j in range(hidden):
                uj = _U(j)
                i_gate = _HALF + _HALF * gates[uj]
                f_gate = _HALF + _HALF * gates[_U(hidden) + uj]
                o_gate = _HALF + _HALF * gates[_U(3 * hidden) + uj]
                c_new = f_gate * state[c_off + uj] + i_gate * gates[_U(2 * hidden) + uj]
                state[c_off + uj] = c_new
                vin[h_off + uj] = o_gate * tanh32(c_new)
            v_off += rows
            if layer + 1 < n_layers:
                # The next layer's input is this layer's new hidden state.
                for j in range(hidden):
                    vin[_U(v_off) + _U(j)] = vin[h_off + _U(j)]
            w_off += (1 + rows) * padded
        h_off = _U(v_off - hidden)
        head = dot(params, _U(head_off), vin, h_off, hidden) + params[_U(head_off + hidden)]
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
