"""NAM WaveNet models: the engine against the Neural Amp Modeler package's own outputs
(committed references from its example files) and an independent torch float64
evaluation, block invariance, state, allocation, the readers' refusals, ampnet's format
and the .nam export, and playing through the host chain and presets.

The tests that run the NAM package itself (preset sizes from random weights, 10 s of
audio, the export loaded back by the package) are at the end; they run where
neural-amp-modeler 0.12.3 is installed (CI gives it a virtual environment of its own).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from ampnet.cli import main
from ampnet.engine import Engine
from ampnet.formats import load_model, save_model
from ampnet.formats.wavenet import ACTIVATIONS
from ampnet.host.chain import Chain
from ampnet.host.preset import load_spec
from ampnet.host.processors import NeuralModel
from tests.allocation import repeated_calls, traced_growth_and_peak
from tests.signals import guitar_like, random_wavenet, wavenet_config

FIXTURES = Path(__file__).parent / "fixtures" / "nam"
SHARED_NAM = Path(__file__).parents[2] / "shared" / "data" / "models" / "nam"
STANDARD = FIXTURES / "wavenet_a1_standard.nam"
AUDIO = guitar_like(1.0, seed=21)


def run_whole(model, audio):
    return Engine(model).process(np.array(audio, dtype=np.float32))


ROUNDING_SPREAD = 2.0  # two float32 evaluations summing in different orders differ by this


def _assert_parity(ours, theirs, exact=None):
    """Within 1e-5 of the NAM package's float32 output; or, where float32 rounding in
    the reference makes that impossible, as close to a float64 evaluation (``exact``)
    as a float32 evaluation gets: within ``ROUNDING_SPREAD`` times the package's own
    float32 error, in the worst sample and in RMS. (The package's error itself varies
    by machine: its RMS was 3.4e-7 on one CPU and 3.8e-7 on another for the same file,
    ours 3.9e-7; a wrong weight or state costs orders of magnitude more.)"""
    error = np.max(np.abs(ours - theirs))
    if error <= 1e-5:
        return
    assert exact is not None, f"{error:.3g} from the NAM package's output"
    ours_off, theirs_off = ours - exact, theirs - exact
    worst, their_worst = np.max(np.abs(ours_off)), np.max(np.abs(theirs_off))
    assert worst <= ROUNDING_SPREAD * their_worst, (worst, their_worst)
    rms, their_rms = np.sqrt(np.mean(ours_off ** 2)), np.sqrt(np.mean(theirs_off ** 2))
    assert rms <= ROUNDING_SPREAD * their_rms, (rms, their_rms)


@pytest.mark.parametrize("name", ["wavenet", "wavenet_a1_standard"])
def test_matches_the_nam_package_on_its_example_files(name):
    """NeuralAmpModelerCore's example files (MIT), with references written by the NAM
    package 0.12.3 (``fixtures/nam/make_references.py``)."""
    x = np.load(FIXTURES / "wavenet_guitar.x.npy")
    ours = run_whole(load_model(FIXTURES / f"{name}.nam"), x)
    exact = FIXTURES / f"{name}.y64.npy"
    _assert_parity(ours, np.load(FIXTURES / f"{name}.y.npy"),
                   np.load(exact) if exact.exists() else None)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("gated", [False, True])
def test_matches_a_torch_float64_evaluation(activation, gated):
    torch_reference = pytest.importorskip("tests.torch_reference")
    for kernel_size in (1, 2, 3, 5):
        model = random_wavenet(wavenet_config(activation=activation, gated=gated,
                                              kernel_size=kernel_size),
                               seed=kernel_size, input_scale=1.7, output_gain=0.8)
        expected = torch_reference.torch_wavenet_forward(model, AUDIO)
        assert np.max(np.abs(run_whole(model, AUDIO) - expected)) < 1e-7 + 1e-6 * np.max(np.abs(expected))


def test_three_arrays_with_wide_channels_match_torch():
    torch_reference = pytest.importorskip("tests.torch_reference")
    model = random_wavenet(wavenet_config(channels=(24, 64, 3), dilations=((1, 3, 9), (27, 1), (2,)),
                                          head_bias=(True, False, True), gated=True), seed=4)
    expected = torch_reference.torch_wavenet_forward(model, AUDIO)
    assert np.max(np.abs(run_whole(model, AUDIO) - expected)) < 1e-6


@pytest.mark.parametrize("sizes", [[1], [7], [32], [64], [4096], "random"], ids=str)
def test_any_block_size_equals_one_whole_pass(sizes):
    model = load_model(STANDARD)
    audio = guitar_like(0.5, seed=3)
    if sizes == "random":
        sizes = list(np.random.default_rng(4).integers(1, 3000, 200))
    engine, out, start, i = Engine(model), np.empty_like(audio), 0, 0
    while start < audio.size:
        size = sizes[i % len(sizes)]
        engine.process(audio[start:start + size], out[start:start + size])
        start, i = start + size, i + 1
    np.testing.assert_array_equal(out, run_whole(model, audio))


def test_history_is_carried_across_many_blocks():
    """Past the point where every layer's history has been moved back to the start of
    its rows several times (30 s in blocks of 61), streaming still equals one pass."""
    model = random_wavenet(wavenet_config(dilations=((1, 512, 64), (256,))), seed=6)
    audio = guitar_like(30.0, seed=8)
    engine, out = Engine(model), np.empty_like(audio)
    for start in range(0, audio.size, 61):
        engine.process(audio[start:start + 61], out[start:start + 61])
    np.testing.assert_array_equal(out, run_whole(model, audio))


def test_starts_as_after_endless_silence():
    """NAM pads the input with zeros over the receptive field: silence in gives the
    network's steady output from the first sample on, and reset() returns there."""
    torch_reference = pytest.importorskip("tests.torch_reference")
    model = random_wavenet(seed=9)
    silence = np.zeros(100, dtype=np.float32)
    engine = Engine(model)
    first = engine.process(silence.copy())
    np.testing.assert_allclose(first, torch_reference.torch_wavenet_forward(model, silence),
                               atol=1e-8)
    assert np.ptp(first) < 1e-8
    engine.process(AUDIO.copy())
    engine.reset()
    np.testing.assert_array_equal(engine.process(silence.copy()), first)


