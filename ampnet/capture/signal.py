"""The capture signal: what ampnet plays through a device to capture it, and where
everything in it lies. The signal writer (``ampnet signal``), ``ampnet train`` (which
recognises a dry that is this signal) and the recorder all read the layout here.

Layout (seconds at any rate; :func:`layout` gives frames)::

    0.00  silence              0.5 s
    0.50  start clicks         3 single-sample clicks at -6 dBFS, 0.5 s apart
    2.00  noise floor          1.0 s of silence: the wet's own noise is measured here
    3.00  sweeps               exponential sine sweeps 20 Hz..20 kHz, 3 s each, at
                               -30, -18 and -6 dBFS peak, 0.25 s apart
    12.75 noise                Gaussian noise (30 Hz..18 kHz) 3 s each at -46, -36,
                               -28 and -20 dBFS RMS
    24.75 single notes         plucked strings over the whole neck, soft to hard
    84.75 low strings          riffs on the low strings, palm-muted and open
    129.75 chords              strummed chords, soft to hard
    174.75 validation          mixed playing held out for validation (30 s)
    204.75 silence             1.0 s
    205.75 end clicks          as at the start: the same spacing tells drift and dropouts
    207.25 silence             0.5 s (end: 207.75 s)

The plucked material is synthesised (Karplus and Strong, "Digital synthesis of
plucked-string and drum timbres", Computer Music Journal 7(2), 1983, with Jaffe and
Smith's pick-position comb and loss filter, CMJ 7(2), 1983): a noise burst shaped by
the pick's position and hardness circulates in a delay line one period long through
an averaging loss filter, then a guitar body's resonances. Peaks span -40 to -1 dBFS;
pitches E2 (82 Hz) to E5; palm mutes lose energy fast and darkly. A fixed seed makes
the file the same on every machine, at any rate (the rate is a parameter of the
synthesis, not a resampling).
"""

from dataclasses import dataclass

import numpy as np

DEFAULT_RATE = 48000
SEED = 20261204
CLICK_LEVEL = 0.5  # -6 dBFS
CLICK_COUNT = 3
CLICK_SPACING_S = 0.5
LEAD_SILENCE_S = 0.5
FLOOR_S = 1.0
SWEEP_S, SWEEP_GAP_S = 3.0, 0.25
SWEEP_PEAKS_DBFS = (-30.0, -18.0, -6.0)
NOISE_S = 3.0
NOISE_RMS_DBFS = (-46.0, -36.0, -28.0, -20.0)
PLAYING = (("single notes", 60.0), ("low strings", 45.0), ("chords", 45.0), ("validation", 30.0))
PLAYING_PEAK_DBFS = -1.0
TAIL_SILENCE_S = 1.0
END_SILENCE_S = 0.5


@dataclass(frozen=True)
class Section:
    name: str
    start: int  # first frame
    stop: int  # one past the last frame

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Layout:
    """Where everything lies in the signal at ``rate`` Hz (frames)."""

    rate: int
    sections: tuple  # Section, in order
    start_clicks: tuple  # frame of each start click
    end_clicks: tuple  # frame of each end click
    frames: int

    def section(self, name) -> Section:
        return next(s for s in self.sections if s.name == name)


def layout(rate=DEFAULT_RATE) -> Layout:
    """The layout of the capture signal at ``rate`` Hz."""
    sections, clicks = [], {}
    position = 0

    def add(name, seconds):
        nonlocal position
        frames = int(round(seconds * rate))
        sections.append(Section(name, position, position + frames))
        position += frames

    add("silence", LEAD_SILENCE_S)
    add("start clicks", CLICK_COUNT * CLICK_SPACING_S)
    clicks["start"] = tuple(sections[-1].start + int(round(i * CLICK_SPACING_S * rate))
                            for i in range(CLICK_COUNT))
    add("noise floor", FLOOR_S)
    add("sweeps", len(SWEEP_PEAKS_DBFS) * (SWEEP_S + SWEEP_GAP_S))
    add("noise", len(NOISE_RMS_DBFS) * NOISE_S)
    for name, seconds in PLAYING:
        add(name, seconds)
    add("tail silence", TAIL_SILENCE_S)
    add("end clicks", CLICK_COUNT * CLICK_SPACING_S)
    clicks["end"] = tuple(sections[-1].start + int(round(i * CLICK_SPACING_S * rate))
                          for i in range(CLICK_COUNT))
    add("end silence", END_SILENCE_S)
    return Layout(rate, tuple(sections), clicks["start"], clicks["end"], position)


