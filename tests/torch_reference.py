"""An independent reference for the engine: torch.nn.LSTM or nn.GRU + nn.Linear (+ skip)."""

import numpy as np
import torch


def torch_forward(model, audio):
    """Run ``model`` (an LSTMModel or GRUModel) over mono ``audio`` in one pass with
    PyTorch, float32."""
    cell = torch.nn.LSTM if model.CELL == "lstm" else torch.nn.GRU
    lstm = cell(model.input_size, model.hidden_size, model.num_layers, batch_first=True)
    head = torch.nn.Linear(model.hidden_size, 1)
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            getattr(lstm, f"weight_ih_l{i}").copy_(torch.from_numpy(layer.weight_ih))
            getattr(lstm, f"weight_hh_l{i}").copy_(torch.from_numpy(layer.weight_hh))
            getattr(lstm, f"bias_ih_l{i}").copy_(torch.from_numpy(layer.bias_ih))
            getattr(lstm, f"bias_hh_l{i}").copy_(torch.from_numpy(layer.bias_hh))
        head.weight.copy_(torch.from_numpy(model.head_weight))
        head.bias.copy_(torch.from_numpy(model.head_bias))
        x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
        features = [x * model.input_scale] + [torch.full_like(x, k.default) for k in model.knobs]
        inputs = torch.stack(features, dim=-1)[None]  # (1, frames, input_size)
        state = None
        if model.initial_h is not None and model.CELL == "gru":
            state = torch.from_numpy(model.initial_h)[:, None]
        elif model.initial_h is not None:
            state = (torch.from_numpy(model.initial_h)[:, None], torch.from_numpy(model.initial_c)[:, None])
        hidden, _ = lstm(inputs, state)
        y = head(hidden)[0, :, 0]
        if model.skip:
            y = y + x
        return (model.output_gain * y).numpy()
