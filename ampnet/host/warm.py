"""Fill Numba's disk cache with every compiled kernel ampnet runs, so that the first
``render`` or ``live`` after installing loads them instead of compiling (half a minute
on a small machine). Set-up runs it: ``python -m ampnet.host.warm``.

Compiling is keyed on the kernel's source file and the CPU; after an upgrade or on a
new machine the first run compiles again, and ``render`` reports that time apart from
its real-time factor.
"""

import time

import numpy as np

from ampnet.engine import ARCHITECTURES, Engine
from ampnet.formats.model import CELLS, RecurrentLayer
from ampnet.formats.wavenet import empty_model
from ampnet.host.chain import Chain
from ampnet.host.processors import NeuralModel, NoiseGate

TINY_WAVENET = [{"input_size": 1, "condition_size": 1, "head_size": 1, "channels": 2,
                 "kernel_size": 3, "dilations": [1, 2], "activation": "Tanh", "gated": False,
                 "head_bias": True}]


def tiny_model(cell):
    """A model of architecture ``cell`` (a key of :data:`ARCHITECTURES`) with zero weights."""
    if cell == "wavenet":
        return empty_model(TINY_WAVENET, 1.0, 48000.0)
    model_class = CELLS[cell]
    g = model_class.GATES * 2
    zeros = np.zeros
    return model_class(hidden_size=2, layers=[RecurrentLayer(zeros((g, 1), np.float32),
                                                             zeros((g, 2), np.float32),
                                                             zeros(g, np.float32),
                                                             zeros(g, np.float32))],
                       head_weight=zeros((1, 2), np.float32), head_bias=zeros(1, np.float32),
                       sample_rate=48000.0)


def warm_cache():
    """Compile (or load) the engine of every architecture, the host chain and the live
    callback; returns the seconds it took."""
    start = time.perf_counter()
    for cell in ARCHITECTURES:
        Engine(tiny_model(cell), channels=2)
    chain = Chain([NoiseGate(), NeuralModel(tiny_model("lstm"))], 48000.0,
                  channels=2)
    chain.process(np.zeros((2, 64), np.float32))
    from ampnet.live import rt_kernel  # the C callback compiles when its module loads

    rt_kernel.cycle_counter_py()
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"ampnet: compiled kernels cached ({warm_cache():.1f} s)")
