"""An in-place radix-2 complex FFT for compiled code, with no allocation per call.

NumPy's FFT cannot be called from Numba, and every call of it allocates. This
is the textbook iterative Cooley-Tukey transform on split real/imaginary float32
arrays (length ``n``, a power of two): bit-reversal permutation, then log2(n)
butterfly stages. The twiddle factors of every stage are stored one stage after
the other (stage with half-size ``h`` at offset ``h - 1``), so the inner loop
reads them contiguously and LLVM vectorises the wide stages; the first two
stages run as one radix-4 pass. Real input goes through a half-size complex
transform (:func:`rfft`, :func:`irfft`). Trade-off: simple and exact to float32
rounding (about 1e-7 relative per stage), slower than a split-radix FFT.
"""

import numba
import numpy as np

_U = numba.uint64  # unsigned indices: no negative-index wraparound, so loops vectorise


def fft_tables(n):
    """``(twiddle_re, twiddle_im, bit_reverse)`` for an ``n``-point forward transform."""
    if n < 4 or n & (n - 1):
        raise ValueError("the FFT size must be a power of two, at least 4")
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


@numba.njit(cache=True, fastmath={"contract"}, error_model="numpy")
def fft_inplace(re, im, twiddle_re, twiddle_im, bit_reverse, inverse):
    """Transform ``re + i*im`` (length n >= 4) in place: forward ``X[k] = sum x[t] e^{-2 pi i k t/n}``,
    or, with ``inverse``, the same sum with ``e^{+...}`` and no 1/n scaling."""
    n = re.shape[0]
    for i in range(n):
        j = int(bit_reverse[i])
        if j > i:
            re[i], re[j] = re[j], re[i]
            im[i], im[j] = im[j], im[i]
    # The first two stages as one radix-4 pass: their twiddles are 1 and -i (+i inverse).
    for s in range(0, n, 4):
        b0r, b0i = re[s] + re[s + 1], im[s] + im[s + 1]
        b1r, b1i = re[s] - re[s + 1], im[s] - im[s + 1]
        b2r, b2i = re[s + 2] + re[s + 3], im[s + 2] + im[s + 3]
        b3r, b3i = re[s + 2] - re[s + 3], im[s + 2] - im[s + 3]
        tr, ti = (-b3i, b3r) if inverse else (b3i, -b3r)
        re[s], im[s] = b0r + b2r, b0i + b2i
        re[s + 2], im[s + 2] = b0r - b2r, b0i - b2i
        re[s + 1], im[s + 1] = b1r + tr, b1i + ti
        re[s + 3], im[s + 3] = b1r - tr, b1i - ti
    sign = np.float32(-1.0) if inverse else np.float32(1.0)
    half = 4
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


def real_fft_tables(n):
    """Tables for :func:`rfft` / :func:`irfft` of ``n`` real values (``n/2``-point complex
    FFT plus the split step): ``(twiddle_re, twiddle_im, bit_reverse, split_cos, split_sin)``."""
    tw_re, tw_im, reverse = fft_tables(n // 2)
    k = np.arange(n // 2 + 1)
    return tw_re, tw_im, reverse, np.cos(2 * np.pi * k / n).astype(np.float32), \
        np.sin(2 * np.pi * k / n).astype(np.float32)


@numba.njit(cache=True)
def rfft(x, out_re, out_im, z_re, z_im, twiddle_re, twiddle_im, bit_reverse, split_cos, split_sin):
    """Spectrum bins ``0..n/2`` of ``n`` real samples ``x`` (as ``numpy.fft.rfft``), through
    one ``n/2``-point complex FFT: even samples as real parts, odd as imaginary, then the
    split step ``X[k] = E[k] + e^{-2 pi i k/n} O[k]``. ``z_*`` are scratch of length n/2."""
    half = z_re.shape[0]
    for t in range(half):
        z_re[t] = x[2 * t]
        z_im[t] = x[2 * t + 1]
    fft_inplace(z_re, z_im, twiddle_re, twiddle_im, bit_reverse, False)
    for k in range(half + 1):
        a = k if k < half else 0  # k mod n/2 and (n/2 - k) mod n/2, without a division
        b = half - k if k > 0 else 0
        ar, ai, br, bi = z_re[a], z_im[a], z_re[b], -z_im[b]  # Z[k] and conj(Z[n/2 - k])
        er, ei = 0.5 * (ar + br), 0.5 * (ai + bi)
        o_r, o_i = 0.5 * (ai - bi), -0.5 * (ar - br)  # (Z[k] - conj(Z[-k])) / 2i
        c, s = split_cos[k], split_sin[k]
        out_re[k] = er + c * o_r + s * o_i
        out_im[k] = ei + c * o_i - s * o_r


@numba.njit(cache=True)
def irfft(spec_re, spec_im, x, z_re, z_im, twiddle_re, twiddle_im, bit_reverse, split_cos, split_sin):
    """``n`` real samples from bins ``0..n/2`` (as ``numpy.fft.irfft`` times ``n/2``: the
    caller folds the scale into its data). ``z_*`` are scratch of length n/2."""
    half = z_re.shape[0]
    for k in range(half):
        ar, ai = spec_re[k], spec_im[k]
        br, bi = spec_re[half - k], -spec_im[half - k]  # conj(X[n/2 - k])
        er, ei = ar + br, ai + bi
        dr, di = ar - br, ai - bi
        c, s = split_cos[k], split_sin[k]
        o_r, o_i = dr * c - di * s, dr * s + di * c  # (X[k] - conj(X[n/2-k])) e^{+2 pi i k/n}
        z_re[k] = 0.5 * (er - o_i)
        z_im[k] = 0.5 * (ei + o_r)
    fft_inplace(z_re, z_im, twiddle_re, twiddle_im, bit_reverse, True)
    for t in range(half):
        x[2 * t] = z_re[t]
        x[2 * t + 1] = z_im[t]
