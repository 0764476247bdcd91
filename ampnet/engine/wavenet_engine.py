"""The WaveNet's memory layout for :mod:`ampnet.engine.wavenet_kernel`: parameters, state.

The state starts as the network's response to silence (NAM's zero padding over the
receptive field): each layer's history holds the constant input that layer sees
when the audio has been zero forever, computed here in float64.
"""

import numpy as np

from ampnet.engine import wavenet_kernel as wk
from ampnet.engine.packing import aligned_zeros, header
from ampnet.formats.wavenet import ACTIVATIONS, WaveNetModel

KERNEL = wk


def _layers(model):
    """``(array_index, array, layer)`` for every layer, in order."""
    return [(i, a, layer) for i, a in enumerate(model.arrays) for layer in a.layers]


def _history(array, layer):
    return layer.dilation * (array.kernel_size - 1)


def _buffer_offsets(model):
    """Each layer's history rows' offset in the state row, and the row's total length."""
    offsets, offset = [], len(_layers(model))
    for _, array, layer in _layers(model):
        offsets.append(offset)
        offset += array.channels * wk.row_length(_history(array, layer))
    return offsets, offset


def pack_params(model: WaveNetModel) -> np.ndarray:
    """The kernel's ``params`` array: header, tables, weights (see :mod:`wavenet_kernel`)."""
    layers = _layers(model)
    tables = wk.WN_TABLE + len(model.arrays) * wk.ARRAY_FIELDS + len(layers) * wk.LAYER_FIELDS
    weights, size = [], tables

    def place(array):
        nonlocal size
        weights.append(np.asarray(array, dtype=np.float64).ravel())
        size += weights[-1].size
        return size - weights[-1].size

    array_rows, layer_rows = [], []
    buffers, _ = _buffer_offsets(model)
    for a in model.arrays:
        first = len(layer_rows)
        rechannel = place(a.rechannel_weight)
        for layer in a.layers:
            history = _history(a, layer)
            row = np.zeros(wk.LAYER_FIELDS)
            row[wk.L_DILATION] = layer.dilation
            row[wk.L_CONV] = place(layer.conv_weight.transpose(0, 2, 1))  # (mid, K, C)
            row[wk.L_CONV_BIAS] = place(layer.conv_bias)
            row[wk.L_MIXER] = place(layer.mixer_weight[:, 0])
            row[wk.L_OUT] = place(layer.out_weight)
            row[wk.L_OUT_BIAS] = place(layer.out_bias)
            row[wk.L_BUFFER] = buffers[len(layer_rows)]
            row[wk.L_LENGTH] = wk.row_length(history)
            row[wk.L_HISTORY] = history
            layer_rows.append(row)
        row = np.zeros(wk.ARRAY_FIELDS)
        row[wk.A_CHANNELS] = a.channels
        row[wk.A_INPUT] = a.input_size
        row[wk.A_HEAD] = a.head_size
        row[wk.A_KERNEL] = a.kernel_size
        row[wk.A_GATED] = 1.0 if a.gated else 0.0
        row[wk.A_ACTIVATION] = ACTIVATIONS.index(a.activation)
        row[wk.A_LAYERS] = len(a.layers)
        row[wk.A_FIRST] = first
        row[wk.A_RECHANNEL] = rechannel
        row[wk.A_HEAD_WEIGHT] = place(a.head_weight)
        row[wk.A_HEAD_BIAS] = -1 if a.head_bias is None else place(a.head_bias)
        array_rows.append(row)
    if size >= 2 ** 24:
        raise ValueError("model too large for the engine (see ampnet.limits)")
    params = aligned_zeros((size,))
    params[:wk.HEADER] = header(model)
    params[wk.WN_ARRAYS] = len(model.arrays)
    params[wk.WN_LAYERS] = len(layers)
    params[wk.WN_HEAD_SCALE] = model.head_scale
    params[wk.WN_TABLE:tables] = np.concatenate(array_rows + layer_rows)
    params[tables:] = np.concatenate(weights)
    return params


def state_size(model: WaveNetModel) -> int:
    """Length of one channel's state row: the write positions, then every layer's history."""
    return _buffer_offsets(model)[1]


def initial_state(model: WaveNetModel) -> np.ndarray:
    """One channel's state row at the start: every layer's history filled with the input
    it sees after endless silence, write positions just after the history."""
    row = np.zeros(state_size(model), dtype=np.float32)
    buffers, _ = _buffer_offsets(model)
    index = 0
    residual = np.zeros(1)
    for a in model.arrays:
        u = a.rechannel_weight.astype(np.float64) @ residual  # silence in: rechannel has no bias
        for layer in a.layers:
            history = _history(a, layer)
            length = wk.row_length(history)
            rows = row[buffers[index]:buffers[index] + a.channels * length].reshape(a.channels, length)
            rows[:, :history] = u[:, None]
            row[index] = history
            z = layer.conv_weight.astype(np.float64).sum(axis=2) @ u + layer.conv_bias
            u = u + layer.out_weight.astype(np.float64) @ _activation(z, a) + layer.out_bias
            index += 1
        residual = u
    return row


def _activation(z, array):
    """The layer's post-activation for pre-activation ``z`` (float64)."""
    if array.gated:
        return _ACTIVATE[array.activation](z[:array.channels]) * _sigmoid(z[array.channels:])
    return _ACTIVATE[array.activation](z)


def _sigmoid(z):
    return 0.5 + 0.5 * np.tanh(0.5 * z)


_ACTIVATE = {
    "Tanh": np.tanh,
    "Sigmoid": _sigmoid,
    "ReLU": lambda z: np.maximum(z, 0.0),
    "LeakyReLU": lambda z: np.where(z > 0, z, float(wk.LEAKY_SLOPE) * z),
    "Hardtanh": lambda z: np.clip(z, -1.0, 1.0),
    "SiLU": lambda z: z * _sigmoid(z),
}
