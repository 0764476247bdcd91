"""The streaming engine: Numba-compiled processors with a block-by-block contract."""

from ampnet.engine.streaming import ARCHITECTURES, Engine, layout

__all__ = ["ARCHITECTURES", "Engine", "layout"]
