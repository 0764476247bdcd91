"""Importing other players' models: parity with their reference outputs through the
streaming engine at block 64, and clear errors for what ampnet cannot run."""

import json
from pathlib import Path

import numpy as np
import pytest

from ampnet.cli import main
from ampnet.engine import Engine
from ampnet.errors import AmpnetError
from ampnet.formats import load_model

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "models"


def stream(model, x, block=64):
    """Run ``x`` (frames,) or (frames, 1 + knobs) through the engine in blocks."""
    engine = Engine(model)
    if x.ndim == 2:
        engine.knobs[:] = x[0, 1:]
        x = x[:, 0]
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    for i in range(0, x.size, block):
        engine.process(x[i:i + block], y[i:i + block])
    return y


def test_nam_lstm_matches_the_official_package():
    model = load_model(FIXTURES / "nam" / "lstm.nam")
    assert not model.skip and model.sample_rate == 48000 and model.initial_h is not None
    assert model.metadata["loudness"] == pytest.approx(-37.84, abs=0.01)
    x, y = np.load(FIXTURES / "nam" / "lstm.x.npy"), np.load(FIXTURES / "nam" / "lstm.y.npy")
    assert np.max(np.abs(stream(model, x) - y)) < 1e-5


@pytest.mark.parametrize("name", ["lstm_1d", "lstm_torch", "gru_torch"])
def test_rtneural_models_match_their_test_data(name):
    model = load_model(FIXTURES / "rtneural" / f"{name}.json")
    x = np.loadtxt(FIXTURES / "rtneural" / f"{name}_x_python.csv")
    y = np.loadtxt(FIXTURES / "rtneural" / f"{name}_y_python.csv")
    assert np.max(np.abs(stream(model, x) - y)) < 1e-5
    if name != "lstm_1d":
        assert model.num_layers == 4  # (1, 8) then (8, 8, 3 layers): one stack
    assert model.CELL == name.split("_")[0]


# High-gain captures amplify float32 rounding past 1e-5. Measured against the same model
# run in float64 (the exact answer): the upstream reference outputs themselves are off by
# 1.0e-5 (6505+), 0.5e-5 (DS1) and 1.7e-5 (Mesa), and ampnet by 1.2e-5, 1.0e-5 and 1.4e-5;
# ampnet vs the references: 1.4e-5, 1.05e-5, 2.4e-5. A plain NumPy float32 loop in
# PyTorch's own order (ih + b_ih + hh + b_hh, NumPy's exp and tanh, no fused multiply-add)
# lands 1.35e-5, 0.7e-5 and 2.4e-5 from them: only PyTorch's exact rounding reproduces
# them (local torch 2.13 does, bit for bit). So these three are held to 3e-5.
HIGH_GAIN = {"6505Plus_Red_DirectOut": 3e-5, "DS1_fromVideo": 3e-5, "MesaBoogieMk2b_highGain": 3e-5}


def _shared_references():
    folder = SHARED / "reference-outputs"
    if not folder.exists():
        return []
    cases = []
    for x_path in sorted(folder.glob("*.x.npy")):
        stem = x_path.name[:-len(".x.npy")]
        model = next(SHARED.glob(f"**/{stem}.json"))
        cases.append(pytest.param(model, x_path, HIGH_GAIN.get(stem, 1e-5), id=stem))
    return cases


@pytest.mark.parametrize("model_path,x_path,tolerance", _shared_references())
def test_shared_models_match_reference_outputs(model_path, x_path, tolerance):
    x = np.load(x_path)
    y = np.load(str(x_path).replace(".x.npy", ".y.npy"))
    assert np.max(np.abs(stream(load_model(model_path), x) - y)) < tolerance


def test_unsupported_architectures_are_named(tmp_path):
    with pytest.raises(AmpnetError, match="layer sequence"):
        load_model(FIXTURES / "rtneural" / "lstm.json")
    convnet = tmp_path / "convnet.nam"
    convnet.write_text(json.dumps({"version": "0.5.4", "architecture": "ConvNet", "config": {},
                                   "weights": [0.0]}))
    with pytest.raises(AmpnetError, match="NAM 'ConvNet' model; ampnet plays NAM LSTM and WaveNet"):
        load_model(convnet)


def test_malformed_files_get_clear_errors(tmp_path, capsys):
    nam = json.loads((FIXTURES / "nam" / "lstm.nam").read_text())
    truncated = tmp_path / "truncated.nam"
    truncated.write_text((FIXTURES / "nam" / "lstm.nam").read_text()[:300])
    short = tmp_path / "short.nam"
    short.write_text(json.dumps({**nam, "weights": nam["weights"][:-3]}))
    nan = tmp_path / "nan.nam"
    nan.write_text(json.dumps({**nam, "weights": [float("nan")] + nam["weights"][1:]}))
    for path, message in ((truncated, "not valid JSON"), (short, "67 values"), (nan, "NaN")):
        assert main(["info", str(path)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and message in err and "Traceback" not in err


def test_convert_writes_an_ampnet_model_that_plays_the_same(tmp_path):
    out = tmp_path / "converted.json"
    assert main(["convert", str(FIXTURES / "nam" / "lstm.nam"), "-o", str(out)]) == 0
    x = np.load(FIXTURES / "nam" / "lstm.x.npy")
    original = stream(load_model(FIXTURES / "nam" / "lstm.nam"), x)
    np.testing.assert_array_equal(stream(load_model(out), x), original)
