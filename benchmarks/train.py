"""Training quality against wall-clock time on the gx-tiltdrive capture.

Runs ``ampnet train`` with its defaults (LSTM-32) on ``dry_train/wet_train``,
validating on the data set's own ``dry_val/wet_val``, and records validation ESR
after every epoch against wall-clock time (from the training report). Writes
JSON and a PNG curve; the model itself is kept too (``--model``).

    python benchmarks/train.py [--minutes 10] [--data ../shared/data/devices/gx-tiltdrive]

Targets on the 2-core machine: ESR <= 0.027 within 3 minutes, <= 0.01 within 10.
Reference points on the same files and machine: Neural Amp Modeler's trainer
(LSTM-32) 0.07 after 2 min, 0.05 after 5, 0.027 after 10; an LSTM-16 trained
3 minutes the naive way (MSE, no pre-emphasis) about 0.3.
"""

import argparse
import json
import time
from pathlib import Path

from ampnet.cli import main as ampnet
from ampnet.train.report import report_paths

ROOT = Path(__file__).resolve().parent.parent
NAM_REFERENCE = {"2 min": 0.07, "5 min": 0.05, "10 min": 0.027}


def best_by(epochs, seconds):
    """Best validation ESR reached within ``seconds`` of training."""
    values = [e["val_esr"] for e in epochs if e["seconds"] <= seconds]
    return min(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/devices/gx-tiltdrive"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/train"))
    parser.add_argument("--model", default=str(ROOT / "benchmarks/results/train-model.json"))
    args = parser.parse_args()
    data = Path(args.data)
    start = time.monotonic()
    code = ampnet(["train", str(data / "dry_train.flac"), str(data / "wet_train.flac"),
                   "--val-dry", str(data / "dry_val.flac"), "--val-wet", str(data / "wet_val.flac"),
                   "-o", args.model, "--minutes", str(args.minutes), "--overwrite",
                   "--name", "GxTiltDrive (drive 0.8)", "--gear", "Guitarix GxTiltTone, drive 0.8",
                   "--author", "ampnet"])
    wall = time.monotonic() - start
    if code:
        raise SystemExit(code)
    report = json.loads(report_paths(Path(args.model))[0].read_text())
    epochs = report["epochs"]
    result = {
        "data": str(data), "settings": report["settings"], "wall_seconds": wall,
        "latency_found": report["latency_samples"], "epochs": epochs,
        "best_val_esr": report["validation_esr"],
        "best_within": {"3 min": best_by(epochs, 180), "10 min": best_by(epochs, 600)},
        "targets": {"3 min": 0.027, "10 min": 0.01}, "nam_reference": NAM_REFERENCE,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(epochs, out.with_suffix(".png"))
    for label, value in result["best_within"].items():
        shown = "n/a" if value is None else f"{value:.4f}"
        print(f"best validation ESR within {label}: {shown} (target {result['targets'][label]})")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


def plot(epochs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.semilogy([e["seconds"] / 60 for e in epochs], [e["val_esr"] for e in epochs], "o-",
                label="ampnet (LSTM-32, defaults)")
    ax.semilogy([2, 5, 10], [0.07, 0.05, 0.027], "s--", label="NAM trainer (LSTM-32), same machine")
    ax.axhline(0.027, color="grey", lw=0.8, ls=":")
    ax.axhline(0.01, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="wall-clock minutes", ylabel="validation ESR", title="gx-tiltdrive: ESR vs time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
