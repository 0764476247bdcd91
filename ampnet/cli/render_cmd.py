"""``ampnet render MODEL|PRESET... INPUT... (-o OUTPUT | --out-dir DIR) [--jobs N | --cluster ADDRESS]``"""

import os
import sys
import time

from ampnet import limits
from ampnet.errors import AmpnetError
from ampnet.render import (RenderJournal, RenderSettings, SpecCache, plan_jobs, render_batch,
                           split_models, summary_line)


def add_parser(sub):
    p = sub.add_parser("render", help="render audio files through models or presets",
                       description="Render audio files through a model or a preset's chain (or "
                                   "several: each file through each). Outputs keep each input's "
                                   "sample rate, channels, length and subtype. A re-run of the "
                                   "same command skips the outputs it finished before.")
    p.add_argument("model", metavar="MODEL|PRESET",
                   help="model file (ampnet, .nam, AIDA-X/RTNeural, GuitarML) or preset (.toml); "
                        "more may follow it (each gets a folder in --out-dir)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (recursive)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", help="output file (one input only)")
    where.add_argument("--out-dir", help="output folder (mirrors input folders)")
    p.add_argument("--blocksize", type=_positive_int, default=64,
                   help="engine block size in frames, as in live use (default 64, at most "
                        f"{limits.MAX_BLOCK_FRAMES})")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--jobs", type=_positive_int,
                   help=f"files rendered in parallel processes (default 1; this machine has "
                        f"{os.cpu_count()} cores); with --cluster local, the local cluster's CPUs")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="render on a Ray cluster: its address (host:port), 'auto' (the cluster "
                        "this machine belongs to) or 'local' (start one here); every node must "
                        "see the inputs, models and outputs at the same paths (shared storage). "
                        "Needs the cluster extra: pip install 'ampnet[cluster]'")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a knob value of a conditioned model, e.g. --param gain=0.7 (repeatable)")
    p.add_argument("--subtype", help="output subtype, e.g. PCM_24 or FLOAT (default: the input's)")
    p.set_defaults(run=run)


def run(args):
    if args.blocksize > limits.MAX_BLOCK_FRAMES:
        raise AmpnetError(f"--blocksize {args.blocksize}: at most {limits.MAX_BLOCK_FRAMES} frames")
    models, inputs = split_models([args.model, *args.inputs])
    if not inputs:
        raise AmpnetError(f"{models[-1]}: no input files after the model(s); give audio files "
                          "or folders to render")
    specs = SpecCache(args.param)
    for model in models:  # a broken model fails once, before any file
        specs.get(model)
    settings = RenderSettings(args.blocksize, args.subtype, tuple(args.param))
    jobs, failures, skipped = plan_jobs(models, inputs, args.output, args.out_dir, args.overwrite,
                                        settings)
    journal = RenderJournal(args.out_dir) if args.out_dir else None
    if skipped:
        print(f"{len(skipped)} output(s) already rendered by an earlier run of this command "
              f"(listed in {journal.path}): skipped")
    # Compiling the engine (first run after install) or loading it from Numba's cache
    # is start-up, not rendering: time it apart so the real-time factor is the engine's.
    start = time.perf_counter()
    if jobs:
        for model in models:
            spec = specs.get(model)
            spec.build(int(round(spec.sample_rate or 48000)), max_block=args.blocksize)
    startup = time.perf_counter() - start

    def on_result(result):
        if result.error is None and journal is not None:
            journal.record(result, settings)

    results = []
    if jobs and args.cluster:
        from ampnet.cluster.render import ClusterRenderer

        with ClusterRenderer(args.cluster, cpus=args.jobs) as cluster:
            cluster.check_storage_for(jobs)
            start = time.perf_counter()
            results = render_batch(jobs, settings, on_result=on_result, cluster=cluster)
    elif jobs:
        start = time.perf_counter()
        results = render_batch(jobs, settings, args.jobs or 1, on_result=on_result, specs=specs)
    wall = time.perf_counter() - start if jobs else 0.0
    results = failures + results
    for result in results:
        if result.error:
            print(f"ampnet: error: {result.error}", file=sys.stderr)
        else:
            print(f"{result.job.source} -> {result.job.target}")
            for note in result.notes:  # "warning: ..." notes say so themselves
                print(f"  {note}" if note.startswith("warning:") else f"  note: {note}")
    print(summary_line(results, wall, startup, len(skipped)))
    if journal is not None and journal.path.exists():
        print(f"what was rendered from what: {journal.path}")
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
