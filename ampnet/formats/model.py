"""The in-memory model: a stacked LSTM with a linear head, as ampnet runs it.

    y[n] = output_gain * (head(h_top[n]) + skip * x[n])
    h_top[n] = LSTM(input_scale * x[n], knobs...)

Weights are float32 NumPy arrays in PyTorch's layout and gate order (i, f, g, o):
``weight_ih`` ``(4H, n_in)``, ``weight_hh`` ``(4H, H)``, ``bias_ih`` and
``bias_hh`` ``(4H,)`` per layer; ``head_weight`` ``(1, H)``; ``head_bias`` ``(1,)``.
The head is linear: there is deliberately no output activation.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Knob:
    """A conditioning input of the network (e.g. a gain knob), in the model's units."""

    name: str
    default: float = 0.5
    minimum: float = 0.0
    maximum: float = 1.0


@dataclass
class LSTMLayer:
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray


@dataclass
class LSTMModel:
    """A validated LSTM model; see the module docstring for the signal flow."""

    hidden_size: int
    layers: list
    head_weight: np.ndarray
    head_bias: np.ndarray
    sample_rate: float
    skip: bool = True
    input_scale: float = 1.0
    output_gain: float = 1.0
    knobs: list = field(default_factory=list)
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
