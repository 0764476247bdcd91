"""``ampnet info MODEL``: what a model is, and how fast it runs on this machine."""

import time

import numpy as np

from ampnet.engine import Engine
from ampnet.formats import load_model

BENCH_BLOCK = 64
BENCH_SECONDS = 2.0


def add_parser(sub):
    p = sub.add_parser("info", help="describe a model and measure its speed here")
    p.add_argument("model", help="model file")
    p.set_defaults(run=run)


def run(args):
    model = load_model(args.model)
    print(f"{args.model}")
    print(f"  name:          {model.name}")
    print(f"  architecture:  {model.architecture}, "
          f"input size {model.input_size}, linear output")
    if model.CELL == "wavenet":
        print("  activations:   " + ", ".join(
            f"{a.activation}{' (gated)' if a.gated else ''}" for a in model.arrays)
            + f"; head scale {model.head_scale:g}")
    print(f"  parameters:    {model.parameter_count}")
    print(f"  sample rate:   {model.sample_rate:g} Hz")
    print(f"  skip:          {'on (input added to output)' if model.skip else 'off'}")
    print(f"  input scale:   {model.input_scale:g}    output gain: {model.output_gain:g}")
    for knob in model.knobs:
        print(f"  knob:          {knob.name} (default {knob.default:g}, "
              f"range {knob.minimum:g}..{knob.maximum:g})")
    for key, value in model.metadata.items():
        if key != "name":
            print(f"  {key.replace('_', ' ') + ':':<14} {value}")
    cpu_ms = measure_cpu_ms_per_second(model)
    print(f"  speed here:    {cpu_ms:.1f} ms CPU per second of audio at block {BENCH_BLOCK} "
          f"(real-time factor {cpu_ms / 1000:.3f}; one core)")


def measure_cpu_ms_per_second(model, block=BENCH_BLOCK, seconds=BENCH_SECONDS):
    """Median CPU milliseconds per second of audio, over 5 runs of ``seconds`` of noise."""
    engine = Engine(model)
    frames = int(seconds * model.sample_rate) // block * block
    audio = (np.random.default_rng(0).standard_normal(frames) * 0.1).astype(np.float32)
    out = np.empty_like(audio)
    blocks = [(audio[i:i + block], out[i:i + block]) for i in range(0, frames, block)]
    runs = []
    for _ in range(5):
        start = time.process_time()
        for x, y in blocks:
            engine.process(x, y)
        runs.append((time.process_time() - start) / (frames / model.sample_rate) * 1000)
    return float(np.median(runs))
