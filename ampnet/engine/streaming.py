"""The streaming processor and the architecture registry.

:data:`ARCHITECTURES` maps a model's cell (``model.CELL``) to the module that lays
out its memory (``pack_params``, ``state_size``, ``initial_state``) and names its
compiled kernel (``KERNEL``, with ``process_mono``, ``process_channels`` and
``_run_channel``). :class:`Engine` runs any of them with one contract: state
carried across blocks, nothing allocated per block. Adding an architecture means
a model class and its readers in :mod:`ampnet.formats` (as :mod:`~ampnet.formats.wavenet`),
a layout module and a kernel here, one line in this table, and for the host chain
(which the live callback runs) a kind in ``ampnet.host.kernels.MODEL_KINDS`` with its
branch in that module's model dispatch.
A kernel module is imported (and compiled, or loaded from the cache) only when a
model of its architecture is built.
"""

import importlib

import numpy as np

from ampnet.engine.lstm_kernel import KNOBS
from ampnet.engine.packing import aligned_zeros

ARCHITECTURES = {"lstm": "ampnet.engine.lstm_engine", "gru": "ampnet.engine.gru_engine",
                 "wavenet": "ampnet.engine.wavenet_engine"}


def layout(model):
    """The layout module of ``model``'s architecture (see the module docstring)."""
    name = ARCHITECTURES.get(getattr(model, "CELL", None))
    if name is None:
        raise ValueError(f"no engine for {type(model).__name__}")
    return importlib.import_module(name)


class Engine:
    """Runs a model of any architecture in :data:`ARCHITECTURES` block by block.

    ``process(block)`` takes float32 audio of shape ``(frames,)`` (mono) or
    ``(channels, frames)``, any number of frames, and returns the output in the
    same shape. Each channel has its own state, carried from one call to the
    next until :meth:`reset`. All buffers are allocated here; ``process`` only
    calls compiled code (compiled, or loaded from Numba's disk cache, and warmed
    in the constructor). ``knobs`` is a writable float32 view of the knob values.
    """

    latency_samples = 0

    def __init__(self, model, channels: int = 1):
        if channels < 1:
            raise ValueError("channels must be at least 1")
        self.model = model
        self.channels = channels
        self.layout = layout(model)
        self.kernel = self.layout.KERNEL
        self._params = self.layout.pack_params(model)
        self.knobs = self._params[KNOBS:KNOBS + len(model.knobs)]
        self._state = aligned_zeros((channels, self.layout.state_size(model)))
        self._mono = self._multi = None
        self._warm_up()

    def set_knobs(self, values=None):
        """Set the knobs from ``values`` (name -> value in the knob's units); knobs not
        named go to their defaults."""
        for i, knob in enumerate(self.model.knobs):
            self.knobs[i] = (values or {}).get(knob.name, knob.default)

    def reset(self):
        """Return every channel to the model's initial state (its architecture's
        ``initial_state``: a stored state, zeros, or a WaveNet's response to silence)."""
        self._state[:] = self.layout.initial_state(self.model)

    def process(self, block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Process ``block`` (float32, C-contiguous, ``(frames,)`` or ``(channels, frames)``)
        into ``out`` (same shape; defaults to ``block`` itself, processed in place)."""
        if out is None:
            out = block
        try:
            ok = block.flags.c_contiguous and out.flags.c_contiguous
            if ok:  # the kernels check that the shapes match
                if block.ndim == 1:
                    self._mono(block, out, self._params, self._state)
                else:
                    self._multi(block, out, self._params, self._state)
        except (TypeError, AttributeError):
            ok = False
        if not ok:
            raise TypeError("Engine.process needs float32 C-contiguous NumPy arrays of equal "
                            f"shape; got {type(block).__name__} {getattr(block, 'dtype', '')} "
                            f"{getattr(block, 'shape', '')} and {type(out).__name__} "
                            f"{getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}")
        return out

    def kernel_arrays(self, channel=0):
        """``(params, state_row)``: the arrays the compiled kernels take, for callers that
        run the architecture's ``KERNEL._run_channel`` from their own compiled code (the live
        callback). The engine keeps ownership; ``reset`` still applies."""
        return self._params, self._state[channel]

    def _warm_up(self):
        """Compile (or load from cache) both kernels, then bind their compiled entry
        points so that ``process`` skips Numba's type dispatch."""
        mono = np.zeros(8, dtype=np.float32)
        multi = np.zeros((self.channels, 8), dtype=np.float32)
        self.kernel.process_mono(mono, mono, self._params, self._state)
        self.kernel.process_channels(multi, multi, self._params, self._state)
        self._mono = _entry_point(self.kernel.process_mono, (mono, mono, self._params, self._state))
        self._multi = _entry_point(self.kernel.process_channels,
                                   (multi, multi, self._params, self._state))
        self.reset()


def _entry_point(dispatcher, args):
    """The compiled function for ``args``' types (a C function callable from Python)."""
    signature = tuple(dispatcher.typeof_pyval(a) for a in args)
    return dispatcher.overloads[signature].entry_point
