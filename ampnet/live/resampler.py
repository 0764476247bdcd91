"""Streaming rational resampler for the live path: device rate <-> model rate.

A polyphase FIR: the signal is (conceptually) upsampled by ``up`` with zeros,
low-pass filtered by a Kaiser-windowed sinc, and kept every ``down``-th sample,
so ``rate_out = rate_in * up / down``. Block by block it gives exactly
``scipy.signal.upfirdn(prototype, x, up, down)`` of the whole stream (the tests
check this), in compiled code on buffers allocated once.

Why not soxr, which render uses: soxr's stream object returns a new array from
Python on every chunk, and the audio callback may neither allocate nor run
Python. soxr stays the choice offline, where its steeper filters cost nothing.

Trade-offs, fixed here for monitoring: passband flat to 0.4 x the lower of the
two rates (17.6 kHz at 44.1 kHz), stopband from its Nyquist frequency, about
72 dB down (Kaiser beta 7); each direction delays the signal by half its filter,
about 24 input samples (0.5 ms), so a round trip adds about 1.1 ms. The ratio must
be a small fraction (``up`` at most ``MAX_UP``): 44.1 <-> 48 kHz is 160/147.
"""

import math
from fractions import Fraction

import numba
import numpy as np

from ampnet.engine.lstm_kernel import dot
from ampnet.errors import AmpnetError

PASSBAND = 0.4  # passband edge, as a fraction of the lower rate
STOPBAND = 0.5  # stopband edge: the lower rate's Nyquist frequency
ATTENUATION_DB = 72.0
MAX_UP = 1024
LANES = 8  # taps per phase are padded to a multiple of this (one AVX register)
_U = numba.uint64


class Polyphase:
    """The filter for one direction, ``rate_in`` -> ``rate_out`` (Hz, integers).

    ``prototype``: the float64 low-pass, ``up * taps`` long, at ``rate_in * up`` Hz.
    ``bank``: float32 ``(up, taps)``; ``bank[p, k] = prototype[p + (taps - 1 - k) * up]``,
    so phase ``p`` is a dot product with the last ``taps`` inputs, oldest first.
    """

    def __init__(self, rate_in, rate_out):
        ratio = Fraction(int(rate_out), int(rate_in))
        if ratio.numerator > MAX_UP:
            raise AmpnetError(f"cannot resample between {rate_in:g} Hz and {rate_out:g} Hz: the "
                              f"ratio {ratio} is not a small fraction; run the device at a "
                              f"standard rate (44100, 48000, 88200, 96000 Hz)")
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self.up, self.down = ratio.numerator, ratio.denominator
        upsampled = self.rate_in * self.up
        lower = min(self.rate_in, self.rate_out)
        width = (STOPBAND - PASSBAND) * lower / upsampled  # transition, cycles per sample
        # Kaiser's estimates: length for the attenuation, beta for the window.
        length = (ATTENUATION_DB - 7.95) / (14.36 * width) + 1
        self.taps = -(-math.ceil(length / self.up) // LANES) * LANES
        n = np.arange(self.up * self.taps) - (self.up * self.taps - 1) / 2
        cutoff = (PASSBAND + STOPBAND) / 2 * lower / upsampled
        beta = 0.1102 * (ATTENUATION_DB - 8.7)
        self.prototype = (2 * cutoff * self.up * np.sinc(2 * cutoff * n)
                          * np.kaiser(n.size, beta))
        self.bank = np.ascontiguousarray(
            self.prototype.reshape(self.taps, self.up)[::-1].T, dtype=np.float32)

    @property
    def delay_seconds(self):
        """The filter's group delay (it is linear-phase), in seconds."""
        return (self.prototype.size - 1) / 2 / (self.rate_in * self.up)

    def max_output(self, frames):
        """The most output samples ``frames`` input samples can produce."""
        return -(-frames * self.up // self.down) + 1

    def history(self, max_frames):
        """A zeroed history buffer for blocks of up to ``max_frames`` input samples."""
        return np.zeros(self.taps - 1 + max_frames, dtype=np.float32)

    def state(self):
        """The initial ``[phase, down]`` of :func:`resample_block`."""
        return np.array([0, self.down], dtype=np.int64)


class StreamResampler:
    """:class:`Polyphase` with its state, for use from Python (tests, tools).
    ``process(x)`` takes a 1-D float32 block and returns the samples it completes."""

    def __init__(self, rate_in, rate_out, max_frames=4096):
        self.filter = Polyphase(rate_in, rate_out)
        self.max_frames = max_frames
        self._history = self.filter.history(max_frames)
        self._state = self.filter.state()
        self._out = np.zeros(self.filter.max_output(max_frames), dtype=np.float32)

    def process(self, x):
        pieces = []
        for start in range(0, max(len(x), 1), self.max_frames):
            count = resample_block(np.ascontiguousarray(x[start:start + self.max_frames],
                                                        dtype=np.float32),
                                   self._out, self.filter.bank, self._history, self._state)
            pieces.append(self._out[:count].copy())
        return np.concatenate(pieces)


@numba.njit(cache=True, fastmath={"contract"}, error_model="numpy")
def resample_block(x, y, bank, history, state):
    """Resample the 1-D block ``x`` into ``y``; returns the number of samples written
    (at most ``Polyphase.max_output(x.size)``). ``history`` holds the last ``taps - 1``
    inputs at its start and room for ``x`` after them. ``state`` (int64): ``[phase, down]``,
    the phase being where the next output falls after the newest input, in ``1 / up``
    input samples (:meth:`Polyphase.state`)."""
    up, taps = bank.shape[0], bank.shape[1]
    keep = taps - 1
    frames = x.shape[0]
    for n in range(frames):
        history[_U(keep + n)] = x[n]
    p, down = state[0], state[1]
    count = 0
    for n in range(frames):
        while p < up:
            y[count] = dot(bank[p], _U(0), history, _U(n), taps)
            count += 1
            p += down
        p -= up
    state[0] = p
    for k in range(keep):
        history[k] = history[_U(frames + k)]
    return count
