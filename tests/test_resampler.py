"""The live path's streaming resampler, alone and inside the audio callback's kernel.

Reference: ``scipy.signal.upfirdn`` (upsample, filter, downsample of the whole
signal in float64) with the same prototype filter.
"""

import numpy as np
import pytest
import scipy.signal

from ampnet.errors import AmpnetError
from ampnet.host.chain import Chain
from ampnet.host.processors import NeuralModel, ToneStack
from ampnet.live import rt_kernel
from ampnet.live.resampler import Polyphase, StreamResampler
from tests.signals import guitar_like, random_model

RATE_PAIRS = [(44100, 48000), (48000, 44100), (96000, 48000), (48000, 96000), (22050, 48000)]


def run_in_blocks(resampler, x, sizes):
    pieces, start = [], 0
    for size in sizes:
        if start >= x.size:
            break
        pieces.append(resampler.process(x[start:start + size]))
        start += size
    return np.concatenate(pieces)


@pytest.mark.parametrize("rates", RATE_PAIRS, ids=lambda r: f"{r[0]}to{r[1]}")
@pytest.mark.parametrize("block", [1, 7, 64, 4096, "random"])
def test_streaming_equals_upfirdn_of_the_whole_signal(rates, block):
    x = guitar_like(0.5, rates[0], seed=2)
    resampler = StreamResampler(*rates, max_frames=4096)
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 300, x.size) if block == "random" else [block] * x.size
    y = run_in_blocks(resampler, x, sizes)
    f = resampler.filter
    assert y.size == -(-x.size * f.up // f.down)  # every output whose time has come
    reference = scipy.signal.upfirdn(f.prototype, x.astype(np.float64), f.up, f.down)[:y.size]
    assert np.max(np.abs(y - reference)) < 1e-6


@pytest.mark.parametrize("rates", RATE_PAIRS, ids=lambda r: f"{r[0]}to{r[1]}")
def test_filter_is_flat_in_the_passband_and_rejects_aliases(rates):
    f = Polyphase(*rates)
    lower = min(rates)
    freqs = np.linspace(0, 1.5 * lower / 2, 4000)
    _, h = scipy.signal.freqz(f.prototype / f.up, worN=freqs, fs=rates[0] * f.up)
    db = 20 * np.log10(np.abs(h) + 1e-30)
    assert np.max(np.abs(db[freqs <= 0.4 * lower])) < 0.01
    assert np.max(db[freqs >= 0.5 * lower]) < -70


def test_a_tone_arrives_intact_after_the_reported_delay():
    rate_in, rate_out, freq = 44100, 48000, 1000.0
    t_in = np.arange(rate_in // 2) / rate_in
    y = StreamResampler(rate_in, rate_out).process(np.sin(2 * np.pi * freq * t_in).astype(np.float32))
    f = Polyphase(rate_in, rate_out)
    t_out = np.arange(y.size) / rate_out - f.delay_seconds
    settled = t_out > 0.01
    expected = np.sin(2 * np.pi * freq * t_out)
    assert np.max(np.abs(y[settled] - expected[settled])) < 1e-3
    assert f.delay_seconds < 0.001


def test_a_rate_ratio_that_is_not_a_small_fraction_is_refused():
    with pytest.raises(AmpnetError, match="not a small fraction"):
        Polyphase(44101, 48000)


class Callback:
    """The compiled PortAudio callback (``rt_kernel.audio_callback``) called as PortAudio
    calls it, with interleaved buffers: device at ``device_rate``, chain at 48 kHz."""

    def __init__(self, device_rate, max_frames, processors):
        self.resampling = rt_kernel.Resampling(device_rate, 48000, max_frames)
        self.chain = Chain(processors, 48000, max_block=self.resampling.model_frames)
        self.data = rt_kernel.CallbackData(self.chain, self.resampling,
                                           np.zeros(device_rate, np.float32),
                                           np.ones(2, dtype=np.int64), 0, 1, 2)
        self.stats = self.data.stats
        self.address = self.data.address
        self.call = rt_kernel.audio_callback.ctypes

    def __call__(self, indata, outdata):
        """``indata`` (frames, 1) and ``outdata`` (frames, 2), C-contiguous float32."""
        return self.call(indata.ctypes.data, outdata.ctypes.data, indata.shape[0], None, 0,
                         self.address)


@pytest.mark.parametrize("device_rate", [44100, 96000])
def test_callback_resamples_around_the_chain_like_the_offline_pipeline(device_rate):
    model = random_model(8, 1, seed=4)
    callback = Callback(device_rate, 256, [NeuralModel(model), ToneStack(bass_db=3.0)])
    x = guitar_like(0.5, device_rate, seed=6)
    out = np.zeros((x.size, 2), np.float32)
    sizes = np.random.default_rng(1).integers(1, 257, x.size)  # PortAudio's variable blocks
    start = 0
    for size in sizes:
        stop = min(start + size, x.size)
        assert callback(np.ascontiguousarray(x[start:stop, None]), out[start:stop]) == 0  # paContinue
        start = stop
        if start == x.size:
            break
    into, back = Polyphase(device_rate, 48000), Polyphase(48000, device_rate)
    at_model_rate = scipy.signal.upfirdn(into.prototype, x.astype(np.float64), into.up, into.down)
    at_model_rate = at_model_rate[:-(-x.size * into.up // into.down)].astype(np.float32)
    processed = Chain([NeuralModel(model), ToneStack(bass_db=3.0)], 48000).process(at_model_rate)
    expected = scipy.signal.upfirdn(back.prototype, processed.astype(np.float64), back.up, back.down)
    assert np.max(np.abs(out[:, 0] - expected[:x.size])) < 1e-5
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    assert callback.stats[rt_kernel.RING_WRITTEN] == x.size  # one output per input, no gap


ALLOCATIONS_PER_CALL = """
import sys
import numpy as np
from numba.core.runtime import rtsys
from ampnet.host.processors import Gain, NeuralModel, ToneStack
from ampnet.live import rt_kernel
from tests.signals import guitar_like, random_model
from tests.test_resampler import Callback

rate = int(sys.argv[3])  # 44100: through the resampler; 48000: straight into the chain
callback = Callback(rate, 64, [NeuralModel(random_model(8, 1)), Gain(gain_db=12.0),
                               ToneStack(bass_db=6.0)])
indata = guitar_like(0.1, rate)[:64, None].copy()
if sys.argv[2] == "hostile":  # the guards' paths too: NaN replaced, an overflow reset
    indata[5, 0], indata[9, 0] = np.nan, 3e38
control = None
if sys.argv[2] == "switching":  # rig crossfades back and forth and knob changes, all along
    from ampnet.host.chain import Chain
    from ampnet.live.control import ControlPath
    callback.data.load_chain(1, Chain([NeuralModel(random_model(12, 1, seed=5)), Gain()], 48000,
                                      max_block=callback.resampling.model_frames))
    control = ControlPath(callback.data)
outdata = np.zeros((64, 2), np.float32)
if sys.argv[1] == "c":
    call = lambda: callback(indata, outdata)
else:  # the same kernel entered from Python, as a sounddevice callback would
    call = lambda: rt_kernel.run_block(*callback.data.kernel_args(indata, outdata))
call()
before = rtsys.get_allocation_stats()
for i in range(1000):
    call()
    if control is not None and i % 50 == 0:
        control.post(rt_kernel.TARGET_SWAP, 1 - int(callback.stats[rt_kernel.ACTIVE]), [], count=640)
        control.post(rt_kernel.TARGET_LEVELS, rt_kernel.LEVEL_OUT_TARGET, [0.5 + i / 2000])
after = rtsys.get_allocation_stats()
if sys.argv[2] == "hostile":
    assert callback.stats[rt_kernel.NONFINITE_IN] > 0
    assert rate != 48000 or callback.chain.health()["resets"] > 0
if control is not None:
    assert callback.stats[rt_kernel.SWAPS] >= 19
print(after.alloc - before.alloc, after.mi_alloc - before.mi_alloc)
"""


def test_the_audio_callback_allocates_nothing(tmp_path):
    """Numba's own allocator counts (NUMBA_NRT_STATS) over 1000 callbacks: none for the C
    callback PortAudio calls; the same kernel entered from Python, the control, allocates
    one record per array argument, which shows the count can see them. Clean input,
    input with a NaN and an overflowing sample in every block, and rig switches (a
    crossfade between two chains every 50 blocks) with gain changes alike."""
    import os
    import subprocess
    import sys

    counts = {}
    for how in ("c", "python"):
        for audio, rate in (("clean", "44100"), ("hostile", "44100"), ("hostile", "48000"),
                            ("switching", "44100"), ("switching", "48000")):
            done = subprocess.run([sys.executable, "-c", ALLOCATIONS_PER_CALL, how, audio, rate],
                                  capture_output=True, text=True,
                                  env={**os.environ, "NUMBA_NRT_STATS": "1"},
                                  cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            assert done.returncode == 0, done.stderr
            counts[how, audio, rate] = [int(v) for v in done.stdout.split()]
    assert all(counts[key] == [0, 0] for key in counts if key[0] == "c")
    assert all(counts[key][0] >= 1000 for key in counts if key[0] == "python")
