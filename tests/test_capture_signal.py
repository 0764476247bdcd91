"""The capture signal: its layout, its content, its recognition, and the latency its
clicks give through devices with a known onset (exact: not a sample early or late)."""

import numpy as np
import pytest
import soundfile as sf

from ampnet.capture import signal as capture_signal
from ampnet.capture.signal import click_timing, generate, layout, recognize
from ampnet.cli import main
from tests.signals import guitar_like

scipy_signal = pytest.importorskip("scipy.signal")

RATE = 48000
DELAYS = [0, 1, 37, 480, 4410]


@pytest.fixture(scope="module")
def reamp():
    return generate(RATE)


# --- devices with a known onset (0 samples): causal, each reacts at its first sample ----

def _peak_filter(x, f0, gain_db, q):
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / RATE
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w), 1 - alpha / a])
    return scipy_signal.lfilter(b / den[0], den / den[0], x)


def tone_stack(x, bass=3.0, mid=-4.0, treble=2.0):
    for f0, gain, q in ((120.0, bass, 0.7), (700.0, mid, 0.8), (3000.0, treble, 0.7)):
        x = _peak_filter(x, f0, gain, q)
    return x


def allpass_clipper(x):
    """Eight first-order all-passes mixed with a quarter of the direct signal, into tanh."""
    shifted = x.astype(np.float64)
    for _ in range(8):
        shifted = scipy_signal.lfilter([-0.5, 1.0], [1.0, -0.5], shifted)
    return 0.5 * np.tanh(3 * (0.25 * x + shifted))


def clean_amp(x):
    """A tone stack, then a gentle asymmetric clipper."""
    y = 2.0 * tone_stack(x.astype(np.float64))
    return 0.5 * (np.tanh(y + 0.2) - np.tanh(0.2))


def high_gain_amp(x):
    """High-pass, gain of 60 into tanh, a tone stack, a second gain stage, a low-pass: its
    first response sample is a small fraction of its peak."""
    b, a = scipy_signal.butter(1, 100, "high", fs=RATE)
    y = np.tanh(60 * scipy_signal.lfilter(b, a, x.astype(np.float64)))
    y = np.tanh(3 * tone_stack(y, 4.0, -6.0, 3.0) + 0.1)
    b, a = scipy_signal.butter(2, 4500, fs=RATE)
    return 0.3 * scipy_signal.lfilter(b, a, y)


def fuzz(x):
    """Hard asymmetric clipping at a gain of 40, then a low-pass."""
    y = np.clip(40 * x.astype(np.float64) + 0.3, -1.0, 0.7)
    b, a = scipy_signal.butter(1, 3000, fs=RATE)
    return 0.4 * scipy_signal.lfilter(b, a, y)


DEVICES = {"allpass-clipper": allpass_clipper, "clean-amp": clean_amp,
           "high-gain-amp": high_gain_amp, "fuzz": fuzz}


def through(device, reamp, delay, polarity, noise_dbfs=-90.0, seed=0):
    """``reamp`` through ``device``, delayed by ``delay`` samples, with the recording's
    own noise at ``noise_dbfs`` RMS."""
    wet = polarity * device(reamp)
    wet = np.concatenate([np.zeros(delay), wet])[:reamp.size]
    noise = 10 ** (noise_dbfs / 20) * np.random.default_rng(seed).standard_normal(reamp.size)
    return (wet + noise).astype(np.float32)


# --- the signal -------------------------------------------------------------------

def test_the_layout_is_what_the_signal_holds(reamp):
    plan = layout(RATE)
    assert reamp.shape == (plan.frames,) and reamp.dtype == np.float32
    assert [s.name for s in plan.sections][:3] == ["silence", "start clicks", "noise floor"]
    assert plan.sections[0].start == 0 and plan.sections[-1].stop == plan.frames
    assert all(a.stop == b.start for a, b in zip(plan.sections, plan.sections[1:]))
    assert 180 <= plan.frames / RATE <= 300  # a few minutes
    for clicks in (plan.start_clicks, plan.end_clicks):
        assert np.all(reamp[list(clicks)] == np.float32(capture_signal.CLICK_LEVEL))
    # Clicks in silence: nothing else sounds within 0.2 s of each.
    for frame in plan.start_clicks + plan.end_clicks:
        around = reamp[frame - int(0.2 * RATE):frame + int(0.2 * RATE)].copy()
        around[int(0.2 * RATE)] = 0.0
        assert not np.any(around)
    for name in ("silence", "noise floor", "tail silence", "end silence"):
        section = plan.section(name)
        assert not np.any(reamp[section.start:section.stop]), name


