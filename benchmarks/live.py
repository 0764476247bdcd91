"""Live callback cost and xruns on a JACK2 dummy server (a real audio server, no sound card).

For hidden sizes 16, 32, 64 at blocks 32, 64, 128 (48 kHz): runs the real
``ampnet live`` for ``--seconds`` and reads its summary: callback time median,
p99, p99.9 and max as a fraction of the block period; xruns per minute, split
into those ampnet caused (callbacks longer than the period) and the rest (the
machine's stalls, which the server's log shows as late cycles).

    python benchmarks/live.py [--seconds 60] [--out benchmarks/results/live.json]

Target: H=32, block 64: p99 under 25% of the 1.33 ms period and no xrun caused by
ampnet in 60 s.
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
from tests.jack_server import JackServer  # noqa: E402
from tests.signals import random_model  # noqa: E402

SUMMARY = re.compile(r"(\d+) callbacks, (\d+) xruns \((\d+) callbacks longer.*median ([\d.]+) ms, "
                     r"p99 ([\d.]+) ms, p99.9 ([\d.]+) ms, worst ([\d.]+) ms")


def run_case(hidden, block, seconds, tmp):
    model = Path(tmp) / f"h{hidden}.json"
    save_model(random_model(hidden, 1, seed=hidden), model, overwrite=True)
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
            "xruns_per_minute": xruns / minutes, "ampnet_xruns_per_minute": late / minutes,
            "machine_xruns_per_minute": max(0, xruns - late) / minutes,
            "server_log_late_lines": len(server.xrun_lines())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/live.json"))
    args = parser.parse_args()
    rows = []
    print(f"{'H':>3} {'block':>5} | {'median':>7} {'p99':>7} {'p99.9':>7} {'max':>7} (of period) | "
          f"xruns/min: ampnet  machine")
    with tempfile.TemporaryDirectory() as tmp:
        for hidden in (16, 32, 64):
            for block in (32, 64, 128):
                row = run_case(hidden, block, args.seconds, tmp)
                rows.append(row)
                print(f"{hidden:>3} {block:>5} | {row['median']:>6.1%} {row['p99']:>7.1%} "
                      f"{row['p999']:>7.1%} {row['max']:>7.1%}            | "
                      f"{row['ampnet_xruns_per_minute']:>6.1f} {row['machine_xruns_per_minute']:>8.1f}",
                      flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
