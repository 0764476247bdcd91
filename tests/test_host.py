"""The host: each processor against an independent reference, chains in blocks,
smoothing, bypass, presets and their errors."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ampnet.engine import Engine, lstm_kernel
from ampnet.errors import AmpnetError
from ampnet.formats import save_model
from ampnet.host import kernels
from ampnet.host.chain import Chain
from ampnet.host.preset import load_preset, load_spec
from ampnet.host.processors import (Cabinet, DCBlocker, Gain, Mix, NeuralModel, NoiseGate,
                                    ToneStack, one_pole)
from ampnet.host.loudness import model_loudness_dbfs
from tests.allocation import repeated_calls, traced_growth_and_peak
from tests.signals import guitar_like, random_model

signal = pytest.importorskip("scipy.signal")

RATE = 48000
AUDIO = guitar_like(3.0, seed=3)


def run(processors, audio=AUDIO, rate=RATE):
    return Chain(processors, rate).process(audio.copy())


def run_in_blocks(chain, audio, sizes):
    chain.reset()
    out = np.empty_like(audio)
    start = 0
    for size in itertools.cycle(sizes):
        if start >= audio.shape[-1]:
            break
        part = np.array(audio[..., start:start + size])  # a copy: process() works in place
        out[..., start:start + size] = chain.process(part)
        start += size
    return out


def write_ir(path, seconds, rate=RATE, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    ir = rng.standard_normal(t.size) * np.exp(-t / (seconds / 6))
    sf.write(str(path), (0.5 * ir / np.abs(ir).max()).astype(np.float32), rate, subtype="FLOAT")
    return path


# --- each processor against an independent reference ---------------------------------

def test_tone_stack_matches_scipy_lfilter_and_has_the_gains_it_says():
    eq = ToneStack(bass_db=6, bass_hz=150, mid_db=-5, mid_hz=800, mid_q=1.5, treble_db=4,
                   presence_db=-3, presence_hz=4500, presence_q=2)
    reference = AUDIO.astype(np.float64)
    for s in eq.sections(RATE):
        reference = signal.lfilter(s[:3], [1.0, *s[3:]], reference)
    assert np.abs(run([eq]) - reference).max() < 1e-5
    # The RBJ designs do what the parameters say (scipy.signal.freqz as the judge).
    bass, mid, treble, presence = eq.sections(RATE)

    def db_at(section, hz):
        _, h = signal.freqz(section[:3], [1.0, *section[3:]], worN=[hz], fs=RATE)
        return 20 * np.log10(abs(h[0]))
    assert db_at(bass, 5) == pytest.approx(6, abs=0.05)
    assert db_at(bass, 15000) == pytest.approx(0, abs=0.05)
    assert db_at(mid, 800) == pytest.approx(-5, abs=1e-6)
    assert db_at(treble, 23000) == pytest.approx(4, abs=0.05)
    assert db_at(presence, 4500) == pytest.approx(-3, abs=1e-6)


def test_dc_blocker_matches_scipy_and_removes_dc():
    blocker = DCBlocker(cutoff_hz=10)
    (b0, b1, b2, a1, a2), = blocker.sections(RATE)
    reference_b, reference_a = signal.butter(1, 10, "highpass", fs=RATE)
    np.testing.assert_allclose([b0, b1, a1], [reference_b[0], reference_b[1], reference_a[1]], atol=1e-12)
    with_dc = AUDIO + np.float32(0.2)
    out = run([blocker], with_dc)
    assert np.abs(out - signal.lfilter(reference_b, reference_a, with_dc.astype(np.float64))).max() < 1e-5
    assert abs(out[-RATE // 2:].mean()) < 1e-3


@pytest.mark.parametrize("ir_seconds, ir_rate, partition", [(0.5, RATE, 256), (0.003, RATE, 256),
                                                            (0.2, 44100, 64)])
def test_cabinet_matches_scipy_fftconvolve(tmp_path, ir_seconds, ir_rate, partition):
    cab = Cabinet(write_ir(tmp_path / "ir.wav", ir_seconds, ir_rate), partition=partition)
    ir = cab.impulse_response(RATE)
    assert ir.size == pytest.approx(ir_seconds * RATE, abs=2)  # resampled to the run rate
    assert np.sum(ir ** 2) == pytest.approx(1.0)  # normalised to unit energy
    reference = signal.fftconvolve(AUDIO.astype(np.float64), ir)[:AUDIO.size]
    out = run([cab])
    assert np.abs(out - reference).max() < 1e-5
    # No added latency: an impulse comes out as the IR itself from sample 0.
    impulse = np.zeros(4096, dtype=np.float32)
    impulse[0] = 1.0
    response = run([cab], impulse)
    n = min(ir.size, 4096)
    assert np.abs(response[:n] - ir[:n]).max() < 1e-6


def reference_gate(dry, wet, threshold_db, attack_ms, hold_ms, release_ms, detector_ms=10.0):
    """The gate's logic written out sample by sample, in float64."""
    threshold = 10 ** (threshold_db / 20)
    attack, release = one_pole(attack_ms, RATE), one_pole(release_ms, RATE)
    hold, decay = round(hold_ms * 1e-3 * RATE), np.exp(-1 / (detector_ms * 1e-3 * RATE))
    envelope = gain = hold_left = 0.0
    out = np.empty(dry.size)
    for n in range(dry.size):
        envelope = max(abs(float(dry[n])), envelope * decay)
        if envelope >= threshold:
            hold_left, target = hold, 1.0
        elif hold_left > 0:
            hold_left, target = hold_left - 1, 1.0
        else:
            target = 0.0
        gain += (target - gain) * (attack if target > gain else release)
        out[n] = wet[n] * gain
    return out


