"""Model files: ampnet's own format and the formats of other players, loaded into
the in-memory models: :class:`~ampnet.formats.model.LSTMModel`,
:class:`~ampnet.formats.model.GRUModel` and
:class:`~ampnet.formats.wavenet.WaveNetModel` (one protocol, see those modules).

:func:`load_model` recognises the format from the file's content: ampnet v1,
Neural Amp Modeler ``.nam`` (LSTM, WaveNet), RTNeural / AIDA-X Keras-style JSON,
RTNeural's PyTorch state-dict JSON, GuitarML "SimpleRNN" JSON.
"""

from pathlib import Path

from ampnet.errors import ModelFileError
from ampnet.formats import nam, rtneural, simplernn
from ampnet.formats.ampnet_json import FORMAT_NAME, model_from_dict, read_json, save_model
from ampnet.formats.model import GRUModel, Knob, LSTMModel
from ampnet.formats.wavenet import WaveNetModel

__all__ = ["GRUModel", "Knob", "LSTMModel", "WaveNetModel", "load_model", "save_model"]


def load_model(path):
    """Load a model file of any supported format. Every reader checks sizes and counts
    against :mod:`ampnet.limits` before it allocates, and ends with
    :func:`~ampnet.formats.model.check_model`; anything wrong is one
    :class:`~ampnet.errors.ModelFileError` naming the file and the field."""
    path = Path(path)
    doc = read_json(path)
    try:
        return _from_document(doc, path)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as err:
        # A structure no reader expected (a list where an object belongs, ...): still one line.
        raise ModelFileError(path, None, f"damaged or not a model file ampnet reads "
                             f"({type(err).__name__}: {str(err)[:100]})") from None


def _from_document(doc, path):
    if isinstance(doc, dict) and doc.get("format") == FORMAT_NAME:
        return model_from_dict(doc, path)
    if nam.looks_like_nam(doc):
        return nam.model_from_nam(doc, path)
    if simplernn.looks_like_simplernn(doc):
        return simplernn.model_from_simplernn(doc, path)
    if rtneural.looks_like_keras(doc):
        return rtneural.model_from_keras(doc, path)
    if rtneural.looks_like_state_dict(doc):
        return rtneural.model_from_state_dict(doc, path)
    if isinstance(doc, dict) and "format" in doc:
        return model_from_dict(doc, path)  # names the unknown format or version
    raise ModelFileError(path, None, "not a model format ampnet knows (ampnet, NAM .nam LSTM and WaveNet, "
                         "RTNeural/AIDA-X JSON, GuitarML SimpleRNN JSON)")
