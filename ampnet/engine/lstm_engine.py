"""The streaming LSTM processor: state carried across blocks, nothing allocated per block."""

import numpy as np

from ampnet.engine import lstm_kernel
from ampnet.formats.model import LSTMModel

_SIGMOID_GATES = np.ones(4, dtype=np.float32) * 0.5
_SIGMOID_GATES[2] = 1.0  # gate order i, f, g, o: only g is a tanh gate


def pack_params(model: LSTMModel) -> np.ndarray:
    """The kernel's ``params`` array: header, then the tiled weights (see :mod:`lstm_kernel`)."""
    hidden = model.hidden_size
    if hidden > lstm_kernel.MAX_HIDDEN or len(model.knobs) > lstm_kernel.MAX_KNOBS:
        raise ValueError("model too large for the engine (see ampnet.limits)")
    width = lstm_kernel.tile_width(hidden)
    padded = lstm_kernel.padded_gates(hidden, width)
    tiles = padded // width
    column_scale = np.repeat(_SIGMOID_GATES, hidden)  # (4H,)
    header = np.zeros(lstm_kernel.HEADER, dtype=np.float32)
    header[:8] = [model.input_scale, 1.0 if model.skip else 0.0, model.output_gain,
                  model.input_size, hidden, model.num_layers, padded, width]
    header[lstm_kernel.KNOBS:lstm_kernel.KNOBS + len(model.knobs)] = [k.default for k in model.knobs]
    parts = [header]
    for index, layer in enumerate(model.layers):
        weight_ih, bias_ih = layer.weight_ih, layer.bias_ih
        if index == 0 and model.knobs:
            # The kernel feeds knob values in the user's units: fold the model's knob
            # input scaling (scale * value + offset) into the knob columns and the bias.
            scale, offset = model.knob_affine()
            weight_ih = weight_ih.astype(np.float64)
            bias_ih = bias_ih + weight_ih[:, 1:] @ offset
            weight_ih[:, 1:] *= scale
        bias = np.zeros(padded, dtype=np.float32)
        bias[:4 * hidden] = (bias_ih + layer.bias_hh) * column_scale
        stacked = np.zeros((padded, weight_ih.shape[1] + hidden), dtype=np.float32)
        stacked[:4 * hidden] = np.concatenate([weight_ih, layer.weight_hh], axis=1) \
            * column_scale[:, None]
        rows = stacked.shape[1]
        # (padded, rows) -> (tiles, rows, width)
        tiled = stacked.reshape(tiles, width, rows).transpose(0, 2, 1)
        parts += [bias, tiled.ravel()]
    parts += [model.head_weight.ravel(), model.head_bias.ravel()]
    flat = np.concatenate(parts).astype(np.float32)
    params = aligned_zeros(flat.shape)
    params[:] = flat
    return params


def state_size(model: LSTMModel) -> int:
    """Length of one channel's state row (see :mod:`lstm_kernel`)."""
    rows = sum((model.input_size if i == 0 else model.hidden_size) + model.hidden_size
               for i in range(model.num_layers))
    return rows + model.num_layers * model.hidden_size


def initial_state(model: LSTMModel) -> np.ndarray:
    """One channel's state row at the start: zeros, or the model's stored initial state."""
    row = np.zeros(state_size(model), dtype=np.float32)
    if model.initial_h is None:
        return row
    hidden, offset = model.hidden_size, 0
    cells = state_size(model) - model.num_layers * hidden
    for i in range(model.num_layers):
        n_in = model.input_size if i == 0 else hidden
        if i > 0:  # layer i's input is layer i-1's hidden state
            row[offset:offset + hidden] = model.initial_h[i - 1]
        row[offset + n_in:offset + n_in + hidden] = model.initial_h[i]
        row[cells + i * hidden:cells + (i + 1) * hidden] = model.initial_c[i]
        offset += n_in + hidden
    return row


def aligned_zeros(shape, alignment=64):
    """A float32 zero array whose data starts on an ``alignment``-byte boundary, so
    that vector loads never straddle cache lines."""
    count = int(np.prod(shape))
    raw = np.zeros(count + alignment // 4, dtype=np.float32)
    start = (-raw.ctypes.data % alignment) // 4
    return raw[start:start + count].reshape(shape)


class LSTMEngine:
    """Runs an :class:`LSTMModel` block by block.

    ``process(block)`` takes float32 audio of shape ``(frames,)`` (mono) or
    ``(channels, frames)``, any number of frames, and returns the output in the
    same shape. Each channel has its own LSTM state, carried from one call to the
    next until :meth:`reset`. All buffers are allocated here; ``process`` only
    calls compiled code (compiled, or loaded from Numba's disk cache, and warmed
    in the constructor). ``knobs`` is a writable float32 view of the knob values.
    """

    latency_samples = 0

    def __init__(self, model: LSTMModel, channels: int = 1):
        if channels < 1:
            raise ValueError("channels must be at least 1")
        self.model = model
        self.channels = channels
        self._params = pack_params(model)
        self.knobs = self._params[lstm_kernel.KNOBS:lstm_kernel.KNOBS + len(model.knobs)]
        self._state = aligned_zeros((channels, state_size(model)))
        self._mono = self._multi = None
        self._warm_up()

    def set_knobs(self, values=None):
        """Set the knobs from ``values`` (name -> value in the knob's units); knobs not
        named go to their defaults."""
        for i, knob in enumerate(self.model.knobs):
            self.knobs[i] = (values or {}).get(knob.name, knob.default)

    def reset(self):
        """Return every channel to the model's initial state (zeros unless the file has one)."""
        self._state[:] = initial_state(self.model)

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
            raise TypeError("LSTMEngine.process needs float32 C-contiguous NumPy arrays of equal "
                            f"shape; got {type(block).__name__} {getattr(block, 'dtype', '')} "
                            f"{getattr(block, 'shape', '')} and {type(out).__name__} "
                            f"{getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}")
        return out

    def kernel_arrays(self, channel=0):
        """``(params, state_row)``: the arrays the compiled kernels take, for callers that
        run :func:`lstm_kernel._run_channel` from their own compiled code (the live
        callback). The engine keeps ownership; ``reset`` still applies."""
        return self._params, self._state[channel]

    def _warm_up(self):
        """Compile (or load from cache) both kernels, then bind their compiled entry
        points so that ``process`` skips Numba's type dispatch."""
        mono = np.zeros(8, dtype=np.float32)
        multi = np.zeros((self.channels, 8), dtype=np.float32)
        lstm_kernel.process_mono(mono, mono, self._params, self._state)
        lstm_kernel.process_channels(multi, multi, self._params, self._state)
        self._mono = _entry_point(lstm_kernel.process_mono, (mono, mono, self._params, self._state))
        self._multi = _entry_point(lstm_kernel.process_channels,
                                   (multi, multi, self._params, self._state))
        self.reset()


def _entry_point(dispatcher, args):
    """The compiled function for ``args``' types (a C function callable from Python)."""
    signature = tuple(dispatcher.typeof_pyval(a) for a in args)
    return dispatcher.overloads[signature].entry_point
