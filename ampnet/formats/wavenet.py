"""The in-memory WaveNet: NAM's convolutional architecture (the "standard", "lite",
"feather" and "nano" captures people share), as ampnet runs it.

Signal flow (Neural Amp Modeler's ``nam.models.wavenet``, v0.5 files). ``x`` is the
input sample times ``input_scale``; every layer array ``a`` has ``C_a`` channels::

    u = rechannel_a @ (x for a = 0, else the previous array's residual stream)
    for each layer (dilation d, kernel size K):
        z = conv_bias + sum_k conv_weight[:, :, k] @ u[n - d (K - 1 - k)] + mixer_weight * x[n]
        a = act(z)                      (gated: act(z[:C]) * sigmoid(z[C:]))
        head_sum += a                   (array 0 starts from 0, array a from array a-1's head)
        u = u + out_weight @ a + out_bias
    head_a = head_weight @ head_sum (+ head_bias)
    y[n] = output_gain * head_scale * head_last[n]

so each array's ``head_size`` is the next array's ``channels``, and the last is 1.
Before the first sample the network has heard silence forever (NAM pads the input
with zeros over the receptive field). Weights are float32 NumPy arrays in PyTorch's
``Conv1d`` layout: ``conv_weight`` ``(mid, C, K)`` with ``mid = 2C`` when gated, else
``C``; ``conv_bias`` ``(mid,)``; ``mixer_weight`` ``(mid, 1)``; ``out_weight``
``(C, C)``; ``out_bias`` ``(C,)``; per array ``rechannel_weight`` ``(C, input_size)``,
``head_weight`` ``(head_size, C)`` and ``head_bias`` ``(head_size,)`` or None.
"""

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ampnet import limits
from ampnet.errors import ModelFileError
from ampnet.formats.model import check_arrays, check_common

# Activations the engine computes (PyTorch's names, as NAM files give them).
ACTIVATIONS = ("Tanh", "Sigmoid", "ReLU", "LeakyReLU", "Hardtanh", "SiLU")
# A layer array's configuration: NAM's v0.5 keys, which ampnet's own format uses too.
CONFIG_KEYS = ("input_size", "condition_size", "head_size", "channels", "kernel_size",
               "dilations", "activation", "gated", "head_bias")
TENSORS = ("conv_weight", "conv_bias", "mixer_weight", "out_weight", "out_bias")  # per layer


@dataclass
class WaveNetLayer:
    """One dilated layer (see the module docstring for shapes)."""

    dilation: int
    conv_weight: np.ndarray
    conv_bias: np.ndarray
    mixer_weight: np.ndarray
    out_weight: np.ndarray
    out_bias: np.ndarray


@dataclass
class LayerArray:
    """A stack of dilated layers with one channel count and its head projection."""

    input_size: int
    channels: int
    head_size: int
    kernel_size: int
    activation: str
    gated: bool
    rechannel_weight: np.ndarray
    layers: list
    head_weight: np.ndarray
    head_bias: np.ndarray | None
    condition_size: int = 1

    @property
    def dilations(self) -> list:
        return [layer.dilation for layer in self.layers]

    @property
    def mid_channels(self) -> int:
        return 2 * self.channels if self.gated else self.channels


