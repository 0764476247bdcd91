"""The streaming LSTM processor: state carried across blocks, nothing allocated per block."""

import numpy as np

from ampnet.engine import lstm_kernel
from ampnet.formats.model import LSTMModel

_SIGMOID_GATES = np.ones(4, dtype=np.float32) * 0.5
_SIGMOID_GATES[2] = 1.0  # gate order i, f, g, o: only g is a tanh gate


def pack_weights(model: LSTMModel) -> np.ndarray:
    """Flatten ``model`` into the kernel's tiled weight layout (see :mod:`lstm_kernel`)."""
    hidden = model.hidden_size
    padded = lstm_kernel.padded_gates(hidden)
    tiles = padded // lstm_kernel.TILE
    column_scale = np.repeat(_SIGMOID_GATES, hidden)  # (4H,)
    parts = []
    for layer in model.layers:
        bias = np.zeros(padded, dtype=np.float32)
        bias[:4 * hidden] = (layer.bias_ih + layer.bias_hh) * column_scale
        stacked = np.zeros((padded, layer.weight_ih.shape[1] + hidden), dtype=np.float32)
        stacked[:4 * hidden] = np.concatenate([layer.weight_ih, layer.weight_hh], axis=1) \
            * column_scale[:, None]
        rows = stacked.shape[1]
        # (padded, rows) -> (tiles, rows, TILE)
        tiled = stacked.reshape(tiles, lstm_kernel.TILE, rows).transpose(0, 2, 1)
        parts += [bias, tiled.ravel()]
    parts.append(model.head_weight.ravel())
    parts.append(model.head_bias.ravel())
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


class LSTMEngine:
    """Runs an :class:`LSTMModel` block by block.

    ``process(block)`` takes float32 audio of shape ``(frames,)`` (mono) or
    ``(channels, frames)``, any number of frames, and returns the output in the
    same shape. Each channel has its own LSTM state, carried from one call to the
    next until :meth:`reset`. All buffers are allocated here; ``process`` only
    calls compiled code (compiled, or loaded from Numba's disk cache, and warmed
    in the constructor).
    """

    latency_samples = 0

    def __init__(self, model: LSTMModel, channels: int = 1):
        if channels < 1:
            raise ValueError("channels must be at least 1")
        self.model = model
        self.channels = channels
        hidden, layers = model.hidden_size, model.num_layers
        rows = sum((model.input_size if i == 0 else hidden) + hidden for i in range(layers))
        self._weights = pack_weights(model)
        self._vin = np.zeros((channels, rows), dtype=np.float32)
        self._cell = np.zeros((channels, layers * hidden), dtype=np.float32)
        self._gates = np.zeros(lstm_kernel.padded_gates(hidden), dtype=np.float32)
        self.knobs = np.array([k.default for k in model.knobs], dtype=np.float32)
        # Where each layer's hidden state starts in a channel's ``vin`` row.
        self._hidden_offsets = []
        offset = 0
        for i in range(layers):
            n_in = model.input_size if i == 0 else hidden
            self._hidden_offsets.append(offset + n_in)
            offset += n_in + hidden
        # Kernel arguments, bound once: a call then creates no objects (no *args tuple).
        self._n_in, self._hidden, self._layers = model.input_size, hidden, layers
        self._in_scale = np.float32(model.input_scale)
        self._skip_gain = np.float32(1.0 if model.skip else 0.0)
        self._out_gain = np.float32(model.output_gain)
        self._mono = self._multi = None
        self._warm_up()

    def reset(self):
        """Return every channel to the model's initial state (zeros unless the file has one)."""
        self._cell[:] = 0.0
        self._vin[:] = 0.0
        model, hidden = self.model, self.model.hidden_size
        if model.initial_h is None:
            return
        for i, h_off in enumerate(self._hidden_offsets):
            self._vin[:, h_off:h_off + hidden] = model.initial_h[i]
            self._cell[:, i * hidden:(i + 1) * hidden] = model.initial_c[i]
            if i > 0:  # layer i's input is layer i-1's hidden state
                self._vin[:, h_off - hidden:h_off] = model.initial_h[i - 1]

    def process(self, block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Process ``block`` (float32, C-contiguous, ``(frames,)`` or ``(channels, frames)``)
        into ``out`` (same shape; defaults to ``block`` itself, processed in place)."""
        if out is None:
            out = block
        try:
            ok = block.flags.c_contiguous and out.flags.c_contiguous
            if ok:
                self._run(block, out)  # the kernels check that the shapes match
        except (TypeError, AttributeError):
            ok = False
        if not ok:
            raise TypeError("LSTMEngine.process needs float32 C-contiguous NumPy arrays of equal "
                            f"shape; got {type(block).__name__} {getattr(block, 'dtype', '')} "
                            f"{getattr(block, 'shape', '')} and {type(out).__name__} "
                            f"{getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}")
        return out

    def _run(self, block, out):
        if block.ndim == 1:
            if self.channels != 1:
                raise ValueError(f"engine has {self.channels} channels; pass (channels, frames)")
            self._mono(block, out, self._weights, self._vin, self._cell, self._gates, self.knobs,
                       self._n_in, self._hidden, self._layers, self._in_scale, self._skip_gain,
                       self._out_gain)
        else:
            if block.shape[0] != self.channels:
                raise ValueError(f"block has {block.shape[0]} channels, engine has {self.channels}")
            self._multi(block, out, self._weights, self._vin, self._cell, self._gates, self.knobs,
                        self._n_in, self._hidden, self._layers, self._in_scale, self._skip_gain,
                        self._out_gain)

    def _warm_up(self):
        """Compile (or load from cache) both kernels, then bind their compiled entry
        points so that ``process`` skips Numba's type dispatch."""
        mono = np.zeros(8, dtype=np.float32)
        multi = np.zeros((self.channels, 8), dtype=np.float32)
        args = (self._weights, self._vin, self._cell, self._gates, self.knobs, self._n_in,
                self._hidden, self._layers, self._in_scale, self._skip_gain, self._out_gain)
        lstm_kernel.process_mono(mono, mono, *args)
        lstm_kernel.process_channels(multi, multi, *args)
        self._mono = _entry_point(lstm_kernel.process_mono, (mono, mono, *args))
        self._multi = _entry_point(lstm_kernel.process_channels, (multi, multi, *args))
        self.reset()


def _entry_point(dispatcher, args):
    """The compiled function for ``args``' types (a C function callable from Python)."""
    signature = tuple(dispatcher.typeof_pyval(a) for a in args)
    return dispatcher.overloads[signature].entry_point
