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


_ACTIVATIONS = {"Tanh": torch.tanh, "Sigmoid": torch.sigmoid, "ReLU": torch.relu,
                "LeakyReLU": torch.nn.functional.leaky_relu, "Hardtanh": torch.nn.functional.hardtanh,
                "SiLU": torch.nn.functional.silu}


def torch_wavenet_forward(model, audio, dtype=torch.float64):
    """Run a WaveNetModel over mono ``audio`` in one pass with ``torch.nn.functional.conv1d``
    (float64 by default), written from NAM's signal flow (see ampnet.formats.wavenet):
    the input is padded with zeros over the receptive field, as NAM does."""
    def t(a):
        return torch.from_numpy(np.asarray(a)).to(dtype)

    conv = torch.nn.functional.conv1d
    x = t(np.asarray(audio, dtype=np.float32))[None, None] * model.input_scale
    x = torch.nn.functional.pad(x, (model.receptive_field - 1, 0))
    stream, head = x, None
    for a in model.arrays:
        u = conv(stream, t(a.rechannel_weight)[:, :, None])
        for layer in a.layers:
            z = conv(u, t(layer.conv_weight), t(layer.conv_bias), dilation=layer.dilation)
            z = z + conv(x, t(layer.mixer_weight)[:, :, None])[:, :, -z.shape[2]:]
            act = _ACTIVATIONS[a.activation]
            post = act(z[:, :a.channels]) * torch.sigmoid(z[:, a.channels:]) if a.gated else act(z)
            u = u[:, :, -post.shape[2]:] + conv(post, t(layer.out_weight)[:, :, None],
                                                t(layer.out_bias))
            head = post if head is None else head[:, :, -post.shape[2]:] + post
        bias = None if a.head_bias is None else t(a.head_bias)
        head = conv(head, t(a.head_weight)[:, :, None], bias)
        stream = u
    y = model.output_gain * model.head_scale * head[0, 0]
    return y.numpy()
