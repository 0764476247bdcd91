"""Loading and checking a dry/wet training pair.

Every check either fixes the data and says so (a note), or stops with an
:class:`~ampnet.errors.AmpnetError` that says what to do. Shapes: mono float32
arrays ``(frames,)`` at ``sample_rate`` Hz.
"""

from dataclasses import dataclass, field

import numpy as np

from ampnet.capture import signal as capture_signal
from ampnet.errors import AmpnetError
from ampnet.io.audio import open_audio, read_frames
from ampnet.train.alignment import Alignment, estimate_latency

MAX_EXTRA_WET_SECONDS = 1.0
SILENCE_DBFS = -60.0
DC_THRESHOLD = 1e-3
CLIP_LEVEL = 0.999
MIN_SECONDS = 2.0


@dataclass
class Pair:
    """An aligned, checked dry/wet pair: ``dry[n]`` pairs with ``wet[n]``, DC removed.

    ``source_dry``/``source_wet`` are the recordings as read (the wet resampled if
    asked), which the null test compares; ``dry[n]`` is ``source_dry[n + dry_offset]``
    and ``wet[n]`` is ``source_wet[n + dry_offset + latency_samples]``.
    """

    dry: np.ndarray
    wet: np.ndarray
    sample_rate: int
    alignment: Alignment = Alignment.exact(0, "given")
    notes: list = field(default_factory=list)
    source_dry: np.ndarray | None = None
    source_wet: np.ndarray | None = None
    signal: object = None  # the capture signal's Layout when the dry is that signal

    @property
    def latency_samples(self) -> int:
        return self.alignment.samples

    @property
    def dry_offset(self) -> int:
        """Dry samples dropped at the start: those a leading wet has no partner for."""
        return max(0, -self.latency_samples)

    @property
    def seconds(self) -> float:
        return self.dry.size / self.sample_rate


def read_mono(path, channel=None, notes=None):
    """Read ``path`` as float32 mono: the given 0-based ``channel``, else the first
    (saying so for multichannel files). Returns ``(audio, sample_rate)``."""
    with open_audio(path) as f:
        audio = read_frames(f, f.frames, path)
        rate = f.samplerate
    bad = ~np.isfinite(audio)
    if bad.any():
        frame = int(np.flatnonzero(bad.any(axis=1))[0])
        raise AmpnetError(f"{path}: {int(bad.sum())} NaN or infinite sample(s), the first at "
                          f"{frame / rate:.3f} s (frame {frame}); a training recording must be "
                          "clean audio: export it again")
    if channel is not None:
        if not 0 <= channel < audio.shape[1]:
            raise AmpnetError(f"{path}: has {audio.shape[1]} channel(s); --channel {channel} "
                              f"does not exist (channels are numbered from 0)")
    elif audio.shape[1] > 1 and notes is not None:
        notes.append(f"{path}: {audio.shape[1]} channels; using channel 0 (choose with --channel)")
    return np.ascontiguousarray(audio[:, channel or 0]), rate


