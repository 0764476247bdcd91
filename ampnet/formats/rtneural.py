"""RTNeural JSON: the Keras-style layer list (also AIDA-X's ``.json``/``.aidax``) and
RTNeural's PyTorch state-dict JSON.

Keras style: ``layers = [lstm|gru, dense]``; LSTM weights ``[kernel (in x 4H),
recurrent (H x 4H), bias (4H)]`` (the transpose of PyTorch's, gates i, f, g, o);
GRU weights ``[kernel (in x 3H), recurrent (H x 3H), bias (2 x 3H)]`` in Keras's
gate order z, r, h with the input and recurrent biases as two rows (Keras's
``reset_after=True``, the GRU PyTorch and AIDA-X run); dense ``[kernel (H x 1),
bias (1)]``. AIDA-X adds ``in_skip`` (0/1), ``in_gain`` and
``out_gain`` (dB) and ``metadata.samplerate``: ``y = g_out (net(g_in x) + skip g_in x)``.
ampnet's skip adds the unscaled input, so the input gain is folded into the head
and the output gain (exact up to float rounding).

State-dict style: ``<prefix>weight_ih_l<k>`` etc. for one or more ``nn.LSTM`` or
``nn.GRU`` modules in a row (one stack of layers) and a ``<prefix>weight``/``bias``
linear head.
"""

import math
import re

import numpy as np

from ampnet import limits
from ampnet.errors import ModelFileError
from ampnet.formats.model import (GRUModel, Knob, LSTMModel, RecurrentLayer, RecurrentModel, check_model,
                                  float32_array, unnamed_knobs)

DEFAULT_RATE = 48000.0


def keras_gru_order(hidden):
    """Row indices that turn PyTorch's GRU gate blocks (r, z, n) into Keras's (z, r, h),
    and back: the permutation swaps the first two blocks, so it is its own inverse."""
    return np.concatenate([np.arange(hidden, 2 * hidden), np.arange(hidden),
                           np.arange(2 * hidden, 3 * hidden)])


def looks_like_keras(doc):
    return isinstance(doc, dict) and isinstance(doc.get("layers"), list)


def looks_like_state_dict(doc):
    return isinstance(doc, dict) and any(re.search(r"weight_ih_l\d+$", k) for k in doc)


def _array(value, path, field, ndim):
    array = float32_array(value, path, field)
    if array.ndim != ndim:
        raise ModelFileError(path, field, f"expected a {ndim}-D array, got shape {list(array.shape)}")
    return array


def _decibels(value, path, field):
    """A gain in dB (a number, or the number as a string) as a linear factor, within +-120 dB."""
    try:
        db = float(value or 0.0)
    except (TypeError, ValueError):
        raise ModelFileError(path, field, f"{value!r}: expected a gain in dB") from None
    if not math.isfinite(db) or abs(db) > 20 * math.log10(limits.MAX_GAIN):
        raise ModelFileError(path, field, f"{value!r} dB is not a usable gain (at most +-120 dB)")
    return 10 ** (db / 20)


def _sample_rate(value, path, field):
    """A declared sample rate (a number, or the number as a string AIDA-X writes), or the default."""
    if value in (None, ""):
        return DEFAULT_RATE
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if not limits.finite_in(rate, limits.MIN_SAMPLE_RATE, limits.MAX_SAMPLE_RATE):
        raise ModelFileError(path, field, f"{value!r} is not a sample rate ampnet plays "
                             f"({limits.MIN_SAMPLE_RATE:g} to {limits.MAX_SAMPLE_RATE:g} Hz)")
    return rate


