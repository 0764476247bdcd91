"""Latency between a dry (DI) and a wet (device) recording: where the device's
response *starts*.

Two estimates are made from the same short windows (0.5 s, Hann-windowed dry
against the wet extended by the maximum lag on both sides):

1. **GCC-PHAT** (Knapp and Carter, "The generalized correlation method for
   estimation of time delay", IEEE TASSP 24(4), 1976) whitens the
   cross-spectrum, so the correlation summed over the windows collapses to a
   sharp peak near the delay instead of the broad comb a plain correlation gives
   on guitar. Spurious peaks of sustained notes move with the notes played; the
   true delay stays put. It finds the region, the polarity (the peak's sign) and
   the confidence (1 - best other peak / main peak), on any material and for
   reamp latencies of up to ``max_lag_seconds``.
2. **The device's impulse response**, regularised (Wiener) from the summed
   cross- and auto-spectra: ``h = IFFT(sum W D* / (sum |D|^2 + lambda))``. For a
   non-linear device this is its best linear approximation. The correlation
   peak of a device with filters (a tone stack, an all-pass) sits several samples
   after its pure delay, at its group delay; ``h`` shows where the response
   begins.

The latency is the **onset** of ``h``: from its largest sample near the PHAT
peak, walk back over samples that clear both ``ONSET_FRACTION`` of it and
``NOISE_FACTOR`` times the estimate's own noise floor (the 99.9th percentile of
``|h|`` in the ``NOISE_SECONDS`` before the response, where a causal device
leaves only estimation noise: short or noisy takes), bridging up to
``ONSET_GAP`` smaller ones (an oscillating response crosses zero), then
``SAFETY_MARGIN`` more. It errs early on purpose: a model can learn a sample or
two of delay, but it cannot learn the future, so a latency found late would make
the target non-causal and the model would play ahead of the device. A pure delay
is found exactly, less the margin. On devices with a known onset (the tests' four
synthetic devices, the two shared Guitarix devices) it has been 1 to 3 samples early,
never late: :class:`Alignment` carries that range, and the capture signal's clicks
(:mod:`ampnet.capture.signal`) give the onset exactly.
"""

from dataclasses import dataclass

import numpy as np

WINDOW_SECONDS = 0.5
MAX_WINDOWS = 240
BAND_HZ = (70.0, 20000.0)
CONFIDENT = 0.35
REGULARISATION = 1e-4  # lambda, relative to the mean power of the dry's spectrum
ONSET_FRACTION = 0.2
NOISE_FACTOR = 1.5
NOISE_SECONDS = 0.05
ONSET_GAP = 4  # samples
SAFETY_MARGIN = 1  # samples
ESTIMATE_EARLY_BY = 3  # samples: the most the estimate has been early on devices with a known onset


@dataclass
class Latency:
    samples: int  # the wet lags the dry by this many samples (negative: it leads); the onset
    inverted: bool  # the correlation peak is negative: the wet's polarity is inverted
    confidence: float  # 0..1: 1 - (best other peak / main peak)
    peak_samples: int  # lag of the correlation peak (the device's group delay plus latency)

    @property
    def confident(self) -> bool:
        return self.confidence >= CONFIDENT


@dataclass(frozen=True)
class Alignment:
    """How a wet recording lines up with its dry: the one answer that the training
    notes, the report and the model's metadata all print.

    ``samples``: the wet lags the dry by this many samples (negative: it leads);
    ``method``: ``"clicks"`` (the capture signal's: exact), ``"given"`` (``--latency``)
    or ``"estimated"`` (from the playing); the device's true onset lies in
    ``[low, high]`` samples (one value when exact)."""

    samples: int
    method: str
    low: int
    high: int
    confidence: float | None = None  # the estimate's (0..1)
    peak_samples: int | None = None  # where the estimate's correlation peaks (group delay included)
    inverted: bool = False

    @classmethod
    def exact(cls, samples, method):
        return cls(int(samples), method, int(samples), int(samples))

    @classmethod
    def estimated(cls, latency: "Latency"):
        return cls(latency.samples, "estimated", latency.samples,
                   latency.samples + ESTIMATE_EARLY_BY, latency.confidence,
                   latency.peak_samples, latency.inverted)

    @property
    def is_exact(self) -> bool:
        return self.low == self.high

    def figures(self) -> dict:
        """The keys the report and the model metadata share."""
        return {"latency_samples": self.samples, "latency_method": self.method,
                "latency_range": [self.low, self.high], "latency_confidence": self.confidence,
                "latency_peak_samples": self.peak_samples}

    def describe(self, rate) -> str:
        """One line: the latency, how it was found and how sure it is."""
        head = f"{self.samples} samples ({1000 * self.samples / rate:.2f} ms)"
        if self.method == "clicks":
            return f"{head} from the capture signal's clicks: exact"
        if self.method == "given":
            return f"{head}, as given"
        how = [] if self.confidence is None else [f"confidence {self.confidence:.2f}"]
        how += ["polarity inverted"] if self.inverted else []
        how = f" ({', '.join(how)})" if how else ""
        return (f"{head}, estimated from the playing{how}: the device's response starts "
                f"between {self.low} and {self.high}; capture with 'ampnet signal' or "
                "'ampnet capture' for an exact latency from its clicks")