def load_pair(dry_path, wet_path, channel=None, resample=False, latency=None) -> Pair:
    """Read, check, align and clean a dry/wet pair.

    ``latency`` (samples) overrides the automatic estimate; ``resample`` converts
    the wet to the dry's sample rate instead of refusing.
    """
    notes = []
    dry, rate = read_mono(dry_path, channel, notes)
    wet, wet_rate = read_mono(wet_path, channel, notes)
    if wet_rate != rate:
        if not resample:
            raise AmpnetError(f"{wet_path}: sample rate {wet_rate} Hz differs from {dry_path} "
                              f"({rate} Hz); export both at the same rate, or pass --resample")
        import soxr
        wet = soxr.resample(wet, wet_rate, rate, quality="VHQ").astype(np.float32)
        notes.append(f"{wet_path}: resampled from {wet_rate} Hz to {rate} Hz (--resample)")
    for path, audio in ((dry_path, dry), (wet_path, wet)):
        _check_level(path, audio, rate, notes)
    source_dry, source_wet = dry, wet
    dry = _remove_dc(dry_path, dry, notes)
    wet = _remove_dc(wet_path, wet, notes)

    extra = wet.size - dry.size
    if extra > MAX_EXTRA_WET_SECONDS * rate:
        raise AmpnetError(f"{wet_path}: {extra / rate:.2f} s longer than {dry_path}; these do not look "
                          "like the same take (trim the wet to the dry's length)")

    _check_length(dry_path, dry.size, rate)  # before the latency, which needs as much
    plan = capture_signal.recognize(source_dry, rate)
    if latency is not None:
        alignment = Alignment.exact(latency, "given")
    elif plan is not None and (clicks := _latency_from_clicks(wet_path, source_wet, plan, notes)) is not None:
        alignment = Alignment.exact(clicks, "clicks")
    else:
        estimate = estimate_latency(dry, wet, rate)
        if not estimate.confident:
            raise AmpnetError(
                f"{wet_path}: cannot find the latency between dry and wet (confidence "
                f"{estimate.confidence:.2f}); check that the files are the same take, or measure "
                "it (e.g. a click recorded through the device) and pass --latency SAMPLES")
        alignment = Alignment.estimated(estimate)
    notes.append(f"latency: {alignment.describe(rate)}; compensated")
    latency = alignment.samples

    # A wet recorded for as long as the dry misses the last `latency` samples; only a
    # wet shorter than that is a problem.
    if wet.size + abs(latency) < dry.size:
        raise AmpnetError(f"{wet_path}: {dry.size - wet.size} samples shorter than {dry_path}; the "
                          "wet recording must cover the whole dry signal (re-record, or trim the dry)")
    dry, wet = _compensate(dry, wet, latency)
    common = min(dry.size, wet.size)
    if wet.size > common:
        notes.append(f"{wet_path}: {wet.size - common} samples after the dry's end trimmed")
    if dry.size > common:
        notes.append(f"{dry_path}: last {dry.size - common} samples dropped (no aligned wet for them)")
    dry, wet = dry[:common], wet[:common]
    _check_length(dry_path, dry.size, rate)
    return Pair(np.ascontiguousarray(dry), np.ascontiguousarray(wet), rate, alignment, notes,
                source_dry, source_wet, plan)


def _latency_from_clicks(wet_path, wet, plan, notes):
    """The latency from the capture signal's clicks, or None (with a note saying why)
    when they cannot give it; a recording whose end clicks moved is refused."""
    timing = capture_signal.click_timing(wet, plan)
    if timing.samples is None:
        notes.append(f"{wet_path}: the dry is ampnet's capture signal, but its clicks cannot "
                     f"give the latency ({timing.problem}); estimating it from the playing")
        return None
    if timing.drift:
        raise AmpnetError(
            f"{wet_path}: the end clicks arrive {timing.drift:+d} samples from where the start "
            f"clicks put them: playback and recording ran on different clocks, or samples were "
            "dropped (xruns) during the take. Record again through one interface, with a larger "
            "buffer, or pass --latency N to train anyway")
    end = ("the end clicks agree (no drift, no dropouts)" if timing.end_samples is not None
           else f"no end clicks to check drift against ({timing.problem or 'the wet stops early'})")
    notes.append(f"the capture signal's clicks: the device's response starts at the first sample "
                 f"above its noise floor ({timing.floor_dbfs:.0f} dBFS peak); {end}")
    return timing.samples


def _check_length(path, frames, rate):
    if frames < MIN_SECONDS * rate:
        raise AmpnetError(f"{path}: only {frames / rate:.1f} s of audio; record at least "
                          f"{MIN_SECONDS:.0f} s (a few minutes is best)")


def _compensate(dry, wet, latency):
    """Pair ``wet[n + latency]`` with ``dry[n]`` (a negative latency drops dry samples)."""
    if latency > 0:
        return dry, wet[latency:]
    if latency < 0:
        return dry[-latency:], wet
    return dry, wet


