"""The live control path: rig switches under signal, changes applied whole, meters per reader.

The compiled PortAudio callback is called here as PortAudio calls it (``ctypes``
releases the GIL for the call, so controller threads really run beside it).
"""

import threading
import time

import numpy as np
import pytest

from ampnet.host.chain import Chain
from ampnet.host.preset import load_spec, preset_text
from ampnet.host.processors import Gain, NeuralModel, ToneStack
from ampnet.live import rt_kernel as rt
from ampnet.live.control import CROSSFADE_MS, ControlPath, MeterReader
from tests.signals import guitar_like, random_model

RATE, BLOCK = 48000, 64


class Stream:
    """The C callback on ``chain`` at 48 kHz, fed ``x`` block by block (optionally in a
    thread of its own, as PortAudio's audio thread)."""

    def __init__(self, chain):
        self.resampling = rt.Resampling(RATE, RATE, BLOCK)
        self.data = rt.CallbackData(chain, self.resampling, np.zeros(RATE, np.float32),
                                    np.ones(1, np.int64), 0, 1, 1)
        self.control = ControlPath(self.data)

    def play(self, x, after_block=None):
        out = np.zeros(x.size, np.float32)
        for k, start in enumerate(range(0, x.size - BLOCK + 1, BLOCK)):
            indata = np.ascontiguousarray(x[start:start + BLOCK, None])
            outdata = np.zeros((BLOCK, 1), np.float32)
            rt.audio_callback.ctypes(indata.ctypes.data, outdata.ctypes.data, BLOCK, None, 0,
                                     self.data.address)
            out[start:start + BLOCK] = outdata[:, 0]
            if after_block:
                after_block(k)
        return out


def test_a_rig_switch_under_signal_crossfades_then_plays_the_new_chain_as_rendered():
    old = [NeuralModel(random_model(8, 1, seed=1)), ToneStack(bass_db=6.0)]
    new = [NeuralModel(random_model(12, 1, seed=2)), Gain(gain_db=-6.0)]
    stream = Stream(Chain(old, RATE, max_block=BLOCK))
    x = guitar_like(1.0, RATE, seed=5)
    result = {}

    def switch():
        result["frame"] = stream.control.swap(Chain(new, RATE, max_block=BLOCK))

    switcher = threading.Thread(target=switch)
    out = stream.play(x, lambda k: k == 200 and switcher.start())
    switcher.join()
    start = result["frame"]
    fade = round(CROSSFADE_MS * 1e-3 * RATE)
    assert start >= 201 * BLOCK and start % BLOCK == 0
    assert stream.data.stats[rt.SWAPS] == 1 and stream.data.stats[rt.ACTIVE] == 1
    before = Chain(old, RATE).process(x.copy())
    after = Chain(new, RATE).process(np.ascontiguousarray(x[start:]))
    # Before the switch the old chain alone, after the fade the new one alone, from its
    # own start at the switch (as a render of the new chain from there), and in between
    # the linear crossfade of the two.
    np.testing.assert_allclose(out[:start], before[:start], atol=1e-5)
    np.testing.assert_allclose(out[start + fade:], after[fade:], atol=1e-5)
    g = (np.arange(fade) + 1) / fade
    mix = before[start:start + fade] * (1 - g) + after[:fade] * g
    np.testing.assert_allclose(out[start:start + fade], mix, atol=1e-5)
    assert np.max(np.abs(np.diff(out[start - 4:start + fade + 4]))) < 4 * np.max(np.abs(np.diff(out)))


