"""Numba kernel that runs a NAM WaveNet (see :mod:`ampnet.formats.wavenet`), a tile of
``TILE`` samples at a time.

Memory layout (all float32, built once by :func:`ampnet.engine.wavenet_engine.pack_params`;
whole numbers are stored as float32, exact below 2**24).

``params`` -- the header of :mod:`ampnet.engine.lstm_kernel` (``HEADER`` values; this
kernel reads ``in_scale, skip_gain, out_gain`` from it), then at ``HEADER``:

- ``[arrays, layers, head_scale, 0]``, then the array table, ``arrays`` rows of
  ``ARRAY_FIELDS`` values (columns ``A_CHANNELS`` ... ``A_HEAD_BIAS``, below), then the
  layer table, ``layers`` rows of ``LAYER_FIELDS`` values (columns ``L_DILATION`` ...
  ``L_HISTORY``); an array's layers are rows ``A_FIRST`` to ``A_FIRST + A_LAYERS - 1``;
- the weights, at the offsets the tables give: ``rechannel`` ``(C, input_size)``; per
  layer the convolution ``(mid, K, C)`` (tap ``k`` multiplies the input ``d (K - 1 - k)``
  samples back; PyTorch's ``(mid, C, K)`` transposed so that one output's weights are
  contiguous), its bias ``(mid,)``, the mixer ``(mid,)``, the 1x1 ``(C, C)`` and its bias
  ``(C,)``; the head ``(head_size, C)`` and its bias ``(head_size,)`` (offset -1: none).

``state`` -- ``(channels, ...)``. Per channel: one write position per layer, then each
layer's input history, ``C`` rows of ``L_LENGTH`` samples (``history = d (K - 1)``
samples before the position are the past, the tile is written from the position on).
When a tile would run past the end of a row, the history is moved back to the start
(once every few hundred tiles), so the convolution always reads one contiguous run.

Tiles. A block is cut into tiles of ``TILE`` samples; each tile goes through every
layer in turn. The sums of one output channel over a tile stay in a stack buffer
of ``TILE`` values for the whole pass over its ``K * C`` weights (in registers, as in
the LSTM kernel); every weight is loaded once per tile and multiplies a contiguous
run of ``TILE`` history samples. A shorter block (or the last piece of one) still
computes a whole tile; the samples past its end are never read as results and are
overwritten by the next block. The last array's residual output feeds nothing and is
not computed.

Numba's cache checks only this file: after editing :mod:`activations` or
:mod:`lstm_kernel`, touch this module too (or delete ``ampnet/engine/__pycache__``).
"""

import numba
import numpy as np

from ampnet.engine.activations import sigmoid32, tanh32
from ampnet.engine.lstm_kernel import HEADER, stack_float32
from ampnet.limits import MAX_WAVENET_CHANNELS

TILE = 64  # samples per tile
STACK_ROWS = MAX_WAVENET_CHANNELS * TILE  # one tile of every channel

# At HEADER: counts and the head scale; the array table starts at WN_TABLE.
WN_ARRAYS, WN_LAYERS, WN_HEAD_SCALE = HEADER, HEADER + 1, HEADER + 2
WN_TABLE = HEADER + 4
# Array table columns.
(A_CHANNELS, A_INPUT, A_HEAD, A_KERNEL, A_GATED, A_ACTIVATION, A_LAYERS, A_FIRST,
 A_RECHANNEL, A_HEAD_WEIGHT, A_HEAD_BIAS) = range(11)
ARRAY_FIELDS = 11
# Layer table columns (offsets into params, except L_BUFFER: into the state row).
(L_DILATION, L_CONV, L_CONV_BIAS, L_MIXER, L_OUT, L_OUT_BIAS, L_BUFFER, L_LENGTH,
 L_HISTORY) = range(9)
LAYER_FIELDS = 9
# Activation codes, in the order of ampnet.formats.wavenet.ACTIVATIONS.
TANH, SIGMOID, RELU, LEAKY_RELU, HARDTANH, SILU = range(6)
LEAKY_SLOPE = np.float32(0.01)  # PyTorch's default negative slope

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_U = numba.uint64
_JIT = dict(cache=True, fastmath={"contract"}, error_model="numpy")


def row_length(history):
    """Samples in one channel's history row for a layer that looks ``history`` back:
    the history twice over and four tiles, so that moving it back is rare."""
    return 2 * history + 4 * TILE


@numba.njit(inline="always", **_JIT)
def _activate(v, code):
    if code == TANH:
        return tanh32(v)
    if code == SIGMOID:
        return sigmoid32(v)
    if code == RELU:
        return max(v, _ZERO)
    if code == LEAKY_RELU:
        return v if v > _ZERO else LEAKY_SLOPE * v
    if code == HARDTANH:
        return min(max(v, -_ONE), _ONE)
    return v * sigmoid32(v)


