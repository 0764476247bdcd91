"""Compiled kernels of the host: one function per processor kind, and the chain
interpreter that runs them in order on one channel.

A chain lives in a few flat arrays built once by :class:`ampnet.host.chain.Chain`:

- ``table`` int64 ``(processors, 11)``: per processor its kind and the offset and
  length of its slice in each of the four arrays below (columns ``F32``,
  ``F32_LEN``, ``F64``, ...), and where its initial state is kept (``INIT32``:
  ``S32_LEN`` values in ``f32``; ``INIT64``: ``S64_LEN`` values in ``f64``);
- ``f32`` float32: coefficients the kernels read in float32 (model weights,
  impulse responses and their spectra);
- ``f64`` float64: targets and coefficients (gains, filter coefficients, knob
  values). The control side writes new *targets* here; kernels move towards them
  sample by sample (one-pole smoothing), so a change never clicks;
- ``s32`` float32 ``(channels, ...)`` and ``s64`` float64 ``(channels, ...)``:
  each channel's state. ``s64[channel, :CHAIN_HEADER]`` is the chain's own health
  record for that channel (slots ``NONFINITE``, ``FIRST_NONFINITE``, ``FRAMES``,
  ``RESETS``); the processors' slices follow it.

Non-finite audio never reaches a processor's state: the interpreter replaces a
NaN or infinite input sample by 0 and counts it (with the position of the
first); a processor whose output or float64 state is nonetheless non-finite
after a block (an overflow) is put back to its initial state, its non-finite
output samples become 0, and that is counted as a reset.

Every processor's ``f64`` slice starts with ``[wet_target, smoothing]`` and its
``s64`` slice with ``[wet]``: the bypass crossfade (``wet`` 1 = active, 0 =
bypassed) that the interpreter applies around any processor. A bypassed
processor keeps running, so switching it back on has no stale state.

Every kernel works sample by sample with state carried across calls, so any
split of a signal into blocks gives bit-identical output. Nothing here
allocates: slices are views.
"""

import numba
import numpy as np

from ampnet.engine import gru_kernel, lstm_kernel, wavenet_kernel
from ampnet.host.fft import irfft, rfft

GAIN, GATE, LSTM, BIQUADS, CONVOLVER, MIX, GRU, WAVENET = range(8)
MODEL_KINDS = {"lstm": LSTM, "gru": GRU, "wavenet": WAVENET}  # a neural model's kind by its cell
KIND, F32, F32_LEN, F64, F64_LEN, S32, S32_LEN, S64, S64_LEN, INIT32, INIT64 = range(11)
TABLE_COLUMNS = 11
F64_HEADER, S64_HEADER = 2, 1  # [wet_target, smoothing] and [wet]
# The chain's health record at the start of each channel's s64 row.
NONFINITE, FIRST_NONFINITE, FRAMES, RESETS = range(4)  # FIRST_NONFINITE: frame, -1 for none
CHAIN_HEADER = 4
FINITE_MAX = 3.4028234663852886e38  # float32's largest value: |x| <= it is false for NaN, inf
_U = numba.uint64  # unsigned indices: no negative-index wraparound, so loops vectorise
KNOB_STEP = 16  # knob values move every KNOB_STEP samples (the LSTM runs in sub-blocks)
MAX_PARTITION = 4096  # the convolver's largest partition, level 2 included (samples)
_SPECTRUM = 4097  # MAX_PARTITION + 1 bins, a literal for the stack buffers
MAX_LEVELS = 4  # partition sizes of the convolver: P, 4P, 16P, 64P
_SNAP = 1e-7  # a smoothed value this close to its target takes the target


@numba.njit(cache=True)
def _approach(current, target, coefficient):
    """One step of one-pole smoothing, landing exactly on the target at the end."""
    current += (target - current) * coefficient
    if abs(target - current) < _SNAP:
        return target
    return current


