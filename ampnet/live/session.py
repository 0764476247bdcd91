"""A live session: plan the stream, open it, run until told to stop, report what happened.

Three steps, each its own name: :func:`plan_stream` decides devices, channels, rates
(and whether the stream resamples) and the block size; :func:`open_stream` opens the
duplex stream with the compiled callback (through
:func:`ampnet.live.audio_api.open_duplex_stream`, the one place that touches
sounddevice's internals); :class:`LiveSession` is the running session: the chain,
the statistics, the controllers and :meth:`LiveSession.stop`.

Every controller (terminal keys, the browser page, a program) changes the chain
through one :class:`~ampnet.live.control.ControlPath` and reads levels through its
own :class:`~ampnet.live.control.MeterReader`.

Threads: PortAudio's audio thread runs the callback, which is compiled C
(:func:`ampnet.live.rt_kernel.audio_callback`, handed to PortAudio as a function
pointer): it never enters Python, so neither the GIL nor the other threads can
delay it. The main thread waits for Ctrl-C, SIGTERM, ``--duration`` or the
stream ending; a status thread prints levels, callback load and xruns; a writer
thread drains the recording ring to disk while recording. Garbage collection is
frozen and disabled while streaming, for the status and writer threads' sake.
"""

import gc
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from ampnet import limits
from ampnet.errors import AmpnetError
from ampnet.host.processors import NeuralModel
from ampnet.io.files import atomic_output
from ampnet.live import rt_kernel
from ampnet.live.audio_api import import_sounddevice, open_duplex_stream, resolve_device
from ampnet.live.control import ControlPath, MeterReader

RING_SECONDS = 20
MAX_BLOCK = limits.MAX_BLOCK_FRAMES


@dataclass
class LiveOptions:
    input_device: object = None
    output_device: object = None
    input_channel: int = 1  # 1-based, as on the interface's front panel
    output_channels: list = field(default_factory=lambda: [1, 2])
    blocksize: int = 64
    samplerate: float | None = None
    strict_rate: bool = False
    latency: object = "low"
    input_gain_db: float = 0.0
    output_gain_db: float = 0.0
    duration: float | None = None
    record: str | None = None
    overwrite: bool = False
    status_interval: float = 0.25


@dataclass
class StreamPlan:
    """What :func:`open_stream` opens: devices (PortAudio indices and names), the guitar
    input channel and the output channels (1-based), the stream's channel counts, the
    device's and the chain's rates (Hz), frames per callback (0: the device's choice)."""

    input_device: int
    output_device: int
    input_name: str
    output_name: str
    input_channel: int
    output_channels: list
    n_in: int
    n_out: int
    rate: float
    model_rate: float
    blocksize: int
    latency: object

    @property
    def resamples(self):
        return self.rate != self.model_rate


def plan_stream(sd, spec, o: LiveOptions) -> StreamPlan:
    """Check ``o`` against the devices and ``spec`` (a :class:`~ampnet.host.preset.ChainSpec`)
    and decide the stream: an :class:`AmpnetError` says what to change."""
    in_dev = resolve_device(sd, o.input_device, "input")
    out_dev = resolve_device(sd, o.output_device, "output")
    in_info, out_info = sd.query_devices(in_dev), sd.query_devices(out_dev)
    if o.input_channel < 1 or o.input_channel > in_info["max_input_channels"]:
        raise AmpnetError(f"--input-channel {o.input_channel}: {in_info['name']} has "
                          f"{in_info['max_input_channels']} input channel(s)")
    out_channels = [c for c in o.output_channels if c <= out_info["max_output_channels"]]
    if not out_channels or min(o.output_channels) < 1:
        raise AmpnetError(f"--output-channels {o.output_channels}: {out_info['name']} has "
                          f"{out_info['max_output_channels']} output channel(s)")
    n_in, n_out = o.input_channel, max(out_channels)
    rate = _device_rate(sd, spec, o, in_dev, out_dev, in_info, n_in, n_out)
    model_rate = float(spec.sample_rate or rate)
    if rate != model_rate and o.strict_rate:
        raise AmpnetError(f"the device runs at {rate:g} Hz but {spec.name} was trained at "
                          f"{model_rate:g} Hz, and --strict-rate refuses to resample: run the "
                          f"device at {model_rate:g} Hz, or leave out --strict-rate")
    if not 0 <= o.blocksize <= MAX_BLOCK:
        raise AmpnetError(f"--blocksize {o.blocksize}: give 0 (the device's choice) to "
                          f"{MAX_BLOCK} frames")
    return StreamPlan(in_dev, out_dev, in_info["name"], out_info["name"], o.input_channel,
                      out_channels, n_in, n_out, rate, model_rate, o.blocksize, o.latency)


