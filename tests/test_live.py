"""``ampnet live`` against a real audio server: JACK2 with its dummy driver.

The real CLI runs in a subprocess; a JACK client in this process plays a known
signal into its input port and records its output port.
"""

import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import upfirdn

from ampnet.formats import save_model
from ampnet.host.preset import load_spec
from ampnet.live.resampler import Polyphase
from tests import jack_server
from tests.signals import guitar_like, random_model

jack = pytest.importorskip("jack")
pytestmark = pytest.mark.skipif(not jack_server.available(), reason="jackd2 is not installed")

RATE = 48000
LEAD = RATE // 2  # leading silence, so live and offline states settle alike


@pytest.fixture(scope="module", params=[64, 128], ids=lambda b: f"block{b}")
def server(request):
    srv = jack_server.JackServer(blocksize=request.param).start()
    yield srv
    srv.stop()


class Harness:
    """Plays ``signal`` into PortAudio's first input and records its first output."""

    def __init__(self, server, signal_to_play, record_seconds):
        import os
        os.environ["JACK_DEFAULT_SERVER"] = server.name
        self.client = jack.Client("ampnet_harness", no_start_server=True)
        self.play = self.client.outports.register("play")
        self.rec = self.client.inports.register("rec")
        self.signal = signal_to_play
        self.recording = np.zeros(int(record_seconds * RATE), dtype=np.float32)
        self.position = self.recorded = 0
        self.running = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames):
        out = self.play.get_array()
        out[:] = 0.0
        if not self.running:
            return
        chunk = self.signal[self.position:self.position + frames]
        out[:chunk.size] = chunk
        self.position += frames
        space = self.recording.size - self.recorded
        take = min(frames, space)
        self.recording[self.recorded:self.recorded + take] = self.rec.get_array()[:take]
        self.recorded += take

    def wire(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not self.client.get_ports("PortAudio:in_0"):
            if time.monotonic() > deadline:
                raise TimeoutError("ampnet live never opened its stream")
            time.sleep(0.1)
        for source in self.client.get_all_connections("PortAudio:in_0"):
            self.client.disconnect(source, "PortAudio:in_0")
        self.client.connect(self.play, "PortAudio:in_0")
        self.client.connect("PortAudio:out_0", self.rec)
        self.running = True

    def close(self):
        self.client.deactivate()
        self.client.close()


def start_live(server, model_path, *extra):
    return subprocess.Popen([sys.executable, "-m", "ampnet", "live", str(model_path), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=server.env())


def wait_until_streaming(live, timeout=30):
    """Read the CLI's output until its stream has started, plus a moment to settle."""
    deadline = time.monotonic() + timeout
    lines = []
    while "stream latency" not in (lines[-1] if lines else ""):
        assert time.monotonic() < deadline and live.poll() is None, "".join(lines)
        lines.append(live.stdout.readline() or "")
    time.sleep(0.3)
    return "".join(lines)


def play_through_live(server, path, signal_in, record_seconds, *extra):
    """Start ``ampnet live PATH *extra``, play ``signal_in`` into it and record its output
    until half a second after the signal ends; it stops on its own ``--duration``.
    Returns ``(process, start-up output, stdout, stderr, recording, complete)``;
    ``complete`` is False when ``--duration`` ended the stream before the signal was
    through (the server ran slower than the clock: the machine stalled)."""
    harness = Harness(server, signal_in, record_seconds)
    end = signal_in.size + server.rate // 2
    try:
        live = start_live(server, path, *extra)
        started = wait_until_streaming(live)
        harness.wire()
        while harness.position < end and live.poll() is None:
            time.sleep(0.1)
        stdout, stderr = live.communicate(timeout=30)
    finally:
        harness.close()
    return live, started, stdout, stderr, harness.recording[:harness.recorded], harness.position >= end


def play_until_it_matches(server, path, signal_in, record_seconds, extra, distance, tries=3):
    """:func:`play_through_live`, judged by ``distance(recording) -> (max error, lag)``.
    An xrun drops or repeats a period, so a run with xruns whose error is 1e-4 or more is
    played again (up to ``tries`` runs), and so is a run that a stalled machine left
    incomplete (its error counts as infinite); a complete run without xruns is final,
    match or not. Returns ``(start-up output, stdout, (error, lag), xruns, runs)`` of
    the last run."""
    for runs in range(1, tries + 1):
        live, started, stdout, stderr, recorded, complete = play_through_live(
            server, path, signal_in, record_seconds, *extra)
        assert live.returncode == 0, stderr
        _, xruns = summary_numbers(stdout)
        error, lag = distance(recorded) if complete else (np.inf, None)
        if complete and (error < 1e-4 or xruns == 0):
            break
    return started, stdout, (error, lag), xruns, runs


def summary_numbers(stdout):
    match = re.search(r"(\d+) callbacks, (\d+) xruns", stdout)
    assert match, stdout
    return int(match.group(1)), int(match.group(2))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "model.json"
    save_model(random_model(16, 1, seed=3), path)
    return path


@pytest.fixture(scope="module")
def preset_path(model_path):
    """A chain: gate, the model, EQ, a 100 ms cabinet IR, DC blocker."""
    folder = model_path.parent
    t = np.arange(RATE // 10) / RATE
    ir = np.random.default_rng(0).standard_normal(t.size) * np.exp(-t / 0.02)
    sf.write(str(folder / "cab.wav"), (0.5 * ir).astype(np.float32), RATE, subtype="FLOAT")
    path = folder / "rig.toml"
    path.write_text("[[chain]]\ntype = 'gate'\nthreshold_db = -90\n"
                    "[[chain]]\ntype = 'model'\npath = 'model.json'\n"
                    "[[chain]]\ntype = 'eq'\nbass_db = 4\ntreble_db = -3\n"
                    "[[chain]]\ntype = 'cabinet'\npath = 'cab.wav'\n"
                    "[[chain]]\ntype = 'dc_blocker'\n")
    return path


@pytest.mark.parametrize("what", ["model", "preset"])
def test_live_output_equals_render(server, model_path, preset_path, what):
    """The recording equals the offline render, shifted by whole blocks."""
    path = model_path if what == "model" else preset_path
    block = server.blocksize
    music = guitar_like(3.0, seed=8)
    signal_in = np.concatenate([np.zeros(LEAD, np.float32), music])
    spec = load_spec(path)
    expected = spec.build(spec.sample_rate).process(
        np.concatenate([np.zeros(4 * RATE, np.float32), signal_in]))[4 * RATE:]
    n = expected.size - 4 * block

    def distance(recorded):
        errors = {lag: np.max(np.abs(recorded[lag:lag + n] - expected[:n]))
                  for lag in range(0, 4 * block + 1) if lag + n <= recorded.size}
        lag = min(errors, key=errors.get)
        return errors[lag], lag

    _, stdout, (error, lag), xruns, runs = play_until_it_matches(
        server, path, signal_in, 4.5, ("--blocksize", str(block), "--duration", "8"), distance)
    callbacks, _ = summary_numbers(stdout)
    # Bounded, not zero: this machine stalls now and then, and JACK reports an xrun to every
    # client when any client (this Python harness too) is late.
    assert xruns <= 0.2 * callbacks
    assert error < 1e-4, (lag, error, f"{xruns} xruns in run {runs}")
    assert lag % block == 0 and lag <= 2 * block  # the stream adds whole blocks of latency


def test_live_resamples_when_the_device_runs_at_another_rate(model_path, tmp_path):
    """A 48 kHz model on a 44.1 kHz server: the stream resamples there and back, and the
    recording equals the same resampling filters (scipy's upfirdn) around the chain offline."""
    device_rate, block = 44100, 64
    music = guitar_like(1.5, device_rate, seed=9)
    signal_in = np.concatenate([np.zeros(device_rate // 2, np.float32), music])
    # Offline: the filters start at an unknown phase (the stream ran before the harness
    # played), so try each of the 147 device-sample offsets that make a whole period.
    into, back = Polyphase(device_rate, RATE), Polyphase(RATE, device_rate)
    spec = load_spec(model_path)
    pre = into.down * 300
    n = music.size
    references = []
    for offset in range(into.down):
        x = np.concatenate([np.zeros(pre + offset), signal_in]).astype(np.float64)
        mid = upfirdn(into.prototype, x, into.up, into.down)[:-(-x.size * into.up // into.down)]
        processed = spec.build(RATE).process(mid.astype(np.float32))
        out = upfirdn(back.prototype, processed.astype(np.float64), back.up, back.down)
        references.append(out[pre + offset:pre + offset + n])

    def distance(recorded):
        return min((np.max(np.abs(recorded[lag:lag + n] - reference)), lag)
                   for reference in references
                   for lag in range(0, 4 * block + 1, block) if lag + n <= recorded.size)

    srv = jack_server.JackServer(blocksize=block, rate=device_rate).start()
    try:
        started, stdout, best, _, _ = play_until_it_matches(
            srv, model_path, signal_in, 2.5, ("--blocksize", str(block), "--duration", "6"),
            distance)
        strict = start_live(srv, model_path, "--strict-rate", "--duration", "1")
        _, strict_err = strict.communicate(timeout=60)
    finally:
        srv.stop()
    assert strict.returncode == 2 and "--strict-rate refuses to resample" in strict_err, strict_err
    assert "Traceback" not in strict_err
    assert "resampling in the stream: device 44100 Hz <-> model 48000 Hz" in started
    assert "resampled 44100 Hz <-> 48000 Hz" in stdout
    assert best[0] < 1e-4, best


def test_overloaded_processor_xruns_are_counted(server, tmp_path):
    if server.blocksize != 64:
        pytest.skip("one block size is enough")
    heavy = tmp_path / "heavy.json"
    save_model(random_model(384, 2, seed=1), heavy)  # ~10x too slow for real time
    live = start_live(server, heavy, "--duration", "3")
    stdout, stderr = live.communicate(timeout=90)
    assert live.returncode == 0, stderr
    _, xruns = summary_numbers(stdout)
    assert xruns > 0
    assert re.search(r"xruns [1-9]", stdout)  # shown in the status lines too
    assert "non-finite 0" in stdout  # the guard's count, in every status line
    assert "; 0 non-finite input samples" in stdout  # and in the summary


def test_record_loses_nothing_and_survives_ctrl_c(server, model_path, tmp_path):
    if server.blocksize != 64:
        pytest.skip("one block size is enough")
    recording = tmp_path / "take.wav"
    live = start_live(server, model_path, "--record", str(recording))
    wait_until_streaming(live)
    time.sleep(2.0)
    live.send_signal(signal.SIGINT)
    stdout, stderr = live.communicate(timeout=30)
    assert live.returncode == 0, stderr
    assert "Ctrl-C" in stdout
    callbacks, _ = summary_numbers(stdout)
    frames = sf.info(str(recording)).frames
    assert frames == callbacks * 64  # every processed block reached the file
    assert f"recorded {frames} frames" in stdout