def estimate_latency(dry, wet, sample_rate, max_lag_seconds=0.5) -> Latency:
    """Estimate how far ``wet`` lags ``dry`` (1-D arrays at ``sample_rate`` Hz)."""
    dry = np.asarray(dry, dtype=np.float64)
    wet = np.asarray(wet, dtype=np.float64)
    length = min(dry.size, wet.size)
    max_lag = int(min(max_lag_seconds * sample_rate, length // 4))
    window = int(WINDOW_SECONDS * sample_rate)
    starts = np.arange(max_lag, length - window - max_lag, window // 2)
    if starts.size == 0:
        raise ValueError("recordings too short to estimate latency")
    if starts.size > MAX_WINDOWS:  # long files: an even spread of windows is enough
        starts = starts[np.linspace(0, starts.size - 1, MAX_WINDOWS).astype(int)]
    floor = 1e-4 * np.sqrt(np.mean(dry[:length] ** 2) + 1e-20)
    starts = [s for s in starts if np.sqrt(np.mean(dry[s:s + window] ** 2)) >= floor]  # silence: no timing
    taper = np.hanning(window)

    # 1. GCC-PHAT over every lag up to max_lag: region, polarity, confidence.
    size = 1 << int(np.ceil(np.log2(window + 2 * max_lag)))
    freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
    band = (freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], 0.45 * sample_rate))
    whitened = np.zeros(size // 2 + 1, complex)
    for start in starts:
        cross = (np.fft.rfft(wet[start - max_lag:start + window + max_lag], size)
                 * np.conj(np.fft.rfft(dry[start:start + window] * taper, size)))
        whitened += np.where(band, cross / (np.abs(cross) + 1e-12), 0.0)
    correlation = np.fft.irfft(whitened, size)[:2 * max_lag + 1]  # index i: lag i - max_lag
    magnitude = np.abs(correlation)
    peak = int(np.argmax(magnitude))
    if magnitude[peak] == 0:
        return Latency(0, False, 0.0, 0)
    guard = max(8, int(0.002 * sample_rate))
    others = magnitude.copy()
    others[max(0, peak - guard):peak + guard + 1] = 0.0
    confidence = float(1.0 - others.max() / magnitude[peak])
    peak_lag = peak - max_lag

    # 2. The response in a frame centred on the peak (so a shifted wet gives exactly
    #    the shifted answer): index j is lag peak_lag + j - reach.
    span = int(NOISE_SECONDS * sample_rate)
    reach = guard + span
    size = 1 << int(np.ceil(np.log2(window + 2 * reach)))
    cross = np.zeros(size // 2 + 1, complex)
    power = np.zeros(size // 2 + 1)
    for start in starts:
        dry_spectrum = np.fft.rfft(dry[start:start + window] * taper, size)
        segment = _padded(wet, start + peak_lag - reach, window + 2 * reach)
        cross += np.fft.rfft(segment, size) * np.conj(dry_spectrum)
        power += np.abs(dry_spectrum) ** 2
    response = np.fft.irfft(cross / (power + REGULARISATION * power.mean()), size)[:2 * reach + 1]
    # The response starts before its correlation peak: search up to (nearly) the peak only.
    onset = _onset(np.abs(response), reach - guard, reach + ONSET_GAP + 1, span)
    return Latency(samples=peak_lag + onset - reach - SAFETY_MARGIN,
                   inverted=bool(correlation[peak] < 0), confidence=max(0.0, confidence),
                   peak_samples=peak_lag)


def _padded(audio, start, count):
    """``audio[start:start + count]``, with zeros where that runs outside the array."""
    out = np.zeros(count)
    low, high = max(0, start), min(audio.size, start + count)
    if high > low:
        out[low - start:high - start] = audio[low:high]
    return out


def _onset(magnitude, low, high, span):
    """Index in ``[low, high)`` where the response around its largest sample begins;
    the noise floor is measured in the ``span`` samples before that range."""
    strongest = low + int(np.argmax(magnitude[low:high]))
    away = magnitude[max(0, low - span):low]
    noise = np.percentile(away, 99.9) if away.size else 0.0
    threshold = max(ONSET_FRACTION * magnitude[strongest], NOISE_FACTOR * noise)
    onset = strongest
    for index in range(strongest - 1, low - 1, -1):
        if onset - index > ONSET_GAP + 1:
            break
        if magnitude[index] >= threshold:
            onset = index
    return onset
