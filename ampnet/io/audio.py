"""Finding and opening audio files, with errors that say what to do."""

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from ampnet import limits
from ampnet.errors import AmpnetError

# Extensions libsndfile reads; a folder is searched for these only.
AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga",
                    ".opus", ".mp3", ".caf", ".w64", ".rf64"}


def find_audio_inputs(paths):
    """Expand files and folders (recursively) into ``(file, relative_name)`` pairs.

    ``relative_name`` is the path an output should take under an output folder:
    the file name for a file given directly, the path below the folder for a file
    found in a folder. Returns ``(found, problems)``: ``problems`` lists
    ``(path, message)`` for a missing path or a folder without audio, so that the
    caller can report them and go on with the rest.
    """
    found, problems = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                           and not p.name.startswith("."))
            if not files:
                problems.append((path, f"{path}: no audio files found in this folder (looked for "
                                       f"{', '.join(sorted(AUDIO_EXTENSIONS))})"))
            found.extend((p, p.relative_to(path)) for p in files)
        elif path.exists():
            found.append((path, Path(path.name)))
        else:
            problems.append((path, f"{path}: no such file or folder"))
    return found, problems


# libsndfile's log for a WAV/AIFF/CAF whose audio chunk is shorter than its header says:
# "data : 96000 (should be 47978)".
_SHORT_CHUNK = re.compile(r"^\s*(data|SSND|ssnd)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def open_audio(path) -> sf.SoundFile:
    """Open ``path`` for reading; a missing, unreadable, empty, non-audio or truncated
    file (shorter than its header declares), or one with an implausible rate or channel
    count, raises :class:`AmpnetError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise AmpnetError(f"{path}: no such file")
    if path.is_dir():
        raise AmpnetError(f"{path}: is a folder; pass the folder itself to render all audio in it")
    try:
        audio = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        detail = str(err).split(":")[-1].strip() or "unknown problem"
        raise AmpnetError(f"{path}: not an audio file ampnet can read ({detail}); "
                          "convert it to WAV or FLAC") from None
    problem = None
    if audio.frames == 0:
        problem = "contains no audio (0 frames)"
    elif not limits.MIN_SAMPLE_RATE <= audio.samplerate <= limits.MAX_SAMPLE_RATE:
        problem = (f"sample rate {audio.samplerate} Hz is outside what ampnet plays "
                   f"({limits.MIN_SAMPLE_RATE:g} to {limits.MAX_SAMPLE_RATE:g} Hz)")
    elif audio.channels > limits.MAX_AUDIO_CHANNELS:
        problem = f"{audio.channels} channels; ampnet takes up to {limits.MAX_AUDIO_CHANNELS}"
    else:
        short = _SHORT_CHUNK.search(audio.extra_info or "")
        if short and int(short.group(3)) < int(short.group(2)):
            problem = (f"truncated: its header declares {int(short.group(2))} bytes of audio but "
                       f"only {int(short.group(3))} are there; re-export or re-copy the file")
    if problem:
        audio.close()
        raise AmpnetError(f"{path}: {problem}")
    return audio


def read_frames(audio: sf.SoundFile, frames, path):
    """Read ``frames`` frames from the open ``audio`` (float32, ``(frames, channels)``);
    a file that ends or breaks off before them (a damaged FLAC, a truncated download)
    raises :class:`AmpnetError` naming ``path`` instead of returning less."""
    try:
        data = audio.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AmpnetError(f"{path}: damaged audio after {audio.tell()} frames ({err}); "
                          "re-export or re-copy the file") from None
    if data.shape[0] < frames:
        raise AmpnetError(f"{path}: ends after {audio.tell()} frames but declares "
                          f"{audio.frames}; the file is truncated (re-export or re-copy it)")
    return data


def replace_nonfinite(block):
    """Replace NaN and infinite samples of ``block`` by 0 in place; returns
    ``(count, index of the first in block.ravel() or -1)``."""
    bad = ~np.isfinite(block)
    count = int(np.count_nonzero(bad))
    if not count:
        return 0, -1
    first = int(np.flatnonzero(bad.ravel())[0])
    block[bad] = 0.0
    return count, first


def output_subtype(fmt, requested, input_subtype):
    """The subtype to write in container ``fmt``: ``requested`` if given (validated),
    else the input's subtype if the container supports it, else its default."""
    if requested:
        requested = requested.upper()
        if not sf.check_format(fmt, requested):
            allowed = ", ".join(sorted(sf.available_subtypes(fmt)))
            raise AmpnetError(f"--subtype {requested} is not available for {fmt} files "
                              f"(choose one of: {allowed})")
        return requested
    if input_subtype and sf.check_format(fmt, input_subtype):
        return input_subtype
    return sf.default_subtype(fmt)


def format_for_path(path):
    """The libsndfile container for an output path, from its extension."""
    ext = Path(path).suffix.lower().lstrip(".")
    aliases = {"aif": "AIFF", "aifc": "AIFF", "wave": "WAV", "oga": "OGG", "opus": "OGG"}
    fmt = aliases.get(ext, ext.upper())
    if fmt not in sf.available_formats():
        raise AmpnetError(f"{path}: cannot write .{ext} files; use .wav, .flac or .aiff")
    return fmt


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's sf_command for it (sndfile.h)


def without_peak_chunk(sound_file):
    """Tell libsndfile not to write a PEAK chunk into ``sound_file`` (an open
    :class:`soundfile.SoundFile`, before any frame is written). Float WAV and AIFF get
    one by default, and it carries the time of writing: without it, the same render
    gives the same bytes wherever and whenever it runs. python-soundfile has no call
    for this command, so it goes through the library handle it keeps."""
    sf._snd.sf_command(sound_file._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
    return sound_file
