"""The GRU's memory layout for :mod:`ampnet.engine.gru_kernel`: parameters, state."""

import numpy as np

from ampnet.engine import gru_kernel
from ampnet.engine.packing import aligned_zeros, first_layer_input, header
from ampnet.formats.model import GRUModel

KERNEL = gru_kernel


def pack_params(model: GRUModel) -> np.ndarray:
    """The kernel's ``params`` array: header, then per layer the padded biases and the
    tiled weights (see :mod:`gru_kernel`), then the head."""
    hidden = model.hidden_size
    width = gru_kernel.tile_width(hidden)
    padded = gru_kernel.padded_columns(hidden, width)
    tiles = padded // width
    # r and z are sigmoid gates, computed as 0.5 + 0.5 tanh(a / 2): halve their columns.
    column_scale = np.concatenate([np.full(2 * hidden, 0.5), np.ones(hidden)])

    def padded_bias(bias):
        out = np.zeros(padded)
        out[:3 * hidden] = bias * column_scale
        return out

    def tiled(weight):  # (3H, rows) -> (tiles, rows, width)
        rows = weight.shape[1]
        full = np.zeros((padded, rows))
        full[:3 * hidden] = weight * column_scale[:, None]
        return full.reshape(tiles, width, rows).transpose(0, 2, 1).ravel()

    parts = [header(model, (hidden, model.num_layers, padded, width))]
    for index, layer in enumerate(model.layers):
        weight_ih, bias_ih = (first_layer_input(model) if index == 0
                              else (layer.weight_ih, layer.bias_ih))
        parts += [padded_bias(bias_ih), padded_bias(layer.bias_hh), tiled(weight_ih),
                  tiled(layer.weight_hh)]
    parts += [model.head_weight.ravel(), model.head_bias.ravel()]
    flat = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])
    params = aligned_zeros(flat.shape)
    params[:] = flat
    return params


def state_size(model: GRUModel) -> int:
    """Length of one channel's state row: layer 0's inputs, then every hidden state."""
    return model.input_size + model.num_layers * model.hidden_size


def initial_state(model: GRUModel) -> np.ndarray:
    """One channel's state row at the start: zeros, or the model's stored initial state."""
    row = np.zeros(state_size(model), dtype=np.float32)
    if model.initial_h is not None:
        row[model.input_size:] = model.initial_h.ravel()
    return row
