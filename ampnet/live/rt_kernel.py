"""The audio callback, compiled: PortAudio calls :func:`audio_callback` directly.

:func:`audio_callback` is a C function (``numba.cfunc``) with PortAudio's
callback signature; its ``userdata`` is :class:`CallbackData`, the addresses and
shapes of the preallocated arrays it works on. It views them in place
(``numba.carray``: no allocation, no Python objects, no GIL) and runs
:func:`run_block`: input gain, resampling, the chain, output routing, meters,
timing and the recording ring. ``stats`` (float64) is shared with the status and
recorder threads without locks: each slot has one writer (this kernel) and the
readers tolerate a value that is one block old.
"""

import time

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ampnet.host.kernels import FINITE_MAX, run_chain_channel
from ampnet.live.resampler import Polyphase, resample_block

# Slots of ``stats``. NONFINITE_IN: NaN or infinite input samples, replaced by 0 before
# the resampler and the chain (the chain guards its own state too: Chain.health()).
CALLBACKS, XRUNS, PEAK_IN, PEAK_OUT, MAX_CYCLES, RING_WRITTEN, OVERSIZED, NONFINITE_IN = range(8)
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
    """One callback: ``indata``/``outdata`` are ``(frames, channels)`` float32 (PortAudio's
    interleaved buffers); ``out_mask[c]`` is 1 for output channels that get the chain's output;
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
        if not abs(v) <= FINITE_MAX:  # NaN or infinite: silence, counted
            v = numba.float32(0.0)
            stats[NONFINITE_IN] += 1.0
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


# The C callback's ``userdata``: an int64 array with, per array below, its address
# and two dimensions (the second 1 for 1-D arrays), then the scalars.
ARRAYS = (("out_mask", np.int64, 1), ("gains", np.float32, 1), ("scratch", np.float32, 2),
          ("table", np.int64, 2), ("f32", np.float32, 1), ("f64", np.float64, 1),
          ("s32", np.float32, 2), ("s64", np.float64, 2), ("ring", np.float32, 1),
          ("stats", np.float64, 1), ("bank_in", np.float32, 2), ("history_in", np.float32, 1),
          ("state_in", np.int64, 1), ("bank_out", np.float32, 2), ("history_out", np.float32, 1),
          ("state_out", np.int64, 1), ("fifo", np.float32, 1))
(OUT_MASK_AT, GAINS_AT, SCRATCH_AT, TABLE_AT, F32_AT, F64_AT, S32_AT, S64_AT, RING_AT, STATS_AT,
 BANK_IN_AT, HISTORY_IN_AT, STATE_IN_AT, BANK_OUT_AT, HISTORY_OUT_AT, STATE_OUT_AT,
 FIFO_AT) = range(0, 3 * len(ARRAYS), 3)
IN_CHANNEL, N_IN, N_OUT = 3 * len(ARRAYS), 3 * len(ARRAYS) + 1, 3 * len(ARRAYS) + 2
USERDATA_SIZE = 3 * len(ARRAYS) + 3


@intrinsic
def _pointer(typingctx, address):
    """An integer address as a ``void *``."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(address), codegen


def _view_1d(dtype):
    @numba.njit(inline="always")
    def view(userdata, slot):
        return numba.carray(_pointer(userdata[slot]), userdata[slot + 1], dtype)
    return view


def _view_2d(dtype):
    @numba.njit(inline="always")
    def view(userdata, slot):
        return numba.carray(_pointer(userdata[slot]), (userdata[slot + 1], userdata[slot + 2]),
                            dtype)
    return view


_f32_1d, _f64_1d, _i64_1d = _view_1d(np.float32), _view_1d(np.float64), _view_1d(np.int64)
_f32_2d, _f64_2d, _i64_2d = _view_2d(np.float32), _view_2d(np.float64), _view_2d(np.int64)
_PA_CONTINUE = 0