@numba.njit(cache=True)
def gain_run(y, f, s, smooth):
    """``f = [target_gain]`` (linear), ``s = [gain]``."""
    gain, target = s[0], f[0]
    for n in range(y.shape[0]):
        if gain != target:
            gain = _approach(gain, target, smooth)
        y[n] = y[n] * gain
    s[0] = gain


@numba.njit(cache=True)
def gate_run(y, dry, f, s):
    """Noise gate: detects on ``dry`` (the chain's input), applies its gain to ``y``.

    ``f = [threshold, attack, release, hold_samples, detector_decay]`` (linear
    threshold; attack/release as one-pole coefficients per sample); ``s = [envelope,
    gain, hold_left]``. The envelope is a peak detector; above the threshold the
    gate opens (towards gain 1 at the attack rate) and re-arms the hold; once the
    hold has run out it closes (towards 0 at the release rate).
    """
    threshold, attack, release, hold, decay = f[0], f[1], f[2], f[3], f[4]
    envelope, gain, hold_left = s[0], s[1], s[2]
    for n in range(y.shape[0]):
        level = abs(np.float64(dry[n]))
        envelope = max(level, envelope * decay)
        if envelope >= threshold:
            hold_left = hold
            target = 1.0
        elif hold_left > 0:
            hold_left -= 1
            target = 1.0
        else:
            target = 0.0
        gain += (target - gain) * (attack if target > gain else release)
        y[n] = y[n] * gain
    s[0], s[1], s[2] = envelope, gain, hold_left


@numba.njit(cache=True)
def _run_model(y, params, state, kind):
    """One channel of a neural model of ``kind`` (``MODEL_KINDS``), in place."""
    if kind == GRU:
        gru_kernel._run_channel(y, y, params, state)
    elif kind == WAVENET:
        wavenet_kernel._run_channel(y, y, params, state)
    else:
        lstm_kernel._run_channel(y, y, params, state)


@numba.njit(cache=True)
def model_run(y, params, f, state, s, smooth, kind):
    """A neural model of ``kind`` (``MODEL_KINDS``): ``params`` as its architecture's
    ``pack_params`` builds it; ``f = [knob_count, knob targets...]``;
    ``s = [phase, knob values...]``.

    While a knob moves, the model runs in sub-blocks of ``KNOB_STEP`` samples aligned
    to the stream (``phase``) and the knob steps at each boundary."""
    knobs = int(f[0])
    moving = False
    for k in range(knobs):
        params[lstm_kernel.KNOBS + k] = s[1 + k]
        moving = moving or s[1 + k] != f[1 + k]
    frames = y.shape[0]
    if not moving:
        _run_model(y, params, state, kind)
        s[0] = (s[0] + frames) % KNOB_STEP
        return
    step = 1.0 - (1.0 - smooth) ** KNOB_STEP  # the same glide time as per-sample smoothing
    start = 0
    while start < frames:
        phase = int(s[0])
        if phase == 0:
            for k in range(knobs):
                s[1 + k] = _approach(s[1 + k], f[1 + k], step)
                params[lstm_kernel.KNOBS + k] = s[1 + k]
        count = min(KNOB_STEP - phase, frames - start)
        _run_model(y[start:start + count], params, state, kind)
        s[0] = (phase + count) % KNOB_STEP
        start += count


@numba.njit(cache=True)
def biquads_run(y, f, s, smooth):
    """Cascaded biquads, transposed direct form II, float64 inside.

    ``f = [sections, then b0 b1 b2 a1 a2 per section]`` (targets, a0 = 1);
    ``s`` per section ``[b0 b1 b2 a1 a2 z1 z2]`` (current coefficients and state)."""
    for sec in range(int(f[0])):
        t = f[1 + 5 * sec:6 + 5 * sec]
        c = s[7 * sec:7 * sec + 7]
        moving = False
        for k in range(5):
            moving = moving or c[k] != t[k]
        b0, b1, b2, a1, a2, z1, z2 = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        if moving:
            for n in range(y.shape[0]):
                b0 = _approach(b0, t[0], smooth)
                b1 = _approach(b1, t[1], smooth)
                b2 = _approach(b2, t[2], smooth)
                a1 = _approach(a1, t[3], smooth)
                a2 = _approach(a2, t[4], smooth)
                x = np.float64(y[n])
                out = b0 * x + z1
                z1 = b1 * x - a1 * out + z2
                z2 = b2 * x - a2 * out
                y[n] = out
        else:
            for n in range(y.shape[0]):
                x = np.float64(y[n])
                out = b0 * x + z1
                z1 = b1 * x - a1 * out + z2
                z2 = b2 * x - a2 * out
                y[n] = out
        c[0], c[1], c[2], c[3], c[4], c[5], c[6] = b0, b1, b2, a1, a2, z1, z2


