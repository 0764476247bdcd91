"""Latency between a dry (DI) and a wet (device) recording: where the device's
response *starts*.

1. **GCC-PHAT** (Knapp and Carter, "The generalized correlation method for
   estimation of time delay", IEEE TASSP 24(4), 1976), summed over short windows
   (0.5 s, Hann-windowed dry against the wet extended by the maximum lag on both
   sides), whitens the cross-spectrum, so the correlation collapses to a sharp peak
   near the delay instead of the broad comb a plain correlation gives on guitar. It
   finds the region, the polarity (the peak's sign) and the confidence (1 - best
   other peak / main peak), on any material and for reamp latencies of up to
   ``max_lag_seconds``. The peak sits at the device's group delay, several samples
   after the onset on a device with filters.
2. **The onset**, from a regression of each wet sample on the wet's own past
   (``PAST`` samples) and on the dry around the peak (lags ``peak - BEFORE`` to
   ``peak + AFTER``): an ARX model (Ljung, "System Identification", 2nd ed., 1999,
   sec. 4.2). A dry sample the device has not heard yet cannot move the wet, so the
   coefficients of lags before the onset are zero and the first one that is not is
   the device's first response sample, however small next to its peak (a
   high-gain amp's). Two things blur that edge, and the estimate is built around both:

   - *Noise*: each coefficient's standard error comes from a delete-a-group
     jackknife over ``GROUPS`` stretches of the take (Efron and Stein, Ann. Statist.
     9(3), 1981); a lag counts only at ``Z_SURE`` standard errors.
   - *Non-linearity*: a linear regression of a clipping device leaks a smooth ramp
     of small coefficients before the true onset (what a smoothed impulse response
     shows as an early onset). The leak grows with level, and a device's small-signal
     response is linear, so the regression is run on the quietest 15%, 30% and 50%
     of the frames with signal, and on all of them (a fuzz clips even quietly), and
     the estimate comes from the level band whose onset is the sharpest edge: the
     largest ratio between the onset's significance and the largest of the
     ``EDGE`` lags before it.

   An edge of at least ``SHARP`` that is response beyond doubt (followed by more: the
   median significance of the ``EDGE`` lags after it at least ``SUPPORT`` standard
   errors; or alone, as a pure delay's single tap, at ``ALONE``: in dark playing a lone
   lag a little over ``Z_SURE`` can sit a sample or two after the onset) and lies
   within the conservative range below is *decided*: the latency is that onset,
   exactly (the four synthetic devices of the tests, at every delay and both
   polarities; the two shared Guitarix devices, whose true latency is 0, on every take
   of theirs).
3. **The conservative estimate**, checked against and used when the regression cannot
   decide: the device's impulse response, regularised (Wiener) from the summed cross-
   and auto-spectra, ``h = IFFT(sum W D* / (sum |D|^2 + lambda))``, walked back from
   its largest sample near the peak to where it stops clearing a fraction of it and its
   own noise floor, less a sample. The regularisation smooths the response, so this
   onset is early, by 1 to ``EARLY_BY`` samples on every device with a known onset, and
   never late (a model can learn a sample or two of delay, but not the future).

   Undecided (dark or short material: its first response samples are buried, or an
   edge the regression finds falls outside that range), the latency is the
   conservative one and :class:`Alignment` carries the range ``[early, early +
   EARLY_BY]`` that holds the onset; the capture signal's clicks
   (:mod:`ampnet.capture.signal`) give it exactly.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

WINDOW_SECONDS = 0.5
MAX_WINDOWS = 240
BAND_HZ = (70.0, 20000.0)
CONFIDENT = 0.35
# The smoothed response (the conservative estimate)
REGULARISATION = 1e-4  # lambda, relative to the mean power of the dry's spectrum
ONSET_FRACTION = 0.2
NOISE_FACTOR = 1.5
NOISE_SECONDS = 0.05
ONSET_GAP = 4  # samples
SAFETY_MARGIN = 1  # samples
EARLY_BY = 3  # samples: the most it has been early on devices with a known onset
# The regression (the exact onset)
BEFORE = 48  # dry lags searched before the correlation peak (samples)
AFTER = 64  # and after it; the wet's past carries the rest of the response
PAST = 32  # wet samples of the regression's own past
FRAME_SECONDS = 0.02  # the take is cut into frames, ranked by the dry's level
LEVEL_BANDS = (0.15, 0.3, 0.5, 1.0)  # the quietest share of the frames with signal
MAX_FRAMES = 2400  # at most this many frames (48 s at 48 kHz) per band, spread over the take
GROUPS = 20  # jackknife groups: stretches of the take
Z_SURE = 6.0  # standard errors for a lag to count as response
LEAST_SHARE = 0.02  # nor under this share of the largest coefficient
EDGE = 4  # lags before an onset that its sharpness is measured against
SHARP = 3.0  # an edge at least this sharp (and response beyond doubt, in range) decides
SUPPORT = 3.0  # standard errors: the median significance of the EDGE lags after the onset
ALONE = 50.0  # standard errors: an onset this significant needs no support (a pure delay)


@dataclass
class Latency:
    samples: int  # the wet lags the dry by this many samples (negative: it leads); the onset
    inverted: bool  # the correlation peak is negative: the wet's polarity is inverted
    confidence: float  # 0..1: 1 - (best other peak / main peak)
    peak_samples: int  # lag of the correlation peak (the device's group delay plus latency)
    low: int = 0  # the onset lies in [low, high]: equal when decided
    high: int = 0

    @property
    def confident(self) -> bool:
        return self.confidence >= CONFIDENT

    @property
    def decided(self) -> bool:
        return self.low == self.high


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
        return cls(latency.samples, "estimated", latency.low, latency.high,
                   latency.confidence, latency.peak_samples, latency.inverted)

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
        if self.is_exact:
            return f"{head}, found in the playing{how}: the device's response starts there"
        return (f"{head}, estimated from the playing{how}: the material cannot decide where "
                f"the device's response starts, between {self.low} and {self.high}; capture "
                "with 'ampnet signal' or 'ampnet capture' for an exact latency from its clicks, "
                "or give it with --latency")


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

    # 2. The conservative estimate: where a smoothed response begins, a little early.
    early = peak_lag + _smoothed_onset(dry, wet, peak_lag, starts, guard, sample_rate)
    # 3. The exact onset: the sharpest edge of the regression over the level bands.
    edges = _onsets(dry[:length], wet[:length], peak_lag, sample_rate)
    edge = max((e for e in edges if e is not None), key=lambda e: e.sharpness,
               default=Edge(0, 0.0, 0.0, 0.0))
    if (edge.sharpness >= SHARP and (edge.support >= SUPPORT or edge.strength >= ALONE)
            and early <= edge.lag <= early + EARLY_BY):
        low = high = samples = edge.lag
    else:
        samples, low, high = early, early, early + EARLY_BY
    return Latency(samples=samples, inverted=bool(correlation[peak] < 0),
                   confidence=max(0.0, confidence), peak_samples=peak_lag, low=low, high=high)


def _smoothed_onset(dry, wet, peak_lag, starts, guard, rate):
    """Onset of the regularised (Wiener) response, relative to ``peak_lag``: from its
    largest sample near the peak, back over samples above ``ONSET_FRACTION`` of it and
    ``NOISE_FACTOR`` times its own noise floor, then ``SAFETY_MARGIN`` more. The
    regularisation smooths the response, so its onset is early, never late."""
    window = int(WINDOW_SECONDS * rate)
    taper = np.hanning(window)
    span = int(NOISE_SECONDS * rate)
    reach = guard + span  # a frame centred on the peak: index j is lag peak_lag + j - reach
    size = 1 << int(np.ceil(np.log2(window + 2 * reach)))
    cross = np.zeros(size // 2 + 1, complex)
    power = np.zeros(size // 2 + 1)
    for start in starts:
        dry_spectrum = np.fft.rfft(dry[start:start + window] * taper, size)
        segment = _padded(wet, start + peak_lag - reach, window + 2 * reach)
        cross += np.fft.rfft(segment, size) * np.conj(dry_spectrum)
        power += np.abs(dry_spectrum) ** 2
    magnitude = np.abs(np.fft.irfft(cross / (power + REGULARISATION * power.mean()),
                                    size)[:2 * reach + 1])
    low, high = reach - guard, reach + ONSET_GAP + 1  # search up to (nearly) the peak only
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
    return onset - reach - SAFETY_MARGIN


def _padded(audio, start, count):
    """``audio[start:start + count]``, with zeros where that runs outside the array."""
    out = np.zeros(count)
    low, high = max(0, start), min(audio.size, start + count)
    if high > low:
        out[low - start:high - start] = audio[low:high]
    return out


class Edge(NamedTuple):
    """Where one level band's regression finds the response starting."""

    lag: int  # samples: the first dry lag that is response
    sharpness: float  # its significance over the largest of the EDGE lags before it
    strength: float  # its significance (standard errors)
    support: float  # the median significance of the EDGE lags after it