def test_the_playing_spans_the_levels_and_registers_people_play(reamp):
    plan = layout(RATE)
    playing = np.concatenate([reamp[plan.section(n).start:plan.section(n).stop]
                              for n in ("single notes", "low strings", "chords")]).astype(np.float64)
    hop = RATE // 4
    peaks = 20 * np.log10(np.abs(playing[:playing.size // hop * hop]).reshape(-1, hop).max(1) + 1e-12)
    sounding = peaks[peaks > -60]
    assert sounding.min() < -38 and sounding.max() > -4  # soft to hard picking
    assert np.abs(reamp).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(playing)) ** 2
    freqs = np.fft.rfftfreq(playing.size, 1 / RATE)
    assert 0.15 < spectrum[freqs < 200].sum() / spectrum.sum() < 0.8  # low strings are there
    assert spectrum[freqs < 70].sum() < spectrum[(freqs > 75) & (freqs < 90)].sum()  # E2 is the lowest


def test_the_signal_is_the_same_every_time_and_at_other_rates():
    first, again = generate(44100), generate(44100)
    assert np.array_equal(first, again)
    assert first.size == layout(44100).frames
    with pytest.raises(ValueError, match="8000 Hz"):
        generate(8000)


def test_the_signal_is_recognised_after_a_16_bit_export_and_nothing_else_is(reamp, tmp_path):
    sf.write(tmp_path / "r16.wav", reamp, RATE, subtype="PCM_16")
    back, _ = sf.read(tmp_path / "r16.wav", dtype="float32")
    assert recognize(back, RATE) == layout(RATE)
    assert recognize(reamp, 44100) is None  # the wrong rate
    assert recognize(0.5 * reamp, RATE) is None
    assert recognize(reamp[100:], RATE) is None
    noise = np.random.default_rng(1).standard_normal(reamp.size).astype(np.float32) * 0.1
    assert recognize(noise, RATE) is None


# --- latency from the clicks --------------------------------------------------------

@pytest.mark.parametrize("name", sorted(DEVICES))
@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("polarity", [1, -1])
def test_the_clicks_give_the_true_onset_through_every_device(reamp, name, delay, polarity):
    timing = click_timing(through(DEVICES[name], reamp, delay, polarity), layout(RATE))
    assert timing.problem == ""
    assert timing.samples == delay and timing.drift == 0


@pytest.fixture(scope="module")
def playing():
    return guitar_like(20.0, seed=3)


@pytest.mark.parametrize("name", sorted(DEVICES))
@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize("polarity", [1, -1])
def test_on_playing_alone_the_estimate_is_the_true_onset(playing, name, delay, polarity):
    """No clicks: the latency comes from the playing, and it is the device's onset,
    exactly, decided. On this playing, the estimator before this one (a smoothed
    impulse response's onset, less a sample) was a sample early through the all-pass,
    the clean amp and the fuzz; a threshold at a fraction of the response's peak finds
    the high-gain amp's onset late."""
    from ampnet.train.alignment import Alignment, estimate_latency
    latency = estimate_latency(playing, through(DEVICES[name], playing, delay, polarity), RATE)
    alignment = Alignment.estimated(latency)
    assert alignment.is_exact and alignment.samples == delay, alignment
    assert latency.confident
    assert "the device's response starts there" in alignment.describe(RATE)


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_where_the_playing_cannot_decide_the_range_holds_the_onset(reamp, name):
    """Dark playing (the signal's single notes, without its clicks) hides the first
    response samples: the estimate is then never late, its range holds the true onset,
    the report says so and points to the capture signal; a decision, where one is
    made, is exact."""
    from ampnet.train.alignment import Alignment, estimate_latency
    start = layout(RATE).section("single notes").start
    material = reamp[start:start + 30 * RATE]
    for delay in (0, 37):
        for polarity in (1, -1):
            alignment = Alignment.estimated(
                estimate_latency(material, through(DEVICES[name], material, delay, polarity), RATE))
            assert alignment.low <= delay <= alignment.high, (delay, polarity, alignment)
            assert alignment.samples <= delay
            if alignment.is_exact:
                assert alignment.samples == delay
            else:
                assert "'ampnet signal'" in alignment.describe(RATE)


def test_a_dropout_or_clock_drift_shows_in_the_end_clicks(reamp):
    plan = layout(RATE)
    wet = through(clean_amp, reamp, 37, 1)
    dropped = np.concatenate([wet[:100 * RATE], wet[100 * RATE + 64:]])  # 64 samples lost
    timing = click_timing(dropped, plan)
    assert timing.samples == 37 and timing.drift == -64


def test_clicks_buried_or_missing_are_reported_not_guessed(reamp):
    plan = layout(RATE)
    silent = np.zeros_like(reamp)
    assert "no response to the start click" in click_timing(silent, plan).problem
    reverb = scipy_signal.lfilter([1.0], np.r_[1.0, np.zeros(2399), -0.7], reamp)  # a 50 ms echo
    assert "not quiet before" in click_timing(reverb, plan).problem or \
        click_timing(reverb, plan).samples == 0


# --- ampnet signal, and train recognising it ----------------------------------------

def test_ampnet_signal_writes_the_file_and_refuses_to_clobber(tmp_path, capsys, reamp):
    out = tmp_path / "reamp.wav"
    assert main(["signal", "-o", str(out)]) == 0
    written, rate = sf.read(out, dtype="float32")
    assert rate == RATE and np.max(np.abs(written - reamp)) < 1e-6
    assert "start clicks" in capsys.readouterr().out
    before = out.stat().st_mtime_ns
    assert main(["signal", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.stat().st_mtime_ns == before
    assert main(["signal", "-o", str(tmp_path / "r.flac")]) == 2
    assert main(["signal", "-o", str(tmp_path / "r.wav"), "--rate", "1000"]) == 2
    assert not (tmp_path / "r.wav").exists()


def test_load_pair_takes_the_latency_from_the_clicks_and_splits_at_the_validation_section(
        tmp_path, reamp):
    from ampnet.train.alignment import Alignment
    from ampnet.train.data import load_pair, split_capture_signal
    sf.write(tmp_path / "dry.wav", reamp, RATE, subtype="PCM_24")
    sf.write(tmp_path / "wet.wav", through(high_gain_amp, reamp, 480, -1), RATE, subtype="FLOAT")
    pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav")
    assert pair.alignment == Alignment.exact(480, "clicks")
    notes = "\n".join(pair.notes)
    assert "480 samples (10.00 ms) from the capture signal's clicks: exact" in notes
    assert "end clicks agree" in notes
    (train_dry, _), (val_dry, _), cut = split_capture_signal(pair)
    section = layout(RATE).section("validation")
    assert cut == section.start and val_dry.size == section.frames
    np.testing.assert_array_equal(val_dry, pair.dry[section.start:section.stop])


def test_train_refuses_a_take_whose_end_clicks_moved(tmp_path, reamp, capsys):
    pytest.importorskip("torch")
    wet = through(fuzz, reamp, 1, 1)
    wet = np.concatenate([wet[:50 * RATE], np.zeros(3, np.float32), wet[50 * RATE:-3]])  # 3 extra samples
    sf.write(tmp_path / "dry.wav", reamp, RATE, subtype="PCM_24")
    sf.write(tmp_path / "wet.wav", wet, RATE, subtype="FLOAT")
    assert main(["train", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), "-o",
                 str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "end clicks arrive +3 samples" in err and "--latency" in err and len(err.splitlines()) == 1


def test_a_capture_folder_trains_from_its_manifest(tmp_path, reamp, capsys):
    """The manifest ``ampnet capture`` writes (knob values, per-take notes) is what
    ``ampnet train DIR`` reads; the notes are not taken for knobs."""
    pytest.importorskip("torch")
    from ampnet.cli.capture_cmd import manifest_text
    from ampnet.train.captures import read_manifest
    folder = tmp_path / "pedal"
    folder.mkdir()
    sf.write(folder / "dry.wav", reamp, RATE, subtype="PCM_24")
    notes = {"date": "2026-12-04T16:00:00", "rate": RATE, "latency_samples": np.int64(37),
             "noise_floor_dbfs": np.float64(-153.4), "xruns": 0}  # numpy numbers, as measured
    for drive in (2.0, 8.0):
        sf.write(folder / f"wet-drive{drive:g}.wav",
                 through(lambda x, d=drive: np.tanh(d * x) / d, reamp, 37, 1), RATE, subtype="FLOAT")
    doc = {"dry": "dry.wav", "capture": [{"wet": f"wet-drive{d:g}.wav", "drive": d, "recorded": notes}
                                         for d in (2.0, 8.0)]}
    (folder / "capture.toml").write_text(manifest_text(doc))
    captures = read_manifest(folder / "capture.toml").captures
    assert [c.settings for c in captures] == [{"drive": 2.0}, {"drive": 8.0}]
    assert main(["train", str(folder), "-o", str(folder / "model.json"), "--hidden", "4",
                 "--epochs", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "from the capture signal's clicks" in out and "latency: 37 samples" in out
    assert "misaligned" not in out  # a poor verdict does not blame an exact latency
    assert main(["train", str(tmp_path), "-o", str(tmp_path / "m.json")]) == 2
    assert "no capture.toml" in capsys.readouterr().err


# --- the play/record callback (what ampnet capture runs on the audio thread) ----------

PLAY_RECORD_ALLOCATIONS = """
import sys
import numpy as np
from numba.core.runtime import rtsys
from ampnet.live import rt_kernel
play = np.arange(4096, dtype=np.float32); record = np.zeros(4096, np.float32)
data = rt_kernel.PlayRecordData(play, record, 1, 0, 2, 2)
indata = np.ones((64, 2), np.float32); outdata = np.zeros((64, 2), np.float32)
call = lambda: rt_kernel.play_record_callback.ctypes(indata.ctypes.data, outdata.ctypes.data, 64,
                                                     None, 0, data.address)
call()
before = rtsys.get_allocation_stats()
for _ in range(1000):
    call()
after = rtsys.get_allocation_stats()
print(after.alloc - before.alloc, after.mi_alloc - before.mi_alloc)
"""


@pytest.mark.parametrize("blocks", [[32] * 20, [64, 128, 7, 256, 1, 90], [1000]])
def test_the_play_record_callback_plays_and_records_the_same_frames(blocks):
    """Whatever the block sizes: frame n of the play buffer leaves on the output channel
    in the same callback that records frame n of the input channel; silence after the end."""
    from ampnet.live import rt_kernel
    rng = np.random.default_rng(0)
    play = rng.standard_normal(700).astype(np.float32)
    record = np.zeros(700, np.float32)
    data = rt_kernel.PlayRecordData(play, record, 2, 1, 3, 2)  # input ch 3 of 3, output ch 2 of 2
    played, heard = [], []
    for frames in blocks:
        indata = rng.standard_normal((frames, 3)).astype(np.float32)
        outdata = np.full((frames, 2), 9.0, np.float32)
        rt_kernel.play_record_callback.ctypes(indata.ctypes.data, outdata.ctypes.data, frames,
                                              None, 0, data.address)
        played.append(outdata.copy())
        heard.append(indata[:, 2])
    out = np.concatenate(played)
    assert not np.any(out[:, 0])  # other channels silent
    n = min(out.shape[0], play.size)
    np.testing.assert_array_equal(out[:n, 1], play[:n])
    assert not np.any(out[n:, 1])
    np.testing.assert_array_equal(record[:n], np.concatenate(heard)[:n])
    assert data.position == sum(blocks)


def test_the_play_record_callback_allocates_nothing():
    import os
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", PLAY_RECORD_ALLOCATIONS], capture_output=True,
                          text=True, env={**os.environ, "NUMBA_NRT_STATS": "1"},
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert [int(v) for v in done.stdout.split()] == [0, 0]


def test_nothing_in_the_signal_reads_as_clipping_through_a_wire(reamp):
    from ampnet.capture.recorder import CLIP_DBFS
    assert 20 * np.log10(np.abs(reamp).max()) <= -1.0 + 1e-3 < CLIP_DBFS
