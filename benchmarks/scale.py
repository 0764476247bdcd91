"""Render throughput on a Ray cluster against the local process pool, in one run.

A batch of takes (guitar-like, synthetic) through the shipped preset
``models/tiltdrive-cab.toml`` with ``ampnet render``: ``--jobs 1`` (the baseline),
``--jobs 2``, and a local Ray cluster (``--cluster local``) with 1 and 2 CPUs.
Throughput is seconds of audio per second of rendering as the command reports it
(cluster start-up and engine loading are timed apart by the command and left out);
each mode runs ``--repeats`` times, interleaved, and the ratios to ``--jobs 1`` are
given as median and worst. The per-task overhead of the cluster is measured on many
tiny files: (cluster time - local time) / files, both with one worker.

    python benchmarks/scale.py [--files 8] [--seconds 10] [--repeats 3]

Not a test: it asserts nothing, it measures. Needs the cluster extra.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from machine import machine_facts  # noqa: E402
from tests.signals import guitar_like  # noqa: E402

PRESET = ROOT / "models" / "tiltdrive-cab.toml"
MODES = {"jobs1": ["--jobs", "1"], "jobs2": ["--jobs", "2"],
         "cluster1": ["--cluster", "local", "--jobs", "1"],
         "cluster2": ["--cluster", "local", "--jobs", "2"]}


def render(inputs, out_dir, extra):
    """``(seconds of audio, seconds rendering)`` as ``ampnet render`` reports them."""
    done = subprocess.run([sys.executable, "-m", "ampnet", "render", str(PRESET), str(inputs),
                           "--out-dir", str(out_dir), "--overwrite", *extra],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    found = re.search(r"rendered \d+ file\(s\), ([\d.]+) (s|h) of audio in ([\d.]+) s", done.stdout)
    audio = float(found.group(1)) * (3600 if found.group(2) == "h" else 1)
    return audio, float(found.group(3))


def takes(folder, files, seconds):
    folder.mkdir(parents=True)
    for i in range(files):
        sf.write(str(folder / f"take{i:03d}.wav"), guitar_like(seconds, seed=i), 48000,
                 subtype="PCM_24")
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny-files", type=int, default=40)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        batch = takes(tmp / "batch", args.files, args.seconds)
        speed = {mode: [] for mode in MODES}
        for repeat in range(args.repeats):
            for mode, extra in MODES.items():
                audio, wall = render(batch, tmp / "out" / mode, extra)
                speed[mode].append(audio / wall)
                print(f"run {repeat + 1} {mode}: {audio / wall:.1f} s of audio per second", flush=True)
        tiny = takes(tmp / "tiny", args.tiny_files, 0.1)
        _, local = render(tiny, tmp / "out" / "tiny-local", MODES["jobs1"])
        _, cluster = render(tiny, tmp / "out" / "tiny-cluster", MODES["cluster1"])
    ratios = {mode: [s / b for s, b in zip(speed[mode], speed["jobs1"])] for mode in MODES}
    results = {
        "machine": machine_facts(),
        "batch": {"files": args.files, "seconds_each": args.seconds, "preset": PRESET.name},
        "audio_seconds_per_second": {m: {"median": float(np.median(v)), "worst": float(min(v)),
                                         "runs": v} for m, v in speed.items()},
        "ratio_to_jobs1": {m: {"median": float(np.median(v)), "worst": float(min(v))}
                           for m, v in ratios.items()},
        "cluster_overhead_per_task_ms": 1000 * (cluster - local) / args.tiny_files,
        "tiny_files": {"files": args.tiny_files, "local_s": local, "cluster_s": cluster},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    for mode in MODES:
        print(f"{mode:9s} {results['audio_seconds_per_second'][mode]['median']:7.1f} s/s  "
              f"x{results['ratio_to_jobs1'][mode]['median']:.2f} of --jobs 1 "
              f"(worst x{results['ratio_to_jobs1'][mode]['worst']:.2f})")
    print(f"cluster overhead per task: {results['cluster_overhead_per_task_ms']:.1f} ms")
    print(f"machine: {results['machine']}")


if __name__ == "__main__":
    main()
