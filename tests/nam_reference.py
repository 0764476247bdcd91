"""The Neural Amp Modeler project's own Python package as a reference for ampnet's
WaveNet: build its preset WaveNets, export ``.nam`` files, run them.

Needs ``neural-amp-modeler==0.12.3`` (the last release that reads the v0.5 WaveNet
config most shared captures use), which brings PyTorch Lightning; CI gives it a
virtual environment of its own. Tests import this module through
``pytest.importorskip``.
"""

import json

import numpy as np
import torch
from nam.models import init_from_nam
from nam.models.wavenet import WaveNet
from nam.train.core import Architecture, get_wavenet_config

PRESETS = [a.value for a in Architecture]  # standard, lite, feather, nano


def preset_document(preset, seed, directory):
    """The ``.nam`` document of a ``preset``-size WaveNet with PyTorch's random initial
    weights (``seed``), as the package itself exports it (``export``, loudness included)."""
    torch.manual_seed(seed)
    config = get_wavenet_config(Architecture(preset))
    model = WaveNet(layers_configs=config["layers_configs"], head_scale=config["head_scale"],
                    sample_rate=48000.0)
    model.export(directory, basename=preset)
    return json.loads((directory / f"{preset}.nam").read_text())


def nam_output(document, audio, double=False):
    """The package's output for ``audio`` (float32 ``(frames,)``): one pass, zero padding
    over the receptive field as the package does; float64 throughout when ``double``."""
    model = init_from_nam(document)
    model.eval()
    x = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    with torch.no_grad():
        if double:
            return model.double()(x.double()).numpy()
        return model(x).numpy()
