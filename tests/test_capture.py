"""``ampnet capture`` on a real audio server with a real device in the loop.

JACK runs with its dummy driver (no sound card); ampnet's PortAudio stream is one JACK
client and the device another: a Guitarix LV2 plugin run by ``jalv`` (the overdrive
of the shared gx-tiltdrive data, with its settings), a plain wire (ampnet's output
straight into its input), or a Python JACK client with a gain (to clip). A helper
thread re-wires the graph whenever ampnet opens a stream (its one second of leading
silence leaves time for that).
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests import jack_server

jack = pytest.importorskip("jack")

TILTDRIVE = ("http://guitarix.sourceforge.net/plugins/gxtilttone#tilttone",
             {"body": 0.5, "tone": 0.5, "drive": 0.8, "level": 0.5})
HAVE_PLUGIN = (shutil.which("jalv") is not None and shutil.which("lv2apply") is not None
               and Path("/usr/lib/lv2/gxtilttone.lv2").exists())
pytestmark = pytest.mark.skipif(not jack_server.available(), reason="jackd2 is not installed")
needs_plugin = pytest.mark.skipif(not HAVE_PLUGIN, reason="jalv, lilv-utils or guitarix-lv2 missing")
RATE = 48000
WIRE = "wire"  # a Patchbay source: ampnet's output straight into its input


@pytest.fixture(scope="module")
def server():
    srv = jack_server.JackServer(blocksize=128).start()
    os.environ["JACK_DEFAULT_SERVER"] = srv.name
    yield srv
    srv.stop()


class Patchbay:
    """Keeps the graph wired as a test wants it while ampnet opens and closes streams:
    ``source`` feeds PortAudio's input (None: nothing does; :data:`WIRE`: PortAudio's own
    output), PortAudio's output feeds ``sink`` (None: nothing)."""

    def __init__(self, source, sink):
        self.client = jack.Client("ampnet_patchbay", no_start_server=True)
        self.client.activate()
        self.source, self.sink = source, sink
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_event.wait(0.01):
            try:
                self._wire()
            except jack.JackError:
                pass  # a port went away while we looked: try again

    def _wire(self):
        c = self.client
        ins = [p.name for p in c.get_ports("PortAudio:", is_input=True, is_audio=True)]
        outs = [p.name for p in c.get_ports("PortAudio:", is_output=True, is_audio=True)]
        if not ins or not outs:
            return
        ours_in, ours_out = ins[-1], outs[-1]  # each stream registers new ports (in_1, ...)
        wanted = set()
        if self.source:
            wanted.add((ours_out if self.source == WIRE else self.source, ours_in))
        if self.sink:
            wanted.add((ours_out, self.sink))
        have = {(p.name, ours_in) for p in c.get_all_connections(ours_in)}
        have |= {(ours_out, p.name) for p in c.get_all_connections(ours_out)}
        for edge in have - wanted:
            c.disconnect(*edge)
        for edge in wanted - have:
            c.connect(*edge)

    def close(self):
        self.stop_event.set()
        self.thread.join(5)
        self.client.deactivate()
        self.client.close()