def _tile_kernel(tile):
    """The compiled pass of one tile of ``tile`` samples through every layer. ``tile``
    is a compile-time constant, so that each output channel's sums stay in registers.
    (At 64 LLVM vectorises the loops over the tile; at 32 it unrolls them completely
    first and the result runs eight times slower, so a block of 32 costs a whole tile.)"""

    @numba.njit(inline="always", **_JIT)
    def conv_row(out, o_off, params, w_off, bias, mix, xs, state, src, length, dilation,
                 kernel, channels, code, head):
        """One output channel of a dilated layer into ``out[o_off:o_off + tile]``:
        ``act(bias + mix * xs + sum_k sum_i w[k, i] * history_i[t - d (K - 1 - k)])``,
        activation ``code``. Each tap's sum over the channels is formed apart and then
        added (fewer roundings at the size of the total, which keeps ampnet nearer a
        float64 evaluation than PyTorch's float32 convolution). ``src`` is the state
        offset of channel 0's sample at the tile's start. With ``head`` (not None) the
        result is also added to ``head[o_off:o_off + tile]``."""
        acc = numba.carray(stack_float32(tile), tile)
        part = numba.carray(stack_float32(tile), tile)
        for t in range(tile):
            acc[t] = bias + mix * xs[t]
        for k in range(kernel):
            tap = _U(src - dilation * (kernel - 1 - k))
            w_k = _U(w_off + k * channels)
            for t in range(tile):
                part[t] = _ZERO
            for i in range(channels):
                w = params[w_k + _U(i)]
                row = tap + _U(i * length)
                for t in range(tile):
                    part[t] += w * state[row + _U(t)]
            for t in range(tile):
                acc[t] += part[t]
        if code == TANH:
            for t in range(tile):
                acc[t] = tanh32(acc[t])
        else:
            for t in range(tile):
                acc[t] = _activate(acc[t], code)
        for t in range(tile):
            out[o_off + _U(t)] = acc[t]
        if head is not None:
            for t in range(tile):
                head[o_off + _U(t)] += acc[t]

    @numba.njit(inline="always", **_JIT)
    def mix_row(out, o_off, params, w_off, bias, inputs, rows, base, base_off):
        """``out[o_off + t] = base[base_off + t] + (bias + sum_j w[j] * inputs[j * tile + t])``
        (``base`` None: no base term). The base (the residual stream, the largest term)
        is added last, in one rounding, as PyTorch adds a 1x1 convolution's output."""
        acc = numba.carray(stack_float32(tile), tile)
        for t in range(tile):
            acc[t] = bias
        for j in range(rows):
            w = params[_U(w_off + j)]
            r = _U(j * tile)
            for t in range(tile):
                acc[t] += w * inputs[r + _U(t)]
        if base is None:
            for t in range(tile):
                out[_U(o_off + t)] = acc[t]
        else:
            for t in range(tile):
                out[_U(o_off + t)] = base[_U(base_off + t)] + acc[t]

    @numba.njit(inline="always", **_JIT)
    def run_tile(x, y, start, m, params, state, acts, head, resid, xs, gate):
        """Samples ``start`` to ``start + m`` (``m <= tile``) of ``x`` into ``y``; the
        stack buffers hold a tile of every channel (rows of ``tile`` samples)."""
        in_scale = params[0]
        skip_gain = params[1]
        out_gain = params[2]
        n_arrays = int(params[WN_ARRAYS])
        head_scale = params[WN_HEAD_SCALE]
        layer_table = WN_TABLE + n_arrays * ARRAY_FIELDS
        for t in range(tile):
            xs[t] = x[start + t] * in_scale if t < m else _ZERO
        for a in range(n_arrays):
            row = WN_TABLE + a * ARRAY_FIELDS
            channels = int(params[row + A_CHANNELS])
            n_in = int(params[row + A_INPUT])
            head_size = int(params[row + A_HEAD])
            kernel = int(params[row + A_KERNEL])
            gated = params[row + A_GATED] != _ZERO
            code = int(params[row + A_ACTIVATION])
            n_layers = int(params[row + A_LAYERS])
            first = int(params[row + A_FIRST])
            last_array = a == n_arrays - 1
            # Layer 0's input: the rechannelled audio or the previous residual stream.
            lrow = layer_table + first * LAYER_FIELDS
            _room(params, state, lrow, first, channels, tile)
            length = int(params[lrow + L_LENGTH])
            dst = int(params[lrow + L_BUFFER]) + int(state[first])
            rechannel = int(params[row + A_RECHANNEL])
            for c in range(channels):
                if a == 0:
                    w = params[rechannel + c]
                    for t in range(tile):
                        state[_U(dst + c * length + t)] = w * xs[t]
                else:
                    mix_row(state, dst + c * length, params, rechannel + c * n_in, _ZERO,
                            resid, n_in, None, 0)
            if a == 0:
                for t in range(channels * tile):
                    head[t] = _ZERO
            for j in range(n_layers):
                layer = first + j
                lrow = layer_table + layer * LAYER_FIELDS
                length = int(params[lrow + L_LENGTH])
                dilation = int(params[lrow + L_DILATION])
                src = int(params[lrow + L_BUFFER]) + int(state[layer])
                conv = int(params[lrow + L_CONV])
                conv_bias = int(params[lrow + L_CONV_BIAS])
                mixer = int(params[lrow + L_MIXER])
                for o in range(channels):
                    o_off = _U(o * tile)
                    if gated:
                        conv_row(acts, o_off, params, conv + o * kernel * channels,
                                 params[conv_bias + o], params[mixer + o], xs, state, src,
                                 length, dilation, kernel, channels, code, None)
                        g = o + channels
                        conv_row(gate, _U(0), params, conv + g * kernel * channels,
                                 params[conv_bias + g], params[mixer + g], xs, state, src,
                                 length, dilation, kernel, channels, SIGMOID, None)
                        for t in range(tile):
                            acts[o_off + _U(t)] *= gate[t]
                            head[o_off + _U(t)] += acts[o_off + _U(t)]
                    else:
                        conv_row(acts, o_off, params, conv + o * kernel * channels,
                                 params[conv_bias + o], params[mixer + o], xs, state, src,
                                 length, dilation, kernel, channels, code, head)
                last_layer = j == n_layers - 1
                if not (last_layer and last_array):
                    out_w = int(params[lrow + L_OUT])
                    out_b = int(params[lrow + L_OUT_BIAS])
                    if last_layer:  # the array's output, the next array's input
                        for c in range(channels):
                            mix_row(resid, c * tile, params, out_w + c * channels,
                                    params[out_b + c], acts, channels, state, src + c * length)
                    else:
                        nrow = lrow + LAYER_FIELDS
                        _room(params, state, nrow, layer + 1, channels, tile)
                        n_length = int(params[nrow + L_LENGTH])
                        n_dst = int(params[nrow + L_BUFFER]) + int(state[layer + 1])
                        for c in range(channels):
                            mix_row(state, n_dst + c * n_length, params, out_w + c * channels,
                                    params[out_b + c], acts, channels, state, src + c * length)
                state[layer] += m
            # The head projection (into acts, then over the head sums for the next array).
            head_w = int(params[row + A_HEAD_WEIGHT])
            head_b = int(params[row + A_HEAD_BIAS])
            for h in range(head_size):
                bias = params[head_b + h] if head_b >= 0 else _ZERO
                mix_row(acts, h * tile, params, head_w + h * channels, bias, head, channels,
                        None, 0)
            for t in range(head_size * tile):
                head[t] = acts[t]
        for t in range(m):
            y[start + t] = out_gain * (head_scale * head[t] + skip_gain * x[start + t])

    return run_tile


