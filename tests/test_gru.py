"""GRU models: the engine against torch.nn.GRU and RTNeural's reference, the readers
(RTNeural/AIDA-X Keras-style, RTNeural state dict, GuitarML SimpleRNN, ampnet's own),
block invariance, allocation, and playing through the host chain."""

import json
from pathlib import Path

import numpy as np
import pytest

from ampnet.cli import main
from ampnet.engine import Engine
from ampnet.formats import load_model, save_model
from ampnet.host.chain import Chain
from ampnet.host.processors import NeuralModel
from tests.allocation import repeated_calls, traced_growth_and_peak
from tests.signals import guitar_like, random_model, simplernn_document

torch = pytest.importorskip("torch")
torch_reference = pytest.importorskip("tests.torch_reference")

FIXTURES = Path(__file__).parent / "fixtures"
AUDIO = guitar_like(2.0, seed=21)


def run_whole(model, audio):
    return Engine(model).process(audio.copy())


@pytest.mark.parametrize("hidden,layers", [(8, 1), (32, 1), (64, 1), (16, 3)])
def test_matches_torch_gru(hidden, layers):
    model = random_model(hidden, layers, seed=hidden + layers, cell="gru")
    got, expected = run_whole(model, AUDIO), torch_reference.torch_forward(model, AUDIO)
    assert np.max(np.abs(got - expected)) < 1e-6


def test_matches_torch_gru_with_gains_knobs_initial_state_and_hot_input():
    model = random_model(24, 2, knobs=2, seed=5, cell="gru", input_scale=3.0, output_gain=0.7,
                         weight_scale=2.0)
    model.initial_h = np.random.default_rng(6).uniform(-0.5, 0.5, (2, 24)).astype(np.float32)
    got, expected = run_whole(model, AUDIO), torch_reference.torch_forward(model, AUDIO)
    assert np.max(np.abs(got - expected)) < 1e-6


def test_rtneural_gru_reference():
    model = load_model(FIXTURES / "rtneural" / "gru_torch.json")
    x = np.loadtxt(FIXTURES / "rtneural" / "gru_torch_x_python.csv").astype(np.float32)
    y = np.loadtxt(FIXTURES / "rtneural" / "gru_torch_y_python.csv")
    assert model.CELL == "gru" and model.num_layers == 4
    assert np.max(np.abs(run_whole(model, x) - y)) < 1e-6


@pytest.mark.parametrize("sizes", [[1], [7], [64], [4096], "random"], ids=str)
def test_any_block_size_equals_one_whole_pass(sizes):
    model = random_model(32, 2, seed=3, cell="gru")
    if sizes == "random":
        sizes = list(np.random.default_rng(4).integers(1, 3000, 200))
    engine, out, start, i = Engine(model), np.empty_like(AUDIO), 0, 0
    while start < AUDIO.size:
        size = sizes[i % len(sizes)]
        engine.process(AUDIO[start:start + size], out[start:start + size])
        start, i = start + size, i + 1
    np.testing.assert_array_equal(out, run_whole(model, AUDIO))


def test_reset_and_channels_have_their_own_state():
    model = random_model(16, 2, seed=7, cell="gru")
    left, right = AUDIO[:24000], guitar_like(0.5, seed=11)
    engine = Engine(model, channels=2)
    out = engine.process(np.ascontiguousarray(np.stack([left, right])))
    np.testing.assert_array_equal(out[0], run_whole(model, left))
    np.testing.assert_array_equal(out[1], run_whole(model, right))
    engine.reset()
    np.testing.assert_array_equal(engine.process(np.ascontiguousarray(np.stack([left, right]))), out)


def test_process_allocates_nothing():
    model = random_model(32, 2, seed=8, cell="gru")
    engine = Engine(model)
    block, out = AUDIO[:4096].copy(), np.empty(4096, dtype=np.float32)
    grown, peak = traced_growth_and_peak(repeated_calls((engine.process, block, out)), 100, 500)
    assert sum(d.size_diff for d in grown) < 1024, grown[0].traceback.format()
    assert peak < 2048


def _torch_gru(hidden, inputs=1, seed=0):
    torch.manual_seed(seed)
    return torch.nn.GRU(inputs, hidden, 1, batch_first=True), torch.nn.Linear(hidden, 1)


