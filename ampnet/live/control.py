"""The one way into a running audio callback, and meters every reader reads alone.

:class:`ControlPath` is what every controller (the terminal keys, the browser page,
a program) changes the live chain through: parameter and knob values, bypass
switches, input and output gain, and rig switches. Each change is one message in
the callback's control ring (:mod:`ampnet.live.rt_kernel`, ``controls``), applied
whole between two blocks, so a multi-value change (an EQ band's five coefficients)
is never heard half-written and two controllers never interleave inside one. The
writers take a lock among themselves; the callback takes none: it reads what was
written up to the count it sees.

:class:`MeterReader` reads the callback's per-block meter rows from where *it* last
read, so the page and the terminal each see every peak.
"""

import threading
import time

import numpy as np

from ampnet.errors import AmpnetError
from ampnet.live import rt_kernel as rt

CROSSFADE_MS = 30.0  # a rig switch fades the new chain in over this long
_POLL_S = 0.001


class ControlPath:
    """Changes to the chain and levels of a running :class:`~ampnet.live.rt_kernel.CallbackData`."""

    def __init__(self, data: rt.CallbackData):
        self.data = data
        self.lock = threading.Lock()

    @property
    def chain(self):
        """The chain playing now (:class:`~ampnet.host.chain.Chain`)."""
        return self.data.chain

    def set_parameter(self, index, name, value):
        """Processor ``index``'s parameter ``name`` (a model's knob too) to ``value`` in its
        own unit; raises ``ValueError`` naming the allowed range."""
        with self.lock:
            slot = int(self.data.stats[rt.ACTIVE])
            offset, targets = self.chain.parameter_targets(index, name, value)
            self.post(rt.TARGET_CHAIN_0 + slot, offset, targets)

    def set_bypass(self, index, bypassed):
        with self.lock:
            slot = int(self.data.stats[rt.ACTIVE])
            self.post(rt.TARGET_CHAIN_0 + slot, self.chain.bypass_offset(index),
                       [0.0 if bypassed else 1.0])

    def set_gain(self, which, db):
        """``which`` 'input' or 'output': the gain (dB) the callback glides to."""
        if which not in ("input", "output"):
            raise ValueError(f"gain {which!r}: input or output")
        if not -60.0 <= db <= 24.0:
            raise ValueError(f"{which} gain {db:g} dB: out of range (-60 to 24 dB)")
        with self.lock:
            self.post(rt.TARGET_LEVELS,
                       rt.LEVEL_IN_TARGET if which == "input" else rt.LEVEL_OUT_TARGET,
                       [10 ** (db / 20)])

    def gain_db(self, which):
        linear = self.data.levels[rt.LEVEL_IN_TARGET if which == "input" else rt.LEVEL_OUT_TARGET]
        return 20 * np.log10(linear) if linear > 0 else -120.0

    def swap(self, chain, timeout=2.0):
        """Crossfade from the playing chain to ``chain`` (built, compiled and warmed by the
        caller, at the stream's model rate and block size) over :data:`CROSSFADE_MS`.
        Returns once the new chain plays alone: the output frame (``RING_WRITTEN``
        count) at which the crossfade began."""
        data, stats = self.data, self.data.stats
        frames = max(1, round(CROSSFADE_MS * 1e-3 * chain.rate))
        with self.lock:
            self._wait(lambda: stats[rt.FADE_LEFT] == 0 and self._caught_up(), timeout,
                       "a rig switch")
            slot = 1 - int(stats[rt.ACTIVE])
            data.load_chain(slot, chain)
            self.post(rt.TARGET_SWAP, slot, [], count=frames)
            self._wait(lambda: self._caught_up() and stats[rt.FADE_LEFT] == 0
                       and int(stats[rt.ACTIVE]) == slot, timeout, "a rig switch")
            data.load_chain(1 - slot, chain)  # the old chain's arrays are not kept alive
            return int(stats[rt.FADE_STARTED_AT])

    def wait_applied(self, timeout=1.0):
        """Wait until the callback has applied every change posted so far."""
        self._wait(self._caught_up, timeout, "a change")

    def _caught_up(self):
        return int(self.data.stats[rt.CONTROLS_APPLIED]) >= int(self.data.control_count[0])

    def post(self, target, offset, values, count=None):
        """Write one message (``rt_kernel.TARGET_*``, offset, float values; ``count``
        defaults to their number) for the callback to apply before its next block. Hold
        :attr:`lock` around several posts that must arrive together."""
        values = np.asarray(values, dtype=np.float64)
        if values.size > rt.CONTROL_VALUES:
            raise ValueError(f"a control message carries up to {rt.CONTROL_VALUES} values")
        written = int(self.data.control_count[0])
        self._wait(lambda: written - int(self.data.stats[rt.CONTROLS_APPLIED]) < rt.CONTROL_SLOTS,
                   1.0, "a change")
        row = self.data.controls[written % rt.CONTROL_SLOTS]
        row[0], row[1], row[2] = target, offset, values.size if count is None else count
        row[rt.CONTROL_HEADER:rt.CONTROL_HEADER + values.size] = values
        self.data.control_count[0] = written + 1  # last: the callback sees whole messages

    @staticmethod
    def _wait(condition, timeout, what):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AmpnetError(f"the audio stream did not take {what} within {timeout:g} s "
                                  "(is it still running?)")
            time.sleep(_POLL_S)


class MeterReader:
    """Levels and callback load since this reader's last :meth:`read`, from the callback's
    per-block rows. ``rate``: the device's (Hz); ``cycles_per_second``: the cycle
    counter's (:func:`~ampnet.live.rt_kernel.cycles_per_second`)."""

    def __init__(self, data: rt.CallbackData, rate, cycles_per_second):
        self.stats, self.meters = data.stats, data.meters
        self.rate, self.cps = float(rate), float(cycles_per_second)
        self.seen = int(self.stats[rt.CALLBACKS]) - 1

    def read(self):
        """Over the blocks finished since the last read (at most the meter ring's
        length): ``peak_in``, ``rms_in``, ``peak_out``, ``rms_out`` in dBFS (-120 for
        silence), ``load`` and ``load_max`` (the median and the longest callback, % of
        its block's duration), ``blocks``; and ``xruns`` since the stream started."""
        stats = self.stats
        done = int(stats[rt.CALLBACKS]) - 1  # the newest block may still be running
        numbers = np.arange(max(self.seen + 1, done - rt.METER_BLOCKS + 2), done + 1)
        self.seen = done
        rows = self.meters[numbers % rt.METER_BLOCKS]
        cycles = stats[rt.TIMES + numbers % (stats.size - rt.TIMES)]
        frames = rows[:, rt.METER_FRAMES]
        load = 100 * cycles / self.cps / np.maximum(frames, 1) * self.rate
        total = max(frames.sum(), 1.0)
        return {"peak_in": dbfs(rows[:, rt.METER_PEAK_IN].max(initial=0.0)),
                "peak_out": dbfs(rows[:, rt.METER_PEAK_OUT].max(initial=0.0)),
                "rms_in": dbfs(np.sqrt(rows[:, rt.METER_SQUARES_IN].sum() / total)),
                "rms_out": dbfs(np.sqrt(rows[:, rt.METER_SQUARES_OUT].sum() / total)),
                "load": float(np.median(load)) if load.size else 0.0,
                "load_max": float(load.max(initial=0.0)),
                "blocks": int(numbers.size), "xruns": int(stats[rt.XRUNS])}


def dbfs(value):
    """A linear level as dBFS, -120 for silence."""
    return float(20 * np.log10(value)) if value > 1e-6 else -120.0
