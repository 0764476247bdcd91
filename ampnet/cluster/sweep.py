"""A settings sweep for one capture on Ray Tune: hidden size, layers, learning rate,
the loss's pre-emphasis and time budget per trial, poor trials stopped early.

Every trial runs :func:`ampnet.cli.train_cmd.train_to_file` (what ``ampnet train``
runs) into ``MODEL.sweep/TRIAL.json`` and reports each epoch's validation ESR to Tune
through the training's ``on_epoch`` callback. The ASHA scheduler (Li et al., "A System
for Massively Parallel Hyperparameter Tuning", MLSys 2020) stops trials whose ESR
trails the others' at the same epoch. The finished trial with the lowest null-test
ESR becomes ``MODEL.json``, its report carrying the sweep's table.
"""

import argparse
import json
import shutil
from pathlib import Path

from ampnet.cluster.connect import Cluster
from ampnet.errors import AmpnetError
from ampnet.io.files import atomic_output, write_text_atomic

SWEEPABLE = {"hidden": int, "layers": int, "lr": float, "pre_emphasis": float, "minutes": float}


def parse_space(texts):
    """``["hidden=16,32", "lr=0.005,0.01"]`` -> ``{"hidden": [16, 32], "lr": [0.005, 0.01]}``
    (``pre-emphasis`` as the option is spelt, or ``pre_emphasis``)."""
    space = {}
    for text in texts:
        name, _, values = text.partition("=")
        name = name.replace("-", "_")
        kind = SWEEPABLE.get(name)
        try:
            parsed = [kind(v) for v in values.split(",")] if kind and values else []
        except ValueError:
            parsed = []
        if not parsed:
            raise AmpnetError(f"--sweep {text}: write NAME=V1,V2,... with NAME one of "
                              f"{', '.join(n.replace('_', '-') for n in SWEEPABLE)}, "
                              "e.g. --sweep hidden=16,32")
        space[name] = parsed
    return space


def sweep(args, capture_set, output, space):
    """Run the sweep; writes the best model at ``output``; returns the table as text."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from ampnet.cli import train_cmd

    output = output.resolve()
    if output.exists() and not args.overwrite:
        raise AmpnetError(f"{output}: already exists; pass --overwrite to replace it")
    trials = output.with_suffix(".sweep")
    trials.mkdir(parents=True, exist_ok=True)
    for name, values in space.items():  # every value checked before any trial starts
        for value in values:
            train_cmd.check_arguments(argparse.Namespace(**{**vars(args), name: value}))

    def trial(config):
        trial_args = argparse.Namespace(**{**vars(args), **config, "overwrite": True,
                                           "resume": False, "name": output.stem})
        path = trials / f"{tune.get_context().get_trial_id()}.json"
        summary = train_cmd.train_to_file(
            trial_args, capture_set, path, log=lambda line: None,
            on_epoch=lambda e: tune.report({"best_val_esr": e["best_val_esr"],
                                            "epoch": e["epoch"]}))
        # One step past the last epoch: Tune ends a trial as it reaches max_t, and this
        # trial has its model to write first.
        tune.report({"best_val_esr": summary["validation_esr"], "epoch": args.epochs + 1,
                     "model": str(path), "null_test_esr": summary["validation_esr"]})

    with Cluster(args.cluster) as cluster:
        cluster.check_shared_storage({p for c in capture_set.captures for p in (c.dry, c.wet)},
                                     {trials})
        tuner = tune.Tuner(
            tune.with_resources(trial, {"cpu": 1}),
            param_space={name: tune.grid_search(values) for name, values in space.items()},
            tune_config=tune.TuneConfig(
                metric="best_val_esr", mode="min",
                scheduler=ASHAScheduler(time_attr="epoch", max_t=args.epochs + 1,
                                        grace_period=max(1, min(3, args.epochs // 4)),
                                        reduction_factor=2)),
            run_config=tune.RunConfig(storage_path=str(trials), name="tune", verbose=0))
        results = tuner.fit()
    rows = []
    for result in results:
        metrics = result.metrics or {}
        finished = "null_test_esr" in metrics
        rows.append({**{k: result.config[k] for k in space},
                     "epochs": min(int(metrics.get("epoch", 0)), args.epochs),
                     "validation_esr": metrics.get("null_test_esr", metrics.get("best_val_esr")),
                     "status": "finished" if finished else "stopped early (ASHA)"
                     if result.error is None else f"failed: {result.error}",
                     "model": metrics.get("model")})
    done = [r for r in rows if r["status"] == "finished"]
    if not done:
        raise AmpnetError(f"no trial of the sweep finished ({rows[0]['status']}); Tune's "
                          f"records are in {trials / 'tune'}")
    best = min(done, key=lambda r: r["validation_esr"])
    _write_best(Path(best["model"]), output, rows)
    header = [*space, "epochs", "validation ESR", "status"]
    lines = ["  ".join(f"{h:>14}" for h in header)]
    for row in sorted(rows, key=lambda r: (r["validation_esr"] is None, r["validation_esr"] or 0)):
        esr = f"{row['validation_esr']:.4f}" if row["validation_esr"] is not None else "-"
        mark = "  <- best" if row is best else ""
        lines.append("  ".join(f"{str(row[k]):>14}" for k in space)
                     + f"  {row['epochs']:>14}  {esr:>14}  {row['status']}{mark}")
    return "\n".join(lines + [f"best model: {output} (its report has this table)"])


def _write_best(trial_model, output, rows):
    """The best trial's model and report at ``output``, the report with the sweep's table."""
    from ampnet.train.report import report_paths

    with atomic_output(output) as tmp:
        shutil.copyfile(trial_model, tmp)
    source_json, source_png = report_paths(trial_model)
    report = json.loads(source_json.read_text())
    report["model"] = str(output)
    report["sweep"] = [{k: v for k, v in r.items() if k != "model"} for r in rows]
    target_json, target_png = report_paths(output)
    write_text_atomic(target_json, json.dumps(report, indent=2) + "\n")
    with atomic_output(target_png) as tmp:
        shutil.copyfile(source_png, tmp)