_CALLBACK_SIGNATURE = types.int32(types.voidptr, types.voidptr, types.uint64, types.voidptr,
                                  types.uint64, types.voidptr)


@numba.cfunc(_CALLBACK_SIGNATURE, cache=True, error_model="numpy")
def audio_callback(input_buffer, output_buffer, frames, time_info, status_flags, userdata_ptr):
    """PortAudio's stream callback itself (``PaStreamCallback``), compiled: the audio
    thread never enters Python, so it never waits for the GIL and creates no Python
    objects. ``userdata_ptr`` points at :class:`CallbackData`'s int64 array; the
    buffers are interleaved float32, ``frames`` long."""
    userdata = numba.carray(userdata_ptr, USERDATA_SIZE, np.int64)
    count = numba.int64(frames)
    indata = numba.carray(input_buffer, (count, userdata[N_IN]), np.float32)
    outdata = numba.carray(output_buffer, (count, userdata[N_OUT]), np.float32)
    gains = _f32_1d(userdata, GAINS_AT)
    resampling = (_f32_2d(userdata, BANK_IN_AT), _f32_1d(userdata, HISTORY_IN_AT),
                  _i64_1d(userdata, STATE_IN_AT), _f32_2d(userdata, BANK_OUT_AT),
                  _f32_1d(userdata, HISTORY_OUT_AT), _i64_1d(userdata, STATE_OUT_AT),
                  _f32_1d(userdata, FIFO_AT))
    run_block(indata, outdata, userdata[IN_CHANNEL], _i64_1d(userdata, OUT_MASK_AT),
              gains[0], gains[1], _f32_2d(userdata, SCRATCH_AT),
              _i64_2d(userdata, TABLE_AT), _f32_1d(userdata, F32_AT),
              _f64_1d(userdata, F64_AT), _f32_2d(userdata, S32_AT),
              _f64_2d(userdata, S64_AT), _f32_1d(userdata, RING_AT),
              _f64_1d(userdata, STATS_AT), numba.int64(status_flags), resampling)
    return _PA_CONTINUE


class CallbackData:
    """The int64 array :func:`audio_callback` gets as ``userdata``: addresses and shapes
    of every array it works on (kept alive here), the input channel and channel counts.
    ``chain``: a :class:`~ampnet.host.chain.Chain`; ``resampling``: :class:`Resampling`;
    ``scratch`` ``(4, max_block)`` float32; ``gains`` float32 ``[input, output]`` (linear);
    ``out_mask`` int64, 1 for the output channels that get the chain's output."""

    def __init__(self, chain, resampling, scratch, ring, stats, out_mask, gains, in_channel,
                 n_in, n_out):
        self.arrays = {**dict(zip(("table", "f32", "f64", "s32", "s64"), chain.kernel_arrays())),
                       **dict(zip(("bank_in", "history_in", "state_in", "bank_out",
                                   "history_out", "state_out", "fifo"), resampling.arrays)),
                       "scratch": scratch, "ring": ring, "stats": stats, "out_mask": out_mask,
                       "gains": gains}
        self.userdata = np.zeros(USERDATA_SIZE, dtype=np.int64)
        for i, (name, dtype, ndim) in enumerate(ARRAYS):
            array = self.arrays[name]
            if array.dtype != dtype or array.ndim != ndim or not array.flags.c_contiguous:
                raise ValueError(f"{name}: need a C-contiguous {ndim}-D {np.dtype(dtype)} array")
            shape = array.shape + (1,) * (2 - ndim)
            self.userdata[3 * i:3 * i + 3] = (array.ctypes.data, *shape)
        self.userdata[[IN_CHANNEL, N_IN, N_OUT]] = in_channel, n_in, n_out

    @property
    def address(self):
        return self.userdata.ctypes.data


@numba.njit(cache=True)
def cycle_counter_py():
    """:func:`cycle_counter` callable from Python (for calibration)."""
    return cycle_counter()


