"""The compiled body of the audio callback: everything the callback does, in one call.

The Python callback only forwards sounddevice's arrays and the status flags to
:func:`run_block`; there is no Python-level arithmetic, so no Python objects are
created per block. ``stats`` (float64) is shared with the status and recorder
threads without locks: each slot has one writer (this kernel) and the readers
tolerate a value that is one block old.
"""

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ampnet.host.kernels import run_chain_channel

# Slots of ``stats``.
CALLBACKS, XRUNS, PEAK_IN, PEAK_OUT, LAST_CYCLES, MAX_CYCLES, RING_WRITTEN, OVERSIZED = range(8)
TIMES = 16  # durations (cycles) of the last ``stats.size - TIMES`` callbacks start here
STATS_SIZE = TIMES + (1 << 17)  # about 90 s of callbacks at block 32


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
              f64, s32, s64, ring, stats, status_flags):
    """One callback: ``indata``/``outdata`` are ``(frames, channels)`` float32 from
    sounddevice; ``out_mask[c]`` is 1 for output channels that get the chain's output;
    ``scratch`` is ``(3, max_block)``; ``table`` ... ``s64`` are the chain's arrays
    (:meth:`ampnet.host.chain.Chain.kernel_arrays`)."""
    start = cycle_counter()
    frames = indata.shape[0]
    stats[CALLBACKS] += 1.0
    if status_flags != 0:
        stats[XRUNS] += 1.0
    outdata[:] = 0.0
    if frames > scratch.shape[1]:
        stats[OVERSIZED] += 1.0
        return
    block = scratch[0, :frames]
    peak = stats[PEAK_IN]
    for n in range(frames):
        v = indata[n, in_channel] * in_gain
        block[n] = v
        peak = max(peak, abs(v))
    stats[PEAK_IN] = peak
    run_chain_channel(block, scratch[1, :frames], scratch[2, :frames], 0, table, f32, f64, s32, s64)
    peak = stats[PEAK_OUT]
    written = int(stats[RING_WRITTEN])
    size = ring.shape[0]
    for n in range(frames):
        v = block[n] * out_gain
        peak = max(peak, abs(v))
        for c in range(outdata.shape[1]):
            if out_mask[c]:
                outdata[n, c] = v
        ring[(written + n) % size] = v
    stats[PEAK_OUT] = peak
    stats[RING_WRITTEN] = written + frames
    elapsed = float(cycle_counter() - start)
    stats[LAST_CYCLES] = elapsed
    stats[MAX_CYCLES] = max(stats[MAX_CYCLES], elapsed)
    stats[TIMES + int(stats[CALLBACKS]) % (stats.shape[0] - TIMES)] = elapsed


@numba.njit(cache=True)
def cycle_counter_py():
    """:func:`cycle_counter` callable from Python (for calibration)."""
    return cycle_counter()