MIN_RATE, MAX_RATE = 22050, 192000


def generate(rate=DEFAULT_RATE) -> np.ndarray:
    """The capture signal at ``rate`` Hz: ``(frames,)`` float32, deterministic."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"{rate} Hz: the capture signal is made at {MIN_RATE} to {MAX_RATE} Hz")
    plan = layout(rate)
    out = np.zeros(plan.frames)
    rng = np.random.default_rng(SEED)
    head = _head(plan)
    out[:head.size] = head
    for frame in plan.end_clicks:
        out[frame] = CLICK_LEVEL
    noise = plan.section("noise")
    step = int(round(NOISE_S * rate))
    for i, rms_dbfs in enumerate(NOISE_RMS_DBFS):
        burst = _band_noise(rng, rate, step)
        out[noise.start + i * step:noise.start + (i + 1) * step] = burst * 10 ** (rms_dbfs / 20)
    for name, _ in PLAYING:
        section = plan.section(name)
        out[section.start:section.stop] = _playing(name, rng, rate, section.frames)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _head(plan):
    """The signal up to the end of its sweeps: silence, start clicks, floor, sweeps."""
    head = np.zeros(plan.section("sweeps").stop)
    for frame in plan.start_clicks:
        head[frame] = CLICK_LEVEL
    position = plan.section("sweeps").start
    for peak_dbfs in SWEEP_PEAKS_DBFS:
        sweep = _sweep(plan.rate, SWEEP_S) * 10 ** (peak_dbfs / 20)
        head[position:position + sweep.size] = sweep
        position += int(round((SWEEP_S + SWEEP_GAP_S) * plan.rate))
    return head


# --- recognising the signal and timing its clicks ----------------------------------

MATCH_TOLERANCE = 2.0 / 32768  # a 16-bit export of the signal still matches
RESPONSE_WINDOW_S = 0.3  # a click's response is looked for this long after it
EARLY_S = 0.1  # and this long before it (a wet that leads; samples lost before the end clicks)
QUIET_BEFORE_S = 0.05  # the wet must be at its noise floor this long before each click
FLOOR_FACTOR = 4.0  # a response sample above this many times the floor's peak has begun
MIN_FLOOR = 1e-6  # a digitally silent floor still needs a response this large


def recognize(dry, rate):
    """The :class:`Layout` if ``dry`` (``(frames,)`` at ``rate`` Hz) is the capture
    signal as written (any bit depth from 16 up), else None. Only the head (clicks,
    silence, sweeps) is compared, so this costs milliseconds."""
    if not MIN_RATE <= rate <= MAX_RATE:
        return None
    plan = layout(int(rate))
    head = _head(plan)
    if dry.size < head.size:
        return None
    if np.max(np.abs(dry[:head.size] - head)) > MATCH_TOLERANCE:
        return None
    return plan


@dataclass
class ClickTiming:
    """What the clicks in a wet recording of the capture signal say."""

    samples: int | None  # the latency: first response sample after the start clicks
    end_samples: int | None  # the same for the end clicks (None: not recorded)
    floor_dbfs: float  # peak level of the wet in the noise-floor section
    problem: str = ""  # why the clicks cannot give the latency ("" when they can)

    @property
    def drift(self):
        """End minus start latency (samples): 0 when playback and recording ran on one
        clock without dropouts."""
        if self.samples is None or self.end_samples is None:
            return None
        return self.end_samples - self.samples


def click_timing(wet, plan: Layout) -> ClickTiming:
    """Find where the device's response to each click begins in ``wet`` (``(frames,)``,
    the signal of ``plan`` recorded through the device): the first sample above
    ``FLOOR_FACTOR`` times the floor section's peak, both measured from the level just
    before the click. Every click of a group must agree."""
    rate = plan.rate
    floor = plan.section("noise floor")
    margin = int(0.2 * rate)  # let a click's tail decay before the floor is measured
    quiet = wet[floor.start + margin:floor.stop].astype(np.float64)
    # Levels are measured from the local baseline: a DC offset (an interface's, or a
    # biased stage with no output capacitor) is not a response.
    floor_peak = float(np.max(np.abs(quiet - quiet.mean()))) if quiet.size else 0.0
    floor_dbfs = float(20 * np.log10(max(floor_peak, 1e-12)))
    threshold = max(FLOOR_FACTOR * floor_peak, MIN_FLOOR)

    def group(clicks, name):
        found = []
        for frame in clicks:
            lead = int(EARLY_S * rate)
            opens = frame - lead
            before = wet[max(0, opens - int(QUIET_BEFORE_S * rate)):max(0, opens)].astype(np.float64)
            baseline = before.mean() if before.size else 0.0
            window = wet[max(0, opens):frame + int(RESPONSE_WINDOW_S * rate)] - baseline
            if window.size == 0:
                return None, f"the wet ends before the {name} clicks"
            if before.size and np.max(np.abs(before - baseline)) > threshold:
                return None, (f"the wet is not quiet before the {name} click at "
                              f"{frame / rate:.2f} s (a reverb or delay in the chain, a wet that "
                              "leads the dry, or noise louder than the floor section)")
            above = np.flatnonzero(np.abs(window) > threshold)
            if above.size == 0:
                return None, (f"no response to the {name} click at {frame / rate:.2f} s above the "
                              f"noise floor ({floor_dbfs:.0f} dBFS)")
            found.append(int(above[0]) + max(0, opens) - frame)
        if len(set(found)) > 1:
            return None, (f"the {name} clicks disagree ({', '.join(map(str, found))} samples): "
                          "dropouts or a time-varying effect")
        return found[0], ""

    start, problem = group(plan.start_clicks, "start")
    if problem:
        return ClickTiming(None, None, floor_dbfs, problem)
    end = None
    if wet.size > plan.end_clicks[-1]:
        end, end_problem = group(plan.end_clicks, "end")
        if end_problem:
            return ClickTiming(start, None, floor_dbfs, end_problem)
    return ClickTiming(start, end, floor_dbfs)


def _fade(frames, rate, seconds=0.01):
    ramp = np.ones(frames)
    n = min(frames // 2, int(seconds * rate))
    ramp[:n] = np.sin(0.5 * np.pi * np.arange(n) / n) ** 2
    ramp[frames - n:] = ramp[:n][::-1]
    return ramp


def _sweep(rate, seconds, low=20.0, high=20000.0):
    """Exponential sine sweep (Farina, AES 108th Convention, 2000), peak 1."""
    high = min(high, 0.45 * rate)
    t = np.arange(int(round(seconds * rate))) / rate
    k = np.log(high / low)
    phase = 2 * np.pi * low * seconds / k * (np.exp(t * k / seconds) - 1)
    return np.sin(phase) * _fade(t.size, rate, 0.05)


def _band_noise(rng, rate, frames, low=30.0, high=18000.0):
    """Gaussian noise band-limited to ``low``..``high`` Hz, RMS 1, faded in and out."""
    spectrum = np.fft.rfft(rng.standard_normal(frames))
    freqs = np.fft.rfftfreq(frames, 1.0 / rate)
    spectrum[(freqs < low) | (freqs > min(high, 0.45 * rate))] = 0.0
    noise = np.fft.irfft(spectrum, frames)
    return noise / np.sqrt(np.mean(noise ** 2)) * _fade(frames, rate)


# --- plucked strings ---------------------------------------------------------------

STRINGS_HZ = (82.41, 110.0, 146.83, 196.0, 246.94, 329.63)  # E2 A2 D3 G3 B3 E4, standard tuning
CHORD_SHAPES = ((0, 2, 2, 1, 0, 0), (None, 0, 2, 2, 2, 0), (3, 2, 0, 0, 0, 3),
                (None, 3, 2, 0, 1, 0), (None, None, 0, 2, 3, 2), (0, 2, 2, 0, 0, 0),
                (1, 3, 3, 2, 1, 1), (None, 0, 2, 2, 1, 0))  # E A G C D Em F Am: frets per string
BODY_MODES = ((98.0, 0.08, 0.5), (196.0, 0.05, 0.35), (390.0, 0.03, 0.2), (2200.0, 0.004, 0.08))


def _body_response(rate):
    """A guitar body as a direct path plus decaying resonances (Hz, seconds, gain), heard
    through a magnetic pickup: a resonant two-pole low-pass (``PICKUP_HZ``, ``PICKUP_Q``)."""
    t = np.arange(int(0.25 * rate)) / rate
    response = np.zeros(t.size)
    response[0] = 1.0
    for freq, decay, gain in BODY_MODES:
        response += gain * 2 * np.pi * freq / rate * np.exp(-t / decay) * np.sin(2 * np.pi * freq * t)
    return _convolve(response, _pickup_response(rate, t.size))


PICKUP_HZ, PICKUP_Q = 2500.0, 0.9


def _pickup_response(rate, frames):
    """Impulse response of a resonant two-pole low-pass (RBJ cookbook biquad), unit DC gain."""
    w = 2 * np.pi * PICKUP_HZ / rate
    alpha = np.sin(w) / (2 * PICKUP_Q)
    b = np.array([(1 - np.cos(w)) / 2, 1 - np.cos(w), (1 - np.cos(w)) / 2]) / (1 + alpha)
    a1, a2 = -2 * np.cos(w) / (1 + alpha), (1 - alpha) / (1 + alpha)
    out = np.zeros(frames)
    y1 = y2 = 0.0
    for n in range(frames):
        x = b[n] if n < 3 else 0.0
        y = x - a1 * y1 - a2 * y2
        out[n], y2, y1 = y, y1, y
    return out


def _pluck(rng, rate, freq, seconds, hardness, pick_position, mute):
    """One plucked string: ``(frames,)``, unnormalised. ``hardness`` 0..1 (soft to hard
    picking: brightness of the excitation), ``pick_position`` 0..0.5 along the string,
    ``mute`` True for a palm mute (fast, dark decay)."""
    frames = int(seconds * rate)
    period = max(2, int(round(rate / freq)))
    burst = rng.uniform(-1, 1, period)
    # Softer picks are darker: a one-pole low-pass over the burst, applied twice.
    pole = max(0.5 + 0.45 * (1 - hardness) ** 1.5, 0.9 if mute else 0.0)
    for _ in range(2):
        smoothed = np.empty(period)
        state = 0.0
        for i, value in enumerate(burst):
            state = (1 - pole) * value + pole * state
            smoothed[i] = state
        burst = smoothed
    notch = max(1, int(round(pick_position * period)))  # pick position: a comb over the burst
    burst = burst - np.concatenate([np.zeros(notch), burst[:-notch]])
    burst -= burst.mean()  # a string has no DC: the loop would keep it for seconds
    # Loss per period: a ringing string keeps ~99.6% a period at 82 Hz; a mute far less.
    decay_s = (0.12 if mute else 2.5) * (82.0 / freq) ** 0.5
    loss = np.exp(-1.0 / (decay_s * freq))
    brightness = 0.5  # weight of the delayed neighbour in the averaging (loss) filter
    out = np.zeros(frames + period)
    out[:period] = burst
    for start in range(period, frames + period, period):
        stop = min(start + period, frames + period)
        previous = out[start - period:stop - period]
        neighbour = out[start - period - 1:stop - period - 1] if start > period else \
            np.concatenate([[0.0], previous[:-1]])
        out[start:stop] = loss * ((1 - brightness) * previous + brightness * neighbour)
    return out[:frames]


def _place(out, note, at, level):
    stop = min(out.size, at + note.size)
    if stop > at:
        out[at:stop] += level * note[:stop - at]


def _phrase_peaks(softest, phrases):
    """Peak levels (dBFS) of ``phrases`` phrases from ``softest`` up to
    ``PLAYING_PEAK_DBFS``, spaced evenly in the square root of their distance from the
    top: every level is played, but most phrases are hot, as people play (a real DI take's
    frame RMS sits around -26 dBFS at its median and -16 at its 90th percentile)."""
    top = PLAYING_PEAK_DBFS
    return top - (top - softest) * np.linspace(1.0, 0.0, phrases) ** 2


def _playing(name, rng, rate, frames):
    """One section of plucked-string playing, ``(frames,)``: notes whose peaks spread
    over the section's levels (dBFS), each phrase normalised to its peak."""
    out = np.zeros(frames)
    position = 0
    phrase_s = 3.0
    phrases = int(frames / (phrase_s * rate))
    softest = {"single notes": -40.0, "low strings": -28.0, "chords": -32.0}.get(name, -38.0)
    peaks = _phrase_peaks(softest, phrases)
    if name == "validation":  # the same kinds of playing at shuffled levels
        peaks = rng.permutation(peaks)
    body = _body_response(rate)
    phrase_frames = int(phrase_s * rate)
    for index, peak_dbfs in enumerate(peaks):
        if position >= frames:
            break
        kind = name if name != "validation" else ("single notes", "low strings", "chords")[index % 3]
        phrase = np.zeros(phrase_frames + rate)
        hardness = float(np.clip((peak_dbfs + 40) / 39, 0.05, 1.0))
        at = 0
        while at < phrase_frames:
            if kind == "single notes":
                freq = STRINGS_HZ[0] * 2 ** (rng.integers(0, 25) / 12)  # E2..E4, plus harmonics up to E5
                freq *= 2 if rng.random() < 0.2 else 1
                note = _pluck(rng, rate, freq, rng.uniform(0.5, 1.5), hardness,
                              rng.uniform(0.08, 0.3), mute=False)
                _place(phrase, note, at, rng.uniform(0.6, 1.0))
                at += int(rng.uniform(0.12, 0.4) * rate)  # legato: notes ring into the next
            elif kind == "low strings":
                mute = rng.random() < 0.6
                string = rng.integers(0, 3)
                freq = STRINGS_HZ[string] * 2 ** (rng.integers(0, 6) / 12)
                note = _pluck(rng, rate, freq, 0.25 if mute else 0.8, hardness,
                              rng.uniform(0.05, 0.15), mute)
                if rng.random() < 0.5:  # a power chord: root and fifth
                    note = note + _pluck(rng, rate, freq * 1.4983, note.size / rate, hardness,
                                         rng.uniform(0.05, 0.15), mute)
                _place(phrase, note, at, rng.uniform(0.7, 1.0))
                at += int(rng.choice([0.125, 0.25]) * rate)
            else:
                shape = CHORD_SHAPES[rng.integers(0, len(CHORD_SHAPES))]
                down = rng.random() < 0.7
                strings = [s for s in range(6) if shape[s] is not None]
                strings = strings if down else strings[::-1]
                length = rng.uniform(0.5, 1.5)
                for order, string in enumerate(strings):
                    freq = STRINGS_HZ[string] * 2 ** (shape[string] / 12)
                    note = _pluck(rng, rate, freq, length, hardness, rng.uniform(0.1, 0.25), False)
                    _place(phrase, note, at + int(order * rng.uniform(0.004, 0.015) * rate),
                           rng.uniform(0.6, 1.0))
                at += int(length * rng.uniform(0.4, 0.8) * rate)
        phrase = _convolve(phrase, body)
        phrase *= 10 ** (peak_dbfs / 20) / (np.abs(phrase).max() + 1e-12)
        phrase *= _fade(phrase.size, rate, 0.2)
        _place(out, phrase, position, 1.0)
        position += phrase_frames
    out *= _fade(frames, rate, 0.2)
    # Overlapping phrases add up: keep every peak at or below PLAYING_PEAK_DBFS, so that a
    # unity-gain path (a wire, a clean boost) never reads as clipping.
    ceiling = 10 ** (PLAYING_PEAK_DBFS / 20)
    return out * min(1.0, ceiling / (np.abs(out).max() + 1e-12))


def _convolve(audio, response):
    """``audio`` through ``response`` (FFT convolution), cut to ``audio``'s length."""
    size = 1 << int(np.ceil(np.log2(audio.size + response.size)))
    return np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(response, size), size)[:audio.size]
