"""Make models/cab-synthetic.wav: a synthetic guitar-cabinet impulse response that
ampnet may ship (made here from seeded noise, no recording involved).

A 4x12-like response: decaying noise, band-limited to about 80 Hz - 5 kHz with
a low resonance near 110 Hz, a presence bump near 2.5 kHz and a dip near 700 Hz.
Needs scipy (the ``test`` extra): ``.venv/bin/python scripts/make_cab_ir.py``.
"""

from pathlib import Path

import numpy as np
import scipy.signal as ss
import soundfile as sf

RATE = 48000
SECONDS = 0.2


def main():
    rng = np.random.default_rng(2026)
    t = np.arange(int(SECONDS * RATE)) / RATE
    ir = rng.standard_normal(t.size) * np.exp(-t / 0.012)
    ir[0] += 4.0
    for sos in (ss.butter(2, 80, "highpass", fs=RATE, output="sos"),
                ss.butter(4, 5000, "lowpass", fs=RATE, output="sos")):
        ir = ss.sosfilt(sos, ir)
    for freq, gain_db, q in ((110, 6, 1.5), (700, -5, 1.0), (2500, 4, 1.2)):
        b, a = _peaking(freq, gain_db, q)
        ir = ss.lfilter(b, a, ir)
    ir *= 10 ** (-40 / 20 * t / SECONDS)  # a gentle extra fade to -40 dB at the end
    ir /= np.abs(ir).max()
    out = Path(__file__).resolve().parent.parent / "models" / "cab-synthetic.wav"
    sf.write(str(out), (0.9 * ir).astype(np.float32), RATE, subtype="FLOAT")
    print(f"wrote {out} ({t.size} taps, {SECONDS * 1000:.0f} ms at {RATE} Hz)")


def _peaking(freq, gain_db, q):
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / RATE
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return b / den[0], den / den[0]


if __name__ == "__main__":
    main()
