"""Knob captures: one model trained on a device recorded at several settings.

A synthetic knob device (a drive whose gain is the knob) is captured at three
settings and judged at two it was not trained on; the suite needs no ../shared.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
signal = pytest.importorskip("scipy.signal")

from ampnet.cli import main  # noqa: E402
from ampnet.engine import Engine  # noqa: E402
from ampnet.errors import AmpnetError  # noqa: E402
from ampnet.formats import load_model  # noqa: E402
from ampnet.train.captures import (Capture, CaptureSet, KnobDeclaration, knobs_of,  # noqa: E402
                                   parse_wet_argument, read_manifest)
from tests.signals import guitar_like, random_model  # noqa: E402

RATE = 48000
CAPTURED = (0.0, 0.5, 1.0)
UNSEEN = (0.25, 0.75)


def knob_device(x, drive):
    """A drive pedal: one-pole low-pass into tanh, gain 1 + 7 * drive (drive 0..1)."""
    return (0.5 * np.tanh((1 + 7 * drive) * signal.lfilter([0.3], [1, -0.7], x))).astype(np.float32)


def esr(target, output):
    return float(np.sum((target - output) ** 2) / np.sum(target ** 2))


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A reamp session on disk: one DI through the device at three drives, a validation
    DI at two drives between them, and the manifest that describes it."""
    tmp = tmp_path_factory.mktemp("knobs")
    dry, dry_val = guitar_like(8.0, seed=3), guitar_like(4.0, seed=4)
    sf.write(tmp / "di.wav", dry, RATE, subtype="FLOAT")
    sf.write(tmp / "di_val.wav", dry_val, RATE, subtype="FLOAT")
    lines = ['dry = "di.wav"', "", "[knobs]", "drive = { min = 0, max = 10, default = 5 }", ""]
    for drive in CAPTURED:
        sf.write(tmp / f"drive{drive}.wav", knob_device(dry, drive), RATE, subtype="FLOAT")
        lines += ["[[capture]]", f'wet = "drive{drive}.wav"', f"drive = {10 * drive:g}", ""]
    for drive in UNSEEN:
        sf.write(tmp / f"val{drive}.wav", knob_device(dry_val, drive), RATE, subtype="FLOAT")
        lines += ["[[validation]]", 'dry = "di_val.wav"', f'wet = "val{drive}.wav"',
                  f"drive = {10 * drive:g}", ""]
    (tmp / "session.toml").write_text("\n".join(lines))
    return tmp, dry_val


@pytest.fixture(scope="module")
def trained(session):
    tmp, _ = session
    out = tmp / "knob.json"
    code = main(["train", str(tmp / "session.toml"), "-o", str(out), "--hidden", "8",
                 "--epochs", "4", "--batch", "8", "--threads", "1"])
    return tmp, out, code


def test_a_knob_model_plays_unseen_settings_better_than_the_nearest_capture(session, trained):
    tmp, out, code = trained
    assert code == 0
    _, dry_val = session
    model = load_model(out)
    assert 0 <= -model.metadata["latency_samples"] <= 2
    assert model.input_size == 2 and model.knobs[0].name == "drive"
    assert (model.knobs[0].minimum, model.knobs[0].maximum, model.knobs[0].default) == (0, 10, 5)
    for drive in UNSEEN:
        target = knob_device(dry_val, drive)
        engine = Engine(model)
        engine.set_knobs({"drive": 10 * drive})  # the user's units: 0..10
        output = engine.process(dry_val.copy())
        lag = -model.metadata["latency_samples"]  # the model plays this many samples late
        ours = esr(target[:target.size - lag], output[lag:])
        nearest = min(esr(target, knob_device(dry_val, c)) for c in CAPTURED)
        assert ours < 0.25 * nearest, (drive, ours, nearest)


def test_the_report_has_a_row_per_setting_and_names_the_worst(trained):
    tmp, out, _ = trained
    report = json.loads((tmp / "knob.report.json").read_text())
    rows = report["null_test"]["validation"]
    assert [(r["setting"]["drive"], r["kind"], r["unseen"]) for r in rows] == [
        (0, "held-out tail", False), (5, "held-out tail", False), (10, "held-out tail", False),
        (2.5, "validation take", True), (7.5, "validation take", True)]
    worst = max(rows, key=lambda r: r["esr"])
    assert report["worst_setting"] == {"label": worst["label"], "esr": worst["esr"]}
    assert report["validation_esr"] == pytest.approx(np.mean([r["esr"] for r in rows]))
    assert [c["latency_samples"] for c in report["latency_by_capture"]] == [report["latency_samples"]] * 3
    assert (tmp / "knob.report.png").stat().st_size > 10000