@numba.njit(cache=True, fastmath={"contract"}, error_model="numpy")
def _partition_done(history, tail, x_re, x_im, z_re, z_im, frame, f, P, M, slot, acc, acc_im):
    """One level of the convolver when its input partition is complete: the spectrum of
    the last ``2P`` inputs goes into the newest of ``M`` slots, the spectra are multiplied
    with the IR's partitions and summed, and the inverse transform's second half becomes
    the ``tail`` due over the next ``P`` samples. ``f`` is the level's constants:
    ``[H_re (M, P+1), H_im (M, P+1), fft tables]`` (see :func:`ampnet.host.fft.rfft`)."""
    B = P + 1
    h_re = f[:M * B]
    h_im = f[M * B:2 * M * B]
    t = 2 * M * B
    tw_re, tw_im = f[t:t + P - 1], f[t + P - 1:t + 2 * P - 2]
    reverse = f[t + 2 * P - 2:t + 3 * P - 2]
    split_cos, split_sin = f[t + 3 * P - 2:t + 4 * P - 1], f[t + 4 * P - 1:t + 5 * P]
    slot = (slot + 1) % M
    rfft(history, x_re[slot * B:(slot + 1) * B], x_im[slot * B:(slot + 1) * B], z_re, z_im,
         tw_re, tw_im, reverse, split_cos, split_sin)
    for b in range(B):
        acc[b] = 0.0
        acc_im[b] = 0.0
    for m in range(M):  # sums in stack buffers, which alias nothing: vectorises
        src = _U(((slot - m + M) % M) * B)
        hm = _U(m * B)
        for b in range(B):
            ub = _U(b)
            hr, hi = h_re[hm + ub], h_im[hm + ub]
            xr, xi = x_re[src + ub], x_im[src + ub]
            acc[ub] += hr * xr - hi * xi
            acc_im[ub] += hr * xi + hi * xr
    irfft(acc[:B], acc_im[:B], frame, z_re, z_im, tw_re, tw_im, reverse, split_cos, split_sin)
    for i in range(P):
        tail[i] = frame[P + i]
        history[i] = history[P + i]
    return slot


@numba.njit(cache=True)
def level_sizes(P, M):
    """``(constants, state)`` lengths of one convolver level (partition ``P``, ``M`` slots)."""
    B = P + 1
    return 2 * M * B + 5 * P, 7 * P + 2 * M * B


