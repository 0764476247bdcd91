"""Engine speed: ampnet's Numba engine against torch.nn.LSTM streamed with carried state.

CPU time per second of 48 kHz audio on one thread, for several hidden sizes and
block sizes, with the median and worst single-block times; plus the wall time of
a second ``ampnet render`` start (Numba cache warm) on a 1 s file.

    python benchmarks/engine.py [--seconds 3] [--out benchmarks/results/engine.json]

Needs the test extra (torch). Not a test: it asserts nothing, it measures.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ampnet.engine import LSTMEngine
from ampnet.formats import save_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.signals import guitar_like, random_model  # noqa: E402

RATE = 48000
HIDDEN_SIZES = [16, 24, 32, 40, 64]
BLOCK_SIZES = [32, 64, 128, 2048]
# RTNeural's figures on this machine class (2-core AMD EPYC), block 64, ms CPU per s of audio.
TARGETS_MS = {16: 5.2, 32: 8.3, 40: 13.1, 64: 36.6}


def time_blocks(process, audio, block):
    """Run ``process`` over ``audio`` block by block. Returns ``(cpu_seconds, block_seconds)``:
    the thread's CPU time for the whole pass, and each block's wall time (perf_counter,
    which is cheap enough to read per block; a per-block CPU clock read is a system
    call that would inflate small blocks)."""
    blocks = [audio[i * block:(i + 1) * block] for i in range(audio.size // block)]
    times = np.empty(len(blocks))
    clock = time.perf_counter
    cpu_start = time.thread_time()
    for i, x in enumerate(blocks):
        start = clock()
        process(x)
        times[i] = clock() - start
    return time.thread_time() - cpu_start, times


def bench_ampnet(model, audio, block, repeats=3):
    engine = LSTMEngine(model)
    out = np.empty(block, dtype=np.float32)
    best = None
    for _ in range(repeats):  # best of a few passes: the machine has stalls of its own
        engine.reset()
        cpu, times = time_blocks(lambda x: engine.process(x, out), audio, block)
        if best is None or cpu < best[0]:
            best = (cpu, times)
    return best


def bench_torch(model, audio, block):
    lstm = torch.nn.LSTM(1, model.hidden_size, model.num_layers, batch_first=True)
    head = torch.nn.Linear(model.hidden_size, 1)
    state = [None]

    def process(x):
        with torch.inference_mode():
            t = torch.from_numpy(x)[None, :, None]
            h, state[0] = lstm(t, state[0])
            return (head(h)[0, :, 0] + t[0, :, 0]).numpy()

    process(audio[:block])
    return time_blocks(process, audio, block)


def summarise(measured, block):
    cpu, times = measured
    seconds_of_audio = times.size * block / RATE
    return {"cpu_ms_per_s": 1000 * cpu / seconds_of_audio,
            "median_block_us": 1e6 * float(np.median(times)),
            "worst_block_us": 1e6 * float(times.max()),
            "block_period_us": 1e6 * block / RATE}


def second_start_seconds(model_path):
    """Wall time of ``ampnet render`` on a 1 s file, run twice; returns the second."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.wav"
        sf.write(src, guitar_like(1.0), RATE)
        walls = []
        for i in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ampnet", "render", str(model_path), str(src),
                            "-o", str(Path(tmp) / "out.wav"), "--overwrite"],
                           check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
        return walls[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="audio per measurement")
    parser.add_argument("--out", default="benchmarks/results/engine.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    audio = guitar_like(args.seconds, RATE, seed=1)
    rows = []
    print(f"{'H':>3} {'block':>5} | {'ampnet ms/s':>11} {'median us':>9} {'worst us':>9} | "
          f"{'torch ms/s':>10} | {'speed-up':>8} | target")
    for hidden in HIDDEN_SIZES:
        model = random_model(hidden, 1, seed=hidden)
        for block in BLOCK_SIZES:
            ours = summarise(bench_ampnet(model, audio, block), block)
            torch_audio = audio[: max(block, int(min(args.seconds, 1.0) * RATE) // block * block)]
            theirs = summarise(bench_torch(model, torch_audio, block), block)
            ratio = theirs["cpu_ms_per_s"] / ours["cpu_ms_per_s"]
            target = TARGETS_MS.get(hidden) if block == 64 else None
            rows.append({"hidden": hidden, "layers": 1, "block": block, "ampnet": ours,
                         "torch": theirs, "speedup_vs_torch": ratio, "target_ms_per_s": target})
            print(f"{hidden:>3} {block:>5} | {ours['cpu_ms_per_s']:>11.2f} {ours['median_block_us']:>9.1f} "
                  f"{ours['worst_block_us']:>9.1f} | {theirs['cpu_ms_per_s']:>10.1f} | {ratio:>7.1f}x | "
                  f"{'' if target is None else f'<= {target} ms/s'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.json"
        save_model(random_model(32, 1), model_path)
        second_start = second_start_seconds(model_path)
    print(f"second `ampnet render` start on a 1 s file (cache warm): {second_start:.2f} s (target < 2 s)")
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "sample_rate": RATE, "seconds_per_measurement": args.seconds, "rows": rows,
              "second_render_start_s": second_start}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