def _device_rate(sd, spec, o, in_dev, out_dev, in_info, n_in, n_out):
    """The rate to open the device at: ``--samplerate``, else the model's, else (when the
    device cannot run at the model's rate) the device's default rate."""
    wanted = o.samplerate or spec.sample_rate or in_info["default_samplerate"]
    candidates = [float(wanted)]
    if not o.samplerate and not o.strict_rate:
        candidates.append(float(in_info["default_samplerate"]))
    for rate in candidates:
        try:
            sd.check_input_settings(in_dev, channels=n_in, dtype="float32", samplerate=rate)
            sd.check_output_settings(out_dev, channels=n_out, dtype="float32", samplerate=rate)
            return rate
        except sd.PortAudioError as err:
            error = err
    hint = ("; --strict-rate refuses to resample: leave it out to run at the device's rate"
            if o.strict_rate else "")
    raise AmpnetError(f"the device does not support {candidates[0]:g} Hz with {n_in} input "
                      f"and {n_out} output channel(s): {error}{hint}")


def open_stream(sd, plan: StreamPlan, data: rt_kernel.CallbackData, finished=None):
    """The duplex stream of ``plan`` running :func:`~ampnet.live.rt_kernel.audio_callback`
    on ``data``; not started (a context manager)."""
    return open_duplex_stream(sd, plan.rate, plan.blocksize, (plan.input_device, plan.output_device),
                              (plan.n_in, plan.n_out), rt_kernel.audio_callback.address,
                              data.address, finished, plan.latency)