class Plugin:
    """``jalv`` running the overdrive as JACK client ``device`` (ports device:in, device:out)."""

    def __init__(self):
        uri, controls = TILTDRIVE
        args = ["jalv", "-x", "-n", "device"]
        for name, value in controls.items():
            args += ["-c", f"{name}={value}"]
        self.process = subprocess.Popen(args + [uri], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        client = jack.Client("ampnet_probe", no_start_server=True)
        deadline = time.monotonic() + 20
        while not client.get_ports("device:out"):
            assert time.monotonic() < deadline and self.process.poll() is None, "jalv did not start"
            time.sleep(0.1)
        self.ports = ([p.name for p in client.get_ports("device:", is_input=True, is_audio=True)][0],
                      [p.name for p in client.get_ports("device:", is_output=True, is_audio=True)][0])
        client.close()

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


class Amplifier:
    """A Python JACK client that multiplies by ``gain``: a device that clips the input."""

    def __init__(self, gain):
        self.client = jack.Client("hot_device", no_start_server=True)
        self.inport = self.client.inports.register("in")
        self.outport = self.client.outports.register("out")
        self.client.set_process_callback(self._process)
        self.gain = gain
        self.client.activate()
        self.ports = (self.inport.name, self.outport.name)

    def _process(self, frames):
        self.outport.get_array()[:] = self.gain * self.inport.get_array()

    def close(self):
        self.client.deactivate()
        self.client.close()


def capture(server, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ampnet", "capture", *args], capture_output=True,
                          text=True, env=server.env(), timeout=timeout)


def latency_line(output):
    line = next(l for l in output.splitlines() if "round-trip latency" in l)
    return int(line.split("round-trip latency ")[1].split()[0])


@needs_plugin
def test_the_check_finds_the_same_latency_through_the_device_as_through_a_wire(server, tmp_path):
    bay = Patchbay(None, None)
    try:
        bay.source, bay.sink = WIRE, None
        wire = capture(server, "-o", str(tmp_path / "a"), "--check")
        assert wire.returncode == 0, wire.stdout + wire.stderr
        plugin = Plugin()
        try:
            bay.sink, bay.source = plugin.ports
            through = capture(server, "-o", str(tmp_path / "a"), "--check")
        finally:
            plugin.close()
    finally:
        bay.close()
    assert through.returncode == 0, through.stdout + through.stderr
    assert "ready to capture" in through.stdout
    assert latency_line(through.stdout) == latency_line(wire.stdout)
    assert not (tmp_path / "a").exists()  # a check writes nothing


def test_a_disconnected_input_says_no_signal_and_is_refused(server, tmp_path):
    bay = Patchbay(None, None)
    try:
        check = capture(server, "-o", str(tmp_path / "a"), "--check")
        take = capture(server, "-o", str(tmp_path / "a"))
    finally:
        bay.close()
    assert check.returncode == 1 and "no signal on input 1: is the device's output connected" \
        in check.stdout, check.stdout + check.stderr
    assert take.returncode == 2 and "--force" in take.stderr and "Traceback" not in take.stderr
    assert not (tmp_path / "a").exists()


def test_a_clipping_input_is_refused(server, tmp_path):
    hot = Amplifier(gain=8.0)
    bay = Patchbay(hot.ports[1], hot.ports[0])
    try:
        take = capture(server, "-o", str(tmp_path / "a"))
    finally:
        bay.close()
        hot.close()
    assert "clipping: lower the amp's output or the interface gain" in take.stdout, take.stdout
    assert take.returncode == 2 and "clipping" in take.stderr and "--force" in take.stderr
    assert not (tmp_path / "a").exists()


def test_ctrl_c_during_a_take_leaves_no_files(server, tmp_path):
    bay = Patchbay(WIRE, None)
    folder = tmp_path / "a"
    try:
        process = subprocess.Popen([sys.executable, "-m", "ampnet", "capture", "-o", str(folder)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=server.env())
        time.sleep(14)  # past the 6 s check, into the take
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        bay.close()
    assert process.returncode == 130, stdout + stderr
    assert "ready" not in stdout and "Traceback" not in stderr
    assert not folder.exists() or not any(folder.iterdir())


@pytest.mark.integration
@needs_plugin
def test_a_capture_through_the_device_trains_a_model_that_nulls_at_the_true_delay(server, tmp_path):
    from ampnet.formats import load_model
    from ampnet.train.nulltest import render_output

    plugin = Plugin()
    bay = Patchbay(plugin.ports[1], plugin.ports[0])
    folder = tmp_path / "tiltdrive"
    try:
        take = capture(server, "-o", str(folder))
    finally:
        bay.close()
        plugin.close()
    assert take.returncode == 0, take.stdout + take.stderr
    assert {p.name for p in folder.iterdir()} == {"dry.wav", "wet.wav", "capture.toml"}
    notes = (folder / "capture.toml").read_text()
    # xruns of this VM's scheduler may be counted; the end clicks agreeing (or the take
    # would have been refused) is what shows no sample was lost.
    assert "latency_samples" in notes and "xruns = " in notes, notes
    trained = subprocess.run([sys.executable, "-m", "ampnet", "train", str(folder), "-o",
                              str(folder / "model.json"), "--hidden", "12", "--minutes", "1.5",
                              "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "from the capture signal's clicks" in trained.stdout
    latency = int(trained.stdout.split("latency: ")[-1].split()[0])
    # The same dry through the same plugin offline: the device's own output, no delay.
    dry, rate = sf.read(folder / "dry.wav", dtype="float32")
    uri, controls = TILTDRIVE
    sf.write(tmp_path / "in.wav", np.concatenate([np.zeros(rate, np.float32), dry]), rate,
             subtype="FLOAT")
    command = ["lv2apply", "-i", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav")]
    for name, value in controls.items():
        command += ["-c", name, repr(float(value))]
    subprocess.run(command + [uri], check=True, capture_output=True)
    device = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)[0][rate:, 0][:dry.size]
    rendered = render_output(load_model(folder / "model.json"), dry, {})

    def null(shift):
        a = rendered[10 * rate:-rate].astype(np.float64)
        b = device[10 * rate + shift:device.size - rate + shift].astype(np.float64)
        a, b = a - a.mean(), b - b.mean()
        return float(np.sum((b - a) ** 2) / np.sum(b ** 2))

    errors = {shift: null(shift) for shift in range(-3, 4)}
    assert errors[0] <= 1.1 * min(errors.values()), (latency, errors)
