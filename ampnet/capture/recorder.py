"""Playing the capture signal through a device and recording it, in one duplex stream.

The signal goes out of one output channel of the interface and the device's output
comes back on one input channel, frame for frame on the stream's one clock
(:func:`ampnet.live.rt_kernel.play_record_callback`, compiled: no Python on the audio
thread). The stream is opened as ``ampnet live`` opens its own
(:func:`ampnet.live.audio_api.open_duplex_stream`). A second of silence runs first, so
the interface and the device settle and the recording starts on a quiet input.

:func:`assess` turns a recording into a verdict a player can act on: clipping, too
quiet, nothing connected, and the round-trip latency found from the signal's clicks
(:mod:`ampnet.capture.signal`).
"""

import time
from dataclasses import dataclass

import numpy as np

from ampnet.capture import signal as capture_signal
from ampnet.errors import AmpnetError
from ampnet.live import rt_kernel
from ampnet.live.audio_api import import_sounddevice, open_duplex_stream, resolve_device

PREROLL_S = 1.0  # silence played before the signal
CHECK_S = 5.0  # the check plays this much: the start clicks, the floor, the loudest material
CLIP_DBFS = -0.5  # an input peak at or above this is clipping
QUIET_DBFS = -40.0  # a loudest passage below this is too quiet to capture well
SILENT_DBFS = -70.0  # nothing above this: no signal on the input


@dataclass
class Rig:
    """Where the signal goes and comes from: PortAudio device indices and names, 1-based
    channels, the interface's rate (Hz) and the stream's block size (frames; 0: the
    device's choice)."""

    input_device: int
    output_device: int
    input_name: str
    output_name: str
    input_channel: int
    output_channel: int
    rate: int
    blocksize: int = 0

    def describe(self):
        return (f"out: {self.output_name} ch {self.output_channel} -> device -> in: "
                f"{self.input_name} ch {self.input_channel}, {self.rate} Hz")


def open_rig(input_device=None, output_device=None, input_channel=1, output_channel=1,
             blocksize=0) -> Rig:
    """Resolve the interface; the rate is the input device's default (the interface's)."""
    sd = import_sounddevice()
    in_dev = resolve_device(sd, input_device, "input")
    out_dev = resolve_device(sd, output_device, "output")
    in_info, out_info = sd.query_devices(in_dev), sd.query_devices(out_dev)
    if not 1 <= input_channel <= in_info["max_input_channels"]:
        raise AmpnetError(f"--input-channel {input_channel}: {in_info['name']} has "
                          f"{in_info['max_input_channels']} input channel(s)")
    if not 1 <= output_channel <= out_info["max_output_channels"]:
        raise AmpnetError(f"--output-channel {output_channel}: {out_info['name']} has "
                          f"{out_info['max_output_channels']} output channel(s)")
    rate = int(round(in_info["default_samplerate"]))
    if not capture_signal.MIN_RATE <= rate <= capture_signal.MAX_RATE:
        raise AmpnetError(f"{in_info['name']} runs at {rate} Hz; set the interface to 44.1, 48 "
                          "or 96 kHz")
    try:
        sd.check_input_settings(in_dev, channels=input_channel, dtype="float32", samplerate=rate)
        sd.check_output_settings(out_dev, channels=output_channel, dtype="float32", samplerate=rate)
    except sd.PortAudioError as err:
        raise AmpnetError(f"the interface cannot run at {rate} Hz with these channels: {err}") from None
    return Rig(in_dev, out_dev, in_info["name"], out_info["name"], input_channel, output_channel,
               rate, blocksize)