class LiveSession:
    """Plays a chain (:class:`~ampnet.host.preset.ChainSpec`: a preset, or one model).

    :meth:`run` is the whole command: :meth:`start`, status and keys, wait, :meth:`stop`,
    and the summary. Controllers call :attr:`control` (a
    :class:`~ampnet.live.control.ControlPath`), :meth:`meter_reader`, :meth:`switch_rig`,
    :meth:`start_recording`/:meth:`stop_recording`, :meth:`save_preset` and :meth:`state`
    from any thread."""

    def __init__(self, spec, options: LiveOptions):
        self.spec, self.options = spec, options
        self.sd = import_sounddevice()
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self.plan = self.data = self.control = self.stream = None
        self.recorder = None
        self.recorded_frames = self.lost_frames = 0
        self.rig_lock = threading.Lock()  # one rig switch or recording change at a time
        self.started = None

    @property
    def chain(self):
        return self.control.chain

    @property
    def stats(self):
        return self.data.stats

    def start(self):
        """Plan, build and warm the chain, open and start the stream (and the ``--record``
        recording). Everything is compiled and warmed before the first callback."""
        o = self.options
        self.plan = plan = plan_stream(self.sd, self.spec, o)
        self.resampling = rt_kernel.Resampling(plan.rate, plan.model_rate, plan.blocksize or MAX_BLOCK)
        chain = self.spec.build(plan.model_rate, max_block=self.resampling.model_frames)
        out_mask = np.zeros(plan.n_out, dtype=np.int64)
        out_mask[[c - 1 for c in plan.output_channels]] = 1
        self.ring = np.zeros(int(RING_SECONDS * plan.rate), dtype=np.float32)
        self.data = rt_kernel.CallbackData(chain, self.resampling, self.ring, out_mask,
                                           plan.input_channel - 1, plan.n_in, plan.n_out,
                                           (o.input_gain_db, o.output_gain_db))
        self.control = ControlPath(self.data)
        _warm_up(self.data, plan.blocksize or 256, plan.n_in, plan.n_out)
        chain.reset()
        self.resampling.reset()
        self.data.stats[:] = 0.0
        self.data.meters[:] = 0.0
        self.cycles_per_second = rt_kernel.cycles_per_second()
        self.stream = open_stream(self.sd, plan, self.data, self._finished)
        if o.record:
            self.start_recording(o.record, o.overwrite)
        self.stream.start()
        self.started = time.monotonic()

    def wait(self, duration=None):
        """Block until :meth:`stop`, a signal, ``duration`` seconds or the stream's end."""
        if not self.stop_event.wait(duration):
            self.stop_reason = "duration elapsed"
            self.stop_event.set()  # so closing the stream is not taken for a lost device

    def stop(self, reason="stopped"):
        """Stop waiting (from any thread; :meth:`close` then ends the stream)."""
        if not self.stop_event.is_set():
            self.stop_reason = reason
            self.stop_event.set()

    def close(self):
        """Close the stream and finish the recording; returns the summary dict."""
        self.stop()
        elapsed = time.monotonic() - self.started if self.started else 0.0
        if self.stream is not None:
            self.stream.close()
        error = None
        try:
            self.stop_recording()
        except AmpnetError as err:
            error = err
        summary = self.summary(elapsed)
        if error:
            raise error
        return summary

    def run(self, controllers=()):
        """The whole ``ampnet live`` command: start, print what plays, status line and keys
        (on a terminal), ``controllers`` (objects with ``start(session)``, ``lines()`` and
        ``stop()``: the browser page), wait, stop. Returns the summary dict."""
        o = self.options
        self.start()
        plan = self.plan
        status = _StatusPrinter(self, o.status_interval)
        keys = _KeyControl(self) if sys.stdin.isatty() else None
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        running = []
        try:
            print(f"ampnet live: {self.spec.name} | in: {plan.input_name} ch {plan.input_channel} | "
                  f"out: {plan.output_name} ch {','.join(map(str, plan.output_channels))} | "
                  f"{plan.rate:g} Hz, block {plan.blocksize} | Ctrl-C to stop", flush=True)
            if self.resampling.latency_seconds:
                print(f"  resampling in the stream: device {plan.rate:g} Hz <-> model "
                      f"{plan.model_rate:g} Hz, adds {1000 * self.resampling.latency_seconds:.2f} ms "
                      f"of latency (--strict-rate refuses instead)", flush=True)
            for line in self.chain.describe() + (keys.help_lines() if keys else []):
                print("  " + line, flush=True)
            for controller in controllers:
                controller.start(self)
                running.append(controller)
                for line in controller.lines():
                    print(line, flush=True)
            latency = self.stream.latency
            print(f"stream latency reported by PortAudio: input {1000 * latency[0]:.1f} ms, "
                  f"output {1000 * latency[1]:.1f} ms"
                  + (f"; resampling adds {1000 * self.resampling.latency_seconds:.2f} ms"
                     if self.resampling.latency_seconds else ""), flush=True)
            gc.collect()
            gc.freeze()
            gc.disable()
            if keys:
                keys.start()
            status.start()
            self.wait(o.duration)
        finally:
            gc.enable()
            gc.unfreeze()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for controller in running:
                controller.stop()
            status.stop()
            if keys:
                keys.stop()
            summary = self.close()
        return summary

    # --- what controllers call -------------------------------------------------------

    def meter_reader(self):
        """A :class:`~ampnet.live.control.MeterReader` of this session's own."""
        return MeterReader(self.data, self.plan.rate, self.cycles_per_second)

    def switch_rig(self, spec):
        """Play ``spec`` instead of the current chain: built, compiled and warmed here (the
        caller's thread, never the audio thread), then crossfaded in; the sound never
        stops. Returns the output frame at which the crossfade began (counted from the
        start of the stream; :meth:`state` gives the recording's own count)."""
        rate = self.plan.model_rate
        if spec.sample_rate is not None and spec.sample_rate != rate:
            raise AmpnetError(f"{spec.name} runs at {spec.sample_rate:g} Hz and this stream's "
                              f"chain at {rate:g} Hz: restart 'ampnet live' with it to switch")
        with self.rig_lock:
            chain = spec.build(rate, max_block=self.resampling.model_frames)
            # Warm: its state and buffers paged in here, not on the audio thread's first
            # touch; then back to its initial state.
            chain.process(np.zeros(self.resampling.model_frames, np.float32))
            chain.reset()
            frame = self.control.swap(chain)
            self.spec = spec
        return frame

    def start_recording(self, path, overwrite=False):
        """Write the output from now on to ``path`` (float WAV, the device rate) until
        :meth:`stop_recording`; refuses an existing file unless ``overwrite``."""
        with self.rig_lock:
            if self.recorder is not None:
                raise AmpnetError(f"already recording to {self.recorder.path}; stop that first")
            self.recorder = _RecordWriter(self, path, self.plan.rate, overwrite)
            self.recorder.start()
            return self.recorder.first_frame

    def stop_recording(self):
        """Finish the recording (atomically: the file appears whole); returns
        ``{path, frames, lost_frames, first_frame}`` or None when not recording."""
        with self.rig_lock:
            recorder, self.recorder = self.recorder, None
            if recorder is None:
                return None
            recorder.stop()
            self.recorded_frames, self.lost_frames = recorder.frames, recorder.lost
            self.last_recording = str(recorder.path)
            return {"path": str(recorder.path), "frames": recorder.frames,
                    "lost_frames": recorder.lost, "first_frame": recorder.first_frame}

    def save_preset(self, path, name=None, overwrite=False):
        """Write the chain as it plays now (values, knobs, bypasses) as a TOML preset that
        :func:`~ampnet.host.preset.load_spec` reads back to the same chain. Atomic;
        refuses an existing file unless ``overwrite``."""
        from ampnet.host.preset import preset_text

        path = Path(path)
        if path.exists() and not overwrite:
            raise AmpnetError(f"{path}: already exists; choose another name or replace it")
        with self.rig_lock:
            chain = self.chain
            text = preset_text(chain.processors, [chain.bypassed(i) for i in
                                                  range(len(chain.processors))],
                               name or path.stem, path.parent)
        with atomic_output(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        return path

    def state(self):
        """What a control surface shows, as plain data: the rig, its processors with their
        parameters (value, range, unit, whether it changes live) and bypass, the gains,
        devices, rates, latency and the recording."""
        chain, plan = self.chain, self.plan
        processors = []
        for i, p in enumerate(chain.processors):
            processors.append({
                "index": i, "type": p.type_name, "label": p.label,
                "bypassed": bool(chain.bypassed(i)),
                "params": [{"name": k, "value": p.values[k], "low": d.low, "high": d.high,
                            "unit": d.unit, "live": d.live, "knob": isinstance(p, NeuralModel)}
                           for k, d in p.PARAMS.items()]})
        latency = self.stream.latency if self.stream is not None else (0.0, 0.0)
        recorder = self.recorder
        return {"rig": self.spec.name, "processors": processors,
                "gains": {"input": self.control.gain_db("input"),
                          "output": self.control.gain_db("output")},
                "device": {"input": plan.input_name, "output": plan.output_name,
                           "input_channel": plan.input_channel,
                           "output_channels": plan.output_channels},
                "rates": {"device": plan.rate, "model": plan.model_rate,
                          "resampling": plan.resamples},
                "blocksize": plan.blocksize,
                "latency_ms": {"input": 1000 * latency[0], "output": 1000 * latency[1],
                               "resampling": 1000 * self.resampling.latency_seconds},
                "recording": None if recorder is None else {
                    "path": str(recorder.path), "name": recorder.path.name,
                    "frames": recorder.frames, "first_frame": recorder.first_frame}}

    # --- internals -------------------------------------------------------------------

    def summary(self, elapsed):
        stats, cps, o = self.stats, self.cycles_per_second, self.options
        plan = self.plan
        durations = self._durations(cps)
        period = plan.blocksize / plan.rate if plan.blocksize else None
        return {
            "seconds": elapsed, "stopped_because": self.stop_reason,
            "callbacks": int(stats[rt_kernel.CALLBACKS]), "xruns": int(stats[rt_kernel.XRUNS]),
            "worst_callback_ms": float(1000 * stats[rt_kernel.MAX_CYCLES] / cps),
            "median_callback_ms": 1000 * float(np.median(durations)) if durations.size else 0.0,
            "p99_callback_ms": 1000 * float(np.percentile(durations, 99)) if durations.size else 0.0,
            "p999_callback_ms": 1000 * float(np.percentile(durations, 99.9)) if durations.size else 0.0,
            "late_callbacks": int(np.count_nonzero(durations > period)) if period and durations.size else 0,
            "block_period_ms": 1000 * period if period else None,
            "recorded": getattr(self, "last_recording", None), "recorded_frames": self.recorded_frames,
            "lost_frames": self.lost_frames, "device_rate": plan.rate, "model_rate": plan.model_rate,
            "resampling_latency_ms": 1000 * self.resampling.latency_seconds,
            "oversized_callbacks": int(stats[rt_kernel.OVERSIZED]),
            "rig_switches": int(stats[rt_kernel.SWAPS]),
            **guarded(stats, self.chain),
        }

    def _durations(self, cycles_per_second):
        count = int(self.stats[rt_kernel.CALLBACKS])
        times = self.stats[rt_kernel.TIMES:]
        return times[:min(count, times.size)] / cycles_per_second

    def _on_signal(self, signum, frame):
        self.stop("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)

    def _finished(self):
        self.stop("the stream ended (device gone?)")


def guarded(stats, chain):
    """What the non-finite guards caught so far: ``nonfinite_input`` (NaN or infinite
    input samples replaced by silence) and ``state_resets`` (processors reset after
    their state overflowed)."""
    health = chain.health()
    return {"nonfinite_input": int(stats[rt_kernel.NONFINITE_IN]) + health["nonfinite"],
            "state_resets": health["resets"]}


def _warm_up(data, frames, n_in, n_out):
    """Run the compiled C callback once on silence (it was compiled, or loaded from the
    cache, when :mod:`rt_kernel` was imported), so its code and data are paged in."""
    indata = np.zeros((frames, n_in), np.float32)
    outdata = np.zeros((frames, n_out), np.float32)
    rt_kernel.audio_callback.ctypes(indata.ctypes.data, outdata.ctypes.data, frames, None, 0,
                                    data.address)


class _StatusPrinter(threading.Thread):
    """Levels, callback load and xruns: a refreshed line on a terminal, else a line a second."""

    def __init__(self, session, interval):
        super().__init__(daemon=True)
        self.session = session
        self.meters = session.meter_reader()
        self.tty = sys.stdout.isatty()
        self.interval = interval if self.tty else 1.0
        self.done = threading.Event()

    def run(self):
        session = self.session
        while not self.done.wait(self.interval):
            m = self.meters.read()
            line = (f"in {m['peak_in']:6.1f} dBFS  out {m['peak_out']:6.1f} dBFS  "
                    f"cpu {m['load']:5.1f}% (max {m['load_max']:5.1f}%)  xruns {m['xruns']}  "
                    f"latency {1000 * session.stream.latency[1]:.1f} ms  "
                    f"non-finite {guarded(session.stats, session.chain)['nonfinite_input']}")
            if self.tty:
                print("\r" + line, end="", flush=True)
            else:
                print(line, flush=True)

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()
        if self.tty:
            print()


KNOB_STEP_FRACTION = 0.05  # one key press moves a knob by this share of its range


class _KeyControl(threading.Thread):
    """Terminal keys: 1-9 toggle the bypass of that processor of the chain; for models
    with knobs, ``k`` selects the next knob and ``-``/``+`` (or ``=``) turn it down/up
    by 5% of its range. Changes glide, never click (the callback crossfades bypass
    and smooths knobs). Runs only on a terminal, in cbreak mode."""

    def __init__(self, session):
        super().__init__(daemon=True)
        self.session = session
        self.done = threading.Event()
        self.saved = None
        self.selected = 0

    def knobs(self):
        chain = self.session.chain  # the rig may have been switched from the page
        return [(i, name) for i, p in enumerate(chain.processors)
                if isinstance(p, NeuralModel) for name in p.PARAMS]

    def help_lines(self):
        lines = [f"keys 1-{min(9, len(self.session.chain.processors))}: bypass that processor on/off"]
        if self.knobs():
            lines.append(f"keys k: next knob ({', '.join(n for _, n in self.knobs())}), - and +: "
                         f"turn it by {100 * KNOB_STEP_FRACTION:g}% of its range")
        return lines

    def handle(self, key):
        """Act on one key press; returns the line to show, or None for other keys."""
        control = self.session.control
        chain = control.chain
        if key.isdigit() and 1 <= int(key) <= len(chain.processors):
            index = int(key) - 1
            bypass = not chain.bypassed(index)
            control.set_bypass(index, bypass)
            return f"[{key}] {chain.processors[index].label}: {'bypassed' if bypass else 'on'}"
        knobs = self.knobs()
        if not knobs or not key or key not in "k-+=":
            return None
        if key == "k":
            self.selected += 1
        index, name = knobs[self.selected % len(knobs)]
        processor = chain.processors[index]
        param = processor.PARAMS[name]
        value = processor.values[name]
        if key != "k":
            step = KNOB_STEP_FRACTION * (param.high - param.low) * (-1 if key == "-" else 1)
            value = min(param.high, max(param.low, value + step))
            control.set_parameter(index, name, value)
        return f"[{key}] {name} = {value:g} (range {param.low:g} to {param.high:g})"

    def run(self):
        import select
        import termios
        import tty

        fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        while not self.done.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                line = self.handle(sys.stdin.read(1))
            except (AmpnetError, ValueError) as err:
                line = f"error: {err}"
            if line:
                print(f"\n{line}", flush=True)

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()
        if self.saved is not None:
            import termios
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved)


class _RecordWriter(threading.Thread):
    """Drains the callback's ring buffer into a sound file from the output frame where it
    starts (``first_frame``); the callback never waits on it. The file appears whole
    when :meth:`stop` returns (written to a temporary name, then renamed)."""

    def __init__(self, session, path, rate, overwrite):
        super().__init__(daemon=True)
        self.session, self.path, self.rate = session, Path(path), int(rate)
        if self.path.exists() and not overwrite:
            raise AmpnetError(f"{self.path}: already exists; pass --overwrite to replace it")
        self.done = threading.Event()
        self.error = None
        self.first_frame = int(session.stats[rt_kernel.RING_WRITTEN])
        self.frames = self.lost = 0

    def run(self):
        ring, stats = self.session.ring, self.session.stats
        try:
            with atomic_output(self.path) as tmp:
                with sf.SoundFile(str(tmp), "w", self.rate, 1, subtype="FLOAT") as out:
                    read = self.first_frame
                    while True:
                        finished = self.done.wait(0.05)
                        written = int(stats[rt_kernel.RING_WRITTEN])
                        if written - read > ring.size:  # the writer fell a whole ring behind
                            self.lost += written - read - ring.size
                            read = written - ring.size
                        while read < written:
                            start = read % ring.size
                            stop = min(ring.size, start + (written - read))
                            out.write(ring[start:stop])
                            read += stop - start
                        self.frames = read - self.first_frame
                        if finished:
                            break
        except Exception as err:  # reported in the summary; the stream goes on
            self.error = err

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()
        if self.error:
            raise AmpnetError(f"{self.path}: recording failed ({self.error})")
