"""Export ampnet models to the formats other players load: NAM ``.nam`` (LSTM and
WaveNet) and AIDA-X (RTNeural Keras-style JSON, LSTM and GRU). Layouts: ``../shared/docs/model-formats.md``
sections 1-3, mirrored by the importers :mod:`nam` and :mod:`rtneural`.

What the target cannot express is folded into the weights where that is exact up
to float32 rounding, or refused with the reason:

- input scale: multiplies the audio column of the first layer's input weights
  (``W_ih[:, 0] * s``; the knob columns are untouched); in a WaveNet, the first
  array's rechannel and every layer's input mixer;
- output gain: multiplies the head (NAM, AIDA-X without skip; a WaveNet's head scale)
  or becomes AIDA-X's ``out_gain`` in dB (with skip, where the input passes the gain too);
- skip: NAM's LSTM has none, so a model with the skip cannot become ``.nam``;
- AIDA-X runs one LSTM layer with H in {8, 12, 16, 20, 24, 32, 40, 64, 80} and
  starts from zero state; NAM plugins feed one input, so knobs cannot go to ``.nam``.
"""

import dataclasses
import math

import numpy as np

from ampnet import __version__
from ampnet.errors import AmpnetError
from ampnet.formats.model import RecurrentModel
from ampnet.formats.rtneural import keras_gru_order
from ampnet.formats.wavenet import WaveNetModel, layer_array_config, wavenet_tensors

NAM_VERSION = "0.5.4"  # NeuralAmpModelerCore loads 0.5.0 to 0.7.0
AIDAX_HIDDEN_SIZES = (8, 12, 16, 20, 24, 32, 40, 64, 80)
NAM_METADATA = ("modeled_by", "gear_type", "gear_make", "gear_model", "tone_type", "gain",
                "input_level_dbu", "output_level_dbu")


class ExportError(AmpnetError):
    """The model cannot be written in the target format; says why and what to do."""


def _input_weights(model: RecurrentModel, layer_index):
    """``W_ih`` of a layer with the input scale folded into layer 0's audio column."""
    weight = model.layers[layer_index].weight_ih.astype(np.float64)
    if layer_index == 0:
        weight[:, 0] *= model.input_scale
    return weight


def _normalized_knob_inputs(model: RecurrentModel):
    """Layer 0's ``(W_ih, b_ih)`` for knob inputs normalised to 0..1 over their range
    (what AIDA-X feeds); exact (unchanged) for a model that already takes them so."""
    weight, bias = _input_weights(model, 0), model.layers[0].bias_ih.astype(np.float64)
    if model.knob_inputs == "normalized" or not model.knobs:
        return weight, bias
    # value = span * normalized + minimum
    span = np.array([k.maximum - k.minimum for k in model.knobs])
    low = np.array([k.minimum for k in model.knobs])
    bias = bias + weight[:, 1:] @ low
    weight[:, 1:] *= span
    return weight, bias


def to_nam(model) -> dict:
    """A ``.nam`` document (architecture LSTM or WaveNet) with the same output as ``model``."""
    if model.CELL == WaveNetModel.CELL:
        return _wavenet_to_nam(model)
    if model.CELL != "lstm":
        raise ExportError(f"this is a {model.CELL.upper()} model; NAM plays LSTM and WaveNet "
                          "models only; export it to AIDA-X instead (--to aidax)")
    if model.knobs:
        raise ExportError(f"this model has knob inputs ({', '.join(k.name for k in model.knobs)}); "
                          "the NAM plugin feeds the audio only; export to AIDA-X instead (--to aidax)")
    if model.skip:
        raise ExportError("NAM's LSTM has no skip path, and this model adds its input to its output, "
                          "so it cannot be written as .nam exactly; for the NAM plugin, train with "
                          "`ampnet train --no-skip`")
    hidden = model.hidden_size
    initial_h = model.initial_h if model.initial_h is not None else np.zeros((model.num_layers, hidden))
    initial_c = model.initial_c if model.initial_c is not None else np.zeros((model.num_layers, hidden))
    weights = []
    for i, layer in enumerate(model.layers):
        stacked = np.concatenate([_input_weights(model, i), layer.weight_hh], axis=1)
        weights += [stacked.ravel(), (layer.bias_ih.astype(np.float64) + layer.bias_hh),
                    initial_h[i], initial_c[i]]
    weights += [model.head_weight.ravel() * float(model.output_gain),
                model.head_bias * float(model.output_gain)]
    return {"version": NAM_VERSION, "architecture": "LSTM",
            "config": {"input_size": 1, "hidden_size": hidden, "num_layers": model.num_layers},
            "weights": _flat(weights), "sample_rate": float(model.sample_rate),
            "metadata": _nam_metadata(model)}