def test_channels_have_their_own_state():
    model = load_model(FIXTURES / "wavenet.nam")
    left, right = AUDIO[:24000], guitar_like(0.5, seed=11)
    engine = Engine(model, channels=2)
    out = engine.process(np.ascontiguousarray(np.stack([left, right])))
    np.testing.assert_array_equal(out[0], run_whole(model, left))
    np.testing.assert_array_equal(out[1], run_whole(model, right))


def test_process_allocates_nothing():
    engine = Engine(load_model(STANDARD))
    block, out = AUDIO[:4096].copy(), np.empty(4096, dtype=np.float32)
    small, small_out = AUDIO[:7].copy(), np.empty(7, dtype=np.float32)
    grown, peak = traced_growth_and_peak(
        repeated_calls((engine.process, block, out), (engine.process, small, small_out)), 20, 200)
    assert sum(d.size_diff for d in grown) < 1024, grown[0].traceback.format()
    assert peak < 2048


def _nam_document(**changes):
    doc = json.loads(STANDARD.read_text())
    for key, value in changes.items():
        target, field = doc, key.split(".")
        for part in field[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[field[-1]] = value
    return doc


@pytest.mark.parametrize("changes,message", [
    ({"config.layers.0.gating_mode": "gated"}, "config.layers[0].gating_mode: a newer NAM WaveNet"),
    ({"config.layers.1.head1x1": {"active": True}}, "config.layers[1].head1x1: a newer NAM WaveNet"),
    ({"config.condition_dsp": {}}, "config.condition_dsp: a newer NAM WaveNet"),
    ({"config.head": {"channels": 8}}, "config.head: a post-head"),
    ({"config.layers.0.activation": "Fasttanh"}, "'Fasttanh': ampnet computes Tanh"),
    ({"config.layers.0.activation": {"type": "PReLU"}}, "ampnet computes Tanh"),
    ({"config.layers.0.condition_size": 2}, "conditioned on the audio only"),
    ({"config.layers.0.head_size": 4}, "head_size: 4; it feeds the next array's channels (8)"),
    ({"config.layers.1.input_size": 8}, "must be the previous array's channels (16)"),
    ({"config.layers.0.channels": 65}, "channels: 65: expected a whole number from 1 to 64"),
    ({"config.layers.0.dilations": [40000, 40000]}, "a receptive field of 162047 samples; ampnet plays up to 65536"),
    ({"config.layers.0.gated": "no"}, "gated: 'no': expected true or false"),
    ({"config.head_scale": 0.5}, "differs from config.head_scale"),
    ({"weights": [0.1] * 13801}, "13801 values; this WaveNet needs 13802"),
    ({"weights": ["x"] * 13802}, "weights: not (nested lists of) numbers"),
])
def test_configurations_ampnet_does_not_run_are_refused_in_one_line(tmp_path, capsys, changes,
                                                                    message):
    path = tmp_path / "capture.nam"
    path.write_text(json.dumps(_nam_document(**changes)))
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_info_shows_the_architecture_and_the_nam_metadata(capsys):
    assert main(["info", str(FIXTURES / "wavenet.nam")]) == 0
    out = capsys.readouterr().out
    assert "WaveNet, 3 layers in 2 arrays (channels 3, 2), receptive field 23 samples" in out
    for line in ("loudness:      -20.02", "input level dbu: 18.3", "output level dbu: 12.3",
                 "gear model:    Microtubes 900 v2", "head scale 0.02"):
        assert line in out


def test_ampnet_format_and_nam_export_round_trip_bit_for_bit(tmp_path):
    model = load_model(STANDARD)
    save_model(model, tmp_path / "w.json")
    doc = json.loads((tmp_path / "w.json").read_text())
    assert doc["architecture"]["type"] == "wavenet"
    assert doc["weights"]["arrays.0.layers.9.conv_weight"]["shape"] == [16, 16, 3]
    again = load_model(tmp_path / "w.json")
    expected = run_whole(model, AUDIO)
    np.testing.assert_array_equal(run_whole(again, AUDIO), expected)
    assert main(["convert", str(tmp_path / "w.json"), "-o", str(tmp_path / "w.nam")]) == 0
    exported = json.loads((tmp_path / "w.nam").read_text())
    original = json.loads(STANDARD.read_text())
    assert exported["architecture"] == "WaveNet" and exported["config"] == original["config"]
    assert exported["weights"][:-1] == original["weights"][:-1]  # bit for bit
    # The head scale ends the weights too (float32 there: 0.019999999552965164 for 0.02).
    assert exported["weights"][-1] == pytest.approx(original["weights"][-1], rel=1e-7)
    np.testing.assert_array_equal(run_whole(load_model(tmp_path / "w.nam"), AUDIO), expected)


def test_nam_export_folds_the_gains_and_aidax_is_refused(tmp_path, capsys):
    model = random_wavenet(seed=12, input_scale=2.5, output_gain=0.6)
    save_model(model, tmp_path / "g.json")
    assert main(["convert", str(tmp_path / "g.json"), "-o", str(tmp_path / "g.nam")]) == 0
    back = load_model(tmp_path / "g.nam")
    assert back.input_scale == 1.0 and back.output_gain == 1.0
    np.testing.assert_allclose(run_whole(back, AUDIO), run_whole(model, AUDIO), atol=1e-7)
    assert main(["convert", str(tmp_path / "g.json"), "--to", "aidax", "-o",
                 str(tmp_path / "g.aidax")]) == 2
    assert "AIDA-X plays LSTM and GRU models; this is a WaveNet" in capsys.readouterr().err


def test_the_host_chain_and_a_normalized_preset_play_a_wavenet(tmp_path):
    model = load_model(STANDARD)
    chain = Chain([NeuralModel(model)], 48000.0)
    np.testing.assert_allclose(chain.process(AUDIO.copy()), run_whole(model, AUDIO), atol=1e-7)
    preset = tmp_path / "rig.toml"
    preset.write_text(f'[[chain]]\ntype = "gate"\n\n[[chain]]\ntype = "model"\n'
                      f'path = "{STANDARD}"\nnormalize = true\n\n[[chain]]\ntype = "eq"\n'
                      f'treble_db = 3.0\n')
    loud = load_spec(preset).build(48000.0)
    out = loud.process(guitar_like(2.0, seed=2, level=0.5))
    assert np.all(np.isfinite(out)) and 0.01 < np.sqrt(np.mean(out ** 2)) < 1.0


def test_render_plays_a_nam_wavenet(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    dry = tmp_path / "dry.wav"
    soundfile.write(dry, AUDIO, 48000, subtype="FLOAT")
    wet = tmp_path / "wet.wav"
    assert main(["render", str(STANDARD), str(dry), "-o", str(wet)]) == 0
    rendered, rate = soundfile.read(wet, dtype="float32")
    assert rate == 48000
    np.testing.assert_allclose(rendered, run_whole(load_model(STANDARD), AUDIO), atol=1e-6)


# --- The NAM package itself (neural-amp-modeler 0.12.3 in its own venv) ---------------


def _nam_reference():
    nam = pytest.importorskip("nam")
    if not nam.__version__.startswith("0.12."):
        pytest.skip(f"neural-amp-modeler {nam.__version__}: these checks need 0.12.3, the last "
                    "release that reads the v0.5 WaveNet config")
    return pytest.importorskip("tests.nam_reference")


def _shared_wavenets():
    return sorted(p for p in SHARED_NAM.glob("**/*.nam") if "WaveNet" in p.read_text()[:4000]) \
        if SHARED_NAM.exists() else []


@pytest.mark.parametrize("preset", ["standard", "lite", "feather", "nano"])
def test_nam_package_preset_sizes_from_random_weights(tmp_path, preset):
    reference = _nam_reference()
    doc = reference.preset_document(preset, seed=len(preset), directory=tmp_path)
    path = tmp_path / f"{preset}.nam"
    x = guitar_like(10.0, seed=17, level=0.5)
    ours = run_whole(load_model(path), x)
    _assert_parity(ours, reference.nam_output(doc, x), reference.nam_output(doc, x, double=True))


@pytest.mark.parametrize("path", _shared_wavenets(), ids=lambda p: p.stem)
def test_nam_package_on_the_shared_wavenet_files(path):
    reference = _nam_reference()
    doc = json.loads(path.read_text())
    x = guitar_like(10.0, seed=19, level=0.5)
    ours = run_whole(load_model(path), x)
    _assert_parity(ours, reference.nam_output(doc, x), reference.nam_output(doc, x, double=True))


def test_nam_package_plays_ampnet_exports_identically(tmp_path):
    reference = _nam_reference()
    model = random_wavenet(wavenet_config(gated=True, activation="ReLU"), seed=23,
                           input_scale=1.3, output_gain=0.9)
    save_model(model, tmp_path / "m.json")
    assert main(["convert", str(tmp_path / "m.json"), "-o", str(tmp_path / "m.nam")]) == 0
    doc = json.loads((tmp_path / "m.nam").read_text())
    x = guitar_like(2.0, seed=29, level=0.5)
    assert np.max(np.abs(reference.nam_output(doc, x) - run_whole(model, x))) <= 1e-6



def test_set_up_warms_the_cache_for_every_architecture():
    from ampnet.engine import ARCHITECTURES
    from ampnet.formats.model import check_model
    from ampnet.formats.wavenet import check_wavenet
    from ampnet.host.warm import tiny_model, warm_cache

    assert set(ARCHITECTURES) == {"lstm", "gru", "wavenet"}
    for cell in ARCHITECTURES:
        model = tiny_model(cell)
        (check_wavenet if cell == "wavenet" else check_model)(model, "tiny")
        assert model.CELL == cell
    assert warm_cache() > 0
