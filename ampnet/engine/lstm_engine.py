"""The LSTM's memory layout for :mod:`ampnet.engine.lstm_kernel`: parameters, state."""

import numpy as np

from ampnet.engine import lstm_kernel
from ampnet.engine.packing import aligned_zeros, first_layer_input, header
from ampnet.formats.model import LSTMModel

KERNEL = lstm_kernel

_SIGMOID_GATES = np.ones(4, dtype=np.float32) * 0.5
_SIGMOID_GATES[2] = 1.0  # gate order i, f, g, o: only g is a tanh gate


def pack_params(model: LSTMModel) -> np.ndarray:
    """The kernel's ``params`` array: header, then the tiled weights (see :mod:`lstm_kernel`)."""
    hidden = model.hidden_size
    width = lstm_kernel.tile_width(hidden)
    padded = lstm_kernel.padded_gates(hidden, width)
    tiles = padded // width
    column_scale = np.repeat(_SIGMOID_GATES, hidden)  # (4H,)
    parts = [header(model, (hidden, model.num_layers, padded, width))]
    for index, layer in enumerate(model.layers):
        weight_ih, bias_ih = (first_layer_input(model) if index == 0
                              else (layer.weight_ih, layer.bias_ih))
        bias = np.zeros(padded, dtype=np.float32)
        bias[:4 * hidden] = (bias_ih + layer.bias_hh) * column_scale
        stacked = np.zeros((padded, weight_ih.shape[1] + hidden), dtype=np.float32)
        stacked[:4 * hidden] = np.concatenate([weight_ih, layer.weight_hh], axis=1) \
            * column_scale[:, None]
        rows = stacked.shape[1]
        # (padded, rows) -> (tiles, rows, width)
        tiled = stacked.reshape(tiles, width, rows).transpose(0, 2, 1)
        parts += [bias, tiled.ravel()]
    parts += [model.head_weight.ravel(), model.head_bias.ravel()]
    flat = np.concatenate(parts).astype(np.float32)
    params = aligned_zeros(flat.shape)
    params[:] = flat
    return params


def state_size(model: LSTMModel) -> int:
    """Length of one channel's state row (see :mod:`lstm_kernel`)."""
    rows = sum((model.input_size if i == 0 else model.hidden_size) + model.hidden_size
               for i in range(model.num_layers))
    return rows + model.num_layers * model.hidden_size


def initial_state(model: LSTMModel) -> np.ndarray:
    """One channel's state row at the start: zeros, or the model's stored initial state."""
    row = np.zeros(state_size(model), dtype=np.float32)
    if model.initial_h is None:
        return row
    hidden, offset = model.hidden_size, 0
    cells = state_size(model) - model.num_layers * hidden
    for i in range(model.num_layers):
        n_in = model.input_size if i == 0 else hidden
        if i > 0:  # layer i's input is layer i-1's hidden state
            row[offset:offset + hidden] = model.initial_h[i - 1]
        row[offset + n_in:offset + n_in + hidden] = model.initial_h[i]
        row[cells + i * hidden:cells + (i + 1) * hidden] = model.initial_c[i]
        offset += n_in + hidden
    return row