@dataclass
class WaveNetModel:
    """A validated WaveNet; the same protocol as the recurrent models (``CELL``,
    ``sample_rate``, ``knobs``, ``input_scale``, ``output_gain``, ``skip``,
    ``metadata``, ``name``, ``architecture``, ``parameter_count``)."""

    CELL: ClassVar[str] = "wavenet"

    arrays: list
    head_scale: float
    sample_rate: float
    input_scale: float = 1.0
    output_gain: float = 1.0
    metadata: dict = field(default_factory=dict)

    skip: ClassVar[bool] = False  # NAM's WaveNet has no skip path
    knobs: ClassVar[tuple] = ()  # the condition input is the audio itself
    knob_inputs: ClassVar[str] = "value"
    input_size: ClassVar[int] = 1

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "unnamed model"))

    @property
    def receptive_field(self) -> int:
        """Samples of input that one output sample depends on."""
        return receptive_field([(a.kernel_size, a.dilations) for a in self.arrays])

    @property
    def parameter_count(self) -> int:
        return sum(array_parameter_count(a.input_size, a.channels, a.head_size, a.kernel_size,
                                         len(a.layers), a.gated, a.head_bias is not None)
                   for a in self.arrays) + 1

    @property
    def architecture(self) -> str:
        """One line, e.g. ``WaveNet, 20 layers in 2 arrays (channels 16, 8), receptive field 4093``."""
        layers = sum(len(a.layers) for a in self.arrays)
        channels = ", ".join(str(a.channels) for a in self.arrays)
        gated = ", gated" if any(a.gated for a in self.arrays) else ""
        return (f"WaveNet, {layers} layers in {len(self.arrays)} arrays (channels {channels}"
                f"{gated}), receptive field {self.receptive_field} samples")

    def knob_affine(self):
        return np.ones(0), np.zeros(0)


def receptive_field(arrays) -> int:
    """``1 + sum (K - 1) * d`` over ``arrays``, a list of ``(kernel_size, dilations)``."""
    return 1 + sum((kernel - 1) * sum(dilations) for kernel, dilations in arrays)


def array_parameter_count(input_size, channels, head_size, kernel_size, layers, gated, head_bias):
    """Weights of one layer array (NAM counts the same, in the same order)."""
    mid = 2 * channels if gated else channels
    per_layer = mid * channels * kernel_size + mid + mid + channels * channels + channels
    return (channels * input_size + layers * per_layer + head_size * channels
            + (head_size if head_bias else 0))


def config_parameter_count(arrays) -> int:
    """Weights of a WaveNet with layer arrays ``arrays`` (config dicts), head scale included."""
    return sum(array_parameter_count(a["input_size"], a["channels"], a["head_size"],
                                     a["kernel_size"], len(a["dilations"]), a["gated"],
                                     a["head_bias"]) for a in arrays) + 1


def _whole(value, low, high):
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def check_config(arrays, path, field, unknown_key):
    """Check a list of layer-array configs (dicts with :data:`CONFIG_KEYS`) from a file,
    key by key, then :func:`check_shape`; ``unknown_key`` is the message for a key ampnet
    does not know. Returns ``arrays``."""
    if not isinstance(arrays, list) or not 1 <= len(arrays) <= limits.MAX_WAVENET_ARRAYS:
        raise ModelFileError(path, field, f"expected a list of 1 to "
                             f"{limits.MAX_WAVENET_ARRAYS} layer arrays")
    bounds = {"input_size": limits.MAX_WAVENET_CHANNELS, "condition_size": 1,
              "head_size": limits.MAX_WAVENET_CHANNELS, "channels": limits.MAX_WAVENET_CHANNELS,
              "kernel_size": limits.MAX_KERNEL_SIZE}
    for i, a in enumerate(arrays):
        where = f"{field}[{i}]"
        if not isinstance(a, dict):
            raise ModelFileError(path, where, "expected an object")
        for key in a:
            if key not in CONFIG_KEYS:
                raise ModelFileError(path, f"{where}.{key}", unknown_key)
        for key in CONFIG_KEYS:
            if key not in a:
                raise ModelFileError(path, f"{where}.{key}", "missing")
        for key, high in bounds.items():
            if not _whole(a[key], 1, high):
                hint = ("; ampnet plays WaveNets conditioned on the audio only"
                        if key == "condition_size" else "")
                raise ModelFileError(path, f"{where}.{key}", f"{a[key]!r}: expected a whole "
                                     f"number from 1 to {high}{hint}")
        dilations = a["dilations"]
        if not isinstance(dilations, list) or not 1 <= len(dilations) <= limits.MAX_WAVENET_LAYERS \
                or not all(_whole(d, 1, limits.MAX_RECEPTIVE_FIELD) for d in dilations):
            raise ModelFileError(path, f"{where}.dilations", f"expected a list of 1 to "
                                 f"{limits.MAX_WAVENET_LAYERS} whole numbers from 1 to "
                                 f"{limits.MAX_RECEPTIVE_FIELD}")
        if a["activation"] not in ACTIVATIONS:
            raise ModelFileError(path, f"{where}.activation", f"{a['activation']!r}: ampnet "
                                 f"computes {', '.join(ACTIVATIONS)}")
        for key in ("gated", "head_bias"):
            if not isinstance(a[key], bool):
                raise ModelFileError(path, f"{where}.{key}", f"{a[key]!r}: expected true or false")
    check_shape(arrays, path, field)
    return arrays