@numba.njit(cache=True, fastmath={"contract"}, error_model="numpy")
def convolver_run(y, f, fa, s, sa):
    """Zero-latency convolution with an impulse response ``h``, non-uniformly partitioned.

    ``fa = [levels, P_1, M_1, P_2, M_2, ...]``. The first ``P_1`` taps run directly
    (time domain, per sample). Level ``l`` convolves the next ``M_l P_l`` taps in ``M_l``
    partitions of ``P_l`` by overlap-save FFT (size ``2 P_l``), starting at tap ``P_l``
    (so ``P_{l+1} = P_l (M_l + 1)``). A level's result is due ``P_l`` samples after its
    input partition is complete, exactly when its first tap applies: no latency is
    added, and the large late partitions keep the FFT work per sample low.
    ``f = [h[:P_1], level constants...]``; ``s`` per level ``[history (2P), tail (P),
    X_re, X_im (M, P+1), z_re, z_im (P), frame (2P)]``; ``sa = [position in each
    level's partition..., newest slot of each level...]`` (``MAX_LEVELS`` each).
    """
    levels, P1 = int(fa[0]), int(fa[1])
    head = f[:P1]
    hist1 = s[:2 * P1]
    acc = numba.carray(lstm_kernel.stack_float32(_SPECTRUM), _SPECTRUM)
    acc_im = numba.carray(lstm_kernel.stack_float32(_SPECTRUM), _SPECTRUM)
    pos1 = int(sa[0])
    start = 0
    frames = y.shape[0]
    while start < frames:
        count = min(P1 - pos1, frames - start)
        out = y[start:start + count]
        for i in range(count):
            acc[i] = 0.0
        s_off = 0
        for level in range(levels):
            P, M = int(fa[1 + 2 * level]), int(fa[2 + 2 * level])
            pos = int(sa[level])
            history, tail = s[s_off:s_off + 2 * P], s[s_off + 2 * P:s_off + 3 * P]
            for i in range(count):
                history[P + pos + i] = out[i]
                acc[i] += tail[pos + i]
            s_off += level_sizes(P, M)[1]
        for k in range(P1):  # direct taps: the loop over outputs vectorises
            hk = head[k]
            base = _U(P1 + pos1 - k)
            for i in range(count):
                acc[_U(i)] += hk * hist1[base + _U(i)]
        for i in range(count):
            out[i] = acc[i]
        start += count
        f_off, s_off = P1, 0
        for level in range(levels):
            P, M = int(fa[1 + 2 * level]), int(fa[2 + 2 * level])
            f_len, s_len = level_sizes(P, M)
            pos = int(sa[level]) + count
            if pos == P:
                pos = 0
                lf, ls = f[f_off:f_off + f_len], s[s_off:s_off + s_len]
                history, tail = ls[:2 * P], ls[2 * P:3 * P]
                if M > 0:
                    B = P + 1
                    w = 3 * P + 2 * M * B
                    sa[MAX_LEVELS + level] = _partition_done(
                        history, tail, ls[3 * P:3 * P + M * B], ls[3 * P + M * B:w], ls[w:w + P],
                        ls[w + P:w + 2 * P], ls[w + 2 * P:w + 4 * P], lf, P, M,
                        int(sa[MAX_LEVELS + level]), acc, acc_im)
                else:
                    for i in range(P):
                        history[i] = history[P + i]
            sa[level] = pos
            f_off += f_len
            s_off += s_len
        pos1 = int(sa[0])


@numba.njit(cache=True)
def mix_run(y, dry, f, s, smooth):
    """Dry/wet mix with the chain's input: ``f = [wet_target]``, ``s = [wet]``."""
    wet, target = s[0], f[0]
    for n in range(y.shape[0]):
        if wet != target:
            wet = _approach(wet, target, smooth)
        y[n] = dry[n] + wet * (y[n] - dry[n])
    s[0] = wet


@numba.njit(cache=True)
def _finite(values):
    """True when every value is finite (NaN and infinities compare false)."""
    for v in values:
        if not abs(v) <= FINITE_MAX:
            return False
    return True


@numba.njit(cache=True)
def reset_processor(p, channel, keep_wet, table, f32, f64, s32, s64):
    """Put processor ``p``'s state on ``channel`` back to its initial values (kept in
    ``f32``/``f64`` at ``INIT32``/``INIT64``); ``keep_wet`` leaves its bypass crossfade
    where it is, else the crossfade lands on its target."""
    row = table[p]
    for i in range(row[S32_LEN]):
        s32[channel, row[S32] + i] = f32[row[INIT32] + i]
    for i in range(S64_HEADER, row[S64_LEN]):
        s64[channel, row[S64] + i] = f64[row[INIT64] + i]
    if not keep_wet:
        s64[channel, row[S64]] = f64[row[F64]]


