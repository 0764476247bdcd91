"""Finding and opening audio files, with errors that say what to do."""

from pathlib import Path

import soundfile as sf

from ampnet.errors import AmpnetError

# Extensions libsndfile reads; a folder is searched for these only.
AUDIO_EXTENSIONS = {".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga",
                    ".opus", ".mp3", ".caf", ".w64", ".rf64"}


def find_audio_inputs(paths):
    """Expand files and folders (recursively) into ``(file, relative_name)`` pairs.

    ``relative_name`` is the path an output should take under an output folder:
    the file name for a file given directly, the path below the folder for a file
    found in a folder. Raises :class:`AmpnetError` for a missing path or a folder
    without audio.
    """
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                           and not p.name.startswith("."))
            if not files:
                raise AmpnetError(f"{path}: no audio files found in this folder (looked for "
                                  f"{', '.join(sorted(AUDIO_EXTENSIONS))})")
            found.extend((p, p.relative_to(path)) for p in files)
        elif path.exists():
            found.append((path, Path(path.name)))
        else:
            raise AmpnetError(f"{path}: no such file or folder")
    return found


def open_audio(path) -> sf.SoundFile:
    """Open ``path`` for reading; a missing, unreadable, empty or non-audio file
    raises :class:`AmpnetError` naming the file."""
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
    if audio.frames == 0:
        audio.close()
        raise AmpnetError(f"{path}: contains no audio (0 frames)")
    return audio


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
