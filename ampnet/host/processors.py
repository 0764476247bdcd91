"""The processors a chain is made of, with their parameters and units.

Each processor is a description (parameter values, files) that turns into the
flat arrays the compiled kernels read (:mod:`ampnet.host.kernels`) for a given
sample rate. Parameters marked ``live`` can change while audio runs: the chain
writes new targets and the kernels glide to them (smoothing time
``SMOOTHING_MS``), so a change never clicks.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ampnet import limits
from ampnet.engine import layout
from ampnet.errors import AmpnetError
from ampnet.host import kernels
from ampnet.host.fft import real_fft_tables

SMOOTHING_MS = 20.0  # time constant of every parameter glide and of bypass crossfades
DETECTOR_MS = 10.0  # decay of the noise gate's peak detector
LOUDNESS_TARGET_DBFS = -18.0  # RMS level that loudness normalisation aims at


@dataclass(frozen=True)
class Param:
    """A numeric parameter: default, allowed range, unit, whether it may change live."""

    default: float
    low: float
    high: float
    unit: str
    live: bool = True


def one_pole(ms, rate):
    """Per-sample coefficient of a one-pole glide with time constant ``ms``."""
    return 1.0 - math.exp(-1.0 / (max(ms, 1e-3) * 1e-3 * rate))


class Processor:
    """Base class. ``values`` holds the numeric parameters (see ``PARAMS``)."""

    kind = -1
    type_name = ""
    PARAMS: dict = {}

    def __init__(self, **values):
        self.values = {name: p.default for name, p in self.PARAMS.items()}
        for name, value in values.items():
            self.values[name] = self.check(name, value)

    def check(self, name, value):
        """``value`` as a float if ``name`` is a parameter and it is in range; else raise
        a ``ValueError`` that says what is allowed."""
        param = self.PARAMS.get(name)
        if param is None:
            allowed = ", ".join(self.PARAMS) or "none"
            raise ValueError(f"unknown parameter {name!r} for {self.type_name} (parameters: {allowed})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a number ({param.unit}), got {value!r}")
        if not param.low <= value <= param.high:
            raise ValueError(f"{name} = {value:g} is out of range: {param.low:g} to {param.high:g} "
                             f"{param.unit}")
        return float(value)

    @property
    def label(self):
        return self.type_name

    def rate(self):
        """The sample rate this processor must run at, or None if any rate will do."""
        return None

    # What the chain asks for, for a given sample rate:
    def targets(self, rate) -> np.ndarray:
        """The float64 values the control side may rewrite (targets, coefficients)."""
        return np.zeros(0)

    def initial_s64(self, rate) -> np.ndarray:
        """One channel's float64 state at reset."""
        return np.zeros(0)

    def constants(self, rate) -> np.ndarray:
        """Float32 data the kernel reads (weights, impulse responses)."""
        return np.zeros(0, dtype=np.float32)

    def initial_s32(self, rate) -> np.ndarray:
        """One channel's float32 state at reset."""
        return np.zeros(0, dtype=np.float32)


class Gain(Processor):
    """Gain in dB, smoothed."""

    kind, type_name = kernels.GAIN, "gain"
    PARAMS = {"gain_db": Param(0.0, -96.0, 48.0, "dB")}

    def targets(self, rate):
        return np.array([10 ** (self.values["gain_db"] / 20)])

    def initial_s64(self, rate):
        return self.targets(rate)