def _torch_run(gru, head, x, skip):
    with torch.no_grad():
        out = head(gru(torch.from_numpy(x)[None, :, None])[0])[0, :, 0].numpy()
    return out + x if skip else out


def test_aidax_keras_gru_reads_with_keras_gate_order(tmp_path):
    """An AIDA-X GRU file as AidaDSP's exporter writes it: kernels transposed, gates
    reordered to Keras's z, r, h, the two biases as two rows."""
    gru, head = _torch_gru(12, seed=1)
    hidden = 12

    def keras(t):  # PyTorch rows r, z, n -> Keras columns z, r, h
        a = t.detach().numpy()
        return np.concatenate([a[hidden:2 * hidden], a[:hidden], a[2 * hidden:]]).T.tolist()
    doc = {"in_shape": [None, None, 1], "in_skip": 1, "layers": [
        {"type": "gru", "activation": "", "shape": [None, None, hidden],
         "weights": [keras(gru.weight_ih_l0), keras(gru.weight_hh_l0),
                     [np.asarray(keras(gru.bias_ih_l0[:, None]))[0].tolist(),
                      np.asarray(keras(gru.bias_hh_l0[:, None]))[0].tolist()]]},
        {"type": "dense", "activation": "", "shape": [None, None, 1],
         "weights": [head.weight.detach().numpy().T.tolist(), head.bias.detach().numpy().tolist()]}],
        "metadata": {"samplerate": "48000", "name": "gru test"}}
    path = tmp_path / "gru.aidax"
    path.write_text(json.dumps(doc))
    model = load_model(path)
    assert model.CELL == "gru" and model.skip
    assert np.max(np.abs(run_whole(model, AUDIO) - _torch_run(gru, head, AUDIO, True))) < 1e-6


def test_simplernn_gru_reads(tmp_path):
    model = random_model(20, 1, seed=9, cell="gru")
    path = tmp_path / "proteus_gru.json"
    path.write_text(json.dumps(simplernn_document(model)))
    loaded = load_model(path)
    assert loaded.CELL == "gru" and loaded.sample_rate == 44100.0
    np.testing.assert_array_equal(run_whole(loaded, AUDIO), run_whole(model, AUDIO))


def test_ampnet_format_and_aidax_export_round_trip(tmp_path, capsys):
    model = random_model(16, 1, knobs=1, seed=10, cell="gru", input_scale=2.0)
    save_model(model, tmp_path / "g.json")
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["architecture"]["type"] == "gru" and "gru.weight_ih_l0" in doc["weights"]
    again = load_model(tmp_path / "g.json")
    np.testing.assert_array_equal(run_whole(again, AUDIO), run_whole(model, AUDIO))
    assert main(["convert", str(tmp_path / "g.json"), "--to", "aidax", "-o",
                 str(tmp_path / "g.aidax")]) == 0
    exported = json.loads((tmp_path / "g.aidax").read_text())
    assert exported["layers"][0]["type"] == "gru"
    assert np.shape(exported["layers"][0]["weights"][2]) == (2, 48)
    back = load_model(tmp_path / "g.aidax")
    assert np.max(np.abs(run_whole(back, AUDIO) - run_whole(model, AUDIO))) < 1e-6
    assert main(["convert", str(tmp_path / "g.json"), "--to", "nam", "-o",
                 str(tmp_path / "g.nam")]) != 0
    assert "this is a GRU model; NAM plays LSTM and WaveNet models only" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "g.json")]) == 0
    assert "architecture:  GRU, 1 layer(s) x 16 hidden" in capsys.readouterr().out


def test_the_host_chain_plays_a_gru_like_the_engine_with_a_moving_knob():
    model = random_model(16, 1, knobs=1, seed=12, cell="gru")
    chain = Chain([NeuralModel(model, knob0=0.25)], 48000.0)
    np.testing.assert_allclose(chain.process(AUDIO[:24000].copy()),
                               run_whole(model, AUDIO[:24000]), atol=1e-6)
    chain.set(0, "knob0", 0.9)  # glides, never jumps
    moved = chain.process(AUDIO[24000:].copy())
    assert np.all(np.isfinite(moved)) and np.max(np.abs(np.diff(moved))) < 1.0
