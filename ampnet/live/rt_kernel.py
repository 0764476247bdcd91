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

# Slots of ``stats`` (one writer: the callback). NONFINITE_IN: NaN or infinite input
# samples, replaced by 0 before the resampler and the chain (the chain guards its own
# state too: Chain.health()). PEAK_IN/PEAK_OUT: the highest levels since the stream
# started (never reset: meters read :data:`meters`, see :class:`MeterReader`).
# ACTIVE: the chain slot playing (0 or 1); FADE_LEFT/FADE_TOTAL: model-rate frames of
# a rig crossfade to the other slot; FADE_STARTED_AT: RING_WRITTEN when the latest
# crossfade began; CONTROLS_APPLIED: control messages applied (see CONTROL_* below).
(CALLBACKS, XRUNS, PEAK_IN, PEAK_OUT, MAX_CYCLES, RING_WRITTEN, OVERSIZED, NONFINITE_IN,
 ACTIVE, FADE_LEFT, FADE_TOTAL, FADE_STARTED_AT, CONTROLS_APPLIED, SWAPS) = range(14)
TIMES = 16  # durations (cycles) of the last ``stats.size - TIMES`` callbacks start here
STATS_SIZE = TIMES + (1 << 17)  # about 90 s of callbacks at block 32
FIFO_FILL = 2  # slot of the output resampler's state: device samples waiting in the FIFO

# ``meters``: float64 ``(METER_BLOCKS, METER_COLUMNS)``, one row per callback (row
# ``callback number % METER_BLOCKS``): peak and sum of squares of the input (after the
# input gain) and of the output, and the frame count. Readers keep their own position,
# so no reader resets another's peaks.
METER_PEAK_IN, METER_PEAK_OUT, METER_SQUARES_IN, METER_SQUARES_OUT, METER_FRAMES = range(5)
METER_COLUMNS = 5
METER_BLOCKS = 8192  # 11 s of callbacks at block 64, 48 kHz

# ``levels``: float64, the input and output gains (linear) the control side sets and
# where the callback's glides are now, and the glide's per-sample coefficient.
LEVEL_IN_TARGET, LEVEL_OUT_TARGET, LEVEL_IN, LEVEL_OUT, LEVEL_GLIDE = range(5)
LEVELS_SIZE = 5

# The control path: ``controls`` float64 ``(CONTROL_SLOTS, CONTROL_WIDTH)``, a ring of
# messages ``[target, offset, count, values...]`` that the control side writes
# (:class:`ampnet.live.control.ControlPath`, one writer at a time) and the callback
# applies, whole and in order, before it processes a block. ``control_count[0]``: how
# many messages were written (the writer's); ``stats[CONTROLS_APPLIED]``: how many the
# callback applied. Targets: the f64 array of chain slot 0 or 1 (parameters, bypass),
# ``levels``, or a crossfade to chain slot ``offset`` over ``count`` model-rate frames.
TARGET_CHAIN_0, TARGET_CHAIN_1, TARGET_LEVELS, TARGET_SWAP = range(4)
CONTROL_HEADER = 3
CONTROL_VALUES = 32  # the most values one message carries (a 4-band EQ takes 21)
CONTROL_WIDTH = CONTROL_HEADER + CONTROL_VALUES
CONTROL_SLOTS = 256


