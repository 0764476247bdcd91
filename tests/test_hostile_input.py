"""Hostile and broken input: nothing poisons the stream, nothing runs, nothing hangs.

A catalogue of broken files and arguments, each generated here (small), through the
real CLI: every one gets a one-line error naming the file and the problem (or, for
damaged audio, a warning and a clean output), a non-zero exit code where nothing
useful could be done, and no file is left behind. The non-finite guard is checked
in the chain (render) and in the compiled audio callback (live).
"""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ampnet import limits
from ampnet.cli import main
from ampnet.formats import export, save_model
from ampnet.host.chain import Chain
from ampnet.host.preset import load_spec
from ampnet.host.processors import Cabinet, NeuralModel, ToneStack
from ampnet.live import rt_kernel
from tests.signals import guitar_like, random_model, simplernn_document
from tests.test_resampler import Callback

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent
AMPNET = "import sys; from ampnet.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "model.json"
    save_model(random_model(8, 1, seed=3), path)
    return path


def one_error_line(capsys, *needles):
    """The captured stderr is one ``ampnet: error:`` line containing every needle."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("ampnet: error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def nam_doc():
    return json.loads((FIXTURES / "nam" / "lstm.nam").read_text())


def write_json(path, doc):
    path.write_text(json.dumps(doc))
    return path


# --- model files ------------------------------------------------------------------

HOSTILE_MODELS = {
    # name: (document or text, words the error must contain)
    "nam-ten-billion-layers": (lambda: {**nam_doc(), "config": {**nam_doc()["config"],
                                                                 "num_layers": 10 ** 10}},
                               "config.num_layers"),
    "nam-huge-hidden": (lambda: {**nam_doc(), "config": {**nam_doc()["config"],
                                                          "hidden_size": 10 ** 7}},
                        "config.hidden_size"),
    "nam-layers-as-text": (lambda: {**nam_doc(), "config": {**nam_doc()["config"],
                                                             "num_layers": "2"}},
                           "config.num_layers"),
    "nam-at-1-hz": (lambda: {**nam_doc(), "sample_rate": 1}, "sample_rate"),
    "nam-rate-as-text": (lambda: {**nam_doc(), "sample_rate": "fast"}, "sample_rate"),
    "nam-weights-not-numbers": (lambda: {**nam_doc(), "weights": ["x"] * len(nam_doc()["weights"])},
                                "weights"),
    "nam-weights-overflow": (lambda: {**nam_doc(), "weights": [1e39] * len(nam_doc()["weights"])},
                             "weights"),
    "nam-no-config": (lambda: {k: v for k, v in nam_doc().items() if k != "config"}, "config"),
    "aidax-gain-text": (lambda: {**aidax_doc(), "in_gain": "loud"}, "in_gain"),
    "aidax-gain-huge": (lambda: {**aidax_doc(), "out_gain": 1e6}, "out_gain"),
    "aidax-rate-1": (lambda: {**aidax_doc(), "metadata": {**aidax_doc()["metadata"],
                                                          "samplerate": "1"}},
                     "samplerate"),
    "aidax-skip-5": (lambda: {**aidax_doc(), "in_skip": 5}, "in_skip"),
    "aidax-three-layers": (lambda: {**aidax_doc(), "layers": aidax_doc()["layers"] * 2}, "layers"),
    "aidax-weights-flat": (lambda: {**aidax_doc(), "layers": [
        {**aidax_doc()["layers"][0], "weights": 5}, aidax_doc()["layers"][1]]}, "weights"),
    "guitarml-billion-layers": (lambda: {**simplernn_doc(), "model_data": {
        **simplernn_doc()["model_data"], "num_layers": 10 ** 9}}, "num_layers"),
    "guitarml-head-missing": (lambda: {**simplernn_doc(), "state_dict": {
        k: v for k, v in simplernn_doc()["state_dict"].items() if k != "lin.weight"}},
        "lin.weight"),
    "ampnet-knobs-not-a-list": (lambda: {**ampnet_doc(), "knobs": 7}, "knobs"),
    "ampnet-shape-not-a-list": (lambda: dict(ampnet_doc(), weights={
        **ampnet_doc()["weights"], "head.bias": {"shape": 1, "data": [0.0]}}), "head.bias"),
    "ampnet-rate-zero": (lambda: {**ampnet_doc(), "sample_rate": 0}, "sample_rate"),
    "ampnet-input-scale-zero": (lambda: {**ampnet_doc(), "input_scale": 0.0}, "input_scale"),
    "ampnet-knob-range-upside-down": (lambda: {**ampnet_doc(knobs=1), "knobs": [
        {"name": "gain", "default": 0.5, "min": 1.0, "max": 0.0}]}, "knobs[0]"),
    "deep-nesting": (lambda: "[" * 100000 + "]" * 100000, "JSON"),
    "huge-integer": (lambda: '{"format": "ampnet", "version": 1' + "0" * 6000 + "}", "JSON"),
    "top-level-list": (lambda: [1, 2, 3], "not a model format"),
}


def aidax_doc():
    model = random_model(8, 1, seed=5)
    probe = guitar_like(0.05)
    return export.to_aidax(model, probe)[0]


def simplernn_doc():
    return simplernn_document(random_model(8, 1, seed=6))


def ampnet_doc(knobs=0):
    from ampnet.formats.ampnet_json import model_to_dict
    return json.loads(json.dumps(model_to_dict(random_model(8, 1, knobs=knobs, seed=7))))


@pytest.mark.parametrize("case", sorted(HOSTILE_MODELS))
def test_hostile_model_files_get_one_line_and_exit_2(tmp_path, case, capsys):
    make, field = HOSTILE_MODELS[case]
    content = make()
    path = tmp_path / f"{case}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    started = time.monotonic()
    assert main(["info", str(path)]) == 2
    assert time.monotonic() - started < 20  # refused, not computed (a hang would time out)
    one_error_line(capsys, str(path), field)


def test_the_size_limit_counts_weights_as_the_model_does():
    from ampnet.formats.model import recurrent_parameter_count
    for hidden, layers, knobs in ((8, 1, 0), (24, 3, 2), (384, 2, 0)):
        model = random_model(hidden, layers, knobs=knobs)
        assert recurrent_parameter_count(hidden, layers, 1 + knobs) == model.parameter_count
    assert recurrent_parameter_count(384, 2) <= limits.MAX_PARAMETERS < recurrent_parameter_count(800, 1)


def test_the_fixtures_behind_the_catalogue_load(tmp_path):
    """The valid documents the catalogue breaks load as they are, so each case fails for
    its own reason."""
    from ampnet.formats import load_model
    for name, doc in (("a.nam", nam_doc()), ("b.json", aidax_doc()), ("c.json", simplernn_doc()),
                      ("d.json", ampnet_doc(knobs=1))):
        load_model(write_json(tmp_path / name, doc))


def test_an_oversized_model_file_is_refused_before_it_is_read(tmp_path, capsys):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:  # sparse: costs no disk and would cost GBs to parse
        f.truncate(limits.MAX_MODEL_FILE_BYTES + 1)
    tracemalloc.start()
    try:
        assert main(["info", str(path)]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2 ** 20
    one_error_line(capsys, str(path), "too large")


def test_a_model_with_nan_weights_is_refused(tmp_path, capsys):
    doc = ampnet_doc()
    doc["weights"]["head.weight"]["data"][3] = float("nan")
    path = write_json(tmp_path / "nan.json", doc)
    assert main(["render", str(path), str(tmp_path / "x.wav"), "-o", str(tmp_path / "y.wav")]) == 2
    one_error_line(capsys, str(path), "head.weight", "NaN")


# --- presets and impulse responses --------------------------------------------------

def test_hostile_presets_get_one_line(tmp_path, model_path, capsys):
    cases = {
        "many.toml": ("[[chain]]\ntype = 'gain'\n" * (limits.MAX_PRESET_ENTRIES + 1), "chain"),
        "name.toml": ("name = 5\n[[chain]]\ntype = 'gain'\n", "name"),
        "type.toml": ("[[chain]]\ntype = ['gain']\n", "type"),
        "value.toml": ("[[chain]]\ntype = 'gain'\ngain_db = 'loud'\n", "gain_db"),
        "nested.toml": ("a = " + "[" * 5000 + "]" * 5000 + "\n", "TOML"),
        "binary.toml": (b"\xff\xfe\x00garbage", "TOML"),
        "model-is-a-preset.toml": ("[[chain]]\ntype = 'model'\npath = 'many.toml'\n", "JSON"),
    }
    for name, (text, field) in cases.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for name, (_, field) in cases.items():
        assert main(["render", str(tmp_path / name), str(tmp_path / "in.wav"), "-o",
                     str(tmp_path / "out.wav")]) == 2, name
        # The line names the file at fault: the preset, or the model file it points to.
        at_fault = "many.toml" if name == "model-is-a-preset.toml" else name
        one_error_line(capsys, str(tmp_path / at_fault), field)
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(limits.MAX_PRESET_FILE_BYTES + 1)
    assert main(["render", str(big), str(tmp_path / "in.wav"), "-o", str(tmp_path / "o.wav")]) == 2
    one_error_line(capsys, str(big), "too large")


@pytest.mark.parametrize("kind, file, problem", [("model", "nothere.json", "no such model file"),
                                                 ("cabinet", "nothere.wav", "not found")])
def test_a_preset_naming_a_missing_file_names_the_preset_and_the_entry(tmp_path, model_path,
                                                                         kind, file, problem, capsys):
    """A user with twenty presets needs both: which preset, which entry, which file."""
    rig = tmp_path / "rig.toml"
    rig.write_text(f"[[chain]]\ntype = 'gain'\n[[chain]]\ntype = '{kind}'\npath = '{file}'\n")
    assert main(["render", str(rig), str(tmp_path / "in.wav"), "-o", str(tmp_path / "o.wav")]) == 2
    one_error_line(capsys, f"{rig}: chain[2] ({kind})", file, problem)
    assert not (tmp_path / "o.wav").exists()


def test_a_long_impulse_response_is_refused_from_its_header(tmp_path):
    rate = 48000
    path = tmp_path / "long.wav"
    seconds = 3 * limits.MAX_IR_SECONDS
    sf.write(str(path), np.full(int(seconds * rate), 0.01, np.float32), rate, subtype="PCM_16")
    tracemalloc.start()
    try:
        with pytest.raises(Exception, match="long") as caught:
            Cabinet(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{path}" in str(caught.value)
    # Read whole as float64 it would take 11.5 MB; it is never read.
    assert peak < 2 * 2 ** 20


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_an_impulse_response_with_non_finite_samples_is_refused(tmp_path, bad):
    ir = np.exp(-np.arange(2048) / 200.0).astype(np.float32)
    ir[100] = bad
    path = tmp_path / "ir.wav"
    sf.write(str(path), ir, 48000, subtype="FLOAT")
    with pytest.raises(Exception, match="NaN or infinite.*sample 100"):
        Cabinet(path)


# --- the non-finite guard ---------------------------------------------------------------

def guarded_chain(tmp_path, channels=1, max_block=64):
    ir = np.exp(-np.arange(3000) / 300.0) * np.random.default_rng(0).standard_normal(3000)
    sf.write(str(tmp_path / "cab.wav"), ir.astype(np.float32), 48000, subtype="FLOAT")
    processors = [NeuralModel(random_model(8, 1, seed=9)), ToneStack(bass_db=4.0),
                  Cabinet(tmp_path / "cab.wav")]
    return Chain(processors, 48000, channels=channels, max_block=max_block)


def test_nan_input_never_reaches_the_chains_state(tmp_path):
    """One NaN, a burst of infinities: the output equals that of the same input with
    silence in their place, bit for bit, and the count and first position are reported."""
    chain = guarded_chain(tmp_path)
    x = guitar_like(1.0)
    damaged = x.copy()
    damaged[1000] = np.nan
    damaged[30000:30064] = np.inf
    damaged[30100] = -np.inf
    cleaned = np.where(np.isfinite(damaged), damaged, 0.0).astype(np.float32)
    out = chain.process(damaged.copy())
    assert chain.health() == {"nonfinite": 66, "first_frame": 1000, "first_channel": 0, "resets": 0}
    chain.reset()
    assert chain.health()["nonfinite"] == 0
    np.testing.assert_array_equal(out, chain.process(cleaned.copy()))
    assert np.all(np.isfinite(out))


def test_a_processor_whose_state_overflows_is_reset_and_counted(tmp_path):
    """A finite but absurd sample (3e38) overflows the filters: the processor is put back
    to its initial state, the reset is counted, and the output is finite throughout and
    back to normal once the overflow's echo has passed."""
    chain = guarded_chain(tmp_path)
    x = guitar_like(1.0)
    spiked = x.copy()
    spiked[5000] = 3e38
    out = chain.process(spiked.copy())
    health = chain.health()
    assert health["resets"] >= 1 and health["nonfinite"] == 0
    assert np.all(np.isfinite(out))
    chain.reset()
    clean = chain.process(x.copy())
    assert np.max(np.abs(out[-4000:] - clean[-4000:])) < 1e-3  # recovered