def _check_level(path, audio, rate, notes):
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    level = 20 * np.log10(rms + 1e-12)
    if level < SILENCE_DBFS:
        raise AmpnetError(f"{path}: silent or nearly so ({level:.0f} dBFS RMS); check the "
                          "recording level and that this is the right file")
    magnitude = np.abs(audio)
    clipped = np.flatnonzero((magnitude >= CLIP_LEVEL) & (magnitude <= 1.0))
    if clipped.size:
        notes.append(f"warning: {path}: {clipped.size} samples at full scale (clipping?) near "
                     f"{_times(clipped, rate)}; record with more headroom if the device did not "
                     "clip itself")
    above = np.flatnonzero(magnitude > 1.0)  # only a float file holds these
    if above.size:
        notes.append(f"{path}: {above.size} samples above full scale near {_times(above, rate)} "
                     f"(peak {20 * np.log10(magnitude[above].max()):+.1f} dBFS): kept as they are, "
                     "as a float file holds them; an interface would clip them")


def _times(frames, rate):
    """Up to five times (s), one per tenth of a second, where ``frames`` fall."""
    tenth = rate // 10
    return ", ".join(f"{t / rate:.2f} s" for t in np.unique(frames // tenth)[:5] * tenth)


def _remove_dc(path, audio, notes):
    offset = float(np.mean(audio, dtype=np.float64))
    if abs(offset) > DC_THRESHOLD:
        notes.append(f"{path}: DC offset {offset:+.4f} removed")
        return (audio - offset).astype(np.float32)
    return audio


def split_capture_signal(pair: Pair):
    """Train on the capture signal up to its validation section, validate on that section
    (``pair.signal`` must be set; the latency is then never negative). Returns what
    :func:`split_validation` returns."""
    section = pair.signal.section("validation")
    stop = min(section.stop, pair.dry.size)
    return ((pair.dry[:section.start], pair.wet[:section.start]),
            (pair.dry[section.start:stop], pair.wet[section.start:stop]), section.start)


def split_validation(pair: Pair, fraction=0.15, search_fraction=0.05):
    """Hold out the last ``fraction`` of the *playing* for validation.

    The split counts only active 50 ms frames (above -50 dB re the loudest), so a
    silent tail does not become the validation set, then moves the cut to the
    quietest frame within ``search_fraction`` of the file's length. Returns
    ``((train_dry, train_wet), (val_dry, val_wet), cut)``: validation starts at
    ``pair.dry[cut]``.
    """
    n = pair.dry.size
    hop = max(1, pair.sample_rate // 20)
    frames = n // hop
    level = np.sqrt(np.mean(pair.dry[:frames * hop].reshape(frames, hop) ** 2, axis=1))
    active = level > level.max() * 10 ** (-50 / 20)
    playing = np.cumsum(active)
    nominal = int(np.searchsorted(playing, playing[-1] * (1 - fraction)))
    reach = max(1, int(frames * search_fraction))
    low, high = max(1, nominal - reach), min(frames - 1, nominal + reach)
    # Only cuts that leave at least half the intended playing for validation.
    candidates = [f for f in range(low, high + 1) if playing[-1] - playing[f - 1] >= 0.5 * fraction * playing[-1]]
    cut_frame = min(candidates, key=lambda f: level[f]) if candidates else nominal
    cut = cut_frame * hop + hop // 2
    return (pair.dry[:cut], pair.wet[:cut]), (pair.dry[cut:], pair.wet[cut:]), cut


def input_scale_for(dry, target=0.5):
    """Gain that brings the dry's 99.9th-percentile level to ``target``, so the network
    sees the same range whatever the recording level (rounded to 3 significant digits)."""
    level = float(np.percentile(np.abs(dry), 99.9))
    scale = target / max(level, 1e-6)
    return float(f"{scale:.3g}")
