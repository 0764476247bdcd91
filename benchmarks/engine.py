"""Engine speed: ampnet's Numba engine against torch.nn.LSTM / nn.GRU streamed with
carried state, and against the Neural Amp Modeler package's own torch WaveNet.

CPU time per second of 48 kHz audio on one thread, for several sizes and block sizes
of each architecture (LSTM 16-64, GRU 32 and 64; WaveNet: NAM's standard example
file, a trained capture, and the lite, feather and nano sizes with random weights),
with the median and worst single-block times; plus the wall time of
a second ``ampnet render`` start (Numba cache warm) on a 1 s file. ampnet and torch
run in interleaved passes; each reports its best pass (what the machine can do) and
its median pass, and the speed-up is also given per round.

ampnet is measured twice: through ``Engine.process`` called from Python once per
block (what ``render`` and library users do; about 0.65 us of call overhead per
block), and through the same compiled kernel called once per block from compiled
code, as ``ampnet live``'s audio callback calls it (no Python between blocks; the
like-for-like comparison with a C++ engine's per-block figure).

    python benchmarks/engine.py [--seconds 3] [--cells lstm gru wavenet] [--out benchmarks/results/engine.json]

Needs the test extra (torch); the WaveNet rows also need neural-amp-modeler 0.12.3
(its torch model is the baseline: run them with ``.venv-nam012/bin/python``, the venv
CI makes). The NAM package's WaveNet has no streaming state, so it is streamed the way
a host would: each block is run with the receptive field's worth of past input in
front of it. Not a test: it asserts nothing, it measures.
"""

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import soundfile as sf
import torch

from ampnet.engine import Engine, gru_kernel, lstm_kernel, wavenet_kernel
from ampnet.formats import load_model, save_model
from ampnet.formats.export import to_nam
from ampnet.live.rt_kernel import cycle_counter, cycles_per_second

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import machine_facts  # noqa: E402
from tests.signals import guitar_like, random_model  # noqa: E402

RATE = 48000
HIDDEN_SIZES = {"lstm": [16, 24, 32, 40, 64], "gru": [32, 64],
                "wavenet": ["standard", "lite", "feather", "nano"]}
STANDARD_WAVENET = Path(__file__).resolve().parent.parent / "tests/fixtures/nam/wavenet_a1_standard.nam"
KINDS = {"lstm": 0, "gru": 1, "wavenet": 2}  # for the compiled driver
BLOCK_SIZES = [32, 64, 128, 2048]
# RTNeural's figures on this machine class (2-core AMD EPYC), block 64, ms CPU per s of audio.
TARGETS_MS = {16: 5.2, 32: 8.3, 40: 13.1, 64: 36.6}
# NeuralAmpModelerCore's own benchmark on its standard example file, same machine class,
# block 64, with its fast tanh (the plugin's default): 39-42 ms CPU per s of audio.
WAVENET_TARGET_MS = 40.0


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


@numba.njit
def _compiled_blocks(audio, out, params, state, block, cycles, kind):
    """Run the engine's kernel of ``kind`` (``KINDS``) over ``audio`` in blocks of
    ``block`` samples from compiled code; ``cycles[i]`` gets block ``i``'s duration in
    cycle-counter ticks."""
    for i in range(cycles.size):
        start = cycle_counter()
        x, y = audio[i * block:(i + 1) * block], out[i * block:(i + 1) * block]
        if kind == 1:
            gru_kernel._run_channel(x, y, params, state)
        elif kind == 2:
            wavenet_kernel._run_channel(x, y, params, state)
        else:
            lstm_kernel._run_channel(x, y, params, state)
        cycles[i] = cycle_counter() - start


