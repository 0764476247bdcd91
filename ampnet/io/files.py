"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or Ctrl-C leaves either the old file or the complete new one, never a
partial file under the target's name.
"""

import contextlib
import glob
import os
import tempfile
from pathlib import Path


PARTIAL = "partial-"  # temporary files are named .TARGET_NAME.partial-RANDOM.SUFFIX


@contextlib.contextmanager
def atomic_output(target, suffix=None):
    """Yield a temporary path in ``target``'s folder; on success rename it to
    ``target``, on any exception delete it. ``suffix`` defaults to the target's
    (libraries such as soundfile pick the format from it)."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{PARTIAL}", suffix=suffix or target.suffix or ".tmp",
                               dir=target.parent if str(target.parent) else ".")
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes it private (0600)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def partial_files(target):
    """The temporary files :func:`atomic_output` made for ``target`` that are still there:
    a process killed outright (SIGKILL, a lost machine) could not delete its own."""
    target = Path(target)
    return sorted(target.parent.glob(f".{glob.escape(target.name)}.{PARTIAL}*"))


def write_text_atomic(target, text):
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