def test_two_controllers_never_tear_a_multi_value_change():
    """Two threads each set an EQ's bass (level and frequency: one change) 200 times while
    the callback runs; after every block the EQ's targets are all of one setting or all
    of the other."""
    eq = ToneStack()
    chain = Chain([eq], RATE, max_block=BLOCK)
    stream = Stream(chain)
    settings = [ToneStack(bass_db=-12.0, bass_hz=80.0).targets(RATE),
                ToneStack(bass_db=12.0, bass_hz=400.0).targets(RATE)]
    offset, _ = chain.parameter_targets(0, "bass_db", 0.0)
    f64 = chain.kernel_arrays()[2]
    changes = 200  # per controller; each one two messages

    def controller(which):
        db, hz = (-12.0, 80.0) if which == 0 else (12.0, 400.0)
        for _ in range(changes):
            with stream.control.lock:  # one multi-parameter change: both parameters
                for name, value in (("bass_db", db), ("bass_hz", hz)):
                    o, targets = chain.parameter_targets(0, name, value)
                    stream.control.post(rt.TARGET_CHAIN_0, o, targets)
            time.sleep(0.0002)  # let the other controller in (Python's lock is not fair)

    threads = [threading.Thread(target=controller, args=(w,)) for w in (0, 1)]
    seen = []

    def check(k):
        current = f64[offset:offset + settings[0].size].copy()
        seen.append([np.max(np.abs(current - s)) for s in settings])

    for t in threads:
        t.start()
    x = guitar_like(0.25, RATE, seed=1)
    while any(t.is_alive() for t in threads):
        stream.play(x, check)
    stream.play(x, check)  # the last changes applied
    assert stream.data.stats[rt.CONTROLS_APPLIED] == 4 * changes
    first = next(k for k, errors in enumerate(seen) if min(errors) == 0.0)
    assert first < 20
    applied = [min(errors) for errors in seen[first:]]
    played = {int(np.argmin(errors)) for errors in seen[first:]}
    assert played == {0, 1}  # blocks ran under each controller's setting: they interleaved
    assert max(applied) == 0.0, "a block saw a half-written EQ change"


def test_direct_writes_would_tear_where_the_control_path_does_not():
    """The same two settings written value by value into the chain's arrays (as the
    old terminal keys did) leave blocks between the two: the check above can fail."""
    chain = Chain([ToneStack()], RATE, max_block=BLOCK)
    offset, _ = chain.parameter_targets(0, "bass_db", 0.0)
    f64 = chain.kernel_arrays()[2]
    a = ToneStack(bass_db=-12.0, bass_hz=80.0).targets(RATE)
    b = ToneStack(bass_db=12.0, bass_hz=400.0).targets(RATE)
    f64[offset:offset + a.size] = a
    f64[offset:offset + 3] = b[:3]  # a writer interrupted after three values
    current = f64[offset:offset + a.size]
    assert min(np.max(np.abs(current - s)) for s in (a, b)) > 0


def test_each_meter_reader_sees_every_peak_whatever_the_others_read():
    stream = Stream(Chain([Gain()], RATE, max_block=BLOCK))
    terminal = MeterReader(stream.data, RATE, 3e9)
    page = MeterReader(stream.data, RATE, 3e9)
    x = np.zeros(RATE // 2, np.float32)
    x[1000] = 0.5  # one peak at -6 dBFS
    stream.play(x, lambda k: k == 30 and terminal.read())
    first = terminal.read()
    second = page.read()
    assert second["peak_in"] == pytest.approx(-6.02, abs=0.01)
    assert second["peak_out"] == pytest.approx(-6.02, abs=0.01)
    assert first["peak_in"] == -120.0  # the terminal already read that block
    assert page.read()["blocks"] == 0  # nothing new since


def test_gains_glide_through_the_control_path():
    stream = Stream(Chain([Gain()], RATE, max_block=BLOCK))
    stream.control.set_gain("output", -6.0)
    out = stream.play(np.full(180 * BLOCK, 0.5, np.float32))
    assert out[0] < 0.5 and out[-1] == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-3)
    assert np.all(np.diff(out) <= 0) and np.max(-np.diff(out)) < 0.01  # a glide, no step
    with pytest.raises(ValueError, match="out of range"):
        stream.control.set_gain("input", 60.0)


def test_a_saved_preset_reads_back_to_the_same_chain(tmp_path):
    from ampnet.formats import save_model

    save_model(random_model(8, 1, seed=3), tmp_path / "amp.json")
    (tmp_path / "rig.toml").write_text("[[chain]]\ntype = 'gate'\n[[chain]]\ntype = 'model'\n"
                                       "path = 'amp.json'\n[[chain]]\ntype = 'eq'\n")
    spec = load_spec(tmp_path / "rig.toml")
    chain = spec.build(RATE)
    chain.set(2, "treble_db", -4.5)
    chain.set_bypass(0, True)
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "mine.toml").write_text(preset_text(chain.processors, [True, False, False],
                                                  "mine", folder))
    again = load_spec(folder / "mine.toml")
    built = again.build(RATE)
    assert [p.values for p in again.processors] == [p.values for p in spec.processors]
    assert [built.bypassed(i) for i in range(3)] == [True, False, False]
    x = guitar_like(0.5, RATE, seed=2)
    reference = spec.build(RATE)  # the processors the running chain changed, settled
    reference.set_bypass(0, True)
    reference.reset()
    np.testing.assert_array_equal(built.process(x.copy()), reference.process(x.copy()))
