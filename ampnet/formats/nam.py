"""Neural Amp Modeler ``.nam`` files: architectures LSTM and WaveNet (the v0.5 config).

LSTM layout (NeuralAmpModelerCore ``lstm.cpp``): ``weights`` is one flat list; per
layer ``W = [W_ih | W_hh]`` (4H x (in+H), row-major, gates i, f, g, o), one
combined bias (4H), then the stored initial ``h0`` (H) and ``c0`` (H); after the
last layer the head weight (1 x H) and bias (1). No skip path.

WaveNet layout (``nam.models.wavenet`` ``export_weights``, read the same way by
NeuralAmpModelerCore's ``wavenet.cpp``): per layer array the rechannel 1x1 (no
bias), then per layer the dilated convolution's weight (PyTorch ``(mid, C, K)``,
row-major) and bias, the input mixer (``(mid, 1)``, no bias) and the 1x1's weight
and bias, then the head rechannel's weight and (if ``head_bias``) bias; after the
last array the head scale. ``ampnet.formats.wavenet.CONFIG_KEYS`` are the config keys of
the v0.5 layout that ampnet plays; newer layouts (A2, slimmable, condition DSP) use others.

A missing ``sample_rate`` means 48 kHz (as the NAM plugin assumes).
"""

import numpy as np

from ampnet import limits
from ampnet.errors import ModelFileError
from ampnet.formats.model import (RecurrentLayer, LSTMModel, check_model, check_size, float32_array,
                                  unnamed_knobs)
from ampnet.formats.wavenet import (WaveNetModel, check_config, check_wavenet,
                                    config_parameter_count, empty_model, wavenet_tensors)

DEFAULT_RATE = 48000.0
METADATA_KEYS = ("modeled_by", "gear_type", "gear_make", "gear_model", "tone_type", "loudness",
                 "gain", "input_level_dbu", "output_level_dbu")
WAVENET_CONFIG_KEYS = ("layers", "head", "head_scale")
NEWER = ("a newer NAM WaveNet layout than ampnet plays (it plays the v0.5 config of the "
         "standard, lite, feather and nano captures); play this file in the NAM plugin")


def looks_like_nam(doc):
    return isinstance(doc, dict) and "architecture" in doc and isinstance(doc.get("weights"), list)


def model_from_nam(doc, path):
    """An :class:`LSTMModel` or :class:`WaveNetModel` from a parsed ``.nam`` document."""
    arch = doc.get("architecture")
    if arch == "WaveNet":
        return _wavenet_from_nam(doc, path)
    if arch != "LSTM":
        raise ModelFileError(path, "architecture", f"this is a NAM {arch!r} model; ampnet plays "
                             "NAM LSTM and WaveNet models")
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
    weights = _flat_weights(doc, expected, f"an LSTM of {layers} x {hidden}", path)
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
    metadata = _metadata(doc, path)
    knobs = unnamed_knobs(input_size, path, "config.input_size")
    rate = doc.get("sample_rate")  # as written: check_model refuses anything but a plausible rate
    return check_model(LSTMModel(
        hidden_size=hidden, layers=lstm_layers, head_weight=head_weight, head_bias=head_bias,
        sample_rate=DEFAULT_RATE if rate is None else rate, skip=False, knobs=knobs,
        initial_h=np.stack(h0), initial_c=np.stack(c0), metadata=metadata), path)


def _flat_weights(doc, expected, what, path):
    """``doc["weights"]`` as a flat float32 array, after checking that there are
    ``expected`` of them (counted before anything is converted)."""
    if len(doc["weights"]) != expected:
        raise ModelFileError(path, "weights", f"{len(doc['weights'])} values; {what} needs "
                             f"{expected} (the file is damaged)")
    weights = float32_array(doc["weights"], path, "weights")
    if weights.ndim != 1:
        raise ModelFileError(path, "weights", "must be a flat list of numbers")
    return weights


def _metadata(doc, path):
    """The metadata ampnet keeps from a ``.nam`` file (loudness and levels included)."""
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    metadata = {"name": meta.get("name") or path.stem, "source_format": f"NAM {doc.get('version', '?')}"}
    for key in METADATA_KEYS:
        if meta.get(key) is not None:
            metadata[key] = meta[key]
    return metadata


def _wavenet_config(config, path):
    """The checked v0.5 WaveNet config: a list of layer-array dicts and the head scale."""
    if not isinstance(config, dict):
        raise ModelFileError(path, "config", "missing; a WaveNet .nam file needs its layer arrays")
    for key in config:
        if key not in WAVENET_CONFIG_KEYS:
            raise ModelFileError(path, f"config.{key}", NEWER)
    if config.get("head") is not None:
        raise ModelFileError(path, "config.head", "a post-head after the layer arrays; " + NEWER)
    head_scale = config.get("head_scale")
    if not limits.finite_in(head_scale, -limits.MAX_GAIN, limits.MAX_GAIN):
        raise ModelFileError(path, "config.head_scale", f"{head_scale!r}: expected a number")
    return check_config(config.get("layers"), path, "config.layers", NEWER), float(head_scale)


def _wavenet_from_nam(doc, path) -> WaveNetModel:
    configs, head_scale = _wavenet_config(doc.get("config"), path)
    expected = config_parameter_count(configs)
    weights = _flat_weights(doc, expected, "this WaveNet", path)
    if abs(float(weights[-1]) - head_scale) > 1e-6 * max(1.0, abs(head_scale)):
        raise ModelFileError(path, "weights", f"the head scale at the end of the weights "
                             f"({float(weights[-1]):g}) differs from config.head_scale "
                             f"({head_scale:g}); the file is damaged")
    model = empty_model(configs, head_scale, DEFAULT_RATE)
    pos = 0
    for _, _, target in wavenet_tensors(model):
        target[...] = weights[pos:pos + target.size].reshape(target.shape)
        pos += target.size
    rate = doc.get("sample_rate")
    model.sample_rate = DEFAULT_RATE if rate is None else rate
    model.metadata = _metadata(doc, path)
    return check_wavenet(model, path)
