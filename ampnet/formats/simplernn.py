"""GuitarML / Automated-GuitarAmpModelling "SimpleRNN" JSON (Proteus, NeuralPi).

``model_data`` (unit_type LSTM or GRU, input_size, hidden_size, num_layers, skip)
and a PyTorch ``state_dict`` as nested lists: ``rec.weight_ih_l0`` (GH x in, G = 4
gates for the LSTM, 3 for the GRU),
``rec.weight_hh_l0``, ``rec.bias_ih_l0``, ``rec.bias_hh_l0`` (two biases, summed by
the players), ``lin.weight`` (1 x H), ``lin.bias``. The output adds the dry input:
Proteus and NeuralPi always do, whatever ``skip`` says, so ampnet does too. The
files carry no sample rate; Proteus runs them at 44.1 kHz.
"""

from ampnet import limits
from ampnet.errors import ModelFileError
from ampnet.formats.model import (CELLS, RecurrentLayer, RecurrentModel, check_model, float32_array,
                                  unnamed_knobs)

PLAYER_RATE = 44100.0


def looks_like_simplernn(doc):
    return isinstance(doc, dict) and isinstance(doc.get("model_data"), dict) and "state_dict" in doc


def model_from_simplernn(doc, path) -> RecurrentModel:
    data, state = doc["model_data"], doc["state_dict"]
    if not isinstance(state, dict):
        raise ModelFileError(path, "state_dict", "expected an object of named tensors")
    unit = data.get("unit_type")
    if unit not in ("LSTM", "GRU"):
        raise ModelFileError(path, "model_data.unit_type", f"{unit!r}: ampnet runs LSTM and GRU "
                             "models (plain RNN captures are not supported)")
    cell = CELLS[unit.lower()]
    gates = cell.GATES
    num_layers = data.get("num_layers", 1)
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) \
            or not 1 <= num_layers <= limits.MAX_LAYERS:
        raise ModelFileError(path, "model_data.num_layers", f"{num_layers!r}: expected a whole "
                             f"number from 1 to {limits.MAX_LAYERS}")
    layers = []
    for k in range(num_layers):
        def get(name, ndim):
            key = f"rec.{name}_l{k}"
            if key not in state:
                raise ModelFileError(path, f"state_dict.{key}", "missing")
            array = float32_array(state[key], path, f"state_dict.{key}")
            if array.ndim != ndim:
                raise ModelFileError(path, f"state_dict.{key}", f"expected {ndim}-D, got shape "
                                     f"{list(array.shape)}")
            return array
        layers.append(RecurrentLayer(get("weight_ih", 2), get("weight_hh", 2), get("bias_ih", 1),
                                get("bias_hh", 1)))
    hidden = layers[0].weight_hh.shape[1]
    head_weight = float32_array(state.get("lin.weight"), path, "state_dict.lin.weight")
    head_bias = float32_array(state.get("lin.bias"), path, "state_dict.lin.bias").reshape(-1)
    for i, layer in enumerate(layers):
        n_in = layer.weight_ih.shape[1]
        if (layer.weight_hh.shape != (gates * hidden, hidden)
                or layer.weight_ih.shape[0] != gates * hidden
                or layer.bias_ih.shape != (gates * hidden,) or layer.bias_hh.shape != (gates * hidden,)
                or (i > 0 and n_in != hidden)):
            raise ModelFileError(path, f"state_dict.rec.*_l{i}", "tensor shapes do not fit together")
    if head_weight.shape != (1, hidden) or head_bias.shape != (1,):
        raise ModelFileError(path, "state_dict.lin", f"expected weight [1, {hidden}] and bias [1]")
    knobs = unnamed_knobs(layers[0].weight_ih.shape[1], path, "state_dict.rec.weight_ih_l0")
    return check_model(cell(
        hidden_size=hidden, layers=layers, head_weight=head_weight, head_bias=head_bias,
        sample_rate=PLAYER_RATE, skip=True, knobs=knobs,
        metadata={"name": path.stem, "source_format": "GuitarML SimpleRNN JSON"}), path)

