"""``ampnet live --ui`` in a subprocess on the JACK dummy server, for the control
surface's tests: its URL, its output lines as they come, and a clean stop."""

import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import soundfile as sf

from ampnet.formats import save_model
from tests.signals import random_model

RATE = 48000


def make_library(folder):
    """A library folder: ``rig.toml`` (a gate, a one-knob model, an EQ, a gain), ``other.toml``
    (another model and EQ) and ``plain.json`` (a bare model)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_model(random_model(12, 1, knobs=1, seed=21), folder / "knob-amp.json")
    save_model(random_model(10, 1, seed=22), folder / "plain.json")
    (folder / "rig.toml").write_text(
        "name = 'Test rig'\n"
        "[[chain]]\ntype = 'gate'\nthreshold_db = -90\n"
        "[[chain]]\ntype = 'model'\npath = 'knob-amp.json'\nknob0 = 0.25\n"
        "[[chain]]\ntype = 'eq'\nbass_db = 4\ntreble_db = -3\n"
        "[[chain]]\ntype = 'gain'\ngain_db = -3\n")
    (folder / "other.toml").write_text(
        "name = 'Other rig'\n"
        "[[chain]]\ntype = 'model'\npath = 'plain.json'\n"
        "[[chain]]\ntype = 'eq'\nmid_db = 6\n")
    # Not a preset nor a model: the library lists neither.
    (folder / "notes.txt").write_text("not listed")
    sf.write(str(folder / "ignored.wav"), np.zeros(10, np.float32), RATE)
    return folder


class LiveUI:
    """``ampnet live PRESET --ui --no-browser *extra`` on ``server``."""

    def __init__(self, server, preset, *extra, duration=120):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ampnet", "live", str(preset), "--ui", "--no-browser",
             "--duration", str(duration), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env())
        self.output, self.errors = [], []
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout, self.output),
                                       daemon=True)
        self.error_reader = threading.Thread(target=self._read,
                                             args=(self.process.stderr, self.errors), daemon=True)
        self.reader.start()
        self.error_reader.start()
        line = self.wait_for(r"control surface: (http://127\.0\.0\.1:(\d+)/\?token=(\S+))")
        match = re.search(r"(http://127\.0\.0\.1:(\d+)/\?token=(\S+))", line)
        self.url, self.port, self.token = match.group(1), int(match.group(2)), match.group(3)
        self.wait_for("stream latency")

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.append(line)

    def wait_for(self, pattern, timeout=60, start=0):
        """The first output line from ``start`` on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output[start:]:
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.output)}"
                             f"{''.join(self.errors)}")

    def stop(self):
        """Ctrl-C; returns ``(returncode, all output, stderr)``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self.reader.join(10)
        self.error_reader.join(10)
        return self.process.returncode, "".join(self.output), "".join(self.errors)