def test_gate_detects_on_the_chain_input_and_gates_after_the_model():
    # Notes separated by silence with hiss: the model amplifies the hiss 30 dB, the gate
    # (detecting on the quiet input, not on the loud model output) mutes it.
    rng = np.random.default_rng(4)
    dry = np.zeros(RATE * 2, dtype=np.float32)
    dry[:RATE // 2] = guitar_like(0.5, seed=5)
    dry[RATE:RATE + RATE // 2] = guitar_like(0.5, seed=6)
    dry += (0.0005 * rng.standard_normal(dry.size)).astype(np.float32)
    settings = dict(threshold_db=-50, attack_ms=1, hold_ms=30, release_ms=20)
    boost = Gain(gain_db=30)
    out = run([boost, NoiseGate(**settings)], dry)
    wet = dry.astype(np.float64) * 10 ** (30 / 20)
    assert np.abs(out - reference_gate(dry, wet, **settings)).max() < 1e-5
    silent = slice(RATE // 2 + RATE // 5, RATE - 10)
    assert np.abs(out[silent]).max() < 1e-4 < np.abs(run([boost], dry)[silent]).max()


def test_gain_and_mix_are_what_they_say():
    np.testing.assert_allclose(run([Gain(gain_db=-6)]), AUDIO * 10 ** (-6 / 20), atol=1e-7)
    mixed = run([Gain(gain_db=12), Mix(wet=0.25)])
    np.testing.assert_allclose(mixed, AUDIO * (0.75 + 0.25 * 10 ** (12 / 20)), atol=1e-6)


def test_model_in_a_chain_equals_the_engine():
    model = random_model(16, 2, seed=2)
    np.testing.assert_array_equal(run([NeuralModel(model)]), Engine(model).process(AUDIO.copy()))


def test_loudness_normalisation_levels_models():
    quiet = random_model(16, 1, seed=7, output_gain=0.1)
    loud = random_model(16, 1, seed=8, output_gain=2.0)
    levels = []
    for model in (quiet, loud):
        out = run([NeuralModel(model, normalize=True)])
        levels.append(20 * np.log10(np.sqrt(np.mean(out[RATE // 4:].astype(np.float64) ** 2))))
    assert abs(model_loudness_dbfs(loud) - model_loudness_dbfs(quiet)) > 20
    assert abs(levels[0] - levels[1]) < 1.5  # same level on guitar it has not seen


# --- chains ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def full_chain(tmp_path_factory):
    ir = write_ir(tmp_path_factory.mktemp("ir") / "cab.wav", 0.5)
    return [NoiseGate(threshold_db=-45), Gain(gain_db=3), NeuralModel(random_model(16, 1, knobs=1, seed=9)),
            ToneStack(bass_db=3, mid_db=-4, treble_db=2, presence_db=3), Cabinet(ir), DCBlocker(),
            Mix(wet=0.9), Gain(gain_db=-3)]


@pytest.mark.parametrize("sizes", [[1], [64], [4096], [7, 1, 300, 64, 2049, 13]], ids=str)
def test_chain_in_blocks_equals_one_pass(full_chain, sizes):
    stereo = np.ascontiguousarray(np.stack([AUDIO, guitar_like(3.0, seed=12)]))
    chain = Chain(full_chain, RATE, channels=2, max_block=512)
    whole = run_in_blocks(chain, stereo, [stereo.shape[1]])
    np.testing.assert_array_equal(run_in_blocks(chain, stereo, sizes), whole)
    # Each channel has its own state: the right channel alone gives the same result.
    mono = Chain(full_chain, RATE).process(stereo[1].copy())
    np.testing.assert_array_equal(whole[1], mono)


def test_chain_process_allocates_nothing(full_chain):
    chain = Chain(full_chain, RATE, channels=2, max_block=64)
    block, out = np.zeros((2, 64), dtype=np.float32), np.zeros((2, 64), dtype=np.float32)
    mono_chain = Chain(full_chain, RATE, max_block=64)
    mono, mono_out = np.zeros(64, dtype=np.float32), np.zeros(64, dtype=np.float32)
    grown, peak = traced_growth_and_peak(
        repeated_calls((chain.process, block, out), (mono_chain.process, mono, mono_out)), 100, 1000)
    assert sum(d.size_diff for d in grown) < 1024, grown[0].traceback.format()
    assert peak < 1024


def test_parameter_changes_glide_without_clicks():
    steady = np.full(RATE, 0.5, dtype=np.float32)
    chain = Chain([Gain()], RATE, max_block=64)
    out = np.empty_like(steady)
    for start in range(0, RATE, 64):
        if start == RATE // 2:
            chain.set(0, "gain_db", -20.0)
        out[start:start + 64] = chain.process(steady[start:start + 64].copy())
    assert out[RATE // 2 - 1] == pytest.approx(0.5)
    assert np.abs(np.diff(out)).max() < 0.5 * 0.9 / (0.02 * RATE)  # no step: a glide over ~20 ms
    assert out[-1] == pytest.approx(0.05, rel=1e-6)  # and it gets there


def test_knob_change_glides_and_reaches_the_new_value():
    model = random_model(8, 1, knobs=1, seed=10)
    chain = Chain([NeuralModel(model)], RATE, max_block=64)
    at_start = Engine(model)
    at_end = Engine(model)
    at_end.knobs[0] = 0.9
    chain.process(AUDIO[:RATE].copy())
    at_start.process(AUDIO[:RATE].copy())
    chain.set(0, "knob0", 0.9)
    first = chain.process(AUDIO[RATE:RATE + 16].copy())
    np.testing.assert_allclose(first, at_start.process(AUDIO[RATE:RATE + 16].copy()), atol=0.05)
    chain.process(AUDIO[RATE + 16:2 * RATE].copy())
    at_end.process(AUDIO[:2 * RATE].copy())
    # Long after the change the model reads the new value exactly (its input header)...
    table, f32 = chain.kernel_arrays()[:2]
    assert f32[table[0, kernels.F32] + lstm_kernel.KNOBS] == np.float32(0.9)
    # ...and sounds like the model run at that value all along (up to its memory of the past).
    late = np.abs(chain.process(AUDIO[2 * RATE:].copy()) - at_end.process(AUDIO[2 * RATE:].copy()))
    assert late[-RATE // 2:].max() < 1e-3


def test_bypass_crossfades_to_the_input_and_back():
    chain = Chain([Gain(gain_db=-40)], RATE, max_block=64)
    steady = np.full(RATE, 0.5, dtype=np.float32)
    chain.set_bypass(0, True)
    out = chain.process(steady.copy())
    assert np.abs(np.diff(out)).max() < 0.01 and out[-1] == pytest.approx(0.5)
    chain.set_bypass(0, False)
    assert chain.process(steady.copy())[-1] == pytest.approx(0.005, rel=1e-5)


def test_set_refuses_unknown_and_out_of_range_parameters():
    chain = Chain([ToneStack()], RATE)
    with pytest.raises(ValueError, match="unknown parameter 'volume'.*bass_db"):
        chain.set(0, "volume", 1.0)
    with pytest.raises(ValueError, match="out of range: -24 to 24 dB"):
        chain.set(0, "bass_db", 40.0)


# --- presets ---------------------------------------------------------------------------

def write_preset(folder, text):
    path = folder / "preset.toml"
    path.write_text(text)
    return path


def test_preset_builds_the_chain_with_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    model = random_model(8, 1, knobs=1, seed=11)
    save_model(model, tmp_path / "sub" / "amp.json")
    write_ir(tmp_path / "sub" / "cab.wav", 0.1)
    path = write_preset(tmp_path, """
name = "test rig"
[[chain]]
type = "gate"
threshold_db = -70
[[chain]]
type = "model"
path = "sub/amp.json"
knob0 = 0.8
[[chain]]
type = "cabinet"
path = "sub/cab.wav"
bypass = true
""")
    spec = load_preset(path)
    assert spec.name == "test rig" and spec.sample_rate == RATE
    chain = spec.build(RATE)
    assert [p.type_name for p in chain.processors] == ["gate", "model", "cabinet"]
    assert chain.processors[1].values["knob0"] == 0.8 and chain.bypassed(2)
    engine = Engine(model)
    engine.knobs[0] = 0.8
    loud = guitar_like(1.0, seed=13)  # well above the gate's threshold from the start
    expected = NoiseGate(threshold_db=-70)  # the gate's attack is the only difference
    np.testing.assert_allclose(chain.process(loud.copy()),
                               run([expected, NeuralModel(model, knob0=0.8)], loud), atol=1e-7)


@pytest.mark.parametrize("text, message", [
    ("[[chain]]\ntype = 'fuzz'\n", r"chain\[1\]\.type: 'fuzz' is not a processor type \(allowed: cabinet, "),
    ("[[chain]]\ntype = 'gate'\nthreshold = -50\n", r"chain\[1\] \(gate\): unknown parameter 'threshold'"),
    ("[[chain]]\ntype = 'eq'\nbass_db = 'loud'\n", r"chain\[1\] \(eq\): bass_db must be a number \(dB\)"),
    ("[[chain]]\ntype = 'gain'\ngain_db = 100\n", r"gain_db = 100 is out of range: -96 to 48 dB"),
    ("[[chain]]\ntype = 'model'\n", r"chain\[1\] \(model\)\.path: give the file"),
    ("[[chain]]\ntype = 'cabinet'\npath = 'nope.wav'\n", r"nope.wav: impulse response not found"),
    ("[[chain]]\ntype = 'model'\npath = 'nope.json'\n", r"nope.json"),
    ("[[chain]]\ntype = 'gain'\nbypass = 'yes'\n", r"chain\[1\]\.bypass: must be true or false"),
    ("[chain\ntype = 'gain'\n", r"not a valid TOML preset"),
    ("name = 'x'\n", r"chain: needs one or more \[\[chain\]\] tables"),
    ("colour = 'red'\n[[chain]]\ntype = 'gain'\n", r"unknown key\(s\) colour \(allowed: name, chain\)"),
])
def test_preset_errors_name_the_file_the_key_and_what_is_allowed(tmp_path, text, message):
    path = write_preset(tmp_path, text)
    with pytest.raises(AmpnetError, match=message) as err:
        load_spec(path)
    assert str(path.parent) in str(err.value)


def test_param_sets_a_knob_and_unknown_knobs_are_named(tmp_path):
    save_model(random_model(8, 1, knobs=1, seed=11), tmp_path / "amp.json")
    spec = load_spec(tmp_path / "amp.json", ["knob0=0.3"])
    assert spec.processors[0].values["knob0"] == 0.3
    with pytest.raises(AmpnetError, match=r"--param drive: no model .* \(knobs: knob0\)"):
        load_spec(tmp_path / "amp.json", ["drive=0.3"])
    with pytest.raises(AmpnetError, match=r"--param knob0=2: knob0 = 2 is out of range: 0 to 1"):
        load_spec(tmp_path / "amp.json", ["knob0=2"])
    with pytest.raises(AmpnetError, match="write NAME=VALUE"):
        load_spec(tmp_path / "amp.json", ["knob0"])


def test_render_takes_a_preset_and_a_bad_one_fails_in_one_line(tmp_path):
    model = random_model(8, 1, seed=12)
    save_model(model, tmp_path / "amp.json")
    write_ir(tmp_path / "cab.wav", 0.2)
    preset = write_preset(tmp_path, "[[chain]]\ntype='model'\npath='amp.json'\n"
                                    "[[chain]]\ntype='cabinet'\npath='cab.wav'\n")
    sf.write(str(tmp_path / "in.wav"), AUDIO, RATE, subtype="FLOAT")
    command = [sys.executable, "-m", "ampnet", "render", str(preset), str(tmp_path / "in.wav"),
               "-o", str(tmp_path / "out.wav")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out, _ = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    np.testing.assert_allclose(out, run(load_spec(preset).processors), atol=1e-7)
    preset.write_text("[[chain]]\ntype='gate'\nthreshold_db=5\n")
    done = subprocess.run(command + ["--overwrite"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"ampnet: error: {preset}: chain[1] (gate): threshold_db = 5 is out of range: -120 to 0 dBFS"]


def test_shipped_preset_renders(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = load_spec(os.path.join(root, "models", "tiltdrive-cab.toml"))
    out = spec.build(spec.sample_rate).process(guitar_like(1.0, seed=14))
    assert np.isfinite(out).all() and 0.01 < np.abs(out).max() < 1.0
