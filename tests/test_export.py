"""Exporting ampnet models to NAM and AIDA-X: round trips within 1e-6, the target
layouts read back by independent code, and clear refusals."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ampnet.cli import main
from ampnet.engine import Engine
from ampnet.formats import load_model, save_model
from tests.signals import guitar_like, random_model

AUDIO = guitar_like(1.0, seed=21)
AIDAX_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "models" / "aida-x"


def output(model, audio=AUDIO):
    return Engine(model).process(audio.copy())


def convert(tmp_path, model, name, *extra):
    source = tmp_path / "model.json"
    save_model(model, source, overwrite=True)
    target = tmp_path / name
    code = main(["convert", str(source), "-o", str(target), "--overwrite", *extra])
    return code, target


@pytest.mark.parametrize("layers", [1, 2])
def test_nam_round_trip_keeps_the_output(tmp_path, layers):
    model = random_model(16, layers, skip=False, seed=22, input_scale=1.7, output_gain=0.8)
    model.initial_h = np.random.default_rng(0).uniform(-0.2, 0.2, (layers, 16)).astype(np.float32)
    model.initial_c = np.random.default_rng(1).uniform(-0.2, 0.2, (layers, 16)).astype(np.float32)
    code, target = convert(tmp_path, model, "amp.nam")
    assert code == 0
    back = load_model(target)
    assert not back.skip and back.input_scale == 1.0 and back.output_gain == 1.0  # folded
    assert np.abs(output(back) - output(model)).max() <= 1e-6


def test_nam_file_follows_the_documented_layout(tmp_path):
    """Read the exported weights with code written from the format notes alone
    (one combined bias, h0/c0 per layer, head last) and run them with torch."""
    torch = pytest.importorskip("torch")
    model = random_model(8, 2, skip=False, seed=23, input_scale=0.6, output_gain=1.3)
    _, target = convert(tmp_path, model, "amp.nam")
    doc = json.loads(target.read_text())
    assert doc["architecture"] == "LSTM" and doc["version"] >= "0.5.0" and doc["sample_rate"] == 48000
    config, w = doc["config"], np.asarray(doc["weights"], dtype=np.float32)
    hidden, layers = config["hidden_size"], config["num_layers"]
    lstm = torch.nn.LSTM(1, hidden, layers, batch_first=True)
    pos, h0, c0 = 0, [], []
    with torch.no_grad():
        for i in range(layers):
            n_in = 1 if i == 0 else hidden
            matrix = w[pos:pos + 4 * hidden * (n_in + hidden)].reshape(4 * hidden, n_in + hidden)
            pos += matrix.size
            getattr(lstm, f"weight_ih_l{i}").copy_(torch.from_numpy(matrix[:, :n_in].copy()))
            getattr(lstm, f"weight_hh_l{i}").copy_(torch.from_numpy(matrix[:, n_in:].copy()))
            getattr(lstm, f"bias_ih_l{i}").copy_(torch.from_numpy(w[pos:pos + 4 * hidden]))
            getattr(lstm, f"bias_hh_l{i}").zero_()
            pos += 4 * hidden
            h0.append(w[pos:pos + hidden])
            c0.append(w[pos + hidden:pos + 2 * hidden])
            pos += 2 * hidden
        head_w, head_b = w[pos:pos + hidden], w[pos + hidden]
        assert pos + hidden + 1 == w.size
        state = (torch.from_numpy(np.stack(h0))[:, None], torch.from_numpy(np.stack(c0))[:, None])
        hidden_out, _ = lstm(torch.from_numpy(AUDIO)[None, :, None], state)
        y = (hidden_out[0, :, :].numpy() @ head_w + head_b).astype(np.float32)
    assert np.abs(y - output(model)).max() < 1e-5


@pytest.mark.parametrize("layers", [1, 2])
def test_official_nam_package_plays_the_export(tmp_path, layers):
    """The Neural Amp Modeler project's own loader (``pip install neural-amp-modeler``,
    the package that writes the files the NAM plugin reads) runs the exported file
    and gives ampnet's output. Skipped where that package is not installed (it
    brings PyTorch Lightning and transformers; CI runs it in a venv of its own)."""
    nam_models = pytest.importorskip("nam.models")
    torch = pytest.importorskip("torch")
    model = random_model(12, layers, skip=False, seed=27, input_scale=1.4, output_gain=0.9)
    model.initial_h = np.random.default_rng(2).uniform(-0.3, 0.3, (layers, 12)).astype(np.float32)
    model.initial_c = np.random.default_rng(3).uniform(-0.3, 0.3, (layers, 12)).astype(np.float32)
    code, target = convert(tmp_path, model, "amp.nam")
    assert code == 0
    nam_model = nam_models.init_from_nam(json.loads(target.read_text()))
    nam_model.eval()
    with torch.no_grad():
        theirs = nam_model(torch.from_numpy(AUDIO)).numpy()
    assert np.abs(theirs - output(model)).max() < 1e-5


@pytest.mark.parametrize("skip, knobs", [(True, 0), (False, 0), (True, 1)])
def test_aidax_round_trip_keeps_the_output(tmp_path, skip, knobs):
    model = random_model(16, 1, knobs=knobs, skip=skip, seed=24, input_scale=2.2, output_gain=0.7)
    code, target = convert(tmp_path, model, "amp.aidax")
    assert code == 0
    back = load_model(target)
    assert back.skip == skip and len(back.knobs) == knobs
    assert np.abs(output(back) - output(model)).max() <= 1e-6


def test_aidax_file_carries_its_own_reference_output(tmp_path):
    model = random_model(12, 1, seed=25, input_scale=1.5, output_gain=1.2)
    _, target = convert(tmp_path, model, "amp.json", "--to", "aidax")
    doc = json.loads(target.read_text())
    assert doc["in_shape"] == [None, None, 1] and doc["metadata"]["samplerate"] == "48000"
    assert [layer["type"] for layer in doc["layers"]] == ["lstm", "dense"]
    x = np.asarray(doc["input_batch"], dtype=np.float32)
    y = np.asarray(doc["output_batch"], dtype=np.float32)
    assert x.size == y.size == 2048
    assert np.abs(output(model, x) - y).max() < 1e-6
    # AIDA-X's processing, written out: y = g_out * (dense(lstm(g_in x)) + in_skip * g_in x).
    torch = pytest.importorskip("torch")
    kernel, recurrent, bias = (np.asarray(a, dtype=np.float32) for a in doc["layers"][0]["weights"])
    dense_w, dense_b = (np.asarray(a, dtype=np.float32) for a in doc["layers"][1]["weights"])
    g_in, g_out = 10 ** (doc["in_gain"] / 20), 10 ** (doc["out_gain"] / 20)
    lstm = torch.nn.LSTM(1, 12, 1, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent.T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
        lstm.bias_hh_l0.zero_()
        h, _ = lstm(torch.from_numpy(g_in * x)[None, :, None])
        reference = g_out * (h[0].numpy() @ dense_w[:, 0] + dense_b[0] + doc["in_skip"] * g_in * x)
    assert np.abs(reference - y).max() < 1e-5


@pytest.mark.parametrize("original", sorted(AIDAX_FILES.glob("*/*.json")), ids=lambda p: p.stem)
def test_aidax_export_writes_back_the_files_aidax_plays(tmp_path, original):
    """Files from AidaDSP's own model collection (the deer ink studios TW40 is the model
    AIDA-X bundles and loads at start), read by ampnet and written back: what AIDA-X
    reads (``in_shape``, ``in_skip``, gains, each layer's type, shape, activation and
    weights, see its ``loadModelFromStream`` and RTNeural's ``ModelT::parseJson``)
    comes out as it went in, weights bit for bit."""
    target = tmp_path / "back.json"
    assert main(["convert", str(original), "--to", "aidax", "-o", str(target)]) == 0
    theirs, ours = json.loads(original.read_text()), json.loads(target.read_text())
    assert ours["in_shape"] == theirs["in_shape"]
    assert ours["in_skip"] == theirs.get("in_skip", 0)
    assert ours["in_gain"] == theirs.get("in_gain", 0) and ours["out_gain"] == theirs.get("out_gain", 0)
    assert len(ours["layers"]) == len(theirs["layers"]) == 2
    for mine, upstream in zip(ours["layers"], theirs["layers"]):
        assert [mine[k] for k in ("type", "shape", "activation")] == \
            [upstream[k] for k in ("type", "shape", "activation")]
        assert len(mine["weights"]) == len(upstream["weights"])
        for a, b in zip(mine["weights"], upstream["weights"]):
            assert np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


def test_refusals_say_why_and_what_to_do(tmp_path, capsys):
    code, target = convert(tmp_path, random_model(16, 1, skip=True), "amp.nam")
    err = capsys.readouterr().err
    assert code == 2 and not target.exists()
    assert "NAM's LSTM has no skip path" in err and "ampnet train --no-skip" in err
    code, _ = convert(tmp_path, random_model(16, 2), "amp.aidax")
    assert code == 2 and "AIDA-X runs one recurrent layer" in capsys.readouterr().err
    code, _ = convert(tmp_path, random_model(10, 1), "amp.aidax")
    assert code == 2 and "hidden sizes 8, 12, 16" in capsys.readouterr().err
    code, _ = convert(tmp_path, random_model(8, 1, knobs=1, skip=False), "amp.nam")
    assert code == 2 and "--to aidax" in capsys.readouterr().err


def test_aidax_export_says_the_initial_state_is_dropped(tmp_path, capsys):
    model = dataclasses.replace(random_model(8, 1, seed=26),
                                initial_h=np.full((1, 8), 0.1, np.float32),
                                initial_c=np.full((1, 8), 0.1, np.float32))
    code, _ = convert(tmp_path, model, "amp.aidax")
    assert code == 0 and "initial state is dropped" in capsys.readouterr().out
