"""An in-place radix-2 complex FFT for compiled code, with no allocation per call.

NumPy's FFT cannot be called from Numba, and every call of it allocates. This
is the textbook iterative Cooley-Tukey transform on split real/imaginary float32
arrays (length ``n``, a power of two): bit-reversal permutation, then log2(n)
butterfly stages. The twiddle factors of every stage are stored one stage after
the other (stage with half-size ``h`` at offset ``h - 1``), so the inner loop
reads them contiguously and LLVM vectorises the wide stages. Trade-off: simple
and exact to float32 rounding (about 1e-7 relative per stage), slower than
split-radix or real-input transforms; the convolver that uses it does few
transforms per sample, so the multiply-accumulate of spectra dominates anyway.
"""

import numba
import numpy as np

_U = numba.uint64  # unsigned indices: no negative-index wraparound, so loops vectorise


def fft_tables(n):
    """``(twiddle_re, twiddle_im, bit_reverse)`` for an ``n``-point forward transform."""
    if n < 2 or n & (n - 1):
        raise ValueError("the FFT size must be a power of two")
    re, im = [], []
    half = 1
    while half < n:
        k = np.arange(half)
        angle = -np.pi * k / half
        re.append(np.cos(angle))
        im.append(np.sin(angle))
        half *= 2
    bits = n.bit_length() - 1
    index = np.arange(n)
    reverse = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        reverse |= ((index >> b) & 1) << (bits - 1 - b)
    return (np.concatenate(re).astype(np.float32), np.concatenate(im).astype(np.float32), reverse)


@numba.njit(cache=True)
def fft_inplace(re, im, twiddle_re, twiddle_im, bit_reverse, inverse):
    """Transform ``re + i*im`` (length n) in place: forward ``X[k] = sum x[t] e^{-2 pi i k t/n}``,
    or, with ``inverse``, the same sum with ``e^{+...}`` and no 1/n scaling."""
    n = re.shape[0]
    for i in range(n):
        j = int(bit_reverse[i])
        if j > i:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    sign = np.float32(-1.0) if inverse else np.float32(1.0)
    half = 1
    while half < n:
        tw = _U(half - 1)
        for start in range(0, n, 2 * half):
            for k in range(half):
                uk = _U(k)
                wr = twiddle_re[tw + uk]
                wi = sign * twiddle_im[tw + uk]
                a = _U(start) + uk
                b = a + _U(half)
                tr = re[b] * wr - im[b] * wi
                ti = re[b] * wi + im[b] * wr
                re[b] = re[a] - tr
                im[b] = im[a] - ti
                re[a] = re[a] + tr
                im[a] = im[a] + ti
        half *= 2