@numba.njit(cache=True)
def run_chain_channel(y, dry, before, channel, table, f32, f64, s32, s64):
    """Run every processor of the chain on ``y`` (one channel's block, in place).
    ``dry`` and ``before`` are scratch buffers at least as long as ``y``. Non-finite
    input is replaced and counted, a processor left non-finite is reset (module
    docstring)."""
    frames = y.shape[0]
    health = s64[channel, :CHAIN_HEADER]
    for n in range(frames):
        v = y[n]
        if not abs(v) <= FINITE_MAX:
            if health[NONFINITE] == 0.0:
                health[FIRST_NONFINITE] = health[FRAMES] + n
            health[NONFINITE] += 1.0
            v = numba.float32(0.0)
            y[n] = v
        dry[n] = v
    for p in range(table.shape[0]):
        row = table[p]
        kind = row[KIND]
        fa = f64[row[F64]:row[F64] + row[F64_LEN]]
        sa = s64[channel, row[S64]:row[S64] + row[S64_LEN]]
        f = f32[row[F32]:row[F32] + row[F32_LEN]]
        s = s32[channel, row[S32]:row[S32] + row[S32_LEN]]
        wet_target, smooth, wet = fa[0], fa[1], sa[0]
        fade = wet != 1.0 or wet_target != 1.0
        if fade:
            for n in range(frames):
                before[n] = y[n]
        fa = fa[F64_HEADER:]
        sa = sa[S64_HEADER:]
        if kind == GAIN:
            gain_run(y, fa, sa, smooth)
        elif kind == GATE:
            gate_run(y, dry, fa, sa)
        elif kind == LSTM or kind == GRU or kind == WAVENET:
            model_run(y, f, fa, s, sa, smooth, kind)
        elif kind == BIQUADS:
            biquads_run(y, fa, sa, smooth)
        elif kind == CONVOLVER:
            convolver_run(y, f, fa, s, sa)
        elif kind == MIX:
            mix_run(y, dry, fa, sa, smooth)
        if not (_finite(y) and _finite(sa)):
            reset_processor(p, channel, True, table, f32, f64, s32, s64)
            health[RESETS] += 1.0
            for n in range(frames):
                if not abs(y[n]) <= FINITE_MAX:
                    y[n] = 0.0
        if fade:
            for n in range(frames):
                if wet != wet_target:
                    wet = _approach(wet, wet_target, smooth)
                y[n] = before[n] + wet * (y[n] - before[n])
            s64[channel, row[S64]] = wet
    health[FRAMES] += frames


@numba.njit(cache=True)
def run_chain(x, y, scratch, table, f32, f64, s32, s64):
    """Process ``x`` ``(channels, frames)`` into ``y`` (same shape; may be ``x``),
    in pieces of at most ``scratch.shape[1]`` frames; ``scratch`` is ``(3, max_block)``."""
    if x.shape[0] != y.shape[0] or x.shape[1] != y.shape[1] or x.shape[0] > s32.shape[0]:
        raise ValueError("input and output must have the same (channels, frames) shape")
    step = scratch.shape[1]
    for c in range(x.shape[0]):
        for start in range(0, x.shape[1], step):
            count = min(step, x.shape[1] - start)
            block = scratch[0, :count]
            for n in range(count):
                block[n] = x[c, start + n]
            run_chain_channel(block, scratch[1, :count], scratch[2, :count], c, table, f32, f64,
                              s32, s64)
            for n in range(count):
                y[c, start + n] = block[n]


@numba.njit(cache=True)
def run_chain_mono(x, y, scratch, table, f32, f64, s32, s64):
    """:func:`run_chain` for a 1-D block (channel 0)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError("input and output must have the same number of frames")
    step = scratch.shape[1]
    for start in range(0, x.shape[0], step):
        count = min(step, x.shape[0] - start)
        block = scratch[0, :count]
        for n in range(count):
            block[n] = x[start + n]
        run_chain_channel(block, scratch[1, :count], scratch[2, :count], 0, table, f32, f64,
                          s32, s64)
        for n in range(count):
            y[start + n] = block[n]
