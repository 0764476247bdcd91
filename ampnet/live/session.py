"""A live session: open the duplex stream, run until told to stop, report what happened.

Threads: PortAudio's audio thread runs the callback, which is compiled C
(:func:`ampnet.live.rt_kernel.audio_callback`, handed to PortAudio as a function
pointer): it never enters Python, so neither the GIL nor the other threads can
delay it. The main thread waits for Ctrl-C, SIGTERM, ``--duration`` or the
stream ending; a status thread prints levels, callback load and xruns a few
times a second; with ``--record`` a writer thread drains a ring buffer to disk.
Garbage collection is still frozen and disabled while streaming, for the status
and writer threads' sake.
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
from ampnet.engine.packing import aligned_zeros
from ampnet.errors import AmpnetError
from ampnet.host.processors import NeuralModel
from ampnet.io.files import atomic_output
from ampnet.live import rt_kernel
from ampnet.live.audio_api import import_sounddevice, open_duplex_stream, resolve_device

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


class LiveSession:
    """Plays a chain (:class:`~ampnet.host.preset.ChainSpec`: a preset, or one model)."""

    def __init__(self, spec, options: LiveOptions):
        self.spec, self.options = spec, options
        self.sd = import_sounddevice()
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self.stats = np.zeros(rt_kernel.STATS_SIZE)
        self.ring = None  # the recording ring, once the device rate is known
        self.recorded_frames = 0
        self.lost_frames = 0

    def run(self):
        """Stream until stopped; returns a summary dict."""
        sd, o = self.sd, self.options
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
        rate = self._device_rate(in_dev, out_dev, in_info, n_in, n_out)
        model_rate = float(self.spec.sample_rate or rate)
        if rate != model_rate and o.strict_rate:
            raise AmpnetError(f"the device runs at {rate:g} Hz but {self.spec.name} was trained at "
                              f"{model_rate:g} Hz, and --strict-rate refuses to resample: run the "
                              f"device at {model_rate:g} Hz, or leave out --strict-rate")
        if not 0 <= o.blocksize <= MAX_BLOCK:
            raise AmpnetError(f"--blocksize {o.blocksize}: give 0 (the device's choice) to "
                              f"{MAX_BLOCK} frames")
        self.ring = np.zeros(int(RING_SECONDS * rate), dtype=np.float32)

        resampling = rt_kernel.Resampling(rate, model_rate, o.blocksize or MAX_BLOCK)
        chain = self.spec.build(model_rate, max_block=resampling.model_frames)
        scratch = aligned_zeros((4, max(resampling.model_frames, o.blocksize or MAX_BLOCK)))
        out_mask = np.zeros(n_out, dtype=np.int64)
        out_mask[[c - 1 for c in out_channels]] = 1
        gains = np.array([10 ** (o.input_gain_db / 20), 10 ** (o.output_gain_db / 20)], np.float32)
        callback_data = rt_kernel.CallbackData(chain, resampling, scratch, self.ring, self.stats,
                                               out_mask, gains, o.input_channel - 1, n_in, n_out)
        _warm_up(callback_data, o.blocksize or 256, n_in, n_out)
        chain.reset()
        resampling.reset()
        self.stats[:] = 0.0
        stats = self.stats

        cycles_per_second = rt_kernel.cycles_per_second()
        stream = open_duplex_stream(sd, rate, o.blocksize, (in_dev, out_dev), (n_in, n_out),
                                    rt_kernel.audio_callback.address, callback_data.address,
                                    self._finished, o.latency)

        writer = _RecordWriter(self, o.record, rate, o.overwrite) if o.record else None
        status = _StatusPrinter(self, stream, chain, cycles_per_second, o.blocksize, rate,
                                o.status_interval)
        keys = _KeyControl(chain) if sys.stdin.isatty() else None
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        print(f"ampnet live: {self.spec.name} | in: {in_info['name']} ch {o.input_channel} | "
              f"out: {out_info['name']} ch {','.join(map(str, out_channels))} | {rate:g} Hz, "
              f"block {o.blocksize} | Ctrl-C to stop", flush=True)
        if resampling.latency_seconds:
            print(f"  resampling in the stream: device {rate:g} Hz <-> model {model_rate:g} Hz, "
                  f"adds {1000 * resampling.latency_seconds:.2f} ms of latency "
                  f"(--strict-rate refuses instead)", flush=True)
        for line in chain.describe():
            print("  " + line, flush=True)
        for line in keys.help_lines() if keys else []:
            print("  " + line, flush=True)
        gc.collect()
        gc.freeze()
        gc.disable()
        started = time.monotonic()
        try:
            with stream:
                latency = stream.latency
                print(f"stream latency reported by PortAudio: input {1000 * latency[0]:.1f} ms, "
                      f"output {1000 * latency[1]:.1f} ms"
                      + (f"; resampling adds {1000 * resampling.latency_seconds:.2f} ms"
                         if resampling.latency_seconds else ""), flush=True)
                if writer:
                    writer.start()
                if keys:
                    keys.start()
                status.start()
                if not self.stop_event.wait(o.duration):
                    self.stop_reason = "duration elapsed"
                    self.stop_event.set()  # so closing the stream is not taken for a lost device
        finally:
            elapsed = time.monotonic() - started
            gc.enable()
            gc.unfreeze()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            status.stop()
            if keys:
                keys.stop()
            if writer:
                writer.stop()
        durations = self._durations(cycles_per_second)
        period = o.blocksize / rate if o.blocksize else None
        return {
            "seconds": elapsed, "stopped_because": self.stop_reason,
            "callbacks": int(stats[rt_kernel.CALLBACKS]), "xruns": int(stats[rt_kernel.XRUNS]),
            "worst_callback_ms": 1000 * stats[rt_kernel.MAX_CYCLES] / cycles_per_second,
            "median_callback_ms": 1000 * float(np.median(durations)) if durations.size else 0.0,
            "p99_callback_ms": 1000 * float(np.percentile(durations, 99)) if durations.size else 0.0,
            "p999_callback_ms": 1000 * float(np.percentile(durations, 99.9)) if durations.size else 0.0,
            "late_callbacks": int(np.count_nonzero(durations > period)) if period and durations.size else 0,
            "block_period_ms": 1000 * period if period else None,
            "recorded": str(o.record) if o.record else None, "recorded_frames": self.recorded_frames,
            "lost_frames": self.lost_frames, "device_rate": rate, "model_rate": model_rate,
            "resampling_latency_ms": 1000 * resampling.latency_seconds,
            "oversized_callbacks": int(stats[rt_kernel.OVERSIZED]),
            **guarded(stats, chain),
        }

    def _device_rate(self, in_dev, out_dev, in_info, n_in, n_out):
        """The rate to open the device at: ``--samplerate``, else the model's, else (when the
        device cannot run at the model's rate) the device's default rate."""
        sd, o = self.sd, self.options
        wanted = o.samplerate or self.spec.sample_rate or in_info["default_samplerate"]
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

    def _durations(self, cycles_per_second):
        count = int(self.stats[rt_kernel.CALLBACKS])
        times = self.stats[rt_kernel.TIMES:]
        return times[:min(count, times.size)] / cycles_per_second

    def _on_signal(self, signum, frame):
        self.stop_reason = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self.stop_event.set()

    def _finished(self):
        if not self.stop_event.is_set():
            self.stop_reason = "the stream ended (device gone?)"
            self.stop_event.set()


def guarded(stats, chain):
    """What the non-finite guards caught so far: ``nonfinite_input`` (NaN or infinite
    input samples replaced by silence) and ``state_resets`` (processors reset after
    their state overflowed)."""
    health = chain.health()
    return {"nonfinite_input": int(stats[rt_kernel.NONFINITE_IN]) + health["nonfinite"],
            "state_resets": health["resets"]}


def _warm_up(callback_data, frames, n_in, n_out):
    """Run the compiled C callback once on silence (it was compiled, or loaded from the
    cache, when :mod:`rt_kernel` was imported), so its code and data are paged in."""
    indata = np.zeros((frames, n_in), np.float32)
    outdata = np.zeros((frames, n_out), np.float32)
    rt_kernel.audio_callback.ctypes(indata.ctypes.data, outdata.ctypes.data, frames, None, 0,
                                    callback_data.address)


class _StatusPrinter(threading.Thread):
    """Levels, callback load and xruns: a refreshed line on a terminal, else a line a second."""

    def __init__(self, session, stream, chain, cycles_per_second, blocksize, rate, interval):
        super().__init__(daemon=True)
        self.session, self.stream, self.chain = session, stream, chain
        self.cps, self.period = cycles_per_second, (blocksize or 256) / rate
        self.tty = sys.stdout.isatty()
        self.interval = interval if self.tty else 1.0
        self.done = threading.Event()

    def run(self):
        stats = self.session.stats
        seen = 0
        while not self.done.wait(self.interval):
            count = int(stats[rt_kernel.CALLBACKS])
            times = stats[rt_kernel.TIMES:]
            fresh = min(count - seen, times.size)
            seen = count
            recent = np.array([times[(count - i) % times.size] for i in range(fresh)]) / self.cps
            load = recent / self.period * 100 if recent.size else np.zeros(1)
            peak_in, peak_out = stats[rt_kernel.PEAK_IN], stats[rt_kernel.PEAK_OUT]
            stats[rt_kernel.PEAK_IN] = stats[rt_kernel.PEAK_OUT] = 0.0
            line = (f"in {_dbfs(peak_in):6.1f} dBFS  out {_dbfs(peak_out):6.1f} dBFS  "
                    f"cpu {np.median(load):5.1f}% (max {load.max():5.1f}%)  "
                    f"xruns {int(stats[rt_kernel.XRUNS])}  "
                    f"latency {1000 * self.stream.latency[1]:.1f} ms  "
                    f"non-finite {guarded(stats, self.chain)['nonfinite_input']}")
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

    def __init__(self, chain):
        super().__init__(daemon=True)
        self.chain = chain
        self.done = threading.Event()
        self.saved = None
        self.knobs = [(i, name) for i, p in enumerate(chain.processors)
                      if isinstance(p, NeuralModel) for name in p.PARAMS]
        self.selected = 0

    def help_lines(self):
        lines = [f"keys 1-{min(9, len(self.chain.processors))}: bypass that processor on/off"]
        if self.knobs:
            lines.append(f"keys k: next knob ({', '.join(n for _, n in self.knobs)}), - and +: "
                         f"turn it by {100 * KNOB_STEP_FRACTION:g}% of its range")
        return lines

    def handle(self, key):
        """Act on one key press; returns the line to show, or None for other keys."""
        if key.isdigit() and 1 <= int(key) <= len(self.chain.processors):
            index = int(key) - 1
            bypass = not self.chain.bypassed(index)
            self.chain.set_bypass(index, bypass)
            return f"[{key}] {self.chain.processors[index].label}: {'bypassed' if bypass else 'on'}"
        if not self.knobs or not key or key not in "k-+=":
            return None
        if key == "k":
            self.selected = (self.selected + 1) % len(self.knobs)
        index, name = self.knobs[self.selected]
        processor = self.chain.processors[index]
        param = processor.PARAMS[name]
        value = processor.values[name]
        if key != "k":
            step = KNOB_STEP_FRACTION * (param.high - param.low) * (-1 if key == "-" else 1)
            value = min(param.high, max(param.low, value + step))
            self.chain.set(index, name, value)
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
            line = self.handle(sys.stdin.read(1))
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
    """Drains the callback's ring buffer into a sound file; the callback never waits on it."""

    def __init__(self, session, path, rate, overwrite):
        super().__init__(daemon=True)
        self.session, self.path, self.rate = session, Path(path), int(rate)
        if self.path.exists() and not overwrite:
            raise AmpnetError(f"{self.path}: already exists; pass --overwrite to replace it")
        self.done = threading.Event()
        self.error = None

    def run(self):
        session = self.session
        ring, stats = session.ring, session.stats
        try:
            with atomic_output(self.path) as tmp:
                with sf.SoundFile(str(tmp), "w", self.rate, 1, subtype="FLOAT") as out:
                    read = 0
                    while True:
                        finished = self.done.wait(0.05)
                        written = int(stats[rt_kernel.RING_WRITTEN])
                        if written - read > ring.size:  # the writer fell a whole ring behind
                            session.lost_frames += written - read - ring.size
                            read = written - ring.size
                        while read < written:
                            start = read % ring.size
                            stop = min(ring.size, start + (written - read))
                            out.write(ring[start:stop])
                            read += stop - start
                        session.recorded_frames = read
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


def _dbfs(value):
    return 20 * np.log10(value) if value > 0 else -120.0
