"""The ``ampnet`` command line: one module per sub-command, wired up here."""

import argparse
import errno
import os
import sys

from ampnet import __version__
from ampnet.cli import (capture_cmd, convert_cmd, devices_cmd, info_cmd, live_cmd, render_cmd,
                        signal_cmd, train_cmd)
from ampnet.errors import AmpnetError, Stopped, install_stop_handlers, restore_handlers

COMMANDS = [signal_cmd, capture_cmd, train_cmd, render_cmd, live_cmd, devices_cmd, info_cmd, convert_cmd]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ampnet", description="Train, stream and host neural guitar amp and pedal captures.")
    parser.add_argument("--version", action="version", version=f"ampnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the ``ampnet`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    previous = install_stop_handlers()  # temporary files go whichever way the run ends
    try:
        return args.run(args) or 0
    except AmpnetError as err:
        print(f"ampnet: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ampnet info M | head`: the reader left; not an error to report
        # Python would complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # disk full, permission denied, ...: still one line
        where = f"{err.filename}: " if err.filename else ""
        if err.errno == errno.ENOSPC:
            print(f"ampnet: error: {where}the disk is full; free some space or write elsewhere",
                  file=sys.stderr)
        else:
            print(f"ampnet: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ampnet: interrupted", file=sys.stderr)
        return 130
    except Stopped as stop:
        print(f"ampnet: {stop}", file=sys.stderr)
        return 128 + stop.signum
    finally:
        restore_handlers(previous)


if __name__ == "__main__":
    sys.exit(main())
