"""The in-memory model: a stacked recurrent network (LSTM or GRU) with a linear
head, as ampnet runs it.

    y[n] = output_gain * (head(h_top[n]) + skip * x[n])
    h_top[n] = CELL(input_scale * x[n], knob inputs...)     CELL: LSTM or GRU

A knob's input to the network is its value as given (``knob_inputs = "value"``)
or, for models trained by ampnet and AIDA-X files, the value normalised over the
knob's range, ``(value - min) / (max - min)`` (``knob_inputs = "normalized"``), so
that users set knobs in their own units (dB, Hz, 0-10) while the network sees 0..1.

Weights are float32 NumPy arrays in PyTorch's layout and gate order (LSTM: i, f,
g, o; G = 4 gates. GRU: r, z, n; G = 3). Shown for the LSTM:
``weight_ih`` ``(4H, n_in)``, ``weight_hh`` ``(4H, H)``, ``bias_ih`` and
``bias_hh`` ``(4H,)`` per layer; ``head_weight`` ``(1, H)``; ``head_bias`` ``(1,)``.
The head is linear: there is deliberately no output activation.
"""

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ampnet import limits
from ampnet.errors import ModelFileError


@dataclass
class Knob:
    """A conditioning input of the network (e.g. a gain knob), in the model's units."""

    name: str
    default: float = 0.5
    minimum: float = 0.0
    maximum: float = 1.0


@dataclass
class RecurrentLayer:
    """One layer's weights in PyTorch's layout: ``weight_ih`` ``(G*H, n_in)``,
    ``weight_hh`` ``(G*H, H)``, ``bias_ih``/``bias_hh`` ``(G*H,)``, with G gates."""

    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray


@dataclass
class RecurrentModel:
    """A validated recurrent model (a subclass says which cell); see the module
    docstring for the signal flow."""

    CELL: ClassVar[str] = ""
    GATES: ClassVar[int] = 0

    hidden_size: int
    layers: list
    head_weight: np.ndarray
    head_bias: np.ndarray
    sample_rate: float
    skip: bool = True
    input_scale: float = 1.0
    output_gain: float = 1.0
    knobs: list = field(default_factory=list)
    knob_inputs: str = "value"  # or "normalized": see the module docstring
    initial_h: np.ndarray | None = None  # (num_layers, hidden_size)
    initial_c: np.ndarray | None = None  # (num_layers, hidden_size)
    metadata: dict = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def input_size(self) -> int:
        """1 (the audio sample) + the number of knobs."""
        return 1 + len(self.knobs)

    @property
    def parameter_count(self) -> int:
        arrays = [self.head_weight, self.head_bias]
        for layer in self.layers:
            arrays += [layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh]
        return int(sum(a.size for a in arrays))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "unnamed model"))

    @property
    def architecture(self) -> str:
        """One line: cell, layers, hidden size, e.g. ``LSTM, 1 layer(s) x 32 hidden``."""
        return f"{self.CELL.upper()}, {self.num_layers} layer(s) x {self.hidden_size} hidden"

    def knob_affine(self):
        """``(scale, offset)``, float64 arrays ``(K,)``: the network's knob input is
        ``scale * value + offset`` for each knob value in the user's units."""
        if self.knob_inputs == "value":
            return np.ones(len(self.knobs)), np.zeros(len(self.knobs))
        span = np.array([k.maximum - k.minimum for k in self.knobs], dtype=np.float64)
        low = np.array([k.minimum for k in self.knobs], dtype=np.float64)
        return 1.0 / span, -low / span


@dataclass
class LSTMModel(RecurrentModel):
    """A stacked LSTM, PyTorch semantics and gate order (i, f, g, o)."""

    CELL: ClassVar[str] = "lstm"
    GATES: ClassVar[int] = 4


@dataclass
class GRUModel(RecurrentModel):
    """A stacked GRU, PyTorch semantics and gate order (r, z, n): the reset gate
    multiplies the recurrent product, biases included,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``.
    No cell state: ``initial_c`` is always None."""

    CELL: ClassVar[str] = "gru"
    GATES: ClassVar[int] = 3