@pytest.mark.parametrize("row", [1, 4])  # a held-out tail and an unseen validation take
def test_a_render_with_param_reproduces_the_reported_row(trained, row):
    tmp, out, _ = trained
    report = json.loads((tmp / "knob.report.json").read_text())
    take = report["null_test"]["validation"][row]
    rendered = tmp / f"row{row}.wav"
    assert main(["render", str(out), take["dry"], "--param", f"drive={take['setting']['drive']:g}",
                 "-o", str(rendered), "--overwrite"]) == 0
    ours, _ = sf.read(rendered, dtype="float32")
    theirs, _ = sf.read(take["wet"], dtype="float32")
    latency = report["latency_samples"]
    first, last = take["first_frame"], take["last_frame"]
    a = ours[first:last].astype(np.float64)
    b = theirs[first + latency:last + latency].astype(np.float64)
    assert esr(b - b.mean(), a - a.mean()) == pytest.approx(take["esr"], abs=1e-4)


def test_a_value_outside_the_trained_range_is_refused_with_the_range(trained, capsys):
    tmp, out, _ = trained
    code = main(["render", str(out), str(tmp / "di.wav"), "--param", "drive=11", "-o",
                 str(tmp / "x.wav")])
    assert code != 0
    assert "drive = 11 is out of range: 0 to 10" in capsys.readouterr().err