def _onsets(dry, wet, peak_lag, rate):
    """The :class:`Edge` of the ARX regression on each level band (None where
    no lag up to the peak is response). Frames are cut from the dry and paired with the
    wet ``peak_lag`` later, so a wet shifted by N samples gives the same regressions and
    onsets N samples later."""
    lags = np.arange(peak_lag - BEFORE, peak_lag + AFTER + 1)
    frame = max(64, int(FRAME_SECONDS * rate))
    # Rows are wet samples t = u + peak_lag for u in a dry frame; each needs the dry at
    # t - lags and the wet's PAST samples before t.
    first = max(0, AFTER, PAST + 1 - peak_lag) // frame + 1
    last = (min(dry.size, wet.size - peak_lag) - BEFORE - 1) // frame
    if last - first < 2 * GROUPS:
        return []
    frames = np.arange(first, last)
    level = np.sqrt(np.mean(dry[first * frame:last * frame].reshape(-1, frame) ** 2, axis=1))
    sounding = level > 1e-4 * np.sqrt(np.mean(dry ** 2) + 1e-30)
    frames, level = frames[sounding], level[sounding]
    if frames.size < 2 * GROUPS:
        return []
    # Each frame's products are summed once, by level bucket (the bands are nested) and
    # by jackknife group (a stretch of the take).
    bucket = np.searchsorted(np.quantile(level, LEVEL_BANDS[:-1]), level, side="left")
    if frames.size > MAX_FRAMES:
        keep = np.linspace(0, frames.size - 1, MAX_FRAMES).astype(int)
        frames, bucket = frames[keep], bucket[keep]
    group = (frames - first) * GROUPS // (last - first)
    columns = PAST + lags.size
    grams = np.zeros((len(LEVEL_BANDS), GROUPS, columns, columns))
    moments = np.zeros((len(LEVEL_BANDS), GROUPS, columns))
    for b in range(len(LEVEL_BANDS)):
        for g in range(GROUPS):
            mine = frames[(bucket == b) & (group == g)]
            for batch in range(0, mine.size, 32):
                t = (mine[batch:batch + 32, None] * frame + np.arange(frame)).ravel() + peak_lag
                regressors = np.empty((t.size, columns))
                regressors[:, :PAST] = wet[t[:, None] - np.arange(1, PAST + 1)]
                regressors[:, PAST:] = dry[t[:, None] - lags]
                grams[b, g] += regressors.T @ regressors
                moments[b, g] += regressors.T @ wet[t]
    return [_edge(grams[:b + 1].sum(0), moments[:b + 1].sum(0), lags)
            for b in range(len(LEVEL_BANDS))]