class CompiledStream:
    """ampnet's kernel driven block by block from compiled code, as the live callback
    drives it. ``run(audio, block)`` returns ``(cpu_seconds, block_seconds)`` like
    :func:`time_blocks`."""

    def __init__(self, model):
        self.engine = Engine(model)
        self.kind = KINDS[model.CELL]
        self.ticks_per_second = cycles_per_second()

    def reset(self):
        self.engine.reset()

    def run(self, audio, block):
        params, state = self.engine.kernel_arrays()
        out = np.empty_like(audio)
        cycles = np.empty(audio.size // block, dtype=np.int64)
        _compiled_blocks(audio[:block], out[:block], params, state, block, cycles[:1],
                         self.kind)  # compile
        self.reset()
        cpu_start = time.thread_time()
        _compiled_blocks(audio, out, params, state, block, cycles, self.kind)
        return time.thread_time() - cpu_start, cycles / self.ticks_per_second


class AmpnetStream:
    """ampnet's engine, streamed block by block into a preallocated block."""

    def __init__(self, model, block):
        self.engine = Engine(model)
        self.out = np.empty(block, dtype=np.float32)

    def reset(self):
        self.engine.reset()

    def __call__(self, x):
        return self.engine.process(x, self.out)


class TorchStream:
    """torch.nn.LSTM (or nn.GRU) + Linear + skip, streamed block by block with carried state."""

    def __init__(self, model):
        cell = torch.nn.LSTM if model.CELL == "lstm" else torch.nn.GRU
        self.lstm = cell(1, model.hidden_size, model.num_layers, batch_first=True)
        self.head = torch.nn.Linear(model.hidden_size, 1)
        self.state = None

    def reset(self):
        self.state = None

    def __call__(self, x):
        with torch.inference_mode():
            t = torch.from_numpy(x)[None, :, None]
            h, self.state = self.lstm(t, self.state)
            return (self.head(h)[0, :, 0] + t[0, :, 0]).numpy()


class NamWaveNetStream:
    """The Neural Amp Modeler package's torch WaveNet (loaded from the same model as a
    ``.nam`` document), streamed block by block: each block runs with the last
    ``receptive_field - 1`` input samples in front of it."""

    def __init__(self, model):
        from nam.models import init_from_nam

        self.net = init_from_nam(to_nam(model))
        self.net.eval()
        self.past = model.receptive_field - 1
        self.reset()

    def reset(self):
        self.history = torch.zeros(self.past)

    def __call__(self, x):
        with torch.inference_mode():
            window = torch.cat([self.history, torch.from_numpy(x)])
            self.history = window[-self.past:]
            return self.net(window, pad_start=False).numpy()


def wavenet_model(size):
    """NAM's standard example file (a trained capture), or a WaveNet of NAM's preset
    ``size`` with random weights, built and exported by the NAM package itself."""
    if size == "standard":
        return load_model(STANDARD_WAVENET)
    from tests.nam_reference import preset_document

    with tempfile.TemporaryDirectory() as tmp:
        preset_document(size, seed=1, directory=Path(tmp))
        return load_model(Path(tmp) / f"{size}.nam")


def compare(model, audio, torch_audio, block, rounds):
    """Interleaved passes, ampnet (from Python), torch, then ampnet (compiled driver),
    ``rounds`` times, so all see the same machine (this VM's speed drifts by tens of
    percent). Returns each one's passes."""
    baseline = NamWaveNetStream if model.CELL == "wavenet" else TorchStream
    ours, compiled, theirs = AmpnetStream(model, block), CompiledStream(model), baseline(model)
    theirs(torch_audio[:block])
    passes = {"ampnet": [], "ampnet_compiled": [], "torch": []}
    for _ in range(rounds):
        for name, stream, signal in (("ampnet", ours, audio), ("torch", theirs, torch_audio)):
            stream.reset()
            passes[name].append(time_blocks(stream, signal, block))
        compiled.reset()
        passes["ampnet_compiled"].append(compiled.run(audio, block))
    return passes


def summarise(passes, block):
    """CPU ms per second of audio, best and median pass; block times of the best pass."""
    per_second = [1000 * cpu / (times.size * block / RATE) for cpu, times in passes]
    best = int(np.argmin(per_second))
    times = passes[best][1]
    return {"cpu_ms_per_s": per_second[best], "cpu_ms_per_s_median": float(np.median(per_second)),
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
    parser.add_argument("--seconds", type=float, default=3.0, help="audio per ampnet pass")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved passes of each")
    parser.add_argument("--cells", nargs="+", choices=list(HIDDEN_SIZES),
                        help="default: all (WaveNet only where the NAM package is installed)")
    parser.add_argument("--out", default="benchmarks/results/engine.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    audio = guitar_like(args.seconds, RATE, seed=1)
    rows = []
    has_nam = importlib.util.find_spec("nam") is not None
    if args.cells is None:
        args.cells = list(HIDDEN_SIZES) if has_nam else ["lstm", "gru"]
        if not has_nam:
            print("no WaveNet rows: they compare with the NAM package (neural-amp-modeler==0.12.3; "
                  "run with .venv-nam012/bin/python)")
    elif "wavenet" in args.cells and not has_nam:
        parser.error("the WaveNet rows compare with the NAM package: run them with "
                     "neural-amp-modeler==0.12.3 installed (.venv-nam012/bin/python)")
    print(f"{'cell':>4} {'H':>3} {'block':>5} | ms/s best median | {'median us':>9} {'worst us':>9} | "
          f"compiled ms/s | {'torch ms/s':>10} | speed-up (least round) | target")
    cases = [(cell, hidden) for cell in args.cells for hidden in HIDDEN_SIZES[cell]]
    for cell, hidden in cases:
        model = (wavenet_model(hidden) if cell == "wavenet"
                 else random_model(hidden, 1, seed=hidden, cell=cell))
        for block in BLOCK_SIZES:
            torch_audio = audio[: max(block, int(min(args.seconds, 1.0) * RATE) // block * block)]
            passes = compare(model, audio, torch_audio, block, args.rounds)
            ours, theirs = summarise(passes["ampnet"], block), summarise(passes["torch"], block)
            compiled = summarise(passes["ampnet_compiled"], block)
            ratio = theirs["cpu_ms_per_s"] / ours["cpu_ms_per_s"]
            round_ratios = [(t[0] / t[1].size) / (a[0] / a[1].size)
                            for a, t in zip(passes["ampnet"], passes["torch"])]
            target = None
            if block == 64 and cell == "lstm":
                target = TARGETS_MS.get(hidden)
            elif block == 64 and hidden == "standard":
                target = WAVENET_TARGET_MS
            rows.append({"cell": cell, "hidden": hidden, "layers": 1, "block": block, "ampnet": ours,
                         "ampnet_compiled_driver": compiled, "torch": theirs, "speedup_vs_torch": ratio,
                         "speedup_vs_torch_per_round": round_ratios, "target_ms_per_s": target})
            print(f"{cell:>4} {hidden:>3} {block:>5} | {ours['cpu_ms_per_s']:>6.2f} {ours['cpu_ms_per_s_median']:>6.2f} | "
                  f"{ours['median_block_us']:>9.1f} {ours['worst_block_us']:>9.1f} | "
                  f"{compiled['cpu_ms_per_s']:>6.2f} {compiled['cpu_ms_per_s_median']:>6.2f} | "
                  f"{theirs['cpu_ms_per_s']:>10.1f} | {ratio:>6.1f}x ({min(round_ratios):.1f}x) | "
                  f"{'' if target is None else f'<= {target} ms/s'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.json"
        save_model(random_model(32, 1), model_path)
        second_start = second_start_seconds(model_path)
    print(f"second `ampnet render` start on a 1 s file (cache warm): {second_start:.2f} s (target < 2 s)")
    result = {"machine": machine_facts() | {"python": platform.python_version(),
                                             "torch": torch.__version__},
              "sample_rate": RATE, "seconds_per_measurement": args.seconds, "rounds": args.rounds,
              "rows": rows,
              "second_render_start_s": second_start}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
