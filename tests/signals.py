"""Test signals and reference models, generated so the suite needs no data files."""

import numpy as np

from ampnet.formats.model import CELLS, Knob, RecurrentLayer
from ampnet.host.loudness import reference_guitar


def guitar_like(seconds=1.0, sample_rate=48000, seed=0, level=0.5):
    """Plucked notes (see :func:`ampnet.host.loudness.reference_guitar`); ``(frames,)`` float32."""
    return reference_guitar(seconds, sample_rate, seed, level)


def random_model(hidden=8, layers=1, knobs=0, skip=True, seed=0, weight_scale=1.0,
                 input_scale=1.0, output_gain=1.0, sample_rate=48000.0, cell="lstm"):
    """An LSTMModel (or a GRUModel, ``cell="gru"``) with PyTorch's default
    initialisation (uniform in +-1/sqrt(hidden))."""
    rng = np.random.default_rng(seed)
    bound = weight_scale / np.sqrt(hidden)

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    input_size = 1 + knobs
    model_class = CELLS[cell]
    g = model_class.GATES * hidden
    return model_class(
        hidden_size=hidden,
        layers=[RecurrentLayer(uniform(g, input_size if i == 0 else hidden),
                               uniform(g, hidden), uniform(g), uniform(g))
                for i in range(layers)],
        head_weight=uniform(1, hidden), head_bias=uniform(1), sample_rate=sample_rate,
        skip=skip, input_scale=input_scale, output_gain=output_gain,
        knobs=[Knob(f"knob{i}", 0.25 + 0.25 * i) for i in range(knobs)],
        metadata={"name": "random test model"})


def simplernn_document(model):
    """``model`` (one LSTM or GRU layer) as a GuitarML "SimpleRNN" JSON document (Proteus)."""
    layer = model.layers[0]
    return {"model_data": {"model": "SimpleRNN", "input_size": model.input_size, "skip": 1,
                           "output_size": 1, "unit_type": model.CELL.upper(), "num_layers": 1,
                           "hidden_size": model.hidden_size, "bias_fl": True},
            "state_dict": {"rec.weight_ih_l0": layer.weight_ih.tolist(),
                           "rec.weight_hh_l0": layer.weight_hh.tolist(),
                           "rec.bias_ih_l0": layer.bias_ih.tolist(),
                           "rec.bias_hh_l0": layer.bias_hh.tolist(),
                           "lin.weight": model.head_weight.tolist(),
                           "lin.bias": model.head_bias.tolist()}}


def wavenet_config(channels=(4, 2), dilations=((1, 2, 4), (8, 1)), kernel_size=3,
                   activation="Tanh", gated=False, head_bias=(False, True)):
    """Layer-array configs (NAM's v0.5 keys) chaining ``len(channels)`` arrays."""
    arrays = []
    for i, (c, d) in enumerate(zip(channels, dilations)):
        arrays.append({"input_size": 1 if i == 0 else channels[i - 1], "condition_size": 1,
                       "head_size": channels[i + 1] if i + 1 < len(channels) else 1,
                       "channels": c, "kernel_size": kernel_size, "dilations": list(d),
                       "activation": activation, "gated": gated, "head_bias": head_bias[i]})
    return arrays


def random_wavenet(arrays=None, seed=0, head_scale=0.02, input_scale=1.0, output_gain=1.0,
                   sample_rate=48000.0):
    """A WaveNetModel of ``arrays`` (:func:`wavenet_config`'s default when None) with
    PyTorch's default Conv1d initialisation (uniform in +-1/sqrt(fan_in))."""
    from ampnet.formats.wavenet import check_wavenet, empty_model, wavenet_tensors

    model = empty_model(arrays or wavenet_config(), head_scale, sample_rate)
    rng = np.random.default_rng(seed)
    for key, _, tensor in wavenet_tensors(model):
        fan_in = int(np.prod(tensor.shape[1:])) if tensor.ndim > 1 else tensor.shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        tensor[...] = rng.uniform(-bound, bound, tensor.shape)
    model.input_scale, model.output_gain = input_scale, output_gain
    model.metadata = {"name": "random test wavenet"}
    return check_wavenet(model, "random wavenet")