def _edge(grams, moments, lags):
    """The :class:`Edge` of one band's regression from its groups' normal equations
    ``grams (GROUPS, C, C)``, ``moments (GROUPS, C)``; None when no lag up to the peak
    is response."""
    gram, moment = grams.sum(0), moments.sum(0)
    if not np.any(gram):
        return None
    columns = gram.shape[0]
    ridge = 1e-12 * np.trace(gram) / columns * np.eye(columns)  # numerical safety only
    try:
        coefficients = np.linalg.solve(gram + ridge, moment)[PAST:]
        leave_out = np.array([np.linalg.solve(gram - grams[g] + ridge, moment - moments[g])[PAST:]
                              for g in range(GROUPS)])
    except np.linalg.LinAlgError:
        return None
    spread = np.sqrt((GROUPS - 1) / GROUPS * np.sum((leave_out - leave_out.mean(0)) ** 2, axis=0))
    z = np.abs(coefficients) / (spread + 1e-300)
    response = (z >= Z_SURE) & (np.abs(coefficients) >= LEAST_SHARE * np.abs(coefficients).max())
    candidates = np.flatnonzero(response[:BEFORE + 1])
    if candidates.size == 0:
        return None
    index = int(candidates[0])
    before = z[max(0, index - EDGE):index]
    sharpness = z[index] / max(1.0, before.max() if before.size else 0.0)
    return Edge(int(lags[index]), float(sharpness), float(z[index]),
                float(np.median(z[index + 1:index + 1 + EDGE])))
