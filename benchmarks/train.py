"""Training quality against wall-clock time: null tests at the device's TRUE delay.

For each device of ``../shared/data/devices`` (gx-tiltdrive, an overdrive pedal;
gx-studiopre, a driven tube preamp; neither has a pure delay: their true latency is
0) and each source of training audio, trains with ``ampnet train``'s defaults (LSTM-32,
through :func:`ampnet.train.pipeline.fit`), validating on the data set's
``dry_val/wet_val`` and testing on ``dry_test_real/wet_test_real`` (real DI guitar
through the device). Sources:

- ``synthetic``: the data set's ``dry_train/wet_train`` (sampled guitar), with the
  latency ampnet estimates from the playing;
- ``synthetic-true``: the same, told the true latency (``--latency 0``): what exact
  alignment is worth on that material;
- ``signal``: ampnet's capture signal re-amped through the device by
  ``../shared/tools/reamp-lv2`` (needs lv2apply and guitarix-lv2), latency from its clicks;
- ``signal+synthetic``: both takes end to end with a second of silence between
  (more coverage), at the latency the signal's clicks give;
- ``synthetic+6dB`` and ``signal+6dB``: the take, then the same take 6 dB hotter
  re-amped through the device (``reamp-lv2 --gain-db 6``; float files, so nothing
  clips before the device): coverage of levels above the take's own.

Every model is judged as capture makers judge it: rendered from the dry file
(``ampnet render``'s engine) and compared with the device's recording at the TRUE delay
(0), DC removed (``null_true``). Beside it: the same at the latency the run found
(``null_at_found``: what the report says) and the best over shifts of -3..+3 samples
(``best_shift``): the criterion is ``null_true <= 1.1 * best``. Writes
``benchmarks/results/train-DEVICE-SOURCE.json`` (and the model beside it) per run, and
``benchmarks/results/train.json`` with every run found there.

    python benchmarks/train.py [--minutes 10] [--devices gx-tiltdrive gx-studiopre]
                               [--sources synthetic signal] [--knobs]

Run devices in separate processes to use both cores (one thread each).
``--knobs`` also runs the knob-capture case (:mod:`train_knobs`).

Targets on the 2-core machine, 10 minutes, default settings, null test at the true
delay (validation / real DI): gx-tiltdrive <= 0.003 / <= 0.005; gx-studiopre <= 0.025
/ <= 0.04. Reference points: the NAM trainer's LSTM-32, 10 minutes on this machine
class, given aligned recordings: gx-tiltdrive 0.027 (validation), gx-studiopre 0.086 /
0.158.
"""

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ampnet.train.data import load_pair
from ampnet.train.pipeline import Capture, DataOptions, fit, save
from ampnet.train.trainer import TrainConfig, choose_threads
from machine import machine_facts

ROOT = Path(__file__).resolve().parent.parent
DEVICES = {
    "gx-tiltdrive": {"name": "GxTiltDrive (drive 0.8)", "gear": "Guitarix GxTiltTone, drive 0.8",
                     "targets": {"validation": 0.003, "real_di": 0.005},
                     "nam_lstm32_10min": {"validation": 0.027}},
    "gx-studiopre": {"name": "GxStudioPre (volume 1.0)",
                     "gear": "Guitarix Studio Pre, volume 1.0, bright on, master 0.3",
                     "targets": {"validation": 0.025, "real_di": 0.04},
                     "nam_lstm32_10min": {"validation": 0.086, "real_di": 0.158}},
}
SOURCES = ("synthetic", "synthetic-true", "signal", "signal+synthetic", "synthetic+6dB",
           "signal+6dB")
HOT_DB = 6.0  # the hotter copy of the +6dB sources
TRUE_LATENCY = 0  # the shared devices respond from their first sample (DEVICE.md)
SHIFTS = range(-3, 4)


def best_by(epochs, seconds):
    """Best selection ESR (per-epoch validation) reached within ``seconds`` of training."""
    values = [e["val_esr"] for e in epochs if e["seconds"] <= seconds]
    return min(values) if values else None


