"""A JACK2 server with the dummy driver: a real audio server for live tests on a
machine with no sound card. Started and stopped by PID; a named server per run
so stale files of a killed run cannot get in the way."""

import os
import shutil
import signal
import subprocess
from pathlib import Path


def available():
    return shutil.which("jackd") is not None and shutil.which("jack_wait") is not None


class JackServer:
    def __init__(self, blocksize=64, rate=48000, log_dir="/tmp"):
        self.blocksize, self.rate = blocksize, rate
        self.name = f"ampnet_test_{os.getpid()}_{blocksize}"
        self.log = Path(log_dir) / f"{self.name}.log"
        self.process = None

    def start(self):
        self._remove_stale_files()
        # -S: the server waits for every client, so audio stays bit-exact even when a
        # deadline is missed (the miss is still reported as an xrun). -t: client timeout.
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                ["jackd", "-n", self.name, "-S", "-R", "-t", "2000", "-d", "dummy",
                 "-r", str(self.rate), "-p", str(self.blocksize), "-C", "2", "-P", "2"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        ready = subprocess.run(["jack_wait", "-s", self.name, "-w", "-t", "10"],
                               capture_output=True, timeout=20)
        if ready.returncode != 0 or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"jackd did not start: {self.log.read_text()}")
        return self

    def env(self):
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name}

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._remove_stale_files()

    def _remove_stale_files(self):
        for path in Path("/dev/shm").glob(f"jack*{self.name}*"):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    def xrun_lines(self):
        """Lines of the server's log that report a late client or an xrun."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "xrun" in line.lower() or "late" in line.lower()]
