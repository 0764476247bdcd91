"""Training: data checks, alignment, the learning pipeline, checkpoints and the report.

Small synthetic pairs (seconds of guitar-like audio through a known nonlinearity)
keep this fast; they prove the pipeline learns, not how well.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
signal = pytest.importorskip("scipy.signal")

from ampnet.cli import main  # noqa: E402
from ampnet.errors import AmpnetError  # noqa: E402
from ampnet.formats import load_model  # noqa: E402
from ampnet.train.alignment import estimate_latency  # noqa: E402
from ampnet.train.data import load_pair, split_validation  # noqa: E402
from ampnet.train.network import AmpLSTM  # noqa: E402
from tests.signals import guitar_like  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RATE = 48000


def device(x):
    """A known nonlinearity with memory: one-pole low-pass into tanh drive."""
    return (0.5 * np.tanh(4 * signal.lfilter([0.3], [1, -0.7], x))).astype(np.float32)


def delay(x, samples):
    return np.concatenate([np.zeros(samples, np.float32), x])[:x.size]


def write_pair(tmp_path, dry, wet, rate=RATE, names=("dry.wav", "wet.wav")):
    paths = [tmp_path / n for n in names]
    sf.write(paths[0], dry, rate, subtype="FLOAT")
    sf.write(paths[1], wet, rate, subtype="FLOAT")
    return paths


def dispersive_device(x, stages):
    """A device with no pure delay whose correlation peak comes late: a cascade of
    first-order all-passes (group delay 3 samples each at low frequencies) mixed
    with a quarter of the direct signal, into a tanh soft clipper."""
    shifted = x.astype(np.float64)
    for _ in range(stages):
        shifted = signal.lfilter([-0.5, 1.0], [1.0, -0.5], shifted)
    return (0.5 * np.tanh(3 * (0.25 * x + shifted))).astype(np.float32)


SHIFTS = [0, 1, 37, 480, 4410]


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("polarity", [1, -1])
def test_latency_of_a_pure_delay_is_the_delay(shift, polarity):
    dry = guitar_like(12.0, seed=2)
    wet = polarity * delay(dry * 0.8, shift)  # a pure delay: the onset is the delay
    estimate = estimate_latency(dry, wet, RATE)
    assert estimate.samples == shift and estimate.decided
    assert estimate.peak_samples == shift
    assert estimate.inverted == (polarity < 0)
    assert estimate.confident


@pytest.mark.parametrize("stages", [8, 16])
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("polarity", [1, -1])
def test_latency_is_the_onset_of_a_dispersive_device_not_its_correlation_peak(stages, shift, polarity):
    dry = guitar_like(12.0, seed=2)
    wet = polarity * delay(dispersive_device(dry, stages), shift)
    estimate = estimate_latency(dry, wet, RATE)
    assert 5 <= estimate.peak_samples - shift <= 15  # the device really is dispersive
    assert estimate.samples == shift and estimate.decided  # the onset, exactly
    assert estimate.confident


@pytest.mark.parametrize("shift", [1, 37, 480, 4410])
def test_latency_through_a_nonlinear_device_moves_with_the_shift(shift):
    dry = guitar_like(12.0, seed=4)
    wet = device(dry)
    base = estimate_latency(dry, wet, RATE).samples
    for polarity in (1, -1):
        assert estimate_latency(dry, polarity * delay(wet, shift), RATE).samples == base + shift


def _real_pairs():
    """(dry, wet, expected latency) for the real hardware clips in ../shared, if present."""
    pairs = []
    bd2 = SHARED / "pairs" / "egfx-boss-bd2"
    for dry in sorted((bd2 / "input").glob("*.wav"))[:2]:
        # target[n] pairs with input[n + 4410]: the wet leads the dry by 4410.
        pairs.append(pytest.param(dry, bd2 / "target" / dry.name, -4410, id=f"bd2-{dry.stem}"))
    for dry in sorted((SHARED / "pairs" / "marshall-jvm410h").glob("*-inp.wav"))[:2]:
        wet = dry.with_name(dry.name.replace("-inp", "-ref"))
        pairs.append(pytest.param(dry, wet, 0, id=f"jvm-{dry.stem}"))  # published aligned
    return pairs


def _mono(path):
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return audio[:, 0], rate


@pytest.mark.parametrize("dry_path,wet_path,expected", _real_pairs())
def test_latency_of_real_pairs_shifted_by_known_amounts(dry_path, wet_path, expected):
    dry, rate = _mono(dry_path)
    wet, _ = _mono(wet_path)
    base = estimate_latency(dry, wet, rate)
    # A real device's filters blur the absolute onset by a few samples; shifts are exact.
    assert abs(base.samples - expected) <= 4 and base.confident
    for shift in (1, 37, 480, 4410):
        for polarity in (1, -1):
            shifted = estimate_latency(dry, polarity * delay(wet, shift), rate)
            assert shifted.samples == base.samples + shift
            assert shifted.inverted == (base.inverted != (polarity < 0))


def test_load_pair_compensates_latency_and_removes_dc(tmp_path):
    dry = guitar_like(6.0, seed=1)
    wet = delay(device(dry), 480) + 0.01
    pair = load_pair(*write_pair(tmp_path, dry, wet))
    assert 478 <= pair.latency_samples <= 480
    assert abs(float(np.mean(pair.wet))) < 1e-3
    assert any("DC offset" in n for n in pair.notes)
    early = 480 - pair.latency_samples  # the model will learn these samples of delay
    np.testing.assert_allclose(pair.wet[early:early + 1000], device(dry)[:1000] + 0.01 - np.mean(wet),
                               atol=1e-5)


@pytest.mark.parametrize("problem,message", [
    ("rate", "sample rate"), ("short", "shorter"), ("long", "longer"), ("silent", "silent"),
    ("unrelated", "latency"),
])
def test_bad_pairs_are_refused_with_a_way_forward(tmp_path, problem, message):
    dry = guitar_like(6.0, seed=1)
    wet = device(dry)
    if problem == "short":
        wet = wet[:-RATE]
    elif problem == "long":
        wet = np.concatenate([wet, np.zeros(2 * RATE, np.float32)])
    elif problem == "silent":
        wet = wet * 1e-5
    elif problem == "unrelated":
        wet = np.random.default_rng(0).standard_normal(dry.size).astype(np.float32) * 0.1
    paths = write_pair(tmp_path, dry, wet)
    if problem == "rate":
        sf.write(paths[1], wet, 44100, subtype="FLOAT")
    with pytest.raises(AmpnetError, match=message):
        load_pair(*paths)


def test_stereo_uses_first_channel_and_says_so(tmp_path):
    dry = guitar_like(6.0, seed=1)
    paths = write_pair(tmp_path, np.stack([dry, dry * 0], 1), np.stack([device(dry), dry], 1))
    pair = load_pair(*paths)
    assert any("using channel 0" in n for n in pair.notes)
    assert -2 <= pair.latency_samples <= 0


def test_validation_split_cuts_at_a_quiet_point():
    from ampnet.train.data import Pair
    dry = guitar_like(20.0, seed=1)
    quiet = int(0.86 * dry.size)
    dry[quiet - 2400:quiet + 2400] = 0.0
    (train_dry, _), (val_dry, _), _ = split_validation(Pair(dry, dry, RATE))
    assert abs(train_dry.size - quiet) < 2400
    assert train_dry.size + val_dry.size == dry.size


def test_output_layer_is_linear_and_cannot_squash():
    net = AmpLSTM(8, 1, skip=False)
    assert isinstance(net.head, torch.nn.Linear)
    assert not any(isinstance(m, (torch.nn.Sigmoid, torch.nn.Tanh, torch.nn.Softmax))
                   for m in net.modules())
    with torch.no_grad():
        net.head.bias.fill_(3.0)
    out, _ = net(torch.zeros(1, 10, 1))
    assert float(out.detach().max()) > 2.5  # audio beyond full scale passes unsquashed


def test_long_inputs_reach_the_lstm_in_pieces_cudnn_accepts():
    """cuDNN's LSTM refuses 65,536 frames or more (the first validation of a CUDA run
    crashed on a 65,536-frame chunk); the network cuts longer inputs, with the same
    result as one pass (checked in float64 against torch's LSTM over the whole input)."""
    from ampnet.train.network import LSTM_MAX_FRAMES
    from ampnet.train.trainer import Trainer, TrainConfig
    assert LSTM_MAX_FRAMES < 65536
    torch.manual_seed(1)
    net = AmpLSTM(8, 2).double().eval()
    seen = []
    lstm_forward = net.lstm.forward

    def recording_forward(inputs, state=None):
        seen.append(tuple(inputs.shape))
        return lstm_forward(inputs, state)
    net.lstm.forward = recording_forward
    frames = 2 * LSTM_MAX_FRAMES + 1000
    x = torch.randn(2, frames, 1, dtype=torch.float64) * 0.3
    with torch.no_grad():
        y, _ = net(x)
        whole, _ = lstm_forward(x * net.input_scale)
        reference = net.head(whole) + x
    assert [shape[1] for shape in seen] == [LSTM_MAX_FRAMES, LSTM_MAX_FRAMES, 1000]
    assert float((y - reference).abs().max()) < 1e-12
    # The trainer's validation, with segments longer than a piece, goes through the same path.
    seen.clear()
    trainer = Trainer(TrainConfig(hidden=8, batch=1, threads=1), 1.0)
    trainer.net = net.float()
    trainer.validate(x.float(), x.float(), [frames, frames - 5000])
    assert seen and max(shape[1] for shape in seen) <= LSTM_MAX_FRAMES


def test_a_gpu_trains_on_64_streams_unless_told():
    from ampnet.train.trainer import TrainConfig, auto_batch, resolve_defaults
    assert [auto_batch(n) for n in (1, 2, 9)] == [16, 32, 64]
    assert [auto_batch(n, "cuda") for n in (1, 9)] == [64, 64]
    assert auto_batch(1, "cuda:1") == 64
    gpu = resolve_defaults(TrainConfig(device="cuda"))
    assert (gpu.batch, gpu.learning_rate) == (64, 1.5e-2)
    assert resolve_defaults(TrainConfig(device="cuda", batch=16)).batch == 16


def test_the_training_device_is_checked_in_one_line(tmp_path, capsys):
    from ampnet.train.trainer import training_device
    assert training_device("cpu") == "cpu"
    assert training_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(AmpnetError, match="--device mps: ampnet trains on cpu or cuda"):
        training_device("mps")
    with pytest.raises(AmpnetError, match="--device gpu please: not a device"):
        training_device("gpu please")
    if torch.cuda.is_available():
        return
    dry = guitar_like(3.0)
    dry_path, wet_path = write_pair(tmp_path, dry, device(dry))
    assert main(["train", str(dry_path), str(wet_path), "-o", str(tmp_path / "m.json"),
                 "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "--device cuda:" in err and "--device cpu" in err, err
    assert not (tmp_path / "m.json").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short CLI training run shared by the pipeline tests."""
    tmp = tmp_path_factory.mktemp("train")
    dry = guitar_like(24.0, seed=7)
    dry_path, wet_path = write_pair(tmp, dry, delay(device(dry), 37))
    out = tmp / "model.json"
    code = main(["train", str(dry_path), str(wet_path), "-o", str(out), "--hidden", "8",
                 "--epochs", "4", "--minutes", "2", "--batch", "8", "--threads", "1"])
    return tmp, out, dry, code


def test_training_learns_far_beyond_trivial_predictors(trained):
    tmp, out, dry, code = trained
    assert code == 0
    report = json.loads((tmp / "model.report.json").read_text())
    val = dry[-int(0.15 * dry.size):]
    target = device(val)
    trivial = min(np.sum((target - val) ** 2), np.sum(target ** 2)) / np.sum(target ** 2)
    assert report["validation_esr"] < 0.25 * trivial
    assert report["latency_samples"] == 37


def test_model_file_report_and_checkpoint_are_written(trained):
    tmp, out, dry, _ = trained
    model = load_model(out)
    assert model.skip and model.metadata["latency_samples"] == 37
    # One alignment: the report and the metadata say the same, and it is the truth.
    report = json.loads((tmp / "model.report.json").read_text())
    for key in ("latency_samples", "latency_method", "latency_range", "latency_confidence"):
        assert model.metadata[key] == report[key], key
    assert report["latency_method"] == "estimated"
    low, high = report["latency_range"]
    assert low == high == 37
    assert model.metadata["validation_esr"] > 0
    assert -40 < model.metadata["loudness_dbfs"] < 0
    assert (tmp / "model.report.png").stat().st_size > 10_000
    assert (tmp / "model.ckpt").exists()
    assert main(["render", str(out), str(tmp / "dry.wav"), "-o", str(tmp / "render.wav")]) == 0


@pytest.fixture(scope="module")
def null_tested(tmp_path_factory):
    """A run with separate validation and test files of a dispersive device 37 samples
    late, whose wet recordings carry a DC offset."""
    tmp = tmp_path_factory.mktemp("null")
    paths = {}
    for role, seconds, seed in (("train", 20.0, 7), ("val", 6.0, 8), ("test", 5.0, 9)):
        dry = guitar_like(seconds, seed=seed)
        wet = delay(dispersive_device(dry, 8), 37) + 0.02
        paths[role] = write_pair(tmp, dry, wet, names=(f"dry_{role}.wav", f"wet_{role}.wav"))
    out = tmp / "model.json"
    code = main(["train", *map(str, paths["train"]), "-o", str(out), "--hidden", "8",
                 "--epochs", "3", "--batch", "8", "--threads", "1",
                 "--val-dry", str(paths["val"][0]), "--val-wet", str(paths["val"][1]),
                 "--test-dry", str(paths["test"][0]), "--test-wet", str(paths["test"][1])])
    assert code == 0
    return tmp, out, paths


def _file_null_test(rendered, wet_path, latency):
    """ESR of a rendered file against the wet file advanced by ``latency``, DC removed."""
    ours, _ = _mono(rendered)
    theirs, _ = _mono(wet_path)
    frames = min(ours.size, theirs.size - latency)
    ours = ours[:frames].astype(np.float64)
    theirs = theirs[latency:latency + frames].astype(np.float64)
    ours, theirs = ours - ours.mean(), theirs - theirs.mean()
    return np.sum((theirs - ours) ** 2) / np.sum(theirs ** 2)


@pytest.mark.parametrize("role", ["val", "test"])
def test_reported_esr_is_the_null_test_of_a_render(null_tested, role):
    tmp, out, paths = null_tested
    report = json.loads((tmp / "model.report.json").read_text())
    latency = report["latency_samples"]
    assert latency == 37  # the onset, not the correlation peak (about 43)
    rendered = tmp / f"render_{role}.wav"
    assert main(["render", str(out), str(paths[role][0]), "-o", str(rendered)]) == 0
    measured = _file_null_test(rendered, paths[role][1], latency)
    reported = report["validation_esr"] if role == "val" else report["test_esr"]
    assert abs(measured - reported) < 1e-4
    assert "DC removed from both sides" in report["null_test"]["how"]
    model = load_model(out)
    stored = model.metadata["validation_esr"] if role == "val" else model.metadata["test_esr"]
    assert abs(stored - reported) < 1e-6
    # The report's figure is not what the (DC-free, trimmed) selection pass saw.
    assert report["selection_val_esr"] > 0


def test_the_null_test_at_the_true_delay_is_the_best_within_three_samples(null_tested):
    """What capture makers check: ``ampnet render`` of the validation dry against the
    device's own recording at its TRUE delay (37), DC removed, is within 1.1x of the
    best the same render reaches at any shift of up to 3 samples."""
    tmp, out, paths = null_tested
    report = json.loads((tmp / "model.report.json").read_text())
    assert report["latency_range"] == [37, 37] and report["latency_method"] == "estimated"
    rendered = tmp / "render_val.wav"
    if not rendered.exists():
        assert main(["render", str(out), str(paths["val"][0]), "-o", str(rendered)]) == 0
    errors = {shift: _file_null_test(rendered, paths["val"][1], 37 + shift)
              for shift in range(-3, 4)}
    assert errors[0] <= 1.1 * min(errors.values()), errors


def test_a_model_aligned_to_the_correlation_peak_fails_the_null_test(null_tested):
    """The case the onset rule exists for: render against the wet advanced by the
    correlation peak instead and the error is far larger."""
    tmp, out, paths = null_tested
    report = json.loads((tmp / "model.report.json").read_text())
    rendered = tmp / "render_val.wav"
    if not rendered.exists():
        assert main(["render", str(out), str(paths["val"][0]), "-o", str(rendered)]) == 0
    at_onset = _file_null_test(rendered, paths["val"][1], report["latency_samples"])
    at_peak = _file_null_test(rendered, paths["val"][1], report["latency_peak_samples"])
    assert report["latency_peak_samples"] - report["latency_samples"] >= 5
    assert at_peak > 2 * at_onset


@pytest.mark.parametrize("kind", ["val", "test"])
def test_a_validation_or_test_pair_needs_both_files(trained, kind, capsys):
    tmp, _, _, _ = trained
    code = main(["train", str(tmp / "dry.wav"), str(tmp / "wet.wav"), "-o", str(tmp / "other.json"),
                 f"--{kind}-dry", str(tmp / "dry.wav")])
    assert code != 0
    assert f"give both --{kind}-dry and --{kind}-wet" in capsys.readouterr().err


def test_training_is_a_library_call_with_per_epoch_results(null_tested):
    from ampnet.train.pipeline import Capture, fit
    from ampnet.train.trainer import TrainConfig
    tmp, _, paths = null_tested
    seen, lines = [], []
    threads = torch.get_num_threads()
    model, report = fit(Capture(*map(str, paths["train"])),
                        TrainConfig(hidden=4, epochs=2, batch=8),
                        validation=Capture(*map(str, paths["val"])), on_epoch=seen.append,
                        log=lines.append)
    assert [e["epoch"] for e in seen] == [1, 2]
    assert all(e["val_esr"] > 0 and "best_val_esr" in e for e in seen)
    assert report.validation_esr == report.figures["null_test"]["validation"][0]["esr"]
    assert model.metadata["validation_esr"] == pytest.approx(report.validation_esr, abs=1e-6)
    assert report.test_esr is None
    assert any(line.startswith("note: latency:") for line in lines)
    assert torch.get_num_threads() == threads  # threads are the caller's business


def test_resume_continues_from_the_checkpoint(trained, capsys):
    tmp, out, _, _ = trained
    before = json.loads((tmp / "model.report.json").read_text())
    code = main(["train", str(tmp / "dry.wav"), str(tmp / "wet.wav"), "-o", str(out), "--hidden", "8",
                 "--epochs", "5", "--minutes", "2", "--batch", "8", "--threads", "1", "--resume"])
    assert code == 0
    assert "resuming" in capsys.readouterr().out
    after = json.loads((tmp / "model.report.json").read_text())
    assert [e["epoch"] for e in after["epochs"]] == list(range(1, len(before["epochs"]) + 2))


def test_refuses_to_replace_a_model_without_overwrite(trained, capsys):
    tmp, out, _, _ = trained
    assert main(["train", str(tmp / "dry.wav"), str(tmp / "wet.wav"), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("coefficient", [0.85, 0.5, 0.0])
def test_esr_dc_loss_matches_the_formula(coefficient):
    from ampnet.train.losses import esr_dc_loss
    rng = np.random.default_rng(0)
    y, p = rng.standard_normal((2, 3, 500, 1))
    hy = np.concatenate([y[:, :1], y[:, 1:] - coefficient * y[:, :-1]], axis=1)
    hp = np.concatenate([p[:, :1], p[:, 1:] - coefficient * p[:, :-1]], axis=1)
    esr_value = np.sum((hy - hp) ** 2) / np.sum(hy ** 2)
    dc = np.mean(np.mean(y - p, axis=1) ** 2) / np.mean(y ** 2)
    got = float(esr_dc_loss(torch.from_numpy(y), torch.from_numpy(p), coefficient))
    assert got == pytest.approx(0.75 * esr_value + 0.25 * dc, rel=1e-9)


def test_pre_emphasis_decides_how_much_a_bass_error_costs():
    """A 10% error at 80 Hz in a signal of 80 Hz + 2 kHz: plain ESR (coefficient 0, as a
    null test weighs it) counts it in full; the 0.85 high-pass weighs each tone by its
    power gain ``1 - 2C cos(w) + C^2``, the 80 Hz error 3.6x less than the 2 kHz tone."""
    from ampnet.train.losses import esr, pre_emphasis
    t = np.arange(4800) / RATE
    bass, treble = (np.sin(2 * np.pi * f * t) for f in (80, 2000))
    y = torch.from_numpy(bass + treble)[None, :, None]
    p = y + 0.1 * torch.from_numpy(bass)[None, :, None]
    for c in (0.0, 0.85):
        gain = [1 - 2 * c * np.cos(2 * np.pi * f / RATE) + c * c for f in (80, 2000)]
        expected = 0.01 * gain[0] / (gain[0] + gain[1])
        assert float(esr(pre_emphasis(y, c), pre_emphasis(p, c))) == pytest.approx(expected, rel=0.02)
    assert float(esr(y, p)) == pytest.approx(0.005, rel=0.02)


def test_a_sweep_can_vary_the_pre_emphasis():
    from ampnet.cluster.sweep import parse_space
    assert parse_space(["pre-emphasis=0,0.85", "lr=0.01"]) == {"pre_emphasis": [0.0, 0.85],
                                                                "lr": [0.01]}
    with pytest.raises(AmpnetError, match="lr, pre-emphasis, minutes"):
        parse_space(["emphasis=0.5"])


def test_training_uses_the_configured_pre_emphasis(monkeypatch):
    from ampnet.train import trainer as trainer_module
    real_loss, seen = trainer_module.esr_dc_loss, set()

    def recording(target, prediction, coefficient):
        seen.add(coefficient)
        return real_loss(target, prediction, coefficient)

    monkeypatch.setattr(trainer_module, "esr_dc_loss", recording)
    train, val = _tiny_data()
    _tiny_trainer(pre_emphasis=0.3).fit(train, val, show_progress=False)
    assert seen == {0.3}


def _tiny_trainer(**overrides):
    from ampnet.train.trainer import Trainer, TrainConfig
    config = TrainConfig(**({"hidden": 4, "batch": 4, "epochs": 1, "minutes": 1, "threads": 1}
                            | overrides))
    return Trainer(config, input_scale=1.0)


def _tiny_data():
    from ampnet.train.trainer import Segment
    dry = guitar_like(3.0, seed=9)
    wet = device(dry)
    return [Segment(dry[:120000], wet[:120000])], [Segment(dry[120000:], wet[120000:])]


def test_same_seed_same_model():
    train, val = _tiny_data()
    states = []
    for _ in range(2):
        trainer = _tiny_trainer(seed=3)
        trainer.fit(train, val, show_progress=False)
        states.append(trainer.net.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key])


def test_non_finite_loss_rolls_back_and_halves_the_rate(monkeypatch):
    from ampnet.train import trainer as trainer_module
    real_loss = trainer_module.esr_dc_loss
    calls = []

    def sometimes_nan(target, prediction, coefficient):
        calls.append(1)
        loss = real_loss(target, prediction, coefficient)
        return loss * float("nan") if len(calls) == 5 else loss

    monkeypatch.setattr(trainer_module, "esr_dc_loss", sometimes_nan)
    train, val = _tiny_data()
    trainer = _tiny_trainer()
    history = trainer.fit(train, val, show_progress=False)
    assert trainer.lr_scale == 0.5
    assert np.isfinite(history.best_val_esr)
    assert all(torch.isfinite(p).all() for p in trainer.net.parameters())


def test_a_diverged_epoch_rolls_back_to_the_best_weights(monkeypatch):
    from ampnet.train import trainer as trainer_module
    train, val = _tiny_data()
    trainer = _tiny_trainer(epochs=3, patience=5)
    real_validate, scores = trainer.validate, []

    def worse_at_epoch_two(x, y, lengths):
        score = real_validate(x, y, lengths)
        scores.append(score)
        return [s * 100 for s in score] if len(scores) == 2 else score

    monkeypatch.setattr(trainer, "validate", worse_at_epoch_two)
    monkeypatch.setattr(trainer_module, "DIVERGED", 10.0)
    history = trainer.fit(train, val, show_progress=False)
    assert trainer.lr_scale == 0.5
    assert history.best_epoch != 2


def test_small_networks_train_on_one_thread_unless_told():
    import os
    from ampnet.train.trainer import ONE_THREAD_HIDDEN, TrainConfig, choose_threads
    assert choose_threads(TrainConfig(hidden=32)) == 1
    assert choose_threads(TrainConfig(hidden=ONE_THREAD_HIDDEN + 1)) == (os.cpu_count() or 1)
    assert choose_threads(TrainConfig(hidden=32, threads=3)) == 3


def test_optional_stft_term_trains():
    train, val = _tiny_data()
    trainer = _tiny_trainer(stft_weight=0.5)
    history = trainer.fit(train, val, show_progress=False)
    assert np.isfinite(history.best_val_esr) and history.epochs[0]["train_loss"] > 0


def test_clipping_is_reported_with_times(tmp_path):
    dry = guitar_like(6.0, seed=1)
    wet = device(dry)
    wet[3 * RATE:3 * RATE + 50] = 1.0
    pair = load_pair(*write_pair(tmp_path, dry, wet))
    warning = next(n for n in pair.notes if "full scale" in n)
    assert "3.00 s" in warning and "wet.wav" in warning


def test_a_float_file_above_full_scale_is_noted_not_called_clipped(tmp_path):
    dry = guitar_like(6.0, seed=1)
    dry[RATE:RATE + 3] = [1.5, -2.0, 1.2]  # a float file 6 dB hotter than full scale, say
    pair = load_pair(*write_pair(tmp_path, dry, device(dry)))
    note = next(n for n in pair.notes if "above full scale" in n)
    assert "dry.wav: 3 samples above full scale near 1.00 s (peak +6.0 dBFS)" in note
    assert not any("clipping?" in n and "dry.wav" in n for n in pair.notes)


def test_resample_option_converts_the_wet(tmp_path):
    import soxr
    dry = guitar_like(6.0, seed=1)
    wet44 = soxr.resample(device(dry), RATE, 44100).astype(np.float32)
    paths = write_pair(tmp_path, dry, wet44)
    sf.write(paths[1], wet44, 44100, subtype="FLOAT")
    pair = load_pair(*paths, resample=True)
    assert pair.sample_rate == RATE and any("resampled" in n for n in pair.notes)
    assert -2 <= pair.latency_samples <= 0  # soxr's filter is linear-phase: no delay, some pre-ringing


def test_slightly_longer_wet_is_trimmed_and_said(tmp_path):
    dry = guitar_like(6.0, seed=1)
    wet = np.concatenate([device(dry), np.zeros(RATE // 2, np.float32)])
    pair = load_pair(*write_pair(tmp_path, dry, wet))
    assert -2 <= pair.latency_samples <= 0
    assert pair.wet.size == pair.dry.size == dry.size + pair.latency_samples
    assert any("trimmed" in n for n in pair.notes)


def test_ctrl_c_keeps_the_best_model(tmp_path):
    import os
    import signal as signals
    import subprocess
    import sys
    import time

    dry = guitar_like(30.0, seed=5)
    dry_path, wet_path = write_pair(tmp_path, dry, device(dry))
    out = tmp_path / "model.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "ampnet", "train", str(dry_path), str(wet_path), "-o", str(out),
         "--hidden", "8", "--batch", "4", "--threads", "1", "--minutes", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()})
    checkpoint = out.with_suffix(".ckpt")
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), process.communicate()[1]
    process.send_signal(signals.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert load_model(out).metadata["validation_esr"] > 0
    report = json.loads((tmp_path / "model.report.json").read_text())
    assert "interrupted" in report["stopped_because"]


def test_validation_split_skips_a_silent_tail():
    from ampnet.train.data import Pair
    dry = np.concatenate([guitar_like(20.0, seed=1), np.zeros(6 * RATE, np.float32)])
    (train_dry, _), (val_dry, _), _ = split_validation(Pair(dry, dry, RATE))
    val_playing = np.count_nonzero(np.abs(val_dry[: val_dry.size - 6 * RATE]) > 1e-3)
    assert val_playing > 0.1 * 20 * RATE


@pytest.mark.parametrize("after, epochs_run", [(0.9, 4), (0.6, 3), (0.0, 2)])
def test_patience_waits_until_the_learning_rate_has_annealed(monkeypatch, after, epochs_run):
    """A stall while the learning rate is still high must not end a run: patience
    counts once the schedule (here 4 epochs: a quarter each) has run ``after`` of it."""
    from ampnet.train import trainer as trainer_module
    monkeypatch.setattr(trainer_module, "PATIENCE_AFTER", after)
    train, val = _tiny_data()
    trainer = _tiny_trainer(epochs=4, patience=1, minutes=60)
    real_validate, scores = trainer.validate, []

    def worse_after_the_first(x, y, lengths):
        scores.append(1)
        return [s * (1 if len(scores) == 1 else 5) for s in real_validate(x, y, lengths)]

    monkeypatch.setattr(trainer, "validate", worse_after_the_first)
    history = trainer.fit(train, val, show_progress=False)
    assert len(history.epochs) == epochs_run
    assert ("no improvement" in history.stopped_because) == (epochs_run < 4)


def test_a_folder_of_captures_trains_one_model_each_and_a_rerun_keeps_them(tmp_path, capsys):
    captures = tmp_path / "captures"
    for name, seed in (("amp", 1), ("pedal", 2)):
        (captures / name).mkdir(parents=True)
        dry = guitar_like(6.0, seed=seed)
        write_pair(captures / name, dry, device(dry))
    (captures / "notes").mkdir()  # no dry/wet: not a capture
    args = ["train", str(captures), "-o", str(tmp_path / "models"), "--hidden", "4",
            "--epochs", "1", "--batch", "4", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "training 2 model(s)" in out and "trained 2 of 2 model(s)" in out
    for name in ("amp", "pedal"):
        assert load_model(tmp_path / "models" / f"{name}.json").metadata["name"] == name
        assert (tmp_path / "models" / f"{name}.report.json").exists()
    before = (tmp_path / "models" / "amp.json").read_bytes()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 model(s) already in" in out and "training 0 model(s)" in out
    assert (tmp_path / "models" / "amp.json").read_bytes() == before
    assert main(["train", str(tmp_path / "models"), "-o", str(tmp_path / "x")]) == 2
    assert "no capture.toml and no NAME/dry.wav + NAME/wet.wav" in capsys.readouterr().err


def test_an_interrupted_set_of_captures_resumes_where_it_stopped(tmp_path):
    """Ctrl-C during the first capture's training: its best model so far is kept and
    marked interrupted, the second never started; the same command then continues the
    first from its checkpoint and trains the second."""
    import signal as signals
    import subprocess
    import sys
    import time

    captures = tmp_path / "captures"
    for name, seed in (("a-amp", 1), ("b-pedal", 2)):
        (captures / name).mkdir(parents=True)
        dry = guitar_like(6.0, seed=seed)
        write_pair(captures / name, dry, device(dry))
    models = tmp_path / "models"
    command = [sys.executable, "-m", "ampnet", "train", str(captures), "-o", str(models),
               "--hidden", "4", "--epochs", "6", "--batch", "4", "--threads", "1"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (models / "a-amp.ckpt").exists():  # the first epoch is done
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    run.send_signal(signals.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "Traceback" not in err, err
    assert "interrupted: a-amp kept its best model so far" in err
    assert json.loads((models / "a-amp.report.json").read_text())["stopped_because"].startswith("interrupted")
    assert not (models / "b-pedal.json").exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "trained 2 of 2 model(s)" in done.stdout
    for name in ("a-amp", "b-pedal"):
        report = json.loads((models / f"{name}.report.json").read_text())
        assert not report["stopped_because"].startswith("interrupted"), report["stopped_because"]


def test_a_manifest_of_pairs_trains_one_model_each(tmp_path, capsys):
    dry = guitar_like(6.0, seed=4)
    write_pair(tmp_path, dry, device(dry), names=("di.wav", "through-amp.wav"))
    manifest = tmp_path / "captures.toml"
    manifest.write_text("[[pair]]\nname = 'amp'\ndry = 'di.wav'\nwet = 'through-amp.wav'\n")
    assert main(["train", str(manifest), "-o", str(tmp_path / "models"), "--hidden", "4",
                 "--epochs", "1", "--batch", "4", "--threads", "1"]) == 0
    assert "trained 1 of 1 model(s)" in capsys.readouterr().out
    assert load_model(tmp_path / "models" / "amp.json").metadata["name"] == "amp"
    manifest.write_text("[[pair]]\nname = '../amp'\ndry = 'di.wav'\nwet = 'through-amp.wav'\n")
    assert main(["train", str(manifest), "-o", str(tmp_path / "models")]) == 2
    assert "name '../amp': a distinct file name" in capsys.readouterr().err
