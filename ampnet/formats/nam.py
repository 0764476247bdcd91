"""Neural Amp Modeler ``.nam`` files with architecture LSTM.

Layout (NeuralAmpModelerCore ``lstm.cpp``): ``weights`` is one flat list; per
layer ``W = [W_ih | W_hh]`` (4H x (in+H), row-major, gates i, f, g, o), one
combined bias (4H), then the stored initial ``h0`` (H) and ``c0`` (H); after the
last layer the head weight (1 x H) and bias (1). No skip path; a missing
``sample_rate`` means 48 kHz (as the NAM plugin assumes).
"""

import numpy as np

from ampnet import limits
from ampnet.errors import ModelFileError
from ampnet.formats.model import (RecurrentLayer, LSTMModel, check_model, check_size, float32_array,
                                  unnamed_knobs)

DEFAULT_RATE = 48000.0


def looks_like_nam(doc):
    return isinstance(doc, dict) and "architecture" in doc and isinstance(doc.get("weights"), list)


def model_from_nam(doc, path) -> LSTMModel:
    arch = doc.get("architecture")
    if arch != "LSTM":
        raise ModelFileError(path, "architecture", f"this is a NAM {arch} model; ampnet runs "
                             "LSTM models only (play WaveNet captures in the NAM plugin)")
    config = doc.get("config")
    if not isinstance(config, dict):
        raise ModelFileError(path, "config", "missing; an LSTM .nam file needs input_size, "
                             "hidden_size and num_layers")
    bounds = {"input_size": 1 + limits.MAX_KNOBS, "hidden_size": limits.MAX_HIDDEN,
              "num_layers": limits.MAX_LAYERS}
    for key, high in bounds.items():
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ModelFileError(path, f"config.{key}", f"{value!r}: expected a whole number "
                                 f"from 1 to {high}")
    input_size, hidden, layers = (config[k] for k in bounds)
    check_size(hidden, layers, input_size, path, "config")
    expected = sum(4 * hidden * ((input_size if i == 0 else hidden) + hidden) + 6 * hidden
                   for i in range(layers)) + hidden + 1
    if len(doc["weights"]) != expected:  # counted before anything is converted
        raise ModelFileError(path, "weights", f"{len(doc['weights'])} values; an LSTM of "
                             f"{layers} x {hidden} needs {expected} (the file is damaged)")
    weights = float32_array(doc["weights"], path, "weights")
    if weights.ndim != 1:
        raise ModelFileError(path, "weights", "must be a flat list of numbers")
    pos = 0

    def take(count, shape):
        nonlocal pos
        block = weights[pos:pos + count].reshape(shape)
        pos += count
        return block

    lstm_layers, h0, c0 = [], [], []
    for i in range(layers):
        n_in = input_size if i == 0 else hidden
        w = take(4 * hidden * (n_in + hidden), (4 * hidden, n_in + hidden))
        bias = take(4 * hidden, (4 * hidden,))
        h0.append(take(hidden, (hidden,)))
        c0.append(take(hidden, (hidden,)))
        lstm_layers.append(RecurrentLayer(np.ascontiguousarray(w[:, :n_in]), np.ascontiguousarray(w[:, n_in:]),
                                     bias.copy(), np.zeros(4 * hidden, np.float32)))
    head_weight = take(hidden, (1, hidden)).copy()
    head_bias = take(1, (1,)).copy()
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    metadata = {"name": meta.get("name") or path.stem, "source_format": f"NAM {doc.get('version', '?')}"}
    for key in ("modeled_by", "gear_type", "gear_make", "gear_model", "tone_type", "loudness",
                "gain", "input_level_dbu", "output_level_dbu"):
        if meta.get(key) is not None:
            metadata[key] = meta[key]
    knobs = unnamed_knobs(input_size, path, "config.input_size")
    rate = doc.get("sample_rate")  # as written: check_model refuses anything but a plausible rate
    return check_model(LSTMModel(
        hidden_size=hidden, layers=lstm_layers, head_weight=head_weight, head_bias=head_bias,
        sample_rate=DEFAULT_RATE if rate is None else rate, skip=False, knobs=knobs,
        initial_h=np.stack(h0), initial_c=np.stack(c0), metadata=metadata), path)