def empty_model(arrays, head_scale, sample_rate) -> "WaveNetModel":
    """A :class:`WaveNetModel` of the checked configs ``arrays`` with zero weights, for a
    reader to fill (see :func:`wavenet_tensors`)."""
    built = []
    for c in arrays:
        ch, k = c["channels"], c["kernel_size"]
        mid = 2 * ch if c["gated"] else ch
        layers = [WaveNetLayer(d, np.zeros((mid, ch, k), np.float32), np.zeros(mid, np.float32),
                               np.zeros((mid, 1), np.float32), np.zeros((ch, ch), np.float32),
                               np.zeros(ch, np.float32)) for d in c["dilations"]]
        built.append(LayerArray(
            input_size=c["input_size"], channels=ch, head_size=c["head_size"], kernel_size=k,
            activation=c["activation"], gated=c["gated"],
            rechannel_weight=np.zeros((ch, c["input_size"]), np.float32), layers=layers,
            head_weight=np.zeros((c["head_size"], ch), np.float32),
            head_bias=np.zeros(c["head_size"], np.float32) if c["head_bias"] else None))
    return WaveNetModel(arrays=built, head_scale=float(head_scale), sample_rate=sample_rate)


def layer_array_config(array: LayerArray) -> dict:
    """The config dict (:data:`CONFIG_KEYS`) of ``array``."""
    return {"input_size": array.input_size, "condition_size": array.condition_size,
            "head_size": array.head_size, "channels": array.channels,
            "kernel_size": array.kernel_size, "dilations": array.dilations,
            "activation": array.activation, "gated": array.gated,
            "head_bias": array.head_bias is not None}


def wavenet_tensors(model: "WaveNetModel"):
    """``(key, (array, layer), tensor)`` for every weight tensor of ``model`` in NAM's flat
    order: per array the rechannel, per layer :data:`TENSORS`, then the head weight and
    bias. ``key`` names the tensor in ampnet's format (``arrays.0.layers.3.conv_weight``);
    the NAM reader and writer and ampnet's format all walk this one list."""
    for i, a in enumerate(model.arrays):
        yield f"arrays.{i}.rechannel_weight", (i, None), a.rechannel_weight
        for j, layer in enumerate(a.layers):
            for name in TENSORS:
                yield f"arrays.{i}.layers.{j}.{name}", (i, j), getattr(layer, name)
        yield f"arrays.{i}.head_weight", (i, None), a.head_weight
        if a.head_bias is not None:
            yield f"arrays.{i}.head_bias", (i, None), a.head_bias