class NoiseGate(Processor):
    """Noise gate. Detects on the chain's *input* (the guitar, before any gain or
    model) and applies its gain where it sits in the chain, so placed after a
    high-gain model it silences that model's hiss when the strings are muted.
    Opens when the input's peak envelope reaches ``threshold_db`` (dBFS), stays open
    ``hold_ms`` after it falls below, fades in over ``attack_ms`` and out over
    ``release_ms`` (one-pole time constants)."""

    kind, type_name = kernels.GATE, "gate"
    PARAMS = {"threshold_db": Param(-60.0, -120.0, 0.0, "dBFS"),
              "attack_ms": Param(1.0, 0.01, 500.0, "ms"),
              "hold_ms": Param(50.0, 0.0, 5000.0, "ms"),
              "release_ms": Param(50.0, 0.1, 5000.0, "ms")}

    def targets(self, rate):
        v = self.values
        return np.array([10 ** (v["threshold_db"] / 20), one_pole(v["attack_ms"], rate),
                         one_pole(v["release_ms"], rate), round(v["hold_ms"] * 1e-3 * rate),
                         math.exp(-1.0 / (DETECTOR_MS * 1e-3 * rate))])

    def initial_s64(self, rate):
        return np.zeros(3)  # envelope, gain (closed), hold left


class NeuralModel(Processor):
    """A neural model (any format ampnet loads). Knob values are parameters (in the
    model's own units and range). ``normalize`` scales the output so that a
    reference guitar signal comes out at ``LOUDNESS_TARGET_DBFS`` RMS, so that
    switching models keeps the level."""

    type_name = "model"

    def __init__(self, model, path=None, normalize=False, **knob_values):
        self.model, self.path, self.normalize = model, path, bool(normalize)
        self.kind = kernels.MODEL_KINDS[model.CELL]
        self.layout = layout(model)
        self.PARAMS = {k.name: Param(k.default, k.minimum, k.maximum, "(knob)") for k in model.knobs}
        super().__init__(**knob_values)
        self.norm_gain = None  # set by prepare()

    @property
    def label(self):
        return f"model {self.model.name}"

    def rate(self):
        return float(self.model.sample_rate)

    def prepare(self):
        """Measure the model's loudness (once, when normalising); returns the gain in dB."""
        if self.norm_gain is None:
            self.norm_gain = 1.0
            if self.normalize:
                from ampnet.host.loudness import model_loudness_dbfs
                level = model_loudness_dbfs(self.model, self.values)
                self.norm_gain = 10 ** ((LOUDNESS_TARGET_DBFS - level) / 20)
        return 20 * math.log10(self.norm_gain)

    def constants(self, rate):
        self.prepare()
        params = self.layout.pack_params(self.model)
        params[2] *= self.norm_gain  # the header's output gain
        return params

    def initial_s32(self, rate):
        return self.layout.initial_state(self.model)

    def targets(self, rate):
        return np.array([len(self.model.knobs)] + [self.values[k.name] for k in self.model.knobs],
                        dtype=np.float64)

    def initial_s64(self, rate):
        return np.concatenate([[0.0], self.targets(rate)[1:]])


