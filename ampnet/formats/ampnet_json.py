"""ampnet's own model file: JSON, format ``"ampnet"``, version 1.

The specification is ``docs/model-format.md``. :func:`model_from_dict` validates every
field and raises :class:`~ampnet.errors.ModelFileError` naming the file and the
field; :func:`save_model` writes atomically.
"""

import json
import math
from pathlib import Path

import numpy as np

from ampnet import limits
from ampnet.errors import AmpnetError, ModelFileError
from ampnet.formats.model import (CELLS, Knob, RecurrentLayer, check_model,
                                  check_size, float32_array)
from ampnet.formats.wavenet import (WaveNetModel, check_config, check_wavenet, empty_model,
                                    layer_array_config, wavenet_tensors)
from ampnet.io.files import write_text_atomic

FORMAT_NAME = "ampnet"
FORMAT_VERSION = 1


def read_json(path):
    """Parse a JSON model file, with one-line errors for missing, empty, oversized or
    broken files (the size is checked before the file is read)."""
    if not path.exists():
        raise AmpnetError(f"{path}: no such model file")
    if path.is_dir():
        raise AmpnetError(f"{path}: is a folder, not a model file")
    if not path.is_file():
        raise AmpnetError(f"{path}: is not a regular file")
    limits.check_file_size(path, limits.MAX_MODEL_FILE_BYTES, "a model file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFileError(path, None, f"cannot be read as a text model file ({err})") from None
    if not text.strip():
        raise ModelFileError(path, None, "the file is empty; re-export or re-download the model")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelFileError(path, None, f"not valid JSON (line {err.lineno}, column {err.colno}: "
                                         f"{err.msg}); the file may be truncated or not a model") from None
    except (RecursionError, ValueError) as err:  # absurd nesting, a number of 5000 digits
        raise ModelFileError(path, None, f"not a JSON file ampnet can read ({type(err).__name__}: "
                                         f"{str(err)[:80]})") from None


def model_from_dict(doc, path):
    """Validate a parsed ampnet v1 document; ``path`` is only used in messages."""
    if not isinstance(doc, dict):
        raise ModelFileError(path, None, "expected a JSON object at the top level")
    fmt = doc.get("format")
    if fmt != FORMAT_NAME:
        raise ModelFileError(path, "format", f"unknown model format {fmt!r}; expected \"{FORMAT_NAME}\"")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise ModelFileError(path, "version", f"unsupported version {version!r}; this ampnet reads "
                             f"version {FORMAT_VERSION} (upgrade ampnet for newer files)")
    arch = _get(doc, "architecture", dict, path)
    kind = _get(arch, "type", str, path, "architecture.type")
    if kind == WaveNetModel.CELL:
        return _wavenet_from_dict(doc, arch, path)
    if kind not in CELLS:
        raise ModelFileError(path, "architecture.type", f"unsupported architecture {kind!r}; "
                             f"ampnet runs {', '.join(map(repr, CELLS))} and 'wavenet' models")
    cell = CELLS[kind]
    input_size = _get_int(arch, "input_size", path, "architecture.input_size", 1,
                          1 + limits.MAX_KNOBS)
    hidden = _get_int(arch, "hidden_size", path, "architecture.hidden_size", 1, limits.MAX_HIDDEN)
    num_layers = _get_int(arch, "num_layers", path, "architecture.num_layers", 1,
                          limits.MAX_LAYERS)
    check_size(hidden, num_layers, input_size, path, "architecture", kind)

    skip = _get(doc, "skip", bool, path)
    input_scale = _get_number(doc, "input_scale", path)
    output_gain = _get_number(doc, "output_gain", path)
    sample_rate = _get_number(doc, "sample_rate", path)

    knobs = []
    knob_items = doc.get("knobs", [])
    if not isinstance(knob_items, list) or len(knob_items) > limits.MAX_KNOBS:
        raise ModelFileError(path, "knobs", f"expected a list of at most {limits.MAX_KNOBS} knobs")
    for i, item in enumerate(knob_items):
        where = f"knobs[{i}]"
        if not isinstance(item, dict):
            raise ModelFileError(path, where, "expected an object with name, default, min, max")
        knobs.append(Knob(name=_get(item, "name", str, path, where + ".name"),
                          default=_get_number(item, "default", path, where + ".default"),
                          minimum=_get_number(item, "min", path, where + ".min"),
                          maximum=_get_number(item, "max", path, where + ".max")))
    if len(knobs) != input_size - 1:
        raise ModelFileError(path, "knobs", f"{len(knobs)} knob(s) listed but architecture.input_size "
                             f"is {input_size} (1 audio input + one per knob)")

    knob_inputs = doc.get("knob_inputs", "value")  # checked by check_model

    weights = _get(doc, "weights", dict, path)
    g4 = cell.GATES * hidden
    prefix = f"{kind}."
    layers = []
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else hidden
        layers.append(RecurrentLayer(
            weight_ih=_tensor(weights, f"{prefix}weight_ih_l{layer}", (g4, n_in), path),
            weight_hh=_tensor(weights, f"{prefix}weight_hh_l{layer}", (g4, hidden), path),
            bias_ih=_tensor(weights, f"{prefix}bias_ih_l{layer}", (g4,), path),
            bias_hh=_tensor(weights, f"{prefix}bias_hh_l{layer}", (g4,), path)))
    head_weight = _tensor(weights, "head.weight", (1, hidden), path)
    head_bias = _tensor(weights, "head.bias", (1,), path)

    initial_h = initial_c = None
    state = doc.get("initial_state")
    if state is not None:
        wanted = "h and c" if kind == "lstm" else "h (a GRU has no c)"
        if not isinstance(state, dict) or (kind == "gru" and "c" in state):
            raise ModelFileError(path, "initial_state", f"expected null or an object with {wanted}")
        initial_h = _tensor(state, "h", (num_layers, hidden), path, "initial_state")
        if kind == "lstm":
            initial_c = _tensor(state, "c", (num_layers, hidden), path, "initial_state")

    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(path, "metadata", "expected an object")
    return check_model(cell(hidden_size=hidden, layers=layers, head_weight=head_weight,
                                 head_bias=head_bias, sample_rate=float(sample_rate), skip=skip,
                                 input_scale=float(input_scale), output_gain=float(output_gain),
                                 knobs=knobs, knob_inputs=knob_inputs, initial_h=initial_h, initial_c=initial_c,
                                 metadata=metadata), path)


def _wavenet_from_dict(doc, arch, path) -> WaveNetModel:
    for key in arch:
        if key not in ("type", "layer_arrays", "head_scale"):
            raise ModelFileError(path, f"architecture.{key}", "not a key of a wavenet "
                                 "architecture (type, layer_arrays, head_scale)")
    configs = check_config(arch.get("layer_arrays"), path, "architecture.layer_arrays",
                           "not a key of a wavenet layer array (see docs/model-format.md)")
    head_scale = _get_number(arch, "head_scale", path, "architecture.head_scale")
    if _get(doc, "skip", bool, path) or doc.get("knobs", []) != []:
        raise ModelFileError(path, "skip" if doc["skip"] else "knobs", "a wavenet has no skip "
                             "path and no knobs (false and [])")
    model = empty_model(configs, head_scale, _get_number(doc, "sample_rate", path))
    model.input_scale = _get_number(doc, "input_scale", path)
    model.output_gain = _get_number(doc, "output_gain", path)
    weights = _get(doc, "weights", dict, path)
    for key, _, target in wavenet_tensors(model):
        target[...] = _tensor(weights, key, target.shape, path)
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(path, "metadata", "expected an object")
    model.metadata = metadata
    return check_wavenet(model, path)


def _wavenet_to_dict(model: WaveNetModel) -> dict:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "architecture": {"type": model.CELL,
                         "layer_arrays": [layer_array_config(a) for a in model.arrays],
                         "head_scale": float(model.head_scale)},
        "skip": False,
        "input_scale": float(model.input_scale),
        "output_gain": float(model.output_gain),
        "sample_rate": float(model.sample_rate),
        "knobs": [],
        "metadata": model.metadata,
        "weights": {key: _tensor_doc(t) for key, _, t in wavenet_tensors(model)},
    }