def cycles_per_second():
    """Cycle-counter ticks per second, measured against the monotonic clock over 0.1 s."""
    t0, c0 = time.perf_counter(), cycle_counter_py()
    time.sleep(0.1)
    return (cycle_counter_py() - c0) / (time.perf_counter() - t0)


# --- playing one buffer while recording another (ampnet capture) -------------------

# Slots of the play/record callback's ``counters`` (float64, one writer: the callback).
PR_POSITION, PR_CALLBACKS, PR_XRUNS = range(3)
PR_COUNTERS = 8
(PR_PLAY_AT, PR_RECORD_AT, PR_COUNTERS_AT) = (0, 3, 6)
PR_IN_CHANNEL, PR_OUT_CHANNEL, PR_N_IN, PR_N_OUT = 9, 10, 11, 12
PR_USERDATA_SIZE = 13


@numba.cfunc(_CALLBACK_SIGNATURE, cache=True, error_model="numpy")
def play_record_callback(input_buffer, output_buffer, frames, time_info, status_flags,
                         userdata_ptr):
    """PortAudio callback, compiled: frame ``position + i`` of ``play`` goes to the output
    channel (silence on every other channel and after the end) while the input channel
    is written to the same frame of ``record``; then ``position`` advances. One stream
    clock for both, so the recording lines up with what was played. ``userdata_ptr``
    points at :class:`PlayRecordData`'s int64 array."""
    userdata = numba.carray(userdata_ptr, PR_USERDATA_SIZE, np.int64)
    count = numba.int64(frames)
    indata = numba.carray(input_buffer, (count, userdata[PR_N_IN]), np.float32)
    outdata = numba.carray(output_buffer, (count, userdata[PR_N_OUT]), np.float32)
    play = _f32_1d(userdata, PR_PLAY_AT)
    record = _f32_1d(userdata, PR_RECORD_AT)
    counters = _f64_1d(userdata, PR_COUNTERS_AT)
    in_channel, out_channel = userdata[PR_IN_CHANNEL], userdata[PR_OUT_CHANNEL]
    position = numba.int64(counters[PR_POSITION])
    for i in range(count):
        for c in range(outdata.shape[1]):
            outdata[i, c] = 0.0
        frame = position + i
        if frame < play.size:
            outdata[i, out_channel] = play[frame]
        if frame < record.size:
            record[frame] = indata[i, in_channel]
    if status_flags != 0:
        counters[PR_XRUNS] += 1.0
    counters[PR_CALLBACKS] += 1.0
    counters[PR_POSITION] = position + count  # last: readers see finished frames only
    return _PA_CONTINUE


class PlayRecordData:
    """``userdata`` of :func:`play_record_callback`: ``play`` and ``record`` float32
    ``(frames,)`` (kept alive here), ``counters`` float64 ``(PR_COUNTERS,)``, the 0-based
    channels and the stream's channel counts."""

    def __init__(self, play, record, in_channel, out_channel, n_in, n_out):
        self.play = np.ascontiguousarray(play, dtype=np.float32)
        self.record = record
        self.counters = np.zeros(PR_COUNTERS)
        if record.dtype != np.float32 or record.ndim != 1 or not record.flags.c_contiguous:
            raise ValueError("record: need a C-contiguous 1-D float32 array")
        self.userdata = np.zeros(PR_USERDATA_SIZE, dtype=np.int64)
        for at, array in ((PR_PLAY_AT, self.play), (PR_RECORD_AT, self.record),
                          (PR_COUNTERS_AT, self.counters)):
            self.userdata[at:at + 3] = (array.ctypes.data, array.size, 1)
        self.userdata[[PR_IN_CHANNEL, PR_OUT_CHANNEL, PR_N_IN, PR_N_OUT]] = (
            in_channel, out_channel, n_in, n_out)

    @property
    def address(self):
        return self.userdata.ctypes.data

    @property
    def position(self):
        """Frames played and recorded so far."""
        return int(self.counters[PR_POSITION])
