"""The streaming engine: Numba-compiled processors with a block-by-block contract."""

from ampnet.engine.lstm_engine import LSTMEngine

__all__ = ["LSTMEngine"]