def test_the_terminal_shows_the_table(session, tmp_path, capsys):
    tmp, _ = session
    wets = [f"{tmp / f'drive{d}.wav'}@drive={d:g}" for d in CAPTURED]
    code = main(["train", str(tmp / "di.wav"), *wets, "--val-dry", str(tmp / "di_val.wav"),
                 "--val-wet", f"{tmp / 'val0.25.wav'}@drive=0.25", "-o", str(tmp_path / "m.json"),
                 "--hidden", "4", "--epochs", "1", "--batch", "8", "--threads", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "latency by capture (samples):" in text
    assert "null-test ESR by setting:" in text
    assert "validation take, setting not trained on" in text
    assert "<- worst" in text
    assert "--param drive=0.5" in text  # the default is the middle of the captured range
    assert load_model(tmp_path / "m.json").knobs[0].maximum == 1.0


def test_resuming_with_another_capture_set_says_what_differs(session, tmp_path, capsys):
    tmp, _ = session
    out = tmp_path / "m.json"
    base = ["-o", str(out), "--hidden", "4", "--epochs", "1", "--batch", "8", "--threads", "1"]
    wets = [f"{tmp / f'drive{d}.wav'}@drive={d:g}" for d in CAPTURED]
    assert main(["train", str(tmp / "di.wav"), *wets, *base]) == 0
    capsys.readouterr()
    code = main(["train", str(tmp / "di.wav"), *wets[:2], *base, "--resume", "--epochs", "2"])
    assert code != 0
    err = capsys.readouterr().err
    assert "training captures differ" in err and "drive1.0.wav" in err and "there, not now" in err


# ---- checks across the set: one line naming the capture and the fix ----

def _set(*settings, validation=(), knobs=None):
    return CaptureSet([Capture("di.wav", f"w{i}.wav", s) for i, s in enumerate(settings)],
                      [Capture("di.wav", "v.wav", s) for s in validation], [], knobs or {})


def test_knob_ranges_come_from_the_captures_unless_declared():
    knobs = knobs_of(_set({"drive": 2, "tone": 1}, {"drive": 6, "tone": 3}))
    assert [(k.name, k.minimum, k.maximum, k.default) for k in knobs] == [
        ("drive", 2, 6, 4), ("tone", 1, 3, 2)]
    declared = knobs_of(_set({"drive": 2}, {"drive": 6}, knobs={"drive": KnobDeclaration(0, 10, 7)}))
    assert (declared[0].minimum, declared[0].maximum, declared[0].default) == (0, 10, 7)


@pytest.mark.parametrize("capture_set, message", [
    (_set({"drive": 1, "tone": 2}, {"drive": 3}), r"w1.wav: capture at drive=3 does not give knob\(s\) tone"),
    (_set({"drive": 1}, {"drive": 1}), "knob drive: every capture is at 1; a knob needs captures at two"),
    (_set({"drive": 1}, {"drive": 2}, validation=[{"drive": 5}]),
     "v.wav: validation at drive=5 is outside the trained range 1 to 2"),
    (_set({"drive": 1}, {"drive": 2}, knobs={"drive": KnobDeclaration(1.5, 3)}),
     "declared range 1.5 to 3 must contain the captured values"),
    (_set({"drive": 1}, {"drive": 2}, knobs={"gain": KnobDeclaration(0, 1)}),
     "declares gain, which no capture gives"),
])
def test_a_bad_set_gets_one_line_naming_the_capture(capture_set, message):
    with pytest.raises(AmpnetError, match=message):
        knobs_of(capture_set)


def test_takes_without_knob_values_train_one_model_on_all_of_them(tmp_path, capsys):
    """A take and the same DI 6 dB hotter, through one device: one model without knobs,
    each take's tail held out for validation."""
    dry = guitar_like(6.0, seed=5)
    for name, x in (("", dry), ("+6dB", 2 * dry)):
        sf.write(tmp_path / f"di{name}.wav", x, RATE, subtype="FLOAT")
        sf.write(tmp_path / f"amp{name}.wav", knob_device(x, 0.5), RATE, subtype="FLOAT")
    (tmp_path / "takes.toml").write_text(
        '[[capture]]\ndry = "di.wav"\nwet = "amp.wav"\n\n'
        '[[capture]]\ndry = "di+6dB.wav"\nwet = "amp+6dB.wav"\n')
    out = tmp_path / "amp.json"
    assert main(["train", str(tmp_path / "takes.toml"), "-o", str(out), "--hidden", "8",
                 "--epochs", "3", "--batch", "4", "--threads", "1"]) == 0
    said = capsys.readouterr().out
    assert "2 takes without knob settings" in said and "null-test ESR by take:" in said
    assert said.count("<- worst") == 1
    model = load_model(out)
    assert model.input_size == 1 and not model.knobs
    assert model.metadata["training_data"].startswith("2 takes of one setting")
    rows = json.loads((tmp_path / "amp.report.json").read_text())["null_test"]["validation"]
    assert [(Path(r["dry"]).name, r["kind"]) for r in rows] == [
        ("di.wav", "held-out tail"), ("di+6dB.wav", "held-out tail")]


def test_wet_arguments_carry_their_settings():
    assert parse_wet_argument("a@b.wav@drive=1,tone=2.5") == ("a@b.wav", {"drive": 1.0, "tone": 2.5})
    assert parse_wet_argument("wet.wav") == ("wet.wav", {})
    for bad, message in (("w.wav@drive", "NAME=VALUE"), ("w.wav@drive=x", "'x' is not a number"),
                         ("w.wav@d=1,d=2", "set twice"), ("w.wav@d=nan", "not a usable")):
        with pytest.raises(AmpnetError, match=message):
            parse_wet_argument(bad)


def test_a_manifest_is_read_relative_to_itself(tmp_path):
    (tmp_path / "s.toml").write_text('dry = "di.wav"\n[[capture]]\nwet = "a.wav"\ngain = 3\n'
                                     '[[test]]\ndry = "real.wav"\nwet = "real_wet.wav"\ngain = 3\n')
    got = read_manifest(tmp_path / "s.toml")
    assert got.captures == [Capture(str(tmp_path / "di.wav"), str(tmp_path / "a.wav"), {"gain": 3})]
    assert got.test[0].dry == str(tmp_path / "real.wav")


@pytest.mark.parametrize("text, message", [
    ("[[capture]]\nwet = 'a.wav'\n", r'give dry = "file" \(or a top-level dry'),
    ("dry = 'd.wav'\n", "no \\[\\[capture\\]\\] entries"),
    ("dry = 'd.wav'\ncapture = 3\n", "write each one as a \\[\\[capture\\]\\] table"),
    ("dri = 'd.wav'\n", "unknown key\\(s\\) dri"),
    ("dry = 'd.wav'\n[[capture]]\nwet = 'a.wav'\ngain = 'loud'\n", "gain: 'loud' is not a number"),
    ("dry = [", "not a valid TOML manifest"),
])
def test_a_bad_manifest_is_named_with_the_fix(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(AmpnetError, match=message):
        read_manifest(path)


def test_captures_at_different_rates_are_refused(session, tmp_path, capsys):
    tmp, _ = session
    dry, _ = sf.read(tmp / "di.wav", dtype="float32")
    sf.write(tmp_path / "di44.wav", dry, 44100, subtype="FLOAT")
    sf.write(tmp_path / "wet44.wav", knob_device(dry, 1.0), 44100, subtype="FLOAT")
    (tmp_path / "s.toml").write_text(
        f'[[capture]]\ndry = "{tmp / "di.wav"}"\nwet = "{tmp / "drive0.0.wav"}"\ndrive = 0\n'
        '[[capture]]\ndry = "di44.wav"\nwet = "wet44.wav"\ndrive = 1\n')
    assert main(["train", str(tmp_path / "s.toml"), "-o", str(tmp_path / "m.json")]) != 0
    assert "wet44.wav: at 44100 Hz" in capsys.readouterr().err


# ---- the model: knob values in the user's units, normalised inside ----

def test_normalized_knob_inputs_play_like_the_network_fed_normalized_values():
    from ampnet.train.network import AmpLSTM
    from ampnet.formats.model import Knob
    torch.manual_seed(1)
    net = AmpLSTM(8, 1, True, 2.0, knobs=2)
    knobs = [Knob("gain_db", 0.0, -12.0, 12.0), Knob("freq_hz", 1000.0, 100.0, 8000.0)]
    model = net.to_model(RATE, {}, knobs)
    assert model.knob_inputs == "normalized"
    x = guitar_like(0.5, seed=2)
    engine = Engine(model)
    engine.set_knobs({"gain_db": 6.0, "freq_hz": 2500.0})
    ours = engine.process(x.copy())
    inputs = np.stack([x, np.full_like(x, 0.75), np.full_like(x, 2400 / 7900)], axis=-1)
    with torch.no_grad():
        theirs = net(torch.from_numpy(inputs)[None])[0][0, :, 0].numpy()
    assert np.max(np.abs(ours - theirs)) < 1e-5


def test_a_knob_model_round_trips_through_aidax_and_refuses_nam(tmp_path, capsys):
    from ampnet.formats import save_model
    from ampnet.formats.model import Knob
    model = random_model(hidden=16, knobs=1, seed=5)
    model.knobs = [Knob("drive", 5.0, 0.0, 10.0)]
    model.knob_inputs = "normalized"
    save_model(model, tmp_path / "k.json")
    assert main(["convert", str(tmp_path / "k.json"), "--to", "aidax", "-o",
                 str(tmp_path / "k_aidax.json")]) == 0
    doc = json.loads((tmp_path / "k_aidax.json").read_text())
    assert doc["in_shape"] == [None, None, 2]
    assert [layer["type"] for layer in doc["layers"]] == ["lstm", "dense"]
    assert doc["metadata"]["knobs"][0]["name"] == "drive"
    back = load_model(tmp_path / "k_aidax.json")
    assert [(k.name, k.minimum, k.maximum, k.default) for k in back.knobs] == [("drive", 0, 10, 5)]
    x = guitar_like(0.5, seed=6)
    for value in (0.0, 3.0, 10.0):
        a, b = Engine(model), Engine(back)
        a.set_knobs({"drive": value})
        b.set_knobs({"drive": value})
        assert np.max(np.abs(a.process(x.copy()) - b.process(x.copy()))) < 1e-6
    assert main(["convert", str(tmp_path / "k.json"), "--to", "nam", "-o",
                 str(tmp_path / "k.nam")]) != 0
    assert "knob inputs (drive)" in capsys.readouterr().err


def test_live_keys_select_and_turn_a_knob_in_its_units():
    """The terminal keys drive the running callback through its control path: what the
    keys set is what the chain plays once the callback has taken the changes."""
    from types import SimpleNamespace

    from ampnet.formats.model import Knob
    from ampnet.host.chain import Chain
    from ampnet.host.processors import Gain, NeuralModel
    from ampnet.live.session import _KeyControl
    from tests.test_control import BLOCK, Stream
    model = random_model(hidden=8, knobs=2, seed=7)
    model.knobs = [Knob("drive", 5.0, 0.0, 10.0), Knob("tone_hz", 1000.0, 200.0, 5000.0)]
    model.knob_inputs = "normalized"
    chain = Chain([Gain(), NeuralModel(model)], RATE, max_block=BLOCK)
    stream = Stream(chain)
    keys = _KeyControl(SimpleNamespace(chain=chain, control=stream.control))
    assert any("k: next knob (drive, tone_hz)" in line for line in keys.help_lines())
    assert keys.handle("+") == "[+] drive = 5.5 (range 0 to 10)"
    assert chain.processors[1].values["drive"] == 5.5
    assert keys.handle("k") == "[k] tone_hz = 1000 (range 200 to 5000)"
    for _ in range(40):
        keys.handle("-")
    assert chain.processors[1].values["tone_hz"] == 200.0  # stops at the end of the range
    assert keys.handle("x") is None
    assert keys.handle("1") == "[1] gain: bypassed"
    x = guitar_like(1.0, RATE, seed=8)
    moved = stream.play(x)[-4800:]  # the callback applies the changes before its first block
    assert chain.bypassed(0)
    # The chain plays the new values: it glides to what a fresh chain set there plays.
    fresh = Chain([Gain(), NeuralModel(model, drive=5.5, tone_hz=200.0)], RATE)
    fresh.set_bypass(0, True)
    settled = fresh.process(x.copy())[-4800:]
    assert np.max(np.abs(moved - settled)) < 1e-3


def test_the_model_file_keeps_how_knobs_reach_the_network(tmp_path):
    from ampnet.errors import ModelFileError
    from ampnet.formats import save_model
    from ampnet.formats.model import Knob
    model = random_model(hidden=8, knobs=1, seed=9)
    model.knobs = [Knob("gain_db", 0.0, -12.0, 12.0)]
    model.knob_inputs = "normalized"
    save_model(model, tmp_path / "m.json")
    assert load_model(tmp_path / "m.json").knob_inputs == "normalized"
    doc = json.loads((tmp_path / "m.json").read_text())
    del doc["knob_inputs"]  # files written before the key existed feed values as given
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert load_model(tmp_path / "old.json").knob_inputs == "value"
    doc["knob_inputs"] = "scaled"
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match=r"bad.json: knob_inputs: 'scaled': expected 'value' or 'normalized'"):
        load_model(tmp_path / "bad.json")


def test_every_update_mixes_every_capture():
    from ampnet.train.trainer import Segment, Trainer, TrainConfig
    config = TrainConfig(hidden=4, batch=8, threads=1, warmup_samples=64, update_samples=32)
    trainer = Trainer(config, 1.0, knobs=1)
    segments = [Segment(np.zeros(3000, np.float32), np.zeros(3000, np.float32),
                        np.array([k], np.float32)) for k in (0.0, 0.5, 1.0)]
    x, _ = trainer._streams(segments)
    for start in range(0, x.shape[1] - 32, 32):  # each update's window, across the streams
        assert set(np.unique(x[:, start, 1].numpy())) == {0.0, 0.5, 1.0}


AIDADSP_CONDITIONED = (Path(__file__).resolve().parents[2] / "shared" / "data" / "models"
                       / "aida-x" / "conditioned" / "model_HT40_48k_cond.json")


@pytest.mark.skipif(not AIDADSP_CONDITIONED.exists(), reason="needs ../shared")
def test_aidadsp_conditioned_model_round_trips_with_its_layout(tmp_path):
    theirs = json.loads(AIDADSP_CONDITIONED.read_text())
    model = load_model(AIDADSP_CONDITIONED)
    assert model.input_size == 2 and model.knob_inputs == "normalized"
    assert main(["convert", str(AIDADSP_CONDITIONED), "--to", "aidax", "-o",
                 str(tmp_path / "back.json")]) == 0
    ours = json.loads((tmp_path / "back.json").read_text())
    assert ours["in_shape"] == theirs["in_shape"]
    for a, b in zip(ours["layers"], theirs["layers"]):
        assert (a["type"], a["shape"]) == (b["type"], b["shape"])
        assert [np.shape(w) for w in a["weights"]] == [np.shape(w) for w in b["weights"]]
        for w_ours, w_theirs in zip(a["weights"], b["weights"]):
            assert np.array_equal(np.float32(w_ours), np.float32(w_theirs))
    back = load_model(tmp_path / "back.json")
    x = guitar_like(0.5, seed=10)
    for value in (0.0, 0.3, 1.0):
        a, b = Engine(model), Engine(back)
        a.knobs[0] = b.knobs[0] = value
        assert np.array_equal(a.process(x.copy()), b.process(x.copy()))