def _rbj(kind, freq, rate, gain_db=0.0, q=0.7071):
    """Biquad ``[b0, b1, b2, a1, a2]`` (a0 = 1) from the RBJ Audio EQ Cookbook."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * freq / rate
    cos_w, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind == "peaking":
        b = [1 + alpha * a, -2 * cos_w, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos_w, 1 - alpha / a]
    else:
        root = 2 * math.sqrt(a) * alpha
        sign = 1 if kind == "lowshelf" else -1
        b = [a * ((a + 1) - sign * (a - 1) * cos_w + root),
             sign * 2 * a * ((a - 1) - sign * (a + 1) * cos_w),
             a * ((a + 1) - sign * (a - 1) * cos_w - root)]
        den = [(a + 1) + sign * (a - 1) * cos_w + root,
               -sign * 2 * ((a - 1) + sign * (a + 1) * cos_w),
               (a + 1) + sign * (a - 1) * cos_w - root]
    return [b[0] / den[0], b[1] / den[0], b[2] / den[0], den[1] / den[0], den[2] / den[0]]


class Biquads(Processor):
    """Base for filters made of biquad sections (float64 inside)."""

    kind = kernels.BIQUADS

    def sections(self, rate):
        raise NotImplementedError

    def targets(self, rate):
        sections = self.sections(rate)
        return np.array([len(sections)] + [c for s in sections for c in s], dtype=np.float64)

    def initial_s64(self, rate):
        return np.array([v for s in self.sections(rate) for v in list(s) + [0.0, 0.0]])


class ToneStack(Biquads):
    """Bass (low shelf), mid (peaking), treble (high shelf) and presence (peaking)
    as RBJ-cookbook biquads in series: gains in dB, frequencies in Hz, Q."""

    type_name = "eq"
    PARAMS = {"bass_db": Param(0.0, -24.0, 24.0, "dB"), "bass_hz": Param(120.0, 20.0, 1000.0, "Hz"),
              "mid_db": Param(0.0, -24.0, 24.0, "dB"), "mid_hz": Param(750.0, 100.0, 5000.0, "Hz"),
              "mid_q": Param(0.7, 0.1, 10.0, "Q"),
              "treble_db": Param(0.0, -24.0, 24.0, "dB"),
              "treble_hz": Param(3000.0, 500.0, 15000.0, "Hz"),
              "presence_db": Param(0.0, -24.0, 24.0, "dB"),
              "presence_hz": Param(5000.0, 1000.0, 15000.0, "Hz"),
              "presence_q": Param(0.7, 0.1, 10.0, "Q")}

    def sections(self, rate):
        v = self.values
        top = 0.45 * rate  # keep every frequency below Nyquist whatever the rate
        return [_rbj("lowshelf", min(v["bass_hz"], top), rate, v["bass_db"]),
                _rbj("peaking", min(v["mid_hz"], top), rate, v["mid_db"], v["mid_q"]),
                _rbj("highshelf", min(v["treble_hz"], top), rate, v["treble_db"]),
                _rbj("peaking", min(v["presence_hz"], top), rate, v["presence_db"], v["presence_q"])]


class DCBlocker(Biquads):
    """First-order high-pass (bilinear transform) at ``cutoff_hz``: removes DC and
    sub-sonic rumble, unity gain at Nyquist."""

    type_name = "dc_blocker"
    PARAMS = {"cutoff_hz": Param(5.0, 0.5, 200.0, "Hz")}

    def sections(self, rate):
        k = math.tan(math.pi * self.values["cutoff_hz"] / rate)
        b0 = 1 / (1 + k)
        return [[b0, -b0, 0.0, (k - 1) / (k + 1), 0.0]]


class Mix(Processor):
    """Dry/wet mix: ``wet`` 1 is the processed signal, 0 the chain's input."""

    kind, type_name = kernels.MIX, "mix"
    PARAMS = {"wet": Param(1.0, 0.0, 1.0, "(fraction)")}

    def targets(self, rate):
        return np.array([self.values["wet"]])

    def initial_s64(self, rate):
        return self.targets(rate)


