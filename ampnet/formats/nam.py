"""Neural Amp Modeler ``.nam`` files with architecture LSTM.

Layout (NeuralAmpModelerCore ``lstm.cpp``): ``weights`` is one flat list; per
layer ``W = [W_ih | W_hh]`` (4H x (in+H), row-major, gates i, f, g, o), one
combined bias (4H), then the stored initial ``h0`` (H) and ``c0`` (H); after the
last layer the head weight (1 x H) and bias (1). No skip path; a missing
``sample_rate`` means 48 kHz (as the NAM plugin assumes).
"""

import numpy as np

from ampnet.errors import ModelFileError
from ampnet.formats.model import Knob, LSTMLayer, LSTMModel

DEFAULT_RATE = 48000.0


def looks_like_nam(doc):
    return isinstance(doc, dict) and "architecture" in doc and isinstance(doc.get("weights"), list)


def model_from_nam(doc, path) -> LSTMModel:
    arch = doc.get("architecture")
    if arch != "LSTM":
        raise ModelFileError(path, "architecture", f"this is a NAM {arch} model; ampnet runs "
                             "LSTM models only (play WaveNet captures in the NAM plugin)")
    config = doc.get("config") or {}
    try:
        input_size, hidden, layers = (int(config[k]) for k in ("input_size", "hidden_size", "num_layers"))
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(path, "config", "needs input_size, hidden_size and num_layers") from None
    weights = np.asarray(doc["weights"], dtype=np.float64)
    expected = sum(4 * hidden * ((input_size if i == 0 else hidden) + hidden) + 6 * hidden
                   for i in range(layers)) + hidden + 1
    if weights.size != expected:
        raise ModelFileError(path, "weights", f"{weights.size} values; an LSTM of "
                             f"{layers} x {hidden} needs {expected} (the file is damaged)")
    if not np.all(np.isfinite(weights)):
        raise ModelFileError(path, "weights", "contains NaN or infinite values")
    weights = weights.astype(np.float32)
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
        lstm_layers.append(LSTMLayer(np.ascontiguousarray(w[:, :n_in]), np.ascontiguousarray(w[:, n_in:]),
                                     bias.copy(), np.zeros(4 * hidden, np.float32)))
    head_weight = take(hidden, (1, hidden)).copy()
    head_bias = take(1, (1,)).copy()
    meta = dict(doc.get("metadata") or {})
    metadata = {"name": meta.get("name") or path.stem, "source_format": f"NAM {doc.get('version', '?')}"}
    for key in ("modeled_by", "gear_type", "gear_make", "gear_model", "tone_type", "loudness",
                "gain", "input_level_dbu", "output_level_dbu"):
        if meta.get(key) is not None:
            metadata[key] = meta[key]
    knobs = [Knob(f"param{i}") for i in range(1, input_size)]
    rate = doc.get("sample_rate")
    return LSTMModel(hidden_size=hidden, layers=lstm_layers, head_weight=head_weight,
                     head_bias=head_bias, sample_rate=float(rate) if rate and rate > 0 else DEFAULT_RATE,
                     skip=False, knobs=knobs, initial_h=np.stack(h0), initial_c=np.stack(c0),
                     metadata=metadata)
