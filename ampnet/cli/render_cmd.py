"""``ampnet render MODEL|PRESET INPUT... (-o OUTPUT | --out-dir DIR)``"""

import os
import sys
import time

from ampnet import limits
from ampnet.errors import AmpnetError
from ampnet.host.preset import load_spec
from ampnet.render import plan_jobs, render_batch, summary_line


def add_parser(sub):
    p = sub.add_parser("render", help="render audio files through a model or a preset",
                       description="Render audio files through a model or a preset's chain. Outputs "
                                   "keep each input's sample rate, channels, length and subtype.")
    p.add_argument("model", metavar="MODEL|PRESET",
                   help="model file (ampnet, .nam, AIDA-X/RTNeural, GuitarML) or preset (.toml)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (recursive)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", help="output file (one input only)")
    where.add_argument("--out-dir", help="output folder (mirrors input folders)")
    p.add_argument("--blocksize", type=_positive_int, default=64,
                   help="engine block size in frames, as in live use (default 64, at most "
                        f"{limits.MAX_BLOCK_FRAMES})")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--jobs", type=_positive_int, default=1,
                   help=f"files rendered in parallel processes (this machine has {os.cpu_count()} cores)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a knob value of a conditioned model, e.g. --param gain=0.7 (repeatable)")
    p.add_argument("--subtype", help="output subtype, e.g. PCM_24 or FLOAT (default: the input's)")
    p.set_defaults(run=run)


def run(args):
    if args.blocksize > limits.MAX_BLOCK_FRAMES:
        raise AmpnetError(f"--blocksize {args.blocksize}: at most {limits.MAX_BLOCK_FRAMES} frames")
    spec = load_spec(args.model, args.param)  # a broken model or preset fails once, before any file
    jobs, failures = plan_jobs(args.inputs, args.output, args.out_dir, args.overwrite)
    # Compiling the engine (first run after install) or loading it from Numba's cache
    # is start-up, not rendering: time it apart so the real-time factor is the engine's.
    start = time.perf_counter()
    if jobs:
        spec.build(int(round(spec.sample_rate or 48000)), max_block=args.blocksize)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    results = render_batch(args.model, jobs, args.blocksize, args.subtype, args.jobs,
                           params=args.param) if jobs else []
    wall = time.perf_counter() - start
    results = failures + results
    for result in results:
        if result.error:
            print(f"ampnet: error: {result.error}", file=sys.stderr)
        else:
            print(f"{result.job.source} -> {result.job.target}")
            for note in result.notes:  # "warning: ..." notes say so themselves
                print(f"  {note}" if note.startswith("warning:") else f"  note: {note}")
    print(summary_line(results, wall, startup))
    return 1 if any(r.error for r in results) else 0


def _positive_int(text):
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
