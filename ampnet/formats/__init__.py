"""Model files: ampnet's own format (:mod:`ampnet.formats.ampnet_json`) and the
in-memory :class:`~ampnet.formats.model.LSTMModel` every loader produces."""

from ampnet.formats.ampnet_json import load_model, save_model
from ampnet.formats.model import Knob, LSTMModel

__all__ = ["Knob", "LSTMModel", "load_model", "save_model"]
