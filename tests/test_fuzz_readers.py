"""Fuzzing every model reader and the preset parser (hypothesis).

Each model case starts from a valid document of one format and breaks it: a node
anywhere in it replaced by another JSON value (numbers at the edges of every range,
NaN, infinities, huge integers, text, lists, objects), a key removed, or a list cut.
Every result must be a clean :class:`~ampnet.errors.AmpnetError` or a model that
passes :func:`~ampnet.formats.model.check_model` and plays in the engine: never
another exception, never a hang (each example has a deadline). Presets get random
chains of random entries. A few thousand cases in all, well under a minute.
"""

import atexit
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampnet.engine import Engine
from ampnet.errors import AmpnetError
from ampnet.formats import export, load_model, save_model
from ampnet.formats.ampnet_json import model_to_dict
from ampnet.formats.model import check_model
from ampnet.host.preset import TYPES, load_spec
from tests.signals import guitar_like, random_model, simplernn_document

FIXTURES = Path(__file__).parent / "fixtures"
WORKDIR = Path(tempfile.mkdtemp(prefix="ampnet-fuzz-"))
atexit.register(shutil.rmtree, WORKDIR, True)
FUZZ = settings(max_examples=400, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def simplernn_doc():
    return simplernn_document(random_model(6, 1, seed=6))


def state_dict_doc():
    model = random_model(4, 2, seed=8, skip=False)
    doc = {}
    for i, layer in enumerate(model.layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            doc[f"lstm.{name}_l{i}"] = getattr(layer, name).tolist()
    doc["dense.weight"], doc["dense.bias"] = model.head_weight.tolist(), model.head_bias.tolist()
    return doc


VALID = {
    "nam": lambda: json.loads((FIXTURES / "nam" / "lstm.nam").read_text()),
    "ampnet": lambda: json.loads(json.dumps(model_to_dict(random_model(4, 2, knobs=1, seed=3)))),
    "aidax": lambda: export.to_aidax(random_model(8, 1, knobs=1, seed=5), guitar_like(0.01))[0],
    "state_dict": state_dict_doc,
    "simplernn": simplernn_doc,
}
BASES = {name: make() for name, make in VALID.items()}

EDGE_NUMBERS = [0, -1, 1, 2, 7, 8, 9, 1000, 8000, 48000, 768001, 10 ** 9, 10 ** 18, -10 ** 18,
                0.5, 1e-300, 1e38, 3.5e38, 1e308, -1e308, math.nan, math.inf, -math.inf, True, False]
scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(EDGE_NUMBERS),
                    st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=True),
                    st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8)


def node_paths(node, prefix=()):
    """Every place in a document worth breaking: all objects' values, and the first, a
    middle and the last element of each list (weight lists hold thousands)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from node_paths(value, prefix + (key,))
    elif isinstance(node, list) and node:
        for index in sorted({0, len(node) // 2, len(node) - 1}):
            yield from node_paths(node[index], prefix + (index,))


PATHS = {name: list(node_paths(doc)) for name, doc in BASES.items()}


def mutated(base, path, action, value):
    """A deep copy of ``base`` with the node at ``path`` replaced, removed or cut."""
    doc = json.loads(json.dumps(base))
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "remove" and isinstance(parent, dict):
        del parent[key]
    elif action == "cut" and isinstance(parent[key], list):
        parent[key] = parent[key][:len(parent[key]) // 2]
    else:
        parent[key] = value
    return doc


def assert_clean(load):
    """``load()`` gives a playable model or a clean AmpnetError that names what is wrong
    (not the readers' last-resort line for a structure none of them checked); nothing else."""
    try:
        model = load()
    except AmpnetError as err:
        assert str(err) and "\n" not in str(err)
        assert "damaged or not a model file ampnet reads" not in str(err), str(err)
        return
    check_model(model, "fuzzed")
    Engine(model).process(np.full(64, 0.1, np.float32))


@pytest.mark.parametrize("fmt", sorted(VALID))
def test_every_valid_base_document_loads(fmt):
    path = WORKDIR / f"base-{fmt}.json"
    path.write_text(json.dumps(BASES[fmt]))
    load_model(path)


@pytest.mark.parametrize("fmt", sorted(VALID))
@FUZZ
@given(data=st.data())
def test_a_broken_model_file_is_refused_cleanly(fmt, data):
    path = data.draw(st.sampled_from(PATHS[fmt]))
    action = data.draw(st.sampled_from(["replace", "replace", "remove", "cut"]))
    doc = mutated(BASES[fmt], path, action, data.draw(json_values))
    file = WORKDIR / f"{fmt}.json"
    file.write_text(json.dumps(doc))
    assert_clean(lambda: load_model(file))


@FUZZ
@given(text=st.text(max_size=200), cut=st.integers(0, 4000))
def test_model_files_that_are_not_json_are_refused_cleanly(text, cut):
    file = WORKDIR / "text.json"
    file.write_text(json.dumps(BASES["nam"])[:cut] + text)
    assert_clean(lambda: load_model(file))


# --- presets -------------------------------------------------------------------------

MODEL_FILE = WORKDIR / "preset-model.json"
save_model(random_model(4, 1, knobs=1, seed=1), MODEL_FILE, overwrite=True)
IR_FILE = WORKDIR / "preset-ir.wav"
PRESET_KEYS = ["type", "path", "bypass", "normalize", "gain_db", "threshold_db", "attack_ms",
               "hold_ms", "release_ms", "bass_db", "mid_hz", "mid_q", "cutoff_hz", "wet",
               "level_db", "partition", "knob0", "name", "unknown"]


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string


preset_values = st.one_of(
    st.sampled_from(TYPES), st.sampled_from([MODEL_FILE.name, IR_FILE.name, "missing.json", ""]),
    st.booleans(), st.sampled_from(EDGE_NUMBERS), st.floats(-1e6, 1e6), st.integers(-10 ** 6, 10 ** 6),
    st.text(max_size=10), st.lists(st.integers(0, 3), max_size=3))
entries = st.lists(st.dictionaries(st.sampled_from(PRESET_KEYS), preset_values, max_size=5),
                   max_size=5)


@FUZZ
@given(chain=entries, name=st.one_of(st.none(), st.text(max_size=8), st.integers()),
       noise=st.text(max_size=20))
def test_a_random_preset_is_loaded_or_refused_cleanly(chain, name, noise):
    if not IR_FILE.exists():
        import soundfile as sf
        sf.write(str(IR_FILE), np.exp(-np.arange(256) / 30.0).astype(np.float32), 48000)
    lines = [] if name is None else [f"name = {toml_value(name)}"]
    for entry in chain:
        lines.append("[[chain]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in entry.items()]
    text = "\n".join(lines) + "\n" + noise
    file = WORKDIR / "fuzzed.toml"
    file.write_text(text)
    try:
        spec = load_spec(file)
    except AmpnetError as err:
        assert str(err) and "\n" not in str(err).strip()
        return
    spec.build(48000, max_block=64).process(np.full(64, 0.1, np.float32))