def play_and_record(rig: Rig, audio, progress=None):
    """Play ``audio`` (``(frames,)`` float32 at ``rig.rate``) and record the input
    channel over the same frames. ``progress(position, recording)`` is called from this
    thread a few times a second (frames done, the buffer so far). Returns
    ``(recording, xruns)``; Ctrl-C (KeyboardInterrupt) stops the stream and propagates."""
    sd = import_sounddevice()
    preroll = int(PREROLL_S * rig.rate)
    play = np.concatenate([np.zeros(preroll, np.float32), audio.astype(np.float32)])
    record = np.zeros(play.size, np.float32)
    data = rt_kernel.PlayRecordData(play, record, rig.input_channel - 1, rig.output_channel - 1,
                                    rig.input_channel, rig.output_channel)
    stream = open_duplex_stream(sd, rig.rate, rig.blocksize, (rig.input_device, rig.output_device),
                                (rig.input_channel, rig.output_channel),
                                rt_kernel.play_record_callback.address, data.address)
    with stream:
        while data.position < play.size:
            if not stream.active:
                raise AmpnetError("the audio stream stopped (the interface was disconnected?)")
            time.sleep(0.1)
            if progress is not None:
                progress(max(0, data.position - preroll), record[preroll:])
    return record[preroll:].copy(), int(data.counters[rt_kernel.PR_XRUNS])


def check_signal(full, rate):
    """What ``--check`` plays (``(frames,)``), cut from ``full``, the capture signal at
    ``rate`` Hz: its start up to the sweeps (silence, start clicks, the noise floor),
    then its loudest passage, to :data:`CHECK_S` seconds."""
    plan = capture_signal.layout(rate)
    head = full[:plan.section("sweeps").start]
    span = int(CHECK_S * rate) - head.size
    hop = rate // 10
    playing = plan.section("noise").start, plan.section("validation").stop
    levels = [np.max(np.abs(full[s:s + span])) for s in range(playing[0], playing[1] - span, hop)]
    loudest = playing[0] + hop * int(np.argmax(levels))
    return np.concatenate([head, full[loudest:loudest + span]])


@dataclass
class Assessment:
    peak_dbfs: float  # the recording's peak
    rms_dbfs: float  # RMS over its loudest second
    latency: int | None  # round-trip latency from the clicks (samples)
    problem: str  # "" when the take is usable; else what to fix
    clipping: bool = False
    silent: bool = False

    def lines(self, rate, input_channel):
        latency = (f"{self.latency} samples ({1000 * self.latency / rate:.2f} ms)"
                   if self.latency is not None else "not found")
        yield (f"input {input_channel}: peak {self.peak_dbfs:.1f} dBFS, RMS {self.rms_dbfs:.1f} dBFS "
               f"(loudest second); round-trip latency {latency}")
        if self.problem:
            yield self.problem


def assess(recording, rate, input_channel) -> Assessment:
    """Judge a recording of the capture signal (or of :func:`check_signal`), made at
    ``rate`` Hz on ``input_channel``."""
    x = recording.astype(np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    peak_dbfs = 20 * np.log10(max(peak, 1e-12))
    second = rate
    rms = max((np.sqrt(np.mean(x[s:s + second] ** 2)) for s in range(0, max(1, x.size - second + 1),
                                                                       second // 4)), default=0.0)
    rms_dbfs = 20 * np.log10(max(float(rms), 1e-12))
    timing = capture_signal.click_timing(recording, capture_signal.layout(rate))
    if peak_dbfs < SILENT_DBFS:
        return Assessment(peak_dbfs, rms_dbfs, None,
                          f"no signal on input {input_channel}: is the device's output connected "
                          "to it, and the device switched on?", silent=True)
    if peak_dbfs >= CLIP_DBFS:
        return Assessment(peak_dbfs, rms_dbfs, timing.samples,
                          "clipping: lower the amp's output or the interface gain", clipping=True)
    if peak_dbfs < QUIET_DBFS:
        return Assessment(peak_dbfs, rms_dbfs, timing.samples,
                          "too quiet: raise the interface's input gain (or the device's output "
                          f"level) until the peak is around -12 dBFS")
    if timing.samples is None:
        return Assessment(peak_dbfs, rms_dbfs, None,
                          f"the clicks did not come back clean ({timing.problem}); check the "
                          "routing, and turn off any delay or reverb while capturing")
    return Assessment(peak_dbfs, rms_dbfs, timing.samples, "")
