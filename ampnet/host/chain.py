"""A chain of processors run as one compiled call per block.

:class:`Chain` lays its processors out in the flat arrays described in
:mod:`ampnet.host.kernels` and runs them with :func:`kernels.run_chain`. It has the
engine's contract: ``process(block)`` for any number of frames, state carried
across calls, per-channel state, ``reset()``, no buffer allocated per call, and no
added latency (every processor is zero-latency).
"""

import numpy as np

from ampnet.engine.packing import aligned_zeros
from ampnet.host import kernels
from ampnet.host.processors import SMOOTHING_MS, one_pole

_ALIGN = 16  # float32 values per 64-byte cache line


def _aligned(n):
    return -(-n // _ALIGN) * _ALIGN


class Chain:
    """Processors in series at ``sample_rate`` (Hz) for ``channels`` channels.

    ``process(block, out=None)``: float32 C-contiguous ``(frames,)`` or
    ``(channels, frames)``; blocks longer than ``max_block`` run in pieces of exactly
    ``max_block`` frames (same result). ``set(index, name, value)`` and ``set_bypass(index, on)`` change the
    chain while it runs; both glide over ``SMOOTHING_MS``. NaN or infinite input
    never reaches a processor's state (see :mod:`ampnet.host.kernels`); ``health()``
    says how often that happened.
    """

    latency_samples = 0

    def __init__(self, processors, sample_rate, channels=1, max_block=4096):
        if channels < 1 or max_block < 1:
            raise ValueError("channels and max_block must be at least 1")
        self.processors, self.rate, self.channels = list(processors), float(sample_rate), channels
        smooth = one_pole(SMOOTHING_MS, self.rate)
        rows, f32_parts, f64_parts, init64_parts = [], [], [], []
        f32_len = f64_len = s32_len = 0
        s64_len = kernels.CHAIN_HEADER
        for p in self.processors:
            constants = p.constants(self.rate).astype(np.float32)
            targets = np.concatenate([[1.0, smooth], p.targets(self.rate)])
            s32 = p.initial_s32(self.rate).astype(np.float32)
            s64 = np.concatenate([[1.0], p.initial_s64(self.rate)])
            rows.append([p.kind, f32_len, constants.size, f64_len, targets.size,
                         s32_len, s32.size, s64_len, s64.size, f32_len + _aligned(constants.size),
                         0])
            f32_parts += [(f32_len, constants), (rows[-1][kernels.INIT32], s32)]
            f64_parts.append(targets)
            init64_parts.append(s64)
            f32_len += _aligned(constants.size) + _aligned(s32.size)
            f64_len += targets.size
            s32_len += _aligned(s32.size)
            s64_len += s64.size
        for row, init in zip(rows, init64_parts):  # initial s64 values after all targets
            row[kernels.INIT64] = f64_len
            f64_len += init.size
        self._table = np.array(rows, dtype=np.int64).reshape(-1, kernels.TABLE_COLUMNS)
        self._f32 = aligned_zeros((max(f32_len, 1),))
        for offset, values in f32_parts:
            self._f32[offset:offset + values.size] = values
        self._f64 = np.concatenate(f64_parts + init64_parts) if f64_parts else np.zeros(1)
        self._s32 = aligned_zeros((channels, max(s32_len, _ALIGN)))
        self._s64 = np.zeros((channels, s64_len))
        self._scratch = aligned_zeros((3, max_block))  # run_chain's piece size: max_block
        self._warm_up()

    def reset(self):
        """Every processor back to its initial state (LSTM initial states, silence in
        the filters and the IR, parameters at their targets, bypass as set), and the
        health counts (:meth:`health`) back to zero."""
        for index, p in enumerate(self.processors):
            targets = p.targets(self.rate)
            start = self._table[index, kernels.F64] + kernels.F64_HEADER
            self._f64[start:start + targets.size] = targets
            for channel in range(self.channels):
                self._reset_processor(index, channel, False, *self.kernel_arrays())
        self._s64[:, :kernels.CHAIN_HEADER] = 0.0
        self._s64[:, kernels.FIRST_NONFINITE] = -1.0

    def health(self):
        """What the chain guarded against since the last :meth:`reset`: a dict with
        ``nonfinite`` (input samples that were NaN or infinite, replaced by 0),
        ``first_frame`` and ``first_channel`` (where the first was; None if none) and
        ``resets`` (times a processor's state went non-finite and was reset)."""
        record = self._s64[:, :kernels.CHAIN_HEADER]
        firsts = [(record[c, kernels.FIRST_NONFINITE], c) for c in range(self.channels)
                  if record[c, kernels.NONFINITE] > 0]
        first_frame, first_channel = min(firsts) if firsts else (None, None)
        return {"nonfinite": int(record[:, kernels.NONFINITE].sum()),
                "first_frame": None if first_frame is None else int(first_frame),
                "first_channel": first_channel,
                "resets": int(record[:, kernels.RESETS].sum())}

    def process(self, block, out=None):
        """Process ``block`` into ``out`` (default: in place) and return ``out``."""
        if out is None:
            out = block
        try:
            ok = block.flags.c_contiguous and out.flags.c_contiguous
            if ok:
                if block.ndim == 1:
                    self._mono(block, out, self._scratch, self._table, self._f32, self._f64,
                               self._s32, self._s64)
                else:
                    self._multi(block, out, self._scratch, self._table, self._f32, self._f64,
                                self._s32, self._s64)
        except (TypeError, AttributeError):
            ok = False
        if not ok:
            raise TypeError("Chain.process needs float32 C-contiguous NumPy arrays of equal shape; "
                            f"got {getattr(block, 'dtype', type(block).__name__)} "
                            f"{getattr(block, 'shape', '')} and "
                            f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
        return out

    def set(self, index, name, value):
        """Change parameter ``name`` of processor ``index`` to ``value``; the kernels
        glide to the new value. Raises ``ValueError`` for an unknown or fixed
        parameter or a value out of range."""
        offset, targets = self.parameter_targets(index, name, value)
        self._f64[offset:offset + targets.size] = targets

    def parameter_targets(self, index, name, value):
        """Check and record ``value`` for parameter ``name`` of processor ``index`` and
        return ``(offset, targets)``: the float64 values that carry it and where they go
        in the f64 array (:meth:`kernel_arrays`), written whole by :meth:`set` or by the
        live control path (:class:`ampnet.live.control.ControlPath`)."""
        p = self.processors[index]
        value = p.check(name, value)
        if not p.PARAMS[name].live:
            raise ValueError(f"{name} of {p.type_name} cannot change while the chain runs")
        p.values[name] = value
        return int(self._table[index, kernels.F64]) + kernels.F64_HEADER, p.targets(self.rate)

    def set_bypass(self, index, bypassed):
        """Bypass processor ``index`` (crossfade to its input) or bring it back."""
        self._f64[self.bypass_offset(index)] = 0.0 if bypassed else 1.0

    def bypass_offset(self, index):
        """Where processor ``index``'s bypass target (1 on, 0 bypassed) is in the f64 array."""
        return int(self._table[index, kernels.F64])

    def bypassed(self, index):
        return bool(self._f64[self._table[index, kernels.F64]] == 0.0)

    def kernel_arrays(self):
        """``(table, f32, f64, s32, s64)`` for compiled callers of
        :func:`kernels.run_chain_channel` (the live callback)."""
        return self._table, self._f32, self._f64, self._s32, self._s64

    def describe(self):
        """One line per processor, for the command line."""
        return [f"{i + 1}. {p.label}" + ("" if not p.values else " (" + ", ".join(
            f"{k} {v:g}" for k, v in p.values.items()) + ")") for i, p in enumerate(self.processors)]

    def _warm_up(self):
        """Compile (or load from Numba's cache) both entry points and bind them, so
        ``process`` neither dispatches nor compiles."""
        mono = np.zeros(8, dtype=np.float32)
        multi = np.zeros((self.channels, 8), dtype=np.float32)
        arrays = (self._scratch, self._table, self._f32, self._f64, self._s32, self._s64)
        self._mono = _bind(kernels.run_chain_mono, (mono, mono) + arrays)
        self._multi = _bind(kernels.run_chain, (multi, multi) + arrays)
        self._reset_processor = _bind(kernels.reset_processor, (0, 0, False) + arrays[1:],
                                      run=False)
        self.reset()


def _bind(dispatcher, args, run=True):
    """Compile ``dispatcher`` for ``args`` (or load it from Numba's cache), running it
    once on them when ``run``, and return its compiled entry point."""
    signature = tuple(dispatcher.typeof_pyval(a) for a in args)
    if run:
        dispatcher(*args)
    else:
        dispatcher.compile(signature)
    return dispatcher.overloads[signature].entry_point
