"""Training quality against wall-clock time: null-test ESR on validation and on real DI.

For each device of ``../shared/data/devices`` (gx-tiltdrive, an overdrive pedal;
gx-studiopre, a driven tube preamp), trains with ``ampnet train``'s defaults
(LSTM-32, through :func:`ampnet.train.pipeline.fit`) on ``dry_train/wet_train``, validating on the data set's ``dry_val/wet_val``
and testing on ``dry_test_real/wet_test_real`` (real DI guitar through the device).
Every figure is the report's null test: the model as ``ampnet render`` plays the dry
file, against the device's recording advanced by the latency only. Also records
validation ESR per epoch against wall-clock time. Writes
``benchmarks/results/train.json``, a PNG of the curves, and keeps the models.

    python benchmarks/train.py [--minutes 10] [--devices gx-tiltdrive gx-studiopre] [--knobs]

``--knobs`` also runs the knob-capture case (:mod:`train_knobs`: one model for 9
settings of an overdrive pedal against a model of one setting); ``--devices`` with
no name runs only that.

Targets on the 2-core machine, 10 minutes, default settings (validation / real DI):
gx-tiltdrive <= 0.01 / <= 0.01; gx-studiopre <= 0.02 / <= 0.04. Reference points:
the NAM trainer's LSTM-32, 10 minutes on this machine class: gx-tiltdrive 0.027
(validation), gx-studiopre 0.086 / 0.158.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from ampnet.train.pipeline import Capture, fit, save
from ampnet.train.trainer import TrainConfig, choose_threads
from machine import machine_facts

ROOT = Path(__file__).resolve().parent.parent
DEVICES = {
    "gx-tiltdrive": {"name": "GxTiltDrive (drive 0.8)", "gear": "Guitarix GxTiltTone, drive 0.8",
                     "targets": {"validation": 0.01, "real_di": 0.01},
                     "nam_lstm32_10min": {"validation": 0.027}},
    "gx-studiopre": {"name": "GxStudioPre (volume 1.0)",
                     "gear": "Guitarix Studio Pre, volume 1.0, bright on, master 0.3",
                     "targets": {"validation": 0.02, "real_di": 0.04},
                     "nam_lstm32_10min": {"validation": 0.086, "real_di": 0.158}},
}


def best_by(epochs, seconds):
    """Best selection ESR (per-epoch validation) reached within ``seconds`` of training."""
    values = [e["val_esr"] for e in epochs if e["seconds"] <= seconds]
    return min(values) if values else None


def train_device(device, data, minutes, out_dir):
    path = out_dir / f"train-{device}.json"
    data = Path(data)
    config = TrainConfig(minutes=minutes)
    torch.set_num_threads(choose_threads(config))
    start = time.monotonic()
    model, report = fit(
        Capture(str(data / "dry_train.flac"), str(data / "wet_train.flac")), config,
        validation=Capture(str(data / "dry_val.flac"), str(data / "wet_val.flac")),
        test=Capture(str(data / "dry_test_real.flac"), str(data / "wet_test_real.flac")),
        checkpoint=path.with_suffix(".ckpt"),
        metadata={"name": DEVICES[device]["name"], "gear": DEVICES[device]["gear"],
                  "author": "ampnet"})
    wall = time.monotonic() - start
    save(model, report, path)
    figures = report.figures
    return {
        "data": str(data), "model": str(path), "wall_seconds": round(wall, 1),
        "threads": torch.get_num_threads(),
        "latency_found": figures["latency_samples"],
        "latency_peak": figures["latency_peak_samples"],
        "null_test": {"validation": figures["validation_esr"], "real_di": figures["test_esr"]},
        "targets": DEVICES[device]["targets"], "nam_lstm32_10min": DEVICES[device]["nam_lstm32_10min"],
        "selection_esr_within": {"3 min": best_by(figures["epochs"], 180),
                                 "10 min": best_by(figures["epochs"], 600)},
        "settings": figures["settings"], "epochs": figures["epochs"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--devices", nargs="*", default=list(DEVICES), choices=list(DEVICES))
    parser.add_argument("--knobs", action="store_true", help="also the knob-capture case")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/devices"),
                        help="folder holding one folder per device")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/train"))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine_facts(), "minutes": args.minutes, "devices": {}}
    for device in args.devices:
        result["devices"][device] = train_device(device, Path(args.data) / device, args.minutes,
                                                 out.parent)
        out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    if args.knobs:
        import train_knobs
        train_knobs.main([f"--minutes={args.minutes:g}"])
    if not result["devices"]:
        return
    plot(result["devices"], out.with_suffix(".png"))
    print(f"\nmachine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
          f"AVX-512: {' '.join(result['machine']['avx512']) or 'none'}")
    for device, figures in result["devices"].items():
        null, targets = figures["null_test"], figures["targets"]
        print(f"{device}: null-test ESR validation {null['validation']:.4f} (target "
              f"{targets['validation']}), real DI {null['real_di']:.4f} (target {targets['real_di']}); "
              f"latency {figures['latency_found']} (correlation peak {figures['latency_peak']})")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


def plot(devices, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for device, figures in devices.items():
        epochs = figures["epochs"]
        line, = ax.semilogy([e["seconds"] / 60 for e in epochs], [e["val_esr"] for e in epochs],
                            "o-", ms=3, label=f"{device}: validation per epoch")
        ax.axhline(figures["null_test"]["real_di"], color=line.get_color(), ls="--", lw=1,
                   label=f"{device}: real DI (final)")
    ax.set(xlabel="wall-clock minutes", ylabel="ESR", title="ampnet train (LSTM-32, defaults)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