def reamped_signal(device, work):
    """The capture signal and its re-amp through ``device`` (written once into ``work``)."""
    import soundfile as sf

    from ampnet.capture.signal import generate
    from ampnet.io.files import atomic_output

    dry, wet = work / "capture-signal.wav", work / f"capture-signal-{device}.wav"
    if not dry.exists():  # atomically: two devices' runs may start together
        with atomic_output(dry) as tmp:
            sf.write(tmp, generate(48000), 48000, subtype="PCM_24")
    if not wet.exists():
        tool = ROOT.parent / "shared/tools/reamp-lv2"
        with atomic_output(wet) as tmp:
            subprocess.run([sys.executable, str(tool), device, str(dry), str(tmp)], check=True)
    return dry, wet


def hotter(device, dry, work, gain_db=HOT_DB):
    """``dry`` ``gain_db`` hotter and its re-amp through ``device`` (float WAVs in ``work``,
    written once)."""
    import numpy as np
    import soundfile as sf

    from ampnet.io.files import atomic_output

    stem = work / f"{Path(dry).stem}+{gain_db:g}dB"
    hot_dry, hot_wet = Path(f"{stem}.wav"), Path(f"{stem}-{device}.wav")
    if not hot_dry.exists():
        x = sf.read(dry, dtype="float32")[0] * np.float32(10 ** (gain_db / 20))
        with atomic_output(hot_dry) as tmp:
            sf.write(tmp, x, 48000, subtype="FLOAT")
    if not hot_wet.exists():
        tool = ROOT.parent / "shared/tools/reamp-lv2"
        with atomic_output(hot_wet) as tmp:
            subprocess.run([sys.executable, str(tool), device, str(dry), str(tmp),
                            f"--gain-db={gain_db}"], check=True)
    return hot_dry, hot_wet


def joined(pairs, stem):
    """The dry/wet ``pairs`` end to end, a second of silence between: ``stem``-dry.wav and
    ``stem``-wet.wav (48 kHz, float: a hotter copy may pass full scale)."""
    import numpy as np
    import soundfile as sf

    paths = []
    for index, side in enumerate(("dry", "wet")):
        parts = []
        for pair in pairs:
            parts += [sf.read(pair[index], dtype="float32")[0], np.zeros(48000, np.float32)]
        path = Path(f"{stem}-{side}.wav")
        sf.write(path, np.concatenate(parts), 48000, subtype="FLOAT")
        paths.append(path)
    return paths


def null_figures(model, dry_path, wet_path, found):
    """Null tests of ``model`` on one take: at the true delay, at the run's latency, and
    the best over :data:`SHIFTS` around the truth."""
    import soundfile as sf

    from ampnet.train.nulltest import null_test, render_output

    dry = sf.read(dry_path, dtype="float32")[0]
    wet = sf.read(wet_path, dtype="float32")[0]
    output = render_output(model, dry)
    by_shift = {shift: null_test(model, dry, wet, TRUE_LATENCY + shift, output=output).esr
                for shift in SHIFTS}
    at_found = (by_shift[found - TRUE_LATENCY] if found - TRUE_LATENCY in by_shift
                else null_test(model, dry, wet, found, output=output).esr)
    best = min(by_shift.values())
    return {"null_true": by_shift[0], "null_at_found": at_found, "best_shift": best,
            "best_shift_at": min(by_shift, key=by_shift.get),
            "true_within_1.1x_of_best": by_shift[0] <= 1.1 * best,
            "by_shift": {str(k): v for k, v in by_shift.items()}}