def model_from_keras(doc, path) -> RecurrentModel:
    layers = doc["layers"]
    kinds = [layer.get("type") for layer in layers[:3] if isinstance(layer, dict)]
    if len(layers) != 2 or kinds not in (["lstm", "dense"], ["gru", "dense"]):
        raise ModelFileError(path, "layers", f"layer sequence {kinds}; ampnet runs an LSTM or a GRU "
                             "followed by one dense output layer (convolution and extra dense "
                             "layers are not supported)")
    lstm, dense = layers
    cell = LSTMModel if kinds[0] == "lstm" else GRUModel
    gates = cell.GATES
    if dense.get("activation"):
        raise ModelFileError(path, "layers[1].activation", f"{dense['activation']!r} on the output "
                             "layer is not supported (ampnet's output layer is linear)")
    try:
        kernel, recurrent, bias = lstm["weights"]
        head_kernel, head_bias = dense["weights"]
    except (KeyError, ValueError, TypeError):
        raise ModelFileError(path, "layers[].weights", "expected [kernel, recurrent, bias] for the "
                             "LSTM and [kernel, bias] for the dense layer") from None
    kernel = _array(kernel, path, "layers[0].weights[0]", 2)
    recurrent = _array(recurrent, path, "layers[0].weights[1]", 2)
    bias = _array(bias, path, "layers[0].weights[2]", 1 if cell is LSTMModel else 2)
    head_kernel = _array(head_kernel, path, "layers[1].weights[0]", 2)
    head_bias = _array(head_bias, path, "layers[1].weights[1]", 1)
    n_in, g4 = kernel.shape
    hidden = g4 // gates
    default_knobs = unnamed_knobs(n_in, path, "layers[0].weights[0]")
    bias_shape = (g4,) if cell is LSTMModel else (2, g4)
    if (g4 % gates or recurrent.shape != (hidden, g4) or bias.shape != bias_shape
            or head_kernel.shape != (hidden, 1) or head_bias.shape != (1,)):
        raise ModelFileError(path, "layers[].weights", "weight shapes do not fit together "
                             f"(kernel {list(kernel.shape)}, recurrent {list(recurrent.shape)}, "
                             f"bias {list(bias.shape)}, dense {list(head_kernel.shape)})")
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else doc
    skip = doc.get("in_skip", meta.get("in_skip", 0)) or 0
    if skip not in (0, 1) or isinstance(skip, float) and not skip.is_integer():
        raise ModelFileError(path, "in_skip", f"{skip!r}: only 0 or 1 is allowed")
    in_gain = _decibels(doc.get("in_gain"), path, "in_gain")
    out_gain = _decibels(doc.get("out_gain"), path, "out_gain")
    rate = _sample_rate(meta.get("samplerate"), path, "metadata.samplerate")
    metadata = {"name": meta.get("name") or path.stem, "source_format": "RTNeural/AIDA-X JSON"}
    for key in ("author", "source", "style", "based", "dataset", "license", "esr", "description"):
        if meta.get(key) not in (None, ""):
            metadata[key] = meta[key]
    if cell is LSTMModel:
        layer = RecurrentLayer(np.ascontiguousarray(kernel.T), np.ascontiguousarray(recurrent.T),
                               bias, np.zeros(g4, np.float32))
    else:  # Keras z, r, h -> PyTorch r, z, n
        order = keras_gru_order(hidden)
        layer = RecurrentLayer(np.ascontiguousarray(kernel.T[order]),
                               np.ascontiguousarray(recurrent.T[order]),
                               np.ascontiguousarray(bias[0][order]),
                               np.ascontiguousarray(bias[1][order]))
    # y = g_out (W h + b + s g_in x) = (g_out g_in) ((W h + b) / g_in + s x)
    return check_model(cell(
        hidden_size=hidden,
        layers=[layer],
        head_weight=(head_kernel.T / np.float32(in_gain)).astype(np.float32),
        head_bias=(head_bias / np.float32(in_gain)).astype(np.float32),
        sample_rate=rate, skip=bool(skip), input_scale=in_gain, output_gain=out_gain * in_gain,
        # AIDA-X feeds its knobs as 0..1 over their range.
        knobs=_keras_knobs(meta, default_knobs), knob_inputs="normalized", metadata=metadata),
        path)


def _keras_knobs(meta, default_knobs):
    """Knobs named as ampnet's AIDA-X export records them (``metadata.knobs``), else
    ``default_knobs``."""
    stored = meta.get("knobs")
    if not isinstance(stored, list) or len(stored) != len(default_knobs):
        return default_knobs
    try:
        knobs = [Knob(str(k["name"]), float(k["default"]), float(k["minimum"]), float(k["maximum"]))
                 for k in stored]
        if len(knobs) == len(default_knobs):
            return knobs
    except (TypeError, KeyError, ValueError, AttributeError):
        pass
    return default_knobs


def model_from_state_dict(doc, path) -> RecurrentModel:
    layers = []
    for key in doc:
        match = re.fullmatch(r"(.*)weight_ih_l(\d+)", key)
        if match and len(layers) == limits.MAX_LAYERS:
            raise ModelFileError(path, key, f"more than {limits.MAX_LAYERS} recurrent layers")
        if match:
            prefix, k = match.groups()
            get = lambda name: _array(doc.get(f"{prefix}{name}_l{k}"), path, f"{prefix}{name}_l{k}",
                                      2 if name.startswith("weight") else 1)  # noqa: E731
            layers.append(RecurrentLayer(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")))
    heads = [k[:-len("weight")] for k in doc if k.endswith("weight") and not re.search(r"_l\d+$", k)]
    if len(heads) != 1:
        raise ModelFileError(path, None, "expected one linear output layer (<name>.weight, <name>.bias)")
    head_weight = _array(doc.get(heads[0] + "weight"), path, heads[0] + "weight", 2)
    head_bias = _array(doc.get(heads[0] + "bias"), path, heads[0] + "bias", 1)
    hidden = layers[0].weight_hh.shape[1]
    if hidden == 0:
        raise ModelFileError(path, "weight_hh_l0", "a network of hidden size 0")
    cell = GRUModel if layers[0].weight_hh.shape[0] == 3 * hidden else LSTMModel
    gates = cell.GATES
    for i, layer in enumerate(layers):
        n_in = layer.weight_ih.shape[1]
        if (layer.weight_hh.shape != (gates * hidden, hidden)
                or layer.weight_ih.shape[0] != gates * hidden
                or layer.bias_ih.shape != (gates * hidden,) or layer.bias_hh.shape != (gates * hidden,)
                or (i > 0 and n_in != hidden)):
            raise ModelFileError(path, f"layer {i}", f"{cell.CELL.upper()} layers must share one "
                                 "hidden size (and be all LSTM or all GRU)")
    if head_weight.shape != (1, hidden):
        raise ModelFileError(path, heads[0] + "weight", f"shape {list(head_weight.shape)}; expected [1, {hidden}]")
    knobs = unnamed_knobs(layers[0].weight_ih.shape[1], path, "weight_ih_l0")
    return check_model(cell(
        hidden_size=hidden, layers=layers, head_weight=head_weight, head_bias=head_bias,
        sample_rate=DEFAULT_RATE, skip=False, knobs=knobs,
        metadata={"name": path.stem, "source_format": "RTNeural PyTorch JSON"}), path)