def model_to_dict(model) -> dict:
    """The ampnet v1 document for ``model`` (weights written exactly as float32)."""
    if model.CELL == WaveNetModel.CELL:
        return _wavenet_to_dict(model)
    weights = {}
    cell = model.CELL
    for i, layer in enumerate(model.layers):
        weights[f"{cell}.weight_ih_l{i}"] = _tensor_doc(layer.weight_ih)
        weights[f"{cell}.weight_hh_l{i}"] = _tensor_doc(layer.weight_hh)
        weights[f"{cell}.bias_ih_l{i}"] = _tensor_doc(layer.bias_ih)
        weights[f"{cell}.bias_hh_l{i}"] = _tensor_doc(layer.bias_hh)
    weights["head.weight"] = _tensor_doc(model.head_weight)
    weights["head.bias"] = _tensor_doc(model.head_bias)
    state = None
    if model.initial_h is not None:
        state = {"h": _tensor_doc(model.initial_h)}
        if model.initial_c is not None:
            state["c"] = _tensor_doc(model.initial_c)
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "architecture": {"type": cell, "input_size": model.input_size,
                         "hidden_size": model.hidden_size, "num_layers": model.num_layers},
        "skip": bool(model.skip),
        "input_scale": float(model.input_scale),
        "output_gain": float(model.output_gain),
        "sample_rate": float(model.sample_rate),
        "knobs": [{"name": k.name, "default": k.default, "min": k.minimum, "max": k.maximum}
                  for k in model.knobs],
        "knob_inputs": model.knob_inputs,
        "initial_state": state,
        "metadata": model.metadata,
        "weights": weights,
    }