CELLS = {"lstm": LSTMModel, "gru": GRUModel}
KNOB_INPUTS = ("value", "normalized")


def recurrent_parameter_count(hidden, layers, input_size=1, gates=4):
    """Weights of a recurrent network of ``layers`` x ``hidden`` with ``gates`` gates (LSTM
    4, GRU 3), ``input_size`` inputs and a linear head (two bias vectors per layer, as
    PyTorch keeps them)."""
    return sum(gates * hidden * ((input_size if i == 0 else hidden) + hidden + 2)
               for i in range(layers)) + hidden + 1


def unnamed_knobs(input_size, path, field):
    """``param1``, ``param2``... (range 0-1, default 0.5) for a network with ``input_size``
    inputs (the audio first), after checking the count against :mod:`ampnet.limits`."""
    if not 1 <= input_size <= 1 + limits.MAX_KNOBS:
        raise ModelFileError(path, field, f"{input_size} inputs; ampnet plays the audio and up "
                             f"to {limits.MAX_KNOBS} knobs")
    return [Knob(f"param{i}") for i in range(1, input_size)]


def check_size(hidden, layers, input_size, path, field, cell="lstm"):
    """Raise :class:`~ampnet.errors.ModelFileError` when a network of this shape and
    ``cell`` is beyond :mod:`ampnet.limits`; call it before reading or allocating any
    weights."""
    count = recurrent_parameter_count(hidden, min(layers, limits.MAX_LAYERS), input_size,
                                      CELLS[cell].GATES)
    if not (1 <= layers <= limits.MAX_LAYERS and 1 <= hidden <= limits.MAX_HIDDEN
            and count <= limits.MAX_PARAMETERS):
        raise ModelFileError(path, field, f"an {cell.upper()} of {layers} x {hidden} is beyond what ampnet "
                             f"plays (at most {limits.MAX_LAYERS} layers, hidden size "
                             f"{limits.MAX_HIDDEN}, {limits.MAX_PARAMETERS:,} weights)")


def check_model(model: RecurrentModel, path) -> RecurrentModel:
    """Check ``model`` against :mod:`ampnet.limits` and for consistency: sizes, shapes,
    finite weights, plausible rate and gains, knob ranges. Every reader ends with this,
    so a model that loads is one the engine can run. Raises
    :class:`~ampnet.errors.ModelFileError` naming ``path`` and the field; returns ``model``."""
    hidden, n_layers = model.hidden_size, len(model.layers)
    if type(model) not in CELLS.values():
        raise ModelFileError(path, "architecture", f"{type(model).__name__} is not a model "
                             "ampnet runs")
    check_size(hidden, n_layers, model.input_size, path, "architecture", model.CELL)
    if not isinstance(model.knob_inputs, str) or model.knob_inputs not in KNOB_INPUTS:
        raise ModelFileError(path, "knob_inputs", f"{model.knob_inputs!r}: expected "
                             f"{' or '.join(map(repr, KNOB_INPUTS))}")
    if len(model.knobs) > limits.MAX_KNOBS:
        raise ModelFileError(path, "knobs", f"{len(model.knobs)} knob inputs; ampnet plays up to "
                             f"{limits.MAX_KNOBS}")
    check_common(model, path)
    g4 = model.GATES * hidden
    expected = {"head_weight": (1, hidden), "head_bias": (1,)}
    arrays = {"head_weight": model.head_weight, "head_bias": model.head_bias}
    for i, layer in enumerate(model.layers):
        n_in = model.input_size if i == 0 else hidden
        for name, shape in (("weight_ih", (g4, n_in)), ("weight_hh", (g4, hidden)),
                            ("bias_ih", (g4,)), ("bias_hh", (g4,))):
            expected[f"layer {i} {name}"] = shape
            arrays[f"layer {i} {name}"] = getattr(layer, name)
    if model.CELL == "gru" and model.initial_c is not None:
        raise ModelFileError(path, "initial_c", "a GRU has no cell state")
    if model.initial_h is not None or model.initial_c is not None:
        for name in ("initial_h",) if model.CELL == "gru" else ("initial_h", "initial_c"):
            expected[name] = (n_layers, hidden)
            arrays[name] = getattr(model, name)
    check_arrays({name: (arrays[name], shape) for name, shape in expected.items()}, path)
    names = set()
    for i, knob in enumerate(model.knobs):
        where = f"knobs[{i}]"
        if not isinstance(knob.name, str) or not 0 < len(knob.name) <= limits.MAX_KNOB_NAME:
            raise ModelFileError(path, where + ".name", f"needs a name of 1 to "
                                 f"{limits.MAX_KNOB_NAME} characters")
        if knob.name in names:
            raise ModelFileError(path, where + ".name", f"{knob.name!r} appears twice")
        names.add(knob.name)
        values = (knob.minimum, knob.default, knob.maximum)
        if not all(limits.finite_in(v, -limits.MAX_GAIN, limits.MAX_GAIN) for v in values):
            raise ModelFileError(path, where, "min, default and max must be finite numbers")
        if not knob.minimum < knob.maximum or not knob.minimum <= knob.default <= knob.maximum:
            raise ModelFileError(path, where, f"{knob.name}: needs min < max and the default "
                                 f"between them (min {knob.minimum:g}, default {knob.default:g}, "
                                 f"max {knob.maximum:g})")
    return model