@numba.njit(inline="always", **_JIT)
def _room(params, state, layer_row, layer, channels, tile):
    """Make room for a tile after ``layer``'s write position: when the tile would run
    past the end of the rows, move each channel's history back to the row's start."""
    position = int(state[layer])
    length = int(params[layer_row + L_LENGTH])
    if position + tile <= length:
        return
    history = int(params[layer_row + L_HISTORY])
    buffer = int(params[layer_row + L_BUFFER])
    for c in range(channels):
        row = buffer + c * length
        for t in range(history):
            state[row + t] = state[row + position - history + t]
    state[layer] = history


_RUN_TILE = _tile_kernel(TILE)


@numba.njit(**_JIT)
def _run_channel(x, y, params, state):
    """Process one channel: ``x`` and ``y`` are 1-D float32 views of equal length
    (they may be the same array); ``state`` is this channel's state row."""
    acts = numba.carray(stack_float32(STACK_ROWS), STACK_ROWS)
    head = numba.carray(stack_float32(STACK_ROWS), STACK_ROWS)
    resid = numba.carray(stack_float32(STACK_ROWS), STACK_ROWS)
    xs = numba.carray(stack_float32(TILE), TILE)
    gate = numba.carray(stack_float32(TILE), TILE)
    frames = x.shape[0]
    start = 0
    while start < frames:
        m = min(TILE, frames - start)
        _RUN_TILE(x, y, start, m, params, state, acts, head, resid, xs, gate)
        start += m


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
