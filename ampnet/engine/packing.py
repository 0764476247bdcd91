"""What every architecture's parameter array shares: the header, the knob inputs
folded into the first layer, and aligned buffers.

The header is ``lstm_kernel.HEADER`` float32 values, laid out as that module's
docstring says, the same for every architecture, so that the host's knob glide and the live
callback write knob values at one place (``KNOBS``) whatever the model.
"""

import numpy as np

from ampnet.engine.lstm_kernel import HEADER, KNOBS, MAX_KNOBS

def header(model, sizes=(0.0, 0.0, 0.0, 0.0)) -> np.ndarray:
    """The header for ``model``: its gains and input size, four architecture-specific
    sizes (``sizes``), the knob defaults from ``KNOBS``."""
    if len(model.knobs) > MAX_KNOBS:
        raise ValueError("model has more knobs than the engine holds (see ampnet.limits)")
    values = np.zeros(HEADER, dtype=np.float32)
    values[:8] = [model.input_scale, 1.0 if model.skip else 0.0, model.output_gain,
                  model.input_size, *sizes]
    values[KNOBS:KNOBS + len(model.knobs)] = [k.default for k in model.knobs]
    return values


def first_layer_input(model):
    """Layer 0's ``(W_ih, b_ih)`` as float64, with the model's knob input scaling
    (``scale * value + offset``) folded into the knob columns and the bias: the
    kernels feed knob values in the user's units."""
    layer = model.layers[0]
    weight_ih = layer.weight_ih.astype(np.float64)
    bias_ih = layer.bias_ih.astype(np.float64)
    if model.knobs:
        scale, offset = model.knob_affine()
        bias_ih = bias_ih + weight_ih[:, 1:] @ offset
        weight_ih[:, 1:] *= scale
    return weight_ih, bias_ih


def aligned_zeros(shape, alignment=64):
    """A float32 zero array whose data starts on an ``alignment``-byte boundary, so
    that vector loads never straddle cache lines."""
    count = int(np.prod(shape))
    raw = np.zeros(count + alignment // 4, dtype=np.float32)
    start = (-raw.ctypes.data % alignment) // 4
    return raw[start:start + count].reshape(shape)
