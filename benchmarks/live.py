"""Live callback cost and xruns on a JACK2 dummy server (a real audio server, no sound card).

For hidden sizes 16, 32, 64 at blocks 32, 64, 128 (48 kHz): runs the real
``ampnet live`` for ``--seconds`` and reads its summary: callback time median,
p99, p99.9 and max as a fraction of the block period; xruns per minute, split
into callbacks longer than the period and the rest (the machine's stalls, which
the server's log shows as late cycles).

A callback's time is wall time (the CPU cycle counter), so a callback the virtual
machine paused counts as long even when its work took microseconds; this VM's
thread CPU clock counts the pause too, so it cannot tell them apart either. Two
controls separate ampnet's share from the machine's:

- a baseline run per block size with a chain that does no work (one 0 dB gain):
  its long callbacks are the machine's alone (a longer callback is also more
  likely to be hit by a pause, so this is a floor, not an exact share);
- a replay: the compiled callback (``rt_kernel.run_block``, as the stream calls
  it) run offline over the same number of callbacks, three passes, with L1 and
  L2 flushed before every call (another process ran in between). A pause rarely
  hits the same block in all passes, so each block's least time is its own work;
  callbacks whose own work exceeds the period are the xruns ampnet causes.

    python benchmarks/live.py [--seconds 60] [--out benchmarks/results/live.json]
    python benchmarks/live.py --rig [--out benchmarks/results/live-wavenet.json]

Target: H=32, block 64: p99 under 25% of the 1.33 ms period and no xrun caused by
ampnet in 60 s (no long callbacks beyond the baseline's). ``--rig`` measures a whole
chain instead of bare LSTMs: gate + NAM's standard WaveNet (the example capture in
``tests/fixtures/nam``) + EQ + a 200 ms cabinet impulse response, against the same
baseline; target: no xrun caused by ampnet at block 64.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ampnet.formats import save_model  # noqa: E402
from ampnet.host.preset import load_spec  # noqa: E402
from ampnet.live import rt_kernel  # noqa: E402
from machine import machine_facts  # noqa: E402
from tests.jack_server import JackServer  # noqa: E402
from tests.signals import guitar_like, random_model  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

RATE = 48000
RIG = "wavenet rig"  # the case name of the --rig chain
STANDARD_WAVENET = ROOT / "tests/fixtures/nam/wavenet_a1_standard.nam"

SUMMARY = re.compile(r"(\d+) callbacks, (\d+) xruns \((\d+) callbacks longer.*median ([\d.]+) ms, "
                     r"p99 ([\d.]+) ms, p99.9 ([\d.]+) ms, worst ([\d.]+) ms")


def case_file(hidden, tmp):
    """What ``ampnet live`` plays for a case: an LSTM of ``hidden``, the baseline chain
    that does no work (``hidden`` 0), or the :data:`RIG` preset."""
    if hidden == RIG:
        ir = Path(tmp) / "cab.wav"
        t = np.arange(int(0.2 * RATE)) / RATE
        sf.write(ir, (np.random.default_rng(0).standard_normal(t.size) * np.exp(-t / 0.03))
                 .astype(np.float32) * 0.1, RATE)
        model = Path(tmp) / "rig.toml"
        model.write_text(f'[[chain]]\ntype = "gate"\n\n[[chain]]\ntype = "model"\n'
                         f'path = "{STANDARD_WAVENET}"\nnormalize = true\n\n[[chain]]\n'
                         f'type = "eq"\nbass_db = 2.0\n\n[[chain]]\ntype = "cabinet"\n'
                         f'path = "{ir}"\n')
    elif hidden:
        model = Path(tmp) / f"h{hidden}.json"
        save_model(random_model(hidden, 1, seed=hidden), model, overwrite=True)
    else:
        model = Path(tmp) / "nothing.toml"
        model.write_text("[[chain]]\ntype = 'gain'\ngain_db = 0\n")
    return model


def run_case(hidden, block, seconds, tmp):
    """``hidden`` 0: the baseline chain that does no work; :data:`RIG`: the rig."""
    model = case_file(hidden, tmp)
    server = JackServer(blocksize=block, log_dir=tmp).start()
    try:
        done = subprocess.run([sys.executable, "-m", "ampnet", "live", str(model), "--blocksize",
                               str(block), "--duration", str(seconds)], capture_output=True,
                              text=True, env=server.env(), timeout=seconds + 120)
    finally:
        server.stop()
    match = SUMMARY.search(done.stdout)
    if not match:
        raise RuntimeError(done.stdout + done.stderr)
    callbacks, xruns, late = (int(v) for v in match.groups()[:3])
    median, p99, p999, worst = (float(v) for v in match.groups()[3:])
    period = 1000 * block / 48000
    minutes = seconds / 60
    return {"hidden": hidden, "block": block, "seconds": seconds, "callbacks": callbacks,
            "period_ms": period, "median": median / period, "p99": p99 / period,
            "p999": p999 / period, "max": worst / period,
            "xruns_per_minute": xruns / minutes, "long_callbacks_per_minute": late / minutes,
            "other_xruns_per_minute": max(0, xruns - late) / minutes,
            "server_log_late_lines": len(server.xrun_lines())}


def replay_case(hidden, block, seconds, tmp, passes=3):
    """Own work of each callback, as a fraction of the period: the least of ``passes``
    runs of the compiled callback over ``seconds`` of blocks, caches flushed before each."""
    blocks = int(seconds * RATE) // block
    chain = load_spec(case_file(hidden, tmp)).build(RATE, max_block=block)
    resampling = rt_kernel.Resampling(RATE, RATE, block)
    data = rt_kernel.CallbackData(chain, resampling, np.zeros(RATE, np.float32),
                                  np.ones(2, np.int64), 0, 1, 2)
    stats = data.stats
    audio = guitar_like(1.0, RATE, seed=3)
    outdata = np.zeros((block, 2), np.float32)
    flush = np.zeros(1 << 20, np.float32)  # 4 MB: more than L1 + L2
    cycles = np.empty((passes, blocks))
    for p in range(passes):
        chain.reset()
        for k in range(blocks):
            start = (k * block) % (audio.size - block)
            indata = audio[start:start + block, None].copy()
            flush += 1.0
            rt_kernel.run_block(*data.kernel_args(indata, outdata))
            cycles[p, k] = stats[rt_kernel.TIMES + int(stats[rt_kernel.CALLBACKS]) %
                                 (stats.size - rt_kernel.TIMES)]
    own = cycles.min(axis=0) / rt_kernel.cycles_per_second() / (block / RATE)
    return {"hidden": hidden, "block": block, "callbacks": blocks, "passes": passes,
            "own_median": float(np.median(own)), "own_p99": float(np.percentile(own, 99)),
            "own_p999": float(np.percentile(own, 99.9)), "own_max": float(own.max()),
            "own_over_period": int(np.count_nonzero(own > 1.0))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rig", action="store_true", help="the gate + WaveNet + EQ + cabinet "
                        "chain instead of bare LSTMs")
    parser.add_argument("--out")
    args = parser.parse_args()
    cases = [RIG] if args.rig else [16, 32, 64]
    out = args.out or str(ROOT / "benchmarks/results" / ("live-wavenet.json" if args.rig
                                                          else "live.json"))
    rows = []
    print(f"{'H':>8} {'block':>5} | {'median':>7} {'p99':>7} {'p99.9':>7} {'max':>7} (of period) | "
          f"per minute: long callbacks (baseline)  other xruns")
    with tempfile.TemporaryDirectory() as tmp:
        for block in (32, 64, 128):
            baseline = None
            for hidden in [0] + cases:
                row = run_case(hidden, block, args.seconds, tmp)
                if hidden == 0:
                    baseline = row
                else:
                    row["baseline_long_callbacks_per_minute"] = baseline["long_callbacks_per_minute"]
                    row["excess_long_callbacks_per_minute"] = max(
                        0.0, row["long_callbacks_per_minute"] - baseline["long_callbacks_per_minute"])
                rows.append(row)
                name = hidden if hidden == RIG else f"H={hidden}" if hidden else "baseline"
                print(f"{name:>8} {block:>5} | {row['median']:>6.1%} {row['p99']:>7.1%} "
                      f"{row['p999']:>7.1%} {row['max']:>7.1%}            | "
                      f"{row['long_callbacks_per_minute']:>6.1f} ({baseline['long_callbacks_per_minute']:.1f})"
                      f" {row['other_xruns_per_minute']:>12.1f}", flush=True)
    print(f"\nreplay, caches flushed, least of 3 passes per callback ({args.seconds:g} s):")
    print(f"{'H':>8} {'block':>5} | own work: {'median':>7} {'p99':>7} {'p99.9':>7} {'max':>7} "
          f"(of period) | callbacks over the period")
    replay = []
    for block in (32, 64, 128):
        for hidden in cases:
            with tempfile.TemporaryDirectory() as tmp:
                row = replay_case(hidden, block, args.seconds, tmp)
            replay.append(row)
            name = hidden if hidden == RIG else f"H={hidden}"
            print(f"{name:>8} {block:>5} |           {row['own_median']:>6.1%} "
                  f"{row['own_p99']:>7.1%} {row['own_p999']:>7.1%} {row['own_max']:>7.1%}"
                  f"             | {row['own_over_period']}", flush=True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"machine": machine_facts(), "rows": rows, "replay": replay},
                                    indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