def test_render_reports_non_finite_input_per_file_and_renders_the_rest(tmp_path, model_path, capsys):
    x = np.stack([guitar_like(1.0, seed=1), guitar_like(1.0, seed=2)])
    x[1, 24000] = np.nan
    x[0, 36000:36010] = np.inf
    src = tmp_path / "damaged.wav"
    sf.write(str(src), x.T, 48000, subtype="FLOAT")
    clean = tmp_path / "clean.wav"
    sf.write(str(clean), np.where(np.isfinite(x), x, 0.0).T, 48000, subtype="FLOAT")
    assert main(["render", str(model_path), str(src), str(clean), "--out-dir",
                 str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "11 NaN or infinite input sample(s) replaced by silence, the first at 0.500 s " \
           "(frame 24000, channel 2)" in out
    assert out.count("NaN or infinite") == 1  # the clean file has no warning
    rendered, _ = sf.read(str(tmp_path / "out" / "damaged.wav"), dtype="float32")
    reference, _ = sf.read(str(tmp_path / "out" / "clean.wav"), dtype="float32")
    np.testing.assert_array_equal(rendered, reference)


def test_render_with_resampling_guards_before_the_resampler(tmp_path, model_path, capsys):
    x = guitar_like(1.0, 44100)
    x[10000] = np.nan
    src = tmp_path / "in.wav"
    sf.write(str(src), x, 44100, subtype="FLOAT")
    assert main(["render", str(model_path), str(src), "-o", str(tmp_path / "out.wav")]) == 0
    assert "1 NaN or infinite input sample(s)" in capsys.readouterr().out
    y, _ = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    assert np.all(np.isfinite(y)) and np.max(np.abs(y[20000:])) > 0.01  # not silenced


def test_nan_bursts_through_the_audio_callback_recover_at_once(tmp_path):
    """The compiled PortAudio callback, fed as PortAudio feeds it, at the model's rate and
    through the resampler: after each NaN burst the output is what silence in its place
    gives, and the status count has every bad sample."""
    for device_rate in (48000, 44100):
        runs = []
        for burst in (np.nan, 0.0):
            callback = Callback(device_rate, 64, [NeuralModel(random_model(8, 1, seed=2)),
                                                  ToneStack(mid_db=6.0)])
            x = guitar_like(0.5, device_rate)
            x[2000:2100] = burst
            x[9000] = burst
            out = np.zeros((x.size, 2), np.float32)
            for start in range(0, x.size - 63, 64):
                callback(np.ascontiguousarray(x[start:start + 64, None]), out[start:start + 64])
            runs.append((out, int(callback.stats[rt_kernel.NONFINITE_IN]), callback.chain.health()))
        (damaged, count, health), (silenced, zero, _) = runs
        assert count == 101 and zero == 0 and health["resets"] == 0
        np.testing.assert_array_equal(damaged, silenced)
        assert np.all(np.isfinite(damaged)) and np.max(np.abs(damaged[10000:])) > 0.01


# --- audio files, batches, disks and signals --------------------------------------------

def test_a_truncated_wav_is_reported_and_nothing_is_written(tmp_path, model_path, capsys):
    src = tmp_path / "whole.wav"
    sf.write(str(src), guitar_like(1.0), 48000, subtype="PCM_16")
    data = src.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:len(data) // 2])
    code = main(["render", str(model_path), str(cut), str(src), "--out-dir", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{cut}: truncated" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["ampnet-render.jsonl", "whole.wav"]


def test_a_damaged_flac_is_reported_and_nothing_is_written(tmp_path, model_path, capsys):
    src = tmp_path / "whole.flac"
    sf.write(str(src), np.random.default_rng(0).uniform(-0.5, 0.5, 200000).astype(np.float32),
             48000, subtype="PCM_16")
    data = src.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[:len(data) // 2])
    assert main(["render", str(model_path), str(cut), "-o", str(tmp_path / "o.flac")]) == 1
    err = capsys.readouterr().err
    assert str(cut) in err and ("damaged" in err or "truncated" in err) and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.flac", "model.json", "whole.flac"]


def test_a_missing_input_does_not_stop_the_batch(tmp_path, model_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(str(good), guitar_like(0.2), 48000)
    code = main(["render", str(model_path), str(tmp_path / "gone.wav"), str(good),
                 "--out-dir", str(tmp_path / "o")])
    assert code == 1
    assert f"{tmp_path / 'gone.wav'}: no such file" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["ampnet-render.jsonl", "good.wav"]


def test_render_refuses_a_block_size_that_would_exhaust_memory(tmp_path, model_path, capsys):
    assert main(["render", str(model_path), str(tmp_path / "in.wav"), "-o", str(tmp_path / "o.wav"),
                 "--blocksize", str(10 ** 9)]) == 2
    one_error_line(capsys, "--blocksize")


def test_convert_refuses_an_audio_extension(tmp_path, model_path, capsys):
    for name in ("out.wav", "out.nam.txt", "out"):
        assert main(["convert", str(model_path), "-o", str(tmp_path / name)]) == 2
        one_error_line(capsys, name, ".json")
        assert not (tmp_path / name).exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs, where this machine lets the test mount one (root in a container)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_named_and_leaves_nothing(tmp_path, small_disk, model_path, capsys):
    src = tmp_path / "long.wav"
    sf.write(str(src), guitar_like(20.0), 48000, subtype="FLOAT")  # 3.8 MB out
    assert main(["render", str(model_path), str(src), "-o", str(small_disk / "out.wav")]) == 1
    err = capsys.readouterr().err
    assert f"{small_disk / 'out.wav'}: the disk is full" in err and "Traceback" not in err
    assert list(small_disk.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stop_signal_leaves_no_temporary_or_partial_file(tmp_path, model_path, sig, jobs):
    inputs = []
    for i in range(3):
        path = tmp_path / f"in{i}.wav"
        sf.write(str(path), np.tile(guitar_like(10.0, seed=i), 30), 48000, subtype="PCM_16")
        inputs.append(str(path))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", AMPNET, "render", str(model_path),
                                *inputs, "--out-dir", str(out), "--jobs", str(jobs)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until a temporary output exists
    assert process.poll() is None, "the render ended before the signal"
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + sig
    assert "Traceback" not in err
    assert list(out.iterdir()) == []


# --- training ----------------------------------------------------------------------

@pytest.mark.parametrize("arguments, words", [
    (["--hidden", "1100"], "--hidden 1100"), (["--hidden", "0"], "--hidden 0"),
    (["--hidden", "800"], "weights, more than a model file holds"),
    (["--layers", "9"], "--layers 9"), (["--batch", "-1"], "--batch -1"),
    (["--minutes", "0"], "--minutes"), (["--minutes", "nan"], "--minutes"),
    (["--lr", "-1"], "--lr"), (["--epochs", "0"], "--epochs"),
    (["--val-fraction", "0.9"], "--val-fraction"), (["--pre-emphasis", "1"], "--pre-emphasis 1"),
])
def test_train_refuses_impossible_settings_before_any_work(tmp_path, arguments, words, capsys):
    assert main(["train", str(tmp_path / "no-dry.wav"), str(tmp_path / "no-wet.wav"), "-o",
                 str(tmp_path / "m.json"), *arguments]) == 2
    one_error_line(capsys, words)


@pytest.mark.parametrize("seconds, latency", [(0.3, []), (0.5, []), (1.0, ["--latency", "0"]),
                                              (1.9, ["--latency", "0"]), (1.9, [])])
def test_train_refuses_a_pair_too_short_to_learn_from(tmp_path, seconds, latency, capsys):
    """With or without --latency: the length is checked before the latency is sought."""
    pytest.importorskip("torch")
    dry = guitar_like(seconds)
    sf.write(str(tmp_path / "dry.wav"), dry, 48000)
    sf.write(str(tmp_path / "wet.wav"), np.tanh(3 * dry), 48000)
    assert main(["train", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "-o",
                 str(tmp_path / "m.json"), *latency]) == 2
    one_error_line(capsys, "dry.wav", "record at least")
    assert not (tmp_path / "m.json").exists()


def test_train_refuses_a_recording_with_nan(tmp_path, capsys):
    pytest.importorskip("torch")
    dry = guitar_like(5.0)
    wet = np.tanh(3 * dry)
    wet[96000] = np.nan
    sf.write(str(tmp_path / "dry.wav"), dry, 48000, subtype="FLOAT")
    sf.write(str(tmp_path / "wet.wav"), wet, 48000, subtype="FLOAT")
    assert main(["train", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "-o",
                 str(tmp_path / "m.json")]) == 2
    one_error_line(capsys, "wet.wav", "NaN", "2.000 s")


@pytest.fixture
def short_pair(tmp_path):
    dry = guitar_like(4.0)
    sf.write(str(tmp_path / "dry.wav"), dry, 48000)
    sf.write(str(tmp_path / "wet.wav"), np.tanh(3 * dry), 48000)
    return [str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav")]


TRAIN_FAST = ["--epochs", "1", "--hidden", "4", "--batch", "4", "--latency", "0"]


def test_a_crafted_checkpoint_runs_no_code(tmp_path, short_pair, capsys):
    pytest.importorskip("torch")
    witness = tmp_path / "code-ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {witness}",))

    (tmp_path / "m.ckpt").write_bytes(pickle.dumps({"config": Exploit()}))
    assert main(["train", *short_pair, "-o", str(tmp_path / "m.json"), "--resume",
                 *TRAIN_FAST]) == 2
    one_error_line(capsys, "m.ckpt", "not an ampnet checkpoint")
    assert not witness.exists()


def test_damaged_and_mismatched_checkpoints_say_what_is_wrong(tmp_path, short_pair, capsys):
    torch = pytest.importorskip("torch")
    output = str(tmp_path / "m.json")
    assert main(["train", *short_pair, "-o", output, *TRAIN_FAST]) == 0
    capsys.readouterr()
    checkpoint = tmp_path / "m.ckpt"
    good = checkpoint.read_bytes()
    assert main(["train", *short_pair, "-o", output, "--resume", *TRAIN_FAST[:2], "--hidden", "6",
                 *TRAIN_FAST[4:]]) == 2
    one_error_line(capsys, "m.ckpt", "--hidden 4 there, 6 now")
    checkpoint.write_bytes(good[:len(good) // 2])
    assert main(["train", *short_pair, "-o", output, "--resume", *TRAIN_FAST]) == 2
    one_error_line(capsys, "m.ckpt", "damaged")
    torch.save({"just": torch.zeros(3)}, checkpoint)
    assert main(["train", *short_pair, "-o", output, "--resume", *TRAIN_FAST]) == 2
    one_error_line(capsys, "m.ckpt", "not an ampnet checkpoint")


def test_the_spec_loader_reads_presets_and_models_as_data_only(tmp_path, model_path):
    """A preset naming a Python file as its model gets an error, never an import."""
    witness = tmp_path / "ran"
    script = tmp_path / "evil.py"
    script.write_text(f"open({str(witness)!r}, 'w').write('x')\n")
    preset = tmp_path / "p.toml"
    preset.write_text("[[chain]]\ntype = 'model'\npath = 'evil.py'\n")
    with pytest.raises(Exception, match="JSON"):
        load_spec(preset)
    assert not witness.exists()


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path):
    """``ampnet info M | head -1``: the pipe closes; no error line, no traceback."""
    import subprocess
    import sys
    from ampnet.formats import save_model
    from tests.signals import random_model
    save_model(random_model(8, 1, knobs=2), tmp_path / "m.json")
    info = subprocess.Popen([sys.executable, "-m", "ampnet", "info", str(tmp_path / "m.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    info.stdout.read(5)
    info.stdout.close()  # the reader leaves before the output ends
    _, err = info.communicate()
    assert err == b""
