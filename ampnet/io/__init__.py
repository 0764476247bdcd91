"""Files on disk: atomic writes, audio discovery and streaming, resampling."""
