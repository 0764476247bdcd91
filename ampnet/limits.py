"""The limits every reader, the engine and the trainer share.

A file from elsewhere is checked against these *before* anything is allocated
or looped over, so a hostile or damaged file gets one clear line instead of a
hang or an out-of-memory kill. The engine's compiled buffers are sized from
the same numbers, and ``ampnet train`` checks its arguments against them before
any work starts, so it never trains a model it could not write or play.
"""

import math
import os

# Network shape (LSTM). The engine keeps a layer's gate sums in a stack buffer of
# 4 * MAX_HIDDEN float32 values and the knob values in its 16-slot header.
MAX_HIDDEN = 1024
MAX_LAYERS = 8
MAX_KNOBS = 8
# Weights in one model: 8 MB of float32, about 45 MB as JSON (an LSTM-384 x 2 is 1.8 M;
# real-time guitar models are far smaller, an LSTM-32 has 4.5 k).
MAX_PARAMETERS = 2_000_000
MAX_KNOB_NAME = 64  # characters

# Network shape (WaveNet). The engine keeps a layer's activations and the head sums of
# a block in stack buffers of MAX_WAVENET_CHANNELS rows, and each layer's input history
# (its dilation times kernel size, plus room for a block) in the state: the receptive
# field bounds that memory (NAM's standard WaveNet: 4093 samples, 0.64 MB per channel).
MAX_WAVENET_ARRAYS = 8
MAX_WAVENET_LAYERS = 64
MAX_WAVENET_CHANNELS = 64
MAX_KERNEL_SIZE = 16
MAX_RECEPTIVE_FIELD = 65536  # samples

# Sample rates (Hz) a model may declare and a file may have.
MIN_SAMPLE_RATE = 8000.0
MAX_SAMPLE_RATE = 768000.0

# Linear gains a model may apply (input scale, output gain): +-120 dB. Zero is
# allowed for an output gain (a muted model is odd but harmless), not for the
# input scale (the network would never hear the guitar).
MAX_GAIN = 1e6
MIN_INPUT_SCALE = 1e-6

# Files read whole into memory.
MAX_MODEL_FILE_BYTES = 64 * 1024 * 1024  # MAX_PARAMETERS as JSON, with room to spare
MAX_PRESET_FILE_BYTES = 1024 * 1024
MAX_PRESET_ENTRIES = 64  # processors in one chain

# Processing blocks (frames): render's --blocksize and live's callbacks.
MAX_BLOCK_FRAMES = 16384

# Impulse responses: length (seconds at the file's own rate, from its header); channels
# in any audio file ampnet reads.
MAX_IR_SECONDS = 10.0
MAX_AUDIO_CHANNELS = 64  # render keeps one copy of the chain's state per channel

# Training arguments.
MAX_BATCH = 1024  # parallel training streams
MAX_EPOCHS = 100000
MAX_MINUTES = 7 * 24 * 60.0
MAX_LATENCY_SECONDS = 2.0  # --latency, at the highest sample rate


def check_file_size(path, limit, what):
    """Raise :class:`~ampnet.errors.AmpnetError` when ``path`` is larger than ``limit``
    bytes, before anything reads it. ``what`` names the kind of file in the message."""
    from ampnet.errors import AmpnetError

    size = os.path.getsize(path)
    if size > limit:
        raise AmpnetError(f"{path}: {size / 2 ** 20:.1f} MB is too large for {what} (ampnet reads "
                          f"up to {limit / 2 ** 20:.0f} MB); check that this is the right file")


def finite_in(value, low, high):
    """True when ``value`` is a real number (not bool) with ``low <= value <= high``."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high)
