"""The trainable network: LSTM + linear head (no output activation) + skip path."""

import torch
from torch import nn

from ampnet.formats.model import RecurrentLayer, LSTMModel

# cuDNN's LSTM refuses a sequence of 65,536 frames or more ("CUDNN_STATUS_NOT_SUPPORTED ...
# non-contiguous input", whatever the layout: pytorch/pytorch#133751); the network feeds
# longer inputs to the LSTM in pieces of at most this many frames, state carried across.
LSTM_MAX_FRAMES = 1 << 15


class AmpLSTM(nn.Module):
    """``y = head(LSTM([input_scale * x, knobs])) + skip * x``.

    Input ``(batch, frames, 1 + K)``: the audio, then the ``K`` knob values already
    normalised to 0..1 over each knob's range (the exported model does that itself,
    ``knob_inputs = "normalized"``). Output ``(batch, frames, 1)``. Any number of
    frames: inputs longer than :data:`LSTM_MAX_FRAMES` run through the LSTM in pieces
    (the same result; what cuDNN accepts).
    The head is a plain ``nn.Linear``: the target is audio that may exceed [-1, 1],
    so there is no squashing activation, and none can be configured.
    """

    def __init__(self, hidden_size=32, num_layers=1, skip=True, input_scale=1.0, knobs=0):
        super().__init__()
        self.lstm = nn.LSTM(1 + knobs, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        self.skip = skip
        self.input_scale = float(input_scale)

    def forward(self, x, state=None):
        audio = x[..., :1]
        inputs = audio * self.input_scale
        if x.shape[-1] > 1:
            inputs = torch.cat([inputs, x[..., 1:]], dim=-1)
        pieces = []
        for start in range(0, inputs.shape[1], LSTM_MAX_FRAMES):
            piece, state = self.lstm(inputs[:, start:start + LSTM_MAX_FRAMES], state)
            pieces.append(piece)
        hidden = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
        y = self.head(hidden)
        if self.skip:
            y = y + audio
        return y, state

    def to_model(self, sample_rate, metadata=None, knobs=()) -> LSTMModel:
        """Export the weights as an :class:`LSTMModel` for the engine and the model file;
        ``knobs`` are the :class:`~ampnet.formats.model.Knob` ranges the inputs were
        normalised over."""
        def array(t):
            return t.detach().cpu().float().numpy().copy()
        layers = [RecurrentLayer(array(getattr(self.lstm, f"weight_ih_l{i}")),
                            array(getattr(self.lstm, f"weight_hh_l{i}")),
                            array(getattr(self.lstm, f"bias_ih_l{i}")),
                            array(getattr(self.lstm, f"bias_hh_l{i}")))
                  for i in range(self.lstm.num_layers)]
        return LSTMModel(hidden_size=self.lstm.hidden_size, layers=layers,
                         head_weight=array(self.head.weight), head_bias=array(self.head.bias),
                         sample_rate=float(sample_rate), skip=self.skip,
                         input_scale=self.input_scale, knobs=list(knobs),
                         knob_inputs="normalized" if knobs else "value",
                         metadata=dict(metadata or {}))