def check_shape(arrays, path, field):
    """Raise :class:`~ampnet.errors.ModelFileError` when a WaveNet of this shape is beyond
    :mod:`ampnet.limits` or does not chain (each array's input is the previous array's
    channels, its head feeds the next array's channels, the last head is 1); ``arrays``
    is a list of dicts with the v0.5 config keys. Call it before reading any weights."""
    if not 1 <= len(arrays) <= limits.MAX_WAVENET_ARRAYS:
        raise ModelFileError(path, field, f"{len(arrays)} layer arrays; ampnet plays 1 to "
                             f"{limits.MAX_WAVENET_ARRAYS}")
    layers = sum(len(a["dilations"]) for a in arrays)
    if layers > limits.MAX_WAVENET_LAYERS:
        raise ModelFileError(path, field, f"{layers} layers; ampnet plays up to "
                             f"{limits.MAX_WAVENET_LAYERS}")
    field_rf = receptive_field([(a["kernel_size"], a["dilations"]) for a in arrays])
    if field_rf > limits.MAX_RECEPTIVE_FIELD:
        raise ModelFileError(path, field, f"a receptive field of {field_rf} samples; ampnet plays "
                             f"up to {limits.MAX_RECEPTIVE_FIELD}")
    for i, a in enumerate(arrays):
        where = f"{field}[{i}]"
        expected_input = 1 if i == 0 else arrays[i - 1]["channels"]
        if a["input_size"] != expected_input:
            raise ModelFileError(path, where + ".input_size", f"{a['input_size']}; "
                                 + ("the first array takes the audio (1)" if i == 0 else
                                    f"it must be the previous array's channels ({expected_input})"))
        expected_head = 1 if i + 1 == len(arrays) else arrays[i + 1]["channels"]
        if a["head_size"] != expected_head:
            raise ModelFileError(path, where + ".head_size", f"{a['head_size']}; " + (
                "the last array's head is the output (1)" if i + 1 == len(arrays) else
                f"it feeds the next array's channels ({expected_head})"))
    count = config_parameter_count(arrays)
    if count > limits.MAX_PARAMETERS:
        raise ModelFileError(path, field, f"{count:,} weights; ampnet plays up to "
                             f"{limits.MAX_PARAMETERS:,}")


def check_wavenet(model: WaveNetModel, path) -> WaveNetModel:
    """Check ``model`` against :mod:`ampnet.limits` and for consistency (shapes, finite
    weights, rate, gains, activations); every WaveNet reader ends with this. Raises
    :class:`~ampnet.errors.ModelFileError` naming ``path`` and the field."""
    check_common(model, path)
    configs = []
    for i, a in enumerate(model.arrays):
        if a.activation not in ACTIVATIONS:
            raise ModelFileError(path, f"layer array {i} activation", f"{a.activation!r}: ampnet "
                                 f"computes {', '.join(ACTIVATIONS)}")
        if a.condition_size != 1:
            raise ModelFileError(path, f"layer array {i} condition_size", f"{a.condition_size}: "
                                 "ampnet plays WaveNets conditioned on the audio only (1)")
        for name, value, low, high in (("channels", a.channels, 1, limits.MAX_WAVENET_CHANNELS),
                                       ("kernel_size", a.kernel_size, 1, limits.MAX_KERNEL_SIZE)):
            if not low <= value <= high:
                raise ModelFileError(path, f"layer array {i} {name}", f"{value}: ampnet plays "
                                     f"{low} to {high}")
        if not a.layers or any(not 1 <= layer.dilation <= limits.MAX_RECEPTIVE_FIELD
                               for layer in a.layers):
            raise ModelFileError(path, f"layer array {i} dilations", "needs one or more "
                                 f"dilations from 1 to {limits.MAX_RECEPTIVE_FIELD}")
        configs.append(layer_array_config(a))
    check_shape(configs, path, "layer arrays")
    if not (isinstance(model.head_scale, float) and np.isfinite(model.head_scale)
            and abs(model.head_scale) <= limits.MAX_GAIN):
        raise ModelFileError(path, "head_scale", f"{model.head_scale!r} is not a usable gain")
    for i, a in enumerate(model.arrays):
        c, mid, k = a.channels, a.mid_channels, a.kernel_size
        where = f"layer array {i}"
        arrays = {f"{where} rechannel_weight": (a.rechannel_weight, (c, a.input_size)),
                  f"{where} head_weight": (a.head_weight, (a.head_size, c))}
        if a.head_bias is not None:
            arrays[f"{where} head_bias"] = (a.head_bias, (a.head_size,))
        for j, layer in enumerate(a.layers):
            for name, shape in (("conv_weight", (mid, c, k)), ("conv_bias", (mid,)),
                                ("mixer_weight", (mid, 1)), ("out_weight", (c, c)),
                                ("out_bias", (c,))):
                arrays[f"{where} layer {j} {name}"] = (getattr(layer, name), shape)
        check_arrays(arrays, path)
    return model
