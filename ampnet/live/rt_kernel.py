"""The compiled body of the audio callback: everything the callback does, in one call.

The Python callback only forwards sounddevice's arrays and the status flags to
:func:`run_block`; there is no Python-level arithmetic, so no Python objects are
created per block. ``stats`` (float64) is shared with the status and recorder
threads without locks: each slot has one writer (this kernel) and the readers
tolerate a value that is one block old.
"""

import time

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ampnet.host.kernels import run_chain_channel
from ampnet.live.resampler import Polyphase, resample_block

# Slots of ``stats``.
CALLBACKS, XRUNS, PEAK_IN, PEAK_OUT, MAX_CYCLES, RING_WRITTEN, OVERSIZED = range(7)
TIMES = 16  # durations (cycles) of the last ``stats.size - TIMES`` callbacks start here
STATS_SIZE = TIMES + (1 << 17)  # about 90 s of callbacks at block 32
FIFO_FILL = 2  # slot of the output resampler's state: device samples waiting in the FIFO


@intrinsic
def cycle_counter(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``: rdtsc on x86)."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@numba.njit(cache=True, error_model="numpy")
def run_block(indata, outdata, in_channel, out_mask, in_gain, out_gain, scratch, table, f32,
              f64, s32, s64, ring, stats, status_flags, resampling):
    """One callback: ``indata``/``outdata`` are ``(frames, channels)`` float32 from
    sounddevice; ``out_mask[c]`` is 1 for output channels that get the chain's output;
    ``scratch`` is ``(4, max_block)`` (``max_block`` at the model's rate when resampling);
    ``table`` ... ``s64`` are the chain's arrays (:meth:`ampnet.host.chain.Chain.kernel_arrays`);
    ``resampling`` is :attr:`Resampling.arrays` (empty banks: the device runs at the
    model's rate)."""
    start = cycle_counter()
    frames = indata.shape[0]
    stats[CALLBACKS] += 1.0
    if status_flags != 0:
        stats[XRUNS] += 1.0
    outdata[:] = 0.0
    bank_in, history_in, state_in, bank_out, history_out, state_out, fifo = resampling
    resample = bank_in.shape[0] > 0
    limit = history_in.shape[0] - (bank_in.shape[1] - 1) if resample else scratch.shape[1]
    if frames > limit:
        stats[OVERSIZED] += 1.0
        return
    device_in = scratch[0, :frames]
    peak = stats[PEAK_IN]
    for n in range(frames):
        v = indata[n, in_channel] * in_gain
        device_in[n] = v
        peak = max(peak, abs(v))
    stats[PEAK_IN] = peak
    if resample:
        count = resample_block(device_in, scratch[1], bank_in, history_in, state_in)
        block = scratch[1, :count]
    else:
        count = frames
        block = device_in
    run_chain_channel(block, scratch[2, :count], scratch[3, :count], 0, table, f32, f64, s32, s64)
    if resample:
        # The output side completes at least as many device samples as came in (counted
        # from the start of the stream), so the FIFO always holds a whole block.
        fill = state_out[FIFO_FILL]
        fill += resample_block(block, fifo[fill:], bank_out, history_out, state_out)
        source = fifo
    else:
        fill = frames
        source = block
    ready = min(frames, fill)
    peak = stats[PEAK_OUT]
    written = int(stats[RING_WRITTEN])
    size = ring.shape[0]
    for n in range(ready):
        v = source[n] * out_gain
        peak = max(peak, abs(v))
        for c in range(outdata.shape[1]):
            if out_mask[c]:
                outdata[n, c] = v
        ring[(written + n) % size] = v
    if resample:
        for k in range(fill - ready):
            fifo[k] = fifo[ready + k]
        state_out[FIFO_FILL] = fill - ready
    stats[PEAK_OUT] = peak
    stats[RING_WRITTEN] = written + ready
    elapsed = float(cycle_counter() - start)
    stats[MAX_CYCLES] = max(stats[MAX_CYCLES], elapsed)
    stats[TIMES + int(stats[CALLBACKS]) % (stats.shape[0] - TIMES)] = elapsed


class Resampling:
    """The arrays :func:`run_block` resamples with, for a device at ``device_rate`` and a
    chain at ``model_rate`` (Hz), callbacks of up to ``max_frames``. ``model_frames``: the
    most frames one callback hands the chain; ``latency_seconds``: what both directions add."""

    def __init__(self, device_rate, model_rate, max_frames):
        if device_rate == model_rate:
            empty = np.zeros(0, dtype=np.float32)
            self.arrays = (np.zeros((0, 1), dtype=np.float32), empty, np.zeros(3, dtype=np.int64),
                           np.zeros((0, 1), dtype=np.float32), empty, np.zeros(3, dtype=np.int64),
                           empty)
            self.model_frames, self.latency_seconds = max_frames, 0.0
            return
        into, back = Polyphase(device_rate, model_rate), Polyphase(model_rate, device_rate)
        self.model_frames = into.max_output(max_frames)
        state_out = np.zeros(3, dtype=np.int64)
        state_out[:2] = back.state()
        fifo = np.zeros(back.max_output(self.model_frames) + max_frames, dtype=np.float32)
        self.arrays = (into.bank, into.history(max_frames), into.state(),
                       back.bank, back.history(self.model_frames), state_out, fifo)
        self.latency_seconds = into.delay_seconds + back.delay_seconds

    def reset(self):
        """Silence in both filters and the FIFO, phases back to 0."""
        _, history_in, state_in, _, history_out, state_out, fifo = self.arrays
        for array in (history_in, history_out, fifo):
            array[:] = 0
        state_in[0] = state_out[0] = state_out[FIFO_FILL] = 0


@numba.njit(cache=True)
def cycle_counter_py():
    """:func:`cycle_counter` callable from Python (for calibration)."""
    return cycle_counter()


def cycles_per_second():
    """Cycle-counter ticks per second, measured against the monotonic clock over 0.1 s."""
    t0, c0 = time.perf_counter(), cycle_counter_py()
    time.sleep(0.1)
    return (cycle_counter_py() - c0) / (time.perf_counter() - t0)
