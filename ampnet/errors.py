"""Errors that reach the user as one clear line (the CLI prints them without a traceback),
and the stop signals, which unwind like Ctrl-C."""

import signal
import threading


class AmpnetError(Exception):
    """A problem the user can fix; ``str(err)`` names the file and what to do."""


class ModelFileError(AmpnetError):
    """A model file that cannot be loaded: unknown format, missing key, bad shape, ..."""

    def __init__(self, path, field, problem):
        self.path, self.field, self.problem = str(path), field, problem
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + problem)


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived. A ``BaseException`` like ``KeyboardInterrupt``, so it
    runs every ``finally`` and atomic-write clean-up on its way out instead of being
    caught as an ordinary error; ``signum`` is the signal's number."""

    def __init__(self, signum):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def raise_stopped(signum, frame):
    """Signal handler: turn SIGTERM/SIGHUP into :class:`Stopped`."""
    raise Stopped(signum)


def install_stop_handlers():
    """SIGTERM and SIGHUP raise :class:`Stopped`, SIGINT raises ``KeyboardInterrupt``
    (even when the process started with SIGINT ignored, as a background job does).
    Returns the previous handlers, for :func:`restore_handlers`; does nothing off the
    main thread (where Python cannot take signals)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    wanted = {getattr(signal, name): raise_stopped for name in ("SIGTERM", "SIGHUP")
              if hasattr(signal, name)}
    wanted[signal.SIGINT] = signal.default_int_handler
    return {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}


def restore_handlers(previous):
    """Put back the handlers :func:`install_stop_handlers` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
