"""Knob captures: one model for every setting, against a model of one setting.

``../shared/data/knob-captures/gx-tiltdrive``: an overdrive pedal (Guitarix
GxTiltTone) captured at 9 settings, drive {0.1, 0.55, 1.0} x tone {0.2, 0.5, 0.8},
60 s each from one DI; validation takes (30 s, another DI) at two settings not
captured and at one captured, (drive 0.55, tone 0.5). Two cases, each trained with
``ampnet train``'s defaults through :func:`ampnet.train.pipeline.fit`:

- ``knob``: one model on all 9 captures (held-out tails validate the captured
  settings that have no validation take);
- ``single``: a dedicated model on the (0.55, 0.5) capture alone, validated on
  the validation take at that setting.

Every figure is the report's null test (``ampnet render --param ...`` of the dry
file against the device's recording advanced by the latency). Each case writes
``benchmarks/results/train-knobs-CASE.json`` (and its model), so that the two can
run side by side on a 2-core machine (one torch thread each); the summary reads
both and writes ``benchmarks/results/train-knobs.json``.

    python benchmarks/train_knobs.py [--minutes 10] [--case knob single]

Targets on the 2-core machine, 10 minutes, LSTM-32: validation ESR <= 0.02 at each
unseen setting and <= 0.015 at the captured one; the knob model within 1.5x of the
single-setting model at (0.55, 0.5).
"""

import argparse
import json
import time
from pathlib import Path

import torch

from ampnet.train.captures import Capture
from ampnet.train.pipeline import fit, save
from ampnet.train.report import settings_table
from ampnet.train.trainer import TrainConfig, choose_threads
from machine import machine_facts

ROOT = Path(__file__).resolve().parent.parent
SINGLE = {"drive": 0.55, "tone": 0.5}
TARGETS = {"unseen": 0.02, "captured": 0.015, "knob_over_single": 1.5}


def capture_set(data):
    """Training captures and validation takes from the data set's ``settings.json``."""
    settings = json.loads((data / "settings.json").read_text())

    def take(entry):
        return Capture(str(data / entry["dry"]), str(data / entry["wet"]), dict(entry["controls"]))
    return [take(e) for e in settings["captures"]], [take(e) for e in settings["validation"]]


def run_case(case, data, minutes, out_dir, overrides=None, tag=""):
    captures, validation = capture_set(data)
    if case == "single":
        captures = [c for c in captures if c.settings == SINGLE]
        validation = [v for v in validation if v.settings == SINGLE]
        # One setting: a plain capture without knobs, as a user would train it.
        captures = [Capture(c.dry, c.wet) for c in captures]
        validation = [Capture(v.dry, v.wet) for v in validation]
    config = TrainConfig(minutes=minutes, **(overrides or {}))
    torch.set_num_threads(choose_threads(config))
    path = out_dir / f"train-knobs-{case}{tag}.json"
    start = time.monotonic()
    model, report = fit(captures, config, validation=validation,
                        checkpoint=path.with_name(path.stem + "-model.ckpt"),
                        metadata={"name": f"GxTiltTone knob capture ({case})",
                                  "gear": "Guitarix GxTiltTone, body 0.5, level 0.5",
                                  "author": "ampnet"})
    wall = time.monotonic() - start
    model_path = path.with_name(path.stem + "-model.json")
    save(model, report, model_path)
    figures = report.figures
    print("\n".join(settings_table(figures)))
    result = {"case": case, "machine": machine_facts(), "minutes": minutes,
              "wall_seconds": round(wall, 1), "threads": torch.get_num_threads(),
              "model": str(model_path), "validation_esr": figures["validation_esr"],
              "worst_setting": figures["worst_setting"],
              "rows": figures["null_test"]["validation"], "epochs": figures["epochs"],
              "latency_by_capture": figures["latency_by_capture"],
              "settings": figures["settings"]}
    path.write_text(json.dumps(result, indent=1))
    return result


def summary(out_dir):
    """Both cases side by side with the targets, if both have run."""
    results = {}
    for case in ("knob", "single"):
        path = out_dir / f"train-knobs-{case}.json"
        if path.exists():
            results[case] = json.loads(path.read_text())
    if len(results) < 2:
        return None
    knob, single = results["knob"], results["single"]
    at_single = next(r for r in knob["rows"] if r["setting"] == SINGLE and r["kind"] == "validation take")
    unseen = [r for r in knob["rows"] if r["unseen"]]
    single_esr = single["rows"][0]["esr"]
    figures = {
        "machine": knob["machine"], "minutes": knob["minutes"],
        "knob_model": {"unseen": {r["label"]: r["esr"] for r in unseen},
                       "captured_validation_take": {at_single["label"]: at_single["esr"]},
                       "held_out_tails": {r["label"]: r["esr"] for r in knob["rows"]
                                          if r["kind"] == "held-out tail"},
                       "epochs": len(knob["epochs"])},
        "single_setting_model": {"esr": single_esr, "epochs": len(single["epochs"])},
        "knob_over_single": at_single["esr"] / single_esr,
        "targets": TARGETS,
        "met": {"unseen": all(r["esr"] <= TARGETS["unseen"] for r in unseen),
                "captured": at_single["esr"] <= TARGETS["captured"],
                "knob_over_single": at_single["esr"] / single_esr <= TARGETS["knob_over_single"]},
    }
    (out_dir / "train-knobs.json").write_text(json.dumps(figures, indent=1))
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--case", nargs="+", default=["knob", "single"], choices=["knob", "single"])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/knob-captures/gx-tiltdrive"))
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks/results"))
    parser.add_argument("--config", action="append", default=[], metavar="FIELD=VALUE",
                        help="a TrainConfig field for an experiment, e.g. batch=32; the results "
                             "then go to train-knobs-CASE-FIELD-VALUE.json, not the summary")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overrides = {}
    for item in args.config:
        name, _, value = item.partition("=")
        overrides[name] = type(getattr(TrainConfig(), name))(value)
    tag = "".join(f"-{k}-{v}" for k, v in overrides.items())
    for case in args.case:
        run_case(case, Path(args.data), args.minutes, out_dir, overrides, tag)
    figures = None if overrides else summary(out_dir)
    if figures:
        machine = figures["machine"]
        print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, AVX-512: "
              f"{' '.join(machine['avx512']) or 'none'}; {figures['minutes']:g} min each")
        print(json.dumps({k: figures[k] for k in ("knob_model", "single_setting_model",
                                                   "knob_over_single", "met")}, indent=1))


if __name__ == "__main__":
    main()