class Cabinet(Processor):
    """A cabinet impulse response (WAV/FLAC/AIFF; the first channel), resampled to the
    run rate (soxr), by zero-latency partitioned convolution (:func:`kernels.convolver_run`).
    ``normalize`` scales the IR to unit energy, so white noise keeps its level;
    ``level_db`` applies on top. ``partition`` (samples, a power of two) is the
    number of taps applied directly and the first FFT partition size; later taps go
    in partitions 4, 16 and 64 times larger (3 of each; the largest takes the rest),
    so a long IR costs little more than a short one."""

    kind, type_name = kernels.CONVOLVER, "cabinet"
    PARAMS = {"level_db": Param(0.0, -48.0, 24.0, "dB", live=False),
              "partition": Param(128, 16, 1024, "samples", live=False)}

    def __init__(self, path, normalize=True, **values):
        super().__init__(**values)
        p = int(self.values["partition"])
        if p & (p - 1):
            raise ValueError(f"partition = {p}: must be a power of two (e.g. 128, 256, 512)")
        self.path, self.normalize = Path(path), bool(normalize)
        self._ir, self._ir_rate = _read_ir(self.path)
        self._cache = {}

    @property
    def label(self):
        return f"cabinet {self.path.name}"

    def impulse_response(self, rate):
        """The IR at ``rate`` with normalisation and level applied, float64 ``(taps,)``."""
        ir = self._ir
        if rate != self._ir_rate:
            import soxr
            ir = soxr.resample(ir, self._ir_rate, rate, quality="VHQ")
        if self.normalize:
            ir = ir / np.sqrt(np.sum(ir ** 2))
        return ir * 10 ** (self.values["level_db"] / 20)

    def _layout(self, rate):
        """``(fa, f32 constants, state length)`` for this rate (cached: the spectra take
        a moment). Taps ``[0, P)`` run directly; then 3 partitions of ``P``, 3 of ``4P``,
        3 of ``16P``, and the rest in partitions of ``64P`` (see :func:`kernels.convolver_run`)."""
        if rate not in self._cache:
            ir = self.impulse_response(rate)
            P1 = int(self.values["partition"])
            levels, start = [], P1
            while start < ir.size:  # partitions of P1, then 4 P1, 16 P1...: 3 of each size
                P = start
                last = len(levels) + 1 == kernels.MAX_LEVELS or 4 * P > kernels.MAX_PARTITION
                M = -(-(ir.size - start) // P) if last else min(3, -(-(ir.size - start) // P))
                levels.append((P, M))
                start += P * M
            if not levels:
                levels = [(P1, 0)]  # no FFT partitions: the direct taps hold the whole IR
            covered = P1 + sum(P * M for P, M in levels)
            taps = np.zeros(covered)
            taps[:ir.size] = ir
            parts, state, start = [taps[:P1]], 0, P1
            for P, M in levels:
                segments = taps[start:start + P * M].reshape(M, P)
                spectra = np.fft.rfft(segments, n=2 * P, axis=1) / P  # irfft returns P times x
                parts += [spectra.real.ravel(), spectra.imag.ravel(), *real_fft_tables(2 * P)]
                state += kernels.level_sizes(P, M)[1]
                start += P * M
            fa = [len(levels)] + [v for level in levels for v in level]
            self._cache[rate] = (np.array(fa, dtype=np.float64),
                                 np.concatenate(parts).astype(np.float32), state)
        return self._cache[rate]

    def constants(self, rate):
        return self._layout(rate)[1]

    def targets(self, rate):
        return self._layout(rate)[0]

    def initial_s32(self, rate):
        return np.zeros(self._layout(rate)[2], dtype=np.float32)

    def initial_s64(self, rate):
        return np.zeros(2 * kernels.MAX_LEVELS)  # position in each level's partition, newest slots


def _read_ir(path):
    """``(ir float64 (taps,), rate)`` from an audio file's first channel, with clear errors.
    Its length is checked from the header before anything is read, and it is read in
    pieces, so a huge or hostile file costs no memory."""
    from ampnet.io.audio import open_audio, read_frames

    if not path.is_file():
        raise AmpnetError(f"{path}: impulse response not found; check the path (paths in a preset "
                          "are relative to the preset file)")
    with open_audio(path) as f:
        rate, frames = f.samplerate, f.frames
        if frames > limits.MAX_IR_SECONDS * rate:
            raise AmpnetError(f"{path}: the impulse response is {frames / rate:.1f} s long; "
                              f"ampnet takes up to {limits.MAX_IR_SECONDS:g} s (trim it)")
        ir = np.concatenate([read_frames(f, min(65536, frames - start), path)[:, 0]
                             for start in range(0, frames, 65536)]).astype(np.float64)
    if not np.all(np.isfinite(ir)):
        raise AmpnetError(f"{path}: the impulse response contains NaN or infinite samples "
                          f"(first at sample {int(np.flatnonzero(~np.isfinite(ir))[0])}); "
                          "export it again")
    if not np.any(ir):
        raise AmpnetError(f"{path}: the impulse response is empty or silent")
    return ir, rate