def train_device(device, source, data, minutes, out_dir, learning_rate=0.0, pre_emphasis=None):
    path = out_dir / f"train-{device}-{source}.json"
    data = Path(data)
    latency = TRUE_LATENCY if source == "synthetic-true" else None
    work = out_dir / "work"
    if source.startswith("synthetic"):
        dry, wet = data / "dry_train.flac", data / "wet_train.flac"
    else:
        dry, wet = reamped_signal(device, work)
        if source != "signal":
            latency = load_pair(str(dry), str(wet)).latency_samples  # from the clicks
    if source.endswith("+synthetic"):
        dry, wet = joined([(dry, wet), (data / "dry_train.flac", data / "wet_train.flac")],
                          work / f"{source}-{device}")
    elif source.endswith("+6dB"):
        dry, wet = joined([(dry, wet), hotter(device, dry, work)], work / f"{source}-{device}")
    captures = Capture(str(dry), str(wet))
    config = TrainConfig(minutes=minutes, learning_rate=learning_rate)
    if pre_emphasis is not None:
        config = replace(config, pre_emphasis=pre_emphasis)
    torch.set_num_threads(choose_threads(config))
    start = time.monotonic()
    model, report = fit(
        captures, config,
        validation=Capture(str(data / "dry_val.flac"), str(data / "wet_val.flac")),
        test=Capture(str(data / "dry_test_real.flac"), str(data / "wet_test_real.flac")),
        data=DataOptions(latency=latency),
        checkpoint=path.with_suffix(".ckpt"),
        metadata={"name": DEVICES[device]["name"], "gear": DEVICES[device]["gear"],
                  "author": "ampnet"})
    wall = time.monotonic() - start
    save(model, report, path)
    path.with_suffix(".ckpt").unlink(missing_ok=True)
    figures = report.figures
    found = figures["latency_samples"]
    return {
        "device": device, "source": source, "training_data": [str(dry), str(wet)],
        "model": str(path), "wall_seconds": round(wall, 1), "threads": torch.get_num_threads(),
        "latency_found": found, "latency_method": figures["latency_method"],
        "latency_peak": figures["latency_peak_samples"],
        "validation": null_figures(model, data / "dry_val.flac", data / "wet_val.flac", found),
        "real_di": null_figures(model, data / "dry_test_real.flac", data / "wet_test_real.flac",
                                found),
        "targets": DEVICES[device]["targets"], "nam_lstm32_10min": DEVICES[device]["nam_lstm32_10min"],
        "selection_esr_within": {"3 min": best_by(figures["epochs"], 180),
                                 "10 min": best_by(figures["epochs"], 600)},
        "stopped_because": figures["stopped_because"],
        "settings": figures["settings"], "epochs": figures["epochs"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--devices", nargs="*", default=list(DEVICES), choices=list(DEVICES))
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    parser.add_argument("--knobs", action="store_true", help="also the knob-capture case")
    parser.add_argument("--learning-rate", type=float, default=0.0,
                        help="Adam's initial rate (default: ampnet train's)")
    parser.add_argument("--pre-emphasis", type=float, default=None,
                        help="the loss's pre-emphasis coefficient (default: ampnet train's)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/devices"),
                        help="folder holding one folder per device")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    args = parser.parse_args()
    out = Path(args.out)
    (out / "work").mkdir(parents=True, exist_ok=True)
    for device in args.devices:
        for source in args.sources:
            run = train_device(device, source, Path(args.data) / device, args.minutes, out,
                               args.learning_rate, args.pre_emphasis)
            run["machine"], run["minutes"] = machine_facts(), args.minutes
            (out / f"train-{device}-{source}.run.json").write_text(json.dumps(run, indent=1))
            print(summary_line(run), flush=True)
    if args.knobs:
        import train_knobs
        train_knobs.main([f"--minutes={args.minutes:g}"])
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("train-*-*.run.json"))]
    if runs:
        (out / "train.json").write_text(json.dumps({"runs": runs}, indent=1))
        plot(runs, out / "train.png")
        print(f"machine: {runs[-1]['machine']['cpu']}, {runs[-1]['machine']['cores']} cores, "
              f"SIMD: {' '.join(runs[-1]['machine'].get('simd', [])) or 'none'}")
        for run in runs:
            print(summary_line(run))
        print(f"wrote {out / 'train.json'} and {out / 'train.png'}")


def summary_line(run):
    v, r, t = run["validation"], run["real_di"], run["targets"]
    return (f"{run['device']} on {run['source']}: null test at the true delay: validation "
            f"{v['null_true']:.4f} (target {t['validation']}, best shift {v['best_shift']:.4f} "
            f"at {v['best_shift_at']:+d}), real DI {r['null_true']:.4f} (target {t['real_di']}, "
            f"best {r['best_shift']:.4f}); at the found latency {run['latency_found']} "
            f"({run['latency_method']}): {v['null_at_found']:.4f} / {r['null_at_found']:.4f}")


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for run in runs:
        epochs = run["epochs"]
        line, = ax.semilogy([e["seconds"] / 60 for e in epochs], [e["val_esr"] for e in epochs],
                            "o-", ms=3, label=f"{run['device']} on {run['source']}: validation")
        ax.axhline(run["real_di"]["null_true"], color=line.get_color(), ls="--", lw=1,
                   label=f"{run['device']} on {run['source']}: real DI (final, true delay)")
    ax.set(xlabel="wall-clock minutes", ylabel="ESR (selection pass; final at the true delay)",
           title="ampnet train (LSTM-32, defaults)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