@intrinsic
def cycle_counter(typingctx):
    """The CPU's cycle counter (``llvm.readcyclecounter``: rdtsc on x86)."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@numba.njit(inline="always")
def _apply_controls(controls, control_count, stats, levels, f64_0, f64_1):
    """Apply the control messages written since the last block (see ``controls``)."""
    written = control_count[0]
    applied = int(stats[CONTROLS_APPLIED])
    while applied < written:
        row = controls[applied % controls.shape[0]]
        target, offset, count = int(row[0]), int(row[1]), int(row[2])
        if target == TARGET_SWAP:
            if stats[FADE_LEFT] == 0.0 and offset != int(stats[ACTIVE]):
                stats[FADE_LEFT] = stats[FADE_TOTAL] = max(count, 1)
                stats[FADE_STARTED_AT] = stats[RING_WRITTEN]
        else:
            dest = f64_0 if target == TARGET_CHAIN_0 else f64_1 if target == TARGET_CHAIN_1 \
                else levels
            for k in range(count):
                dest[offset + k] = row[CONTROL_HEADER + k]
        applied += 1
    stats[CONTROLS_APPLIED] = applied


@numba.njit(inline="always")
def _run_chain(block, scratch, chain):
    table, f32, f64, s32, s64 = chain
    count = block.shape[0]
    run_chain_channel(block, scratch[2, :count], scratch[3, :count], 0, table, f32, f64, s32, s64)


@numba.njit(cache=True, error_model="numpy")
def run_block(indata, outdata, in_channel, out_mask, levels, scratch, chain_0, chain_1, ring,
              stats, meters, controls, control_count, status_flags, resampling):
    """One callback: ``indata``/``outdata`` are ``(frames, channels)`` float32 (PortAudio's
    interleaved buffers); ``out_mask[c]`` is 1 for output channels that get the chain's output;
    ``levels``, ``meters``, ``controls``, ``control_count``: see the module's constants;
    ``scratch`` is ``(5, max_block)`` (``max_block`` at the model's rate when resampling);
    ``chain_0``/``chain_1`` are two chains' arrays (:meth:`ampnet.host.chain.Chain.kernel_arrays`):
    ``stats[ACTIVE]`` plays, both play during a crossfade; ``resampling`` is
    :attr:`Resampling.arrays` (empty banks: the device runs at the model's rate)."""
    start = cycle_counter()
    frames = indata.shape[0]
    stats[CALLBACKS] += 1.0
    if status_flags != 0:
        stats[XRUNS] += 1.0
    outdata[:] = 0.0
    _apply_controls(controls, control_count, stats, levels, chain_0[2], chain_1[2])
    meter = meters[int(stats[CALLBACKS]) % meters.shape[0]]
    meter[:] = 0.0
    bank_in, history_in, state_in, bank_out, history_out, state_out, fifo = resampling
    resample = bank_in.shape[0] > 0
    limit = history_in.shape[0] - (bank_in.shape[1] - 1) if resample else scratch.shape[1]
    if frames > limit:
        stats[OVERSIZED] += 1.0
        return
    device_in = scratch[0, :frames]
    glide = levels[LEVEL_GLIDE]
    gain, target = levels[LEVEL_IN], levels[LEVEL_IN_TARGET]
    peak = squares = 0.0
    for n in range(frames):
        gain += glide * (target - gain)
        v = indata[n, in_channel] * numba.float32(gain)
        if not abs(v) <= FINITE_MAX:  # NaN or infinite: silence, counted
            v = numba.float32(0.0)
            stats[NONFINITE_IN] += 1.0
        device_in[n] = v
        peak = max(peak, abs(v))
        squares += v * v
    levels[LEVEL_IN] = gain
    meter[METER_PEAK_IN], meter[METER_SQUARES_IN] = peak, squares
    stats[PEAK_IN] = max(stats[PEAK_IN], peak)
    if resample:
        count = resample_block(device_in, scratch[1], bank_in, history_in, state_in)
        block = scratch[1, :count]
    else:
        count = frames
        block = device_in
    active = int(stats[ACTIVE])
    fade_left = int(stats[FADE_LEFT])
    incoming = scratch[4, :count]
    if fade_left > 0:
        incoming[:] = block
    _run_chain(block, scratch, chain_0 if active == 0 else chain_1)
    if fade_left > 0:  # a rig switch: the new chain fades in over the old (linear, equal gain)
        _run_chain(incoming, scratch, chain_1 if active == 0 else chain_0)
        total = stats[FADE_TOTAL]
        done = total - fade_left
        for n in range(count):
            g = numba.float32(min(1.0, (done + n + 1) / total))
            block[n] = block[n] * (numba.float32(1.0) - g) + incoming[n] * g
        fade_left = max(0, fade_left - count)
        if fade_left == 0:
            stats[ACTIVE] = 1 - active
            stats[SWAPS] += 1.0
        stats[FADE_LEFT] = fade_left
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
    gain, target = levels[LEVEL_OUT], levels[LEVEL_OUT_TARGET]
    peak = squares = 0.0
    written = int(stats[RING_WRITTEN])
    size = ring.shape[0]
    for n in range(ready):
        gain += glide * (target - gain)
        v = source[n] * numba.float32(gain)
        peak = max(peak, abs(v))
        squares += v * v
        for c in range(outdata.shape[1]):
            if out_mask[c]:
                outdata[n, c] = v
        ring[(written + n) % size] = v
    levels[LEVEL_OUT] = gain
    if resample:
        for k in range(fill - ready):
            fifo[k] = fifo[ready + k]
        state_out[FIFO_FILL] = fill - ready
    meter[METER_PEAK_OUT], meter[METER_SQUARES_OUT], meter[METER_FRAMES] = peak, squares, ready
    stats[PEAK_OUT] = max(stats[PEAK_OUT], peak)
    stats[RING_WRITTEN] = written + ready
    elapsed = float(cycle_counter() - start)
    stats[MAX_CYCLES] = max(stats[MAX_CYCLES], elapsed)
    stats[TIMES + int(stats[CALLBACKS]) % (stats.shape[0] - TIMES)] = elapsed


class Resampling:
    """The arrays :func:`run_block` resamples with, for a device at ``device_rate`` and a
    chain at ``model_rate`` (Hz), callbacks of up to ``max_frames``. ``model_frames``: the
    most frames one callback hands the chain; ``device_frames``: ``max_frames``;
    ``latency_seconds``: what both directions add."""

    def __init__(self, device_rate, model_rate, max_frames):
        self.device_frames = max_frames
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
# and two dimensions (the second 1 for 1-D arrays), then the scalars. Chain slot 0's
# arrays come first, then slot 1's (CHAIN_1_AT): the same five names.
CHAIN_ARRAYS = (("table", np.int64, 2), ("f32", np.float32, 1), ("f64", np.float64, 1),
                ("s32", np.float32, 2), ("s64", np.float64, 2))
ARRAYS = (CHAIN_ARRAYS + CHAIN_ARRAYS
          + (("out_mask", np.int64, 1), ("levels", np.float64, 1), ("scratch", np.float32, 2),
             ("ring", np.float32, 1), ("stats", np.float64, 1), ("meters", np.float64, 2),
             ("controls", np.float64, 2), ("control_count", np.int64, 1),
             ("bank_in", np.float32, 2), ("history_in", np.float32, 1),
             ("state_in", np.int64, 1), ("bank_out", np.float32, 2),
             ("history_out", np.float32, 1), ("state_out", np.int64, 1),
             ("fifo", np.float32, 1)))
CHAIN_0_AT, CHAIN_1_AT = 0, 3 * len(CHAIN_ARRAYS)
(OUT_MASK_AT, LEVELS_AT, SCRATCH_AT, RING_AT, STATS_AT, METERS_AT, CONTROLS_AT,
 CONTROL_COUNT_AT, BANK_IN_AT, HISTORY_IN_AT, STATE_IN_AT, BANK_OUT_AT, HISTORY_OUT_AT,
 STATE_OUT_AT, FIFO_AT) = range(2 * CHAIN_1_AT, 3 * len(ARRAYS), 3)
IN_CHANNEL, N_IN, N_OUT = 3 * len(ARRAYS), 3 * len(ARRAYS) + 1, 3 * len(ARRAYS) + 2
USERDATA_SIZE = 3 * len(ARRAYS) + 3
SCRATCH_ROWS = 5


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


@numba.njit(inline="always")
def _chain(userdata, at):
    """A chain slot's five arrays, in :meth:`~ampnet.host.chain.Chain.kernel_arrays` order."""
    return (_i64_2d(userdata, at), _f32_1d(userdata, at + 3), _f64_1d(userdata, at + 6),
            _f32_2d(userdata, at + 9), _f64_2d(userdata, at + 12))

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
    resampling = (_f32_2d(userdata, BANK_IN_AT), _f32_1d(userdata, HISTORY_IN_AT),
                  _i64_1d(userdata, STATE_IN_AT), _f32_2d(userdata, BANK_OUT_AT),
                  _f32_1d(userdata, HISTORY_OUT_AT), _i64_1d(userdata, STATE_OUT_AT),
                  _f32_1d(userdata, FIFO_AT))
    run_block(indata, outdata, userdata[IN_CHANNEL], _i64_1d(userdata, OUT_MASK_AT),
              _f64_1d(userdata, LEVELS_AT), _f32_2d(userdata, SCRATCH_AT),
              _chain(userdata, CHAIN_0_AT), _chain(userdata, CHAIN_1_AT),
              _f32_1d(userdata, RING_AT), _f64_1d(userdata, STATS_AT),
              _f64_2d(userdata, METERS_AT), _f64_2d(userdata, CONTROLS_AT),
              _i64_1d(userdata, CONTROL_COUNT_AT), numba.int64(status_flags), resampling)
    return _PA_CONTINUE


class CallbackData:
    """Everything :func:`audio_callback` works on, allocated here once, and the int64
    array it gets as ``userdata`` (addresses and shapes of those arrays, the input
    channel and channel counts). ``chain``: the :class:`~ampnet.host.chain.Chain` that
    plays first (slot 0); ``resampling``: :class:`Resampling`; ``ring``: float32
    ``(frames,)``, the recording ring; ``out_mask`` int64, 1 for the output channels that
    get the chain's output; ``gains_db``: ``(input, output)``; ``in_channel`` 0-based.
    The attributes ``stats``, ``meters``, ``levels``, ``controls`` and ``control_count``
    are the arrays the module's constants describe."""

    def __init__(self, chain, resampling, ring, out_mask, in_channel, n_in, n_out,
                 gains_db=(0.0, 0.0)):
        from ampnet.engine.packing import aligned_zeros
        from ampnet.host.processors import SMOOTHING_MS, one_pole

        self.stats = np.zeros(STATS_SIZE)
        self.meters = np.zeros((METER_BLOCKS, METER_COLUMNS))
        self.levels = np.zeros(LEVELS_SIZE)
        self.levels[[LEVEL_IN_TARGET, LEVEL_IN]] = 10 ** (gains_db[0] / 20)
        self.levels[[LEVEL_OUT_TARGET, LEVEL_OUT]] = 10 ** (gains_db[1] / 20)
        self.levels[LEVEL_GLIDE] = one_pole(SMOOTHING_MS, chain.rate)
        self.controls = np.zeros((CONTROL_SLOTS, CONTROL_WIDTH))
        self.control_count = np.zeros(1, dtype=np.int64)
        scratch = aligned_zeros((SCRATCH_ROWS, max(resampling.model_frames,
                                                   resampling.device_frames)))
        self.chains = [chain, chain]  # slot 1 holds a chain only while it fades in or plays
        self.arrays = {**dict(zip(("bank_in", "history_in", "state_in", "bank_out",
                                   "history_out", "state_out", "fifo"), resampling.arrays)),
                       "scratch": scratch, "ring": ring, "stats": self.stats,
                       "meters": self.meters, "controls": self.controls,
                       "control_count": self.control_count, "out_mask": out_mask,
                       "levels": self.levels}
        self.userdata = np.zeros(USERDATA_SIZE, dtype=np.int64)
        for i, (name, dtype, ndim) in enumerate(ARRAYS[2 * len(CHAIN_ARRAYS):]):
            self._point(CHAIN_1_AT + 3 * (len(CHAIN_ARRAYS) + i), name, self.arrays[name],
                        dtype, ndim)
        self.load_chain(0, chain)
        self.load_chain(1, chain)
        self.userdata[[IN_CHANNEL, N_IN, N_OUT]] = in_channel, n_in, n_out

    def load_chain(self, slot, chain):
        """Point chain slot ``slot`` (0 or 1) at ``chain``'s arrays. Only for the slot the
        callback is not playing (:class:`~ampnet.live.control.ControlPath` makes sure)."""
        self.chains[slot] = chain
        at = CHAIN_0_AT if slot == 0 else CHAIN_1_AT
        for i, ((name, dtype, ndim), array) in enumerate(zip(CHAIN_ARRAYS, chain.kernel_arrays())):
            self._point(at + 3 * i, name, array, dtype, ndim)

    def _point(self, at, name, array, dtype, ndim):
        if array.dtype != dtype or array.ndim != ndim or not array.flags.c_contiguous:
            raise ValueError(f"{name}: need a C-contiguous {ndim}-D {np.dtype(dtype)} array")
        shape = array.shape + (1,) * (2 - ndim)
        self.userdata[at:at + 3] = (array.ctypes.data, *shape)

    @property
    def chain(self):
        """The chain playing now (the one fading in, during a crossfade, counts once done)."""
        return self.chains[int(self.stats[ACTIVE])]

    @property
    def address(self):
        return self.userdata.ctypes.data

    def kernel_args(self, indata, outdata, status_flags=0):
        """The arguments of :func:`run_block` for one block, to call the kernel from
        Python (tests, benchmarks) exactly as :func:`audio_callback` does."""
        a = self.arrays
        return (indata, outdata, int(self.userdata[IN_CHANNEL]), a["out_mask"], a["levels"],
                a["scratch"], self.chains[0].kernel_arrays(), self.chains[1].kernel_arrays(),
                a["ring"], a["stats"], a["meters"], a["controls"], a["control_count"],
                status_flags, tuple(a[k] for k in ("bank_in", "history_in", "state_in",
                                                   "bank_out", "history_out", "state_out",
                                                   "fifo")))


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