def _wavenet_to_nam(model: WaveNetModel) -> dict:
    """NAM's v0.5 WaveNet config and flat weights (:func:`wavenet_tensors`' order)."""
    scale = float(model.input_scale)
    weights = []
    for key, _, tensor in wavenet_tensors(model):
        takes_audio = key == "arrays.0.rechannel_weight" or key.endswith(".mixer_weight")
        weights.append(tensor.astype(np.float64) * (scale if takes_audio else 1.0))
    head_scale = float(model.head_scale) * float(model.output_gain)
    metadata = _nam_metadata(model)
    if scale == 1.0 and model.output_gain == 1.0 and model.metadata.get("loudness") is not None:
        metadata["loudness"] = model.metadata["loudness"]
    return {"version": NAM_VERSION, "architecture": "WaveNet",
            "config": {"layers": [layer_array_config(a) for a in model.arrays], "head": None,
                       "head_scale": head_scale},
            "weights": _flat(weights) + [head_scale], "sample_rate": float(model.sample_rate),
            "metadata": metadata}


def _flat(parts):
    """One flat list of float32 values (as Python floats) from ``parts``."""
    return [float(np.float32(v)) for part in parts for v in np.ravel(part)]


def _nam_metadata(model):
    metadata = {"name": model.name}
    for key in NAM_METADATA:
        if model.metadata.get(key) is not None:
            metadata[key] = model.metadata[key]
    return metadata


def to_aidax(model: RecurrentModel, probe=None) -> tuple[dict, list]:
    """An AIDA-X JSON document and a list of notes (what was dropped, and why).
    ``probe`` (float32, up to 2048 samples) becomes ``input_batch``/``output_batch``,
    the reference output AIDA-X files carry."""
    if model.CELL == WaveNetModel.CELL:
        raise ExportError("AIDA-X plays LSTM and GRU models; this is a WaveNet; export it to "
                          "NAM instead (--to nam)")
    if model.num_layers != 1:
        raise ExportError(f"AIDA-X runs one recurrent layer; this model has {model.num_layers}; "
                          "train with --layers 1 for AIDA-X")
    if model.hidden_size not in AIDAX_HIDDEN_SIZES:
        raise ExportError(f"AIDA-X runs hidden sizes {', '.join(map(str, AIDAX_HIDDEN_SIZES))}; this "
                          f"model has {model.hidden_size}; train with one of those (--hidden)")
    if model.input_size > 3:
        raise ExportError(f"AIDA-X takes at most 2 knobs; this model has {len(model.knobs)}")
    notes = []
    gain = float(model.output_gain)
    head_weight, head_bias = model.head_weight.astype(np.float64), model.head_bias.astype(np.float64)
    if model.skip:
        if gain <= 0:
            raise ExportError(f"output gain {gain:g} with the skip path cannot be expressed in AIDA-X "
                              "(out_gain is in dB)")
        out_gain_db = 20 * math.log10(gain)
    else:
        head_weight, head_bias, out_gain_db = head_weight * gain, head_bias * gain, 0.0
    if model.initial_h is not None and np.any(model.initial_h):
        notes.append("the stored initial state is dropped: AIDA-X starts from zero and runs "
                     "2048 zeros through the model first")
    layer = model.layers[0]
    weight_ih, bias_ih = _normalized_knob_inputs(model)
    if model.CELL == "lstm":
        recurrent_weights = [_nested(weight_ih.T), _nested(layer.weight_hh.T),
                             _nested(bias_ih + layer.bias_hh)]
    else:  # PyTorch r, z, n -> Keras z, r, h; the two biases stay apart (reset_after)
        order = keras_gru_order(model.hidden_size)
        recurrent_weights = [_nested(weight_ih[order].T), _nested(layer.weight_hh[order].T),
                             _nested(np.stack([bias_ih[order], layer.bias_hh[order]]))]
    doc = {
        "in_shape": [None, None, model.input_size],
        "in_skip": 1 if model.skip else 0,
        "in_gain": 0.0,
        "out_gain": out_gain_db,
        "layers": [
            {"type": model.CELL, "activation": "", "shape": [None, None, model.hidden_size],
             "weights": recurrent_weights},
            {"type": "dense", "activation": "", "shape": [None, None, 1],
             "weights": [_nested(head_weight.T), _nested(head_bias)]},
        ],
        "metadata": {"name": model.name, "samplerate": str(int(round(model.sample_rate))),
                     "source": f"ampnet {__version__}",
                     **{k: model.metadata[k] for k in ("author", "esr") if model.metadata.get(k) is not None}},
    }
    if model.knobs:  # AIDA-X has no names or defaults for its knob inputs; ampnet reads these back
        doc["metadata"]["knobs"] = [dataclasses.asdict(k) for k in model.knobs]
    if probe is not None and not model.knobs:
        from ampnet.engine import Engine

        zero_state = dataclasses.replace(model, initial_h=None, initial_c=None)
        doc["input_batch"] = [float(v) for v in probe]
        doc["output_batch"] = [float(v) for v in Engine(zero_state).process(probe.copy())]
    return doc, notes


def _nested(array):
    return np.asarray(array, dtype=np.float32).astype(np.float64).tolist()
