"""Loudness of a model: its RMS output level for a fixed reference guitar signal.

One definition for every model, whatever format it came from (NAM's own
``loudness`` field is measured differently, so it is not used): the model runs
over ``REFERENCE_SECONDS`` of :func:`reference_guitar` at its own sample rate
with the given knob values; the RMS of the output after the first 0.25 s, in dBFS.
"""

import numpy as np

REFERENCE_SECONDS = 3.0


def reference_guitar(seconds=1.0, sample_rate=48000, seed=0, level=0.5):
    """Plucked notes: decaying harmonic tones at random pitches and times, plus a
    little noise; shape ``(frames,)``, float32, peak ``level`` (full scale = 1)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    t = np.arange(n) / sample_rate
    start = 0
    while start < n:
        freq = 82.4 * 2 ** (rng.integers(0, 36) / 12)
        length = int(rng.uniform(0.1, 0.6) * sample_rate)
        tt = t[: min(length, n - start)]
        note = sum(np.sin(2 * np.pi * freq * k * tt + rng.uniform(0, 6.28)) / k**1.2
                   for k in range(1, 8))
        out[start:start + tt.size] += note * np.exp(-tt * rng.uniform(2, 8)) * rng.uniform(0.3, 1)
        start += int(rng.uniform(0.05, 0.5) * sample_rate)
    out += 0.003 * rng.standard_normal(n)
    return (out * level / np.abs(out).max()).astype(np.float32)


def model_loudness_dbfs(model, knob_values=None):
    """RMS output level (dBFS) of ``model`` for the reference signal."""
    from ampnet.engine import Engine

    engine = Engine(model)
    engine.set_knobs(knob_values)
    rate = int(round(model.sample_rate))
    out = engine.process(reference_guitar(REFERENCE_SECONDS, rate, level=0.3))[rate // 4:]
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-9))