def check_arrays(arrays, path):
    """Raise :class:`~ampnet.errors.ModelFileError` for the first of ``arrays`` (field name
    -> ``(array, expected shape)``) that is not an array of that shape or holds NaN or
    infinities."""
    for name, (array, shape) in arrays.items():
        if not isinstance(array, np.ndarray) or array.shape != shape:
            got = list(array.shape) if isinstance(array, np.ndarray) else type(array).__name__
            raise ModelFileError(path, name, f"shape {got} does not fit the architecture "
                                 f"(expected {list(shape)})")
        if not np.all(np.isfinite(array)):
            raise ModelFileError(path, name, "contains NaN or infinite values; the model is "
                                 "broken (retrain it, or export it again)")


def check_common(model, path):
    """The checks every architecture shares: a plausible sample rate and usable input and
    output gains. Raises :class:`~ampnet.errors.ModelFileError` naming ``path``."""
    if not limits.finite_in(model.sample_rate, limits.MIN_SAMPLE_RATE, limits.MAX_SAMPLE_RATE):
        raise ModelFileError(path, "sample_rate", f"{model.sample_rate!r} Hz is not a sample rate "
                             f"ampnet plays ({limits.MIN_SAMPLE_RATE:g} to "
                             f"{limits.MAX_SAMPLE_RATE:g} Hz)")
    if not limits.finite_in(abs(model.input_scale), limits.MIN_INPUT_SCALE, limits.MAX_GAIN):
        raise ModelFileError(path, "input_scale", f"{model.input_scale!r} is not a usable input "
                             "gain (a finite number, at most +-120 dB)")
    if not limits.finite_in(abs(model.output_gain), 0.0, limits.MAX_GAIN):
        raise ModelFileError(path, "output_gain", f"{model.output_gain!r} is not a usable output "
                             "gain (a finite number, at most +120 dB)")


def float32_array(value, path, field):
    """Numbers from a model file (nested lists) as a float32 array of any shape; raises
    :class:`~ampnet.errors.ModelFileError` naming ``path`` and ``field`` for anything
    else: text, ragged lists, NaN, infinities, values beyond float32's range."""
    if value is None:
        raise ModelFileError(path, field, "missing")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ModelFileError(path, field, "not (nested lists of) numbers of one shape") from None
    if not np.all(np.isfinite(array)):
        raise ModelFileError(path, field, "contains NaN or infinite values; the model is broken "
                             "(retrain it, or export it again)")
    if array.size and np.max(np.abs(array)) > np.finfo(np.float32).max:
        raise ModelFileError(path, field, "values overflow float32")
    return array.astype(np.float32)