def save_model(model, path, overwrite=False):
    """Write ``model`` to ``path`` atomically; refuse to replace a file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise AmpnetError(f"{path}: already exists; pass --overwrite to replace it")
    # Never write a file that ampnet itself would refuse.
    (check_wavenet if model.CELL == WaveNetModel.CELL else check_model)(model, path)
    write_text_atomic(path, json.dumps(model_to_dict(model), indent=1) + "\n")


def _tensor_doc(array):
    array = np.asarray(array, dtype=np.float32)
    return {"shape": list(array.shape), "data": [float(v) for v in array.ravel()]}


def _tensor(container, key, shape, path, prefix="weights"):
    field = f"{prefix}.{key}"
    item = container.get(key)
    if item is None:
        raise ModelFileError(path, field, "missing")
    if not isinstance(item, dict) or "shape" not in item or "data" not in item:
        raise ModelFileError(path, field, "expected an object with \"shape\" and \"data\"")
    if not isinstance(item["shape"], list) or item["shape"] != list(shape):
        raise ModelFileError(path, field, f"shape {item['shape']} does not match the architecture "
                             f"(expected {list(shape)})")
    data = item["data"]
    if not isinstance(data, list) or len(data) != math.prod(shape):
        count = len(data) if isinstance(data, list) else "no"
        raise ModelFileError(path, field, f"{count} values for shape {list(shape)} "
                             f"(expected {math.prod(shape)})")
    array = float32_array(data, path, field)
    if array.ndim != 1:
        raise ModelFileError(path, field, "data must be a flat list of numbers")
    return array.reshape(shape)


def _get(container, key, kind, path, field=None):
    field = field or key
    if key not in container:
        raise ModelFileError(path, field, "missing")
    value = container[key]
    if kind is not bool and isinstance(value, bool) or not isinstance(value, kind):
        raise ModelFileError(path, field, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _get_number(container, key, path, field=None):
    field = field or key
    if key not in container:
        raise ModelFileError(path, field, "missing")
    value = container[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelFileError(path, field, f"expected a finite number, got {value!r}")
    return float(value)


def _get_int(container, key, path, field, low, high):
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFileError(path, field, f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ModelFileError(path, field, f"{value} is outside the supported range {low}..{high}")
    return value
