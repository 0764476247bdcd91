"""Training as one library call: from recordings to a model and its report.

    model, report = fit(Capture("di.wav", "amp.wav"), TrainConfig(minutes=5),
                        validation=Capture("val_di.wav", "val_amp.wav"))
    save(model, report, "amp.json")

:func:`fit` reads and checks the recordings, finds the latency, holds out
validation, scales the input, trains, and measures the result with null tests
(:mod:`ampnet.train.nulltest`); :func:`save` writes the model file and the report
next to it. ``ampnet train``, ``benchmarks/train.py`` and the tests all go through
here; the CLI only parses arguments, prints, and turns signals into exceptions.
Setting torch's thread count is the caller's business.
"""

import datetime
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ampnet.errors import AmpnetError, Stopped
from ampnet.train import data as train_data
from ampnet.train import nulltest, report as report_files
from ampnet.train.trainer import Trainer, TrainConfig


@dataclass
class Capture:
    """A dry (DI) recording and the same signal through the device (file paths)."""

    dry: str
    wet: str


@dataclass
class DataOptions:
    channel: int | None = None  # channel of multichannel files (default 0)
    resample: bool = False  # resample the wet to the dry's rate instead of refusing
    latency: int | None = None  # dry-to-wet latency in samples (default: measured)
    val_fraction: float = 0.15  # share held out for validation when no validation capture


@dataclass
class Report:
    """What a run measured: ``figures`` is the JSON report; the arrays feed its plot."""

    figures: dict
    history: object
    sample_rate: int
    val_target: np.ndarray = field(repr=False)
    val_output: np.ndarray = field(repr=False)

    @property
    def validation_esr(self) -> float:
        return self.figures["validation_esr"]

    @property
    def test_esr(self):
        return self.figures["test_esr"]


def fit(capture: Capture, config: TrainConfig, validation: Capture | None = None,
        test: Capture | None = None, data: DataOptions | None = None, checkpoint=None,
        resume=False, metadata=None, on_epoch=None, log=print):
    """Train a model on ``capture``; returns ``(model, report)``.

    ``validation`` and ``test`` are other takes through the same rig (same latency);
    without ``validation`` the last ``data.val_fraction`` of the playing is held out.
    ``checkpoint`` (a path) is written every epoch; ``resume`` continues from it.
    ``on_epoch(dict)`` is called after every epoch with its figures. Ctrl-C or
    :class:`~ampnet.errors.Stopped` during training ends it early and keeps the best
    weights (``report.figures["stopped_because"]`` says so). ``log`` receives the
    notes (one line each).
    """
    data = data or DataOptions()
    pair = train_data.load_pair(capture.dry, capture.wet, data.channel, data.resample, data.latency)
    for note in pair.notes:
        log(f"note: {note}")
    # Validation and test takes come from the same rig: the training pair's latency
    # holds for them (a separate estimate could differ by a sample, which alone costs
    # a bright model several hundredths of ESR).
    val_pair = _same_rig(validation, "validation", pair, data, log)
    test_pair = _same_rig(test, "test", pair, data, log)
    if val_pair:
        train, val = (pair.dry, pair.wet), (val_pair.dry, val_pair.wet)
        val_frames = (0, None)
    else:
        train, val, cut = train_data.split_validation(pair, data.val_fraction)
        val_frames = (pair.dry_offset + cut, pair.dry_offset + pair.dry.size)
        log(f"note: last {val[0].size / pair.sample_rate:.1f} s held out for validation "
            f"(from {val_frames[0] / pair.sample_rate:.2f} s of {capture.dry})")
    input_scale = train_data.input_scale_for(train[0])

    trainer = Trainer(config, input_scale, checkpoint, on_epoch=on_epoch)
    if resume:
        trainer.load_checkpoint(checkpoint)
        log(f"resuming from {checkpoint} after epoch {len(trainer.history.epochs)}")
    log(f"training LSTM-{config.hidden} x {config.layers} layer(s), skip "
        f"{'on' if config.skip else 'off'}, on {train[0].size / pair.sample_rate:.1f} s "
        f"({config.device}, {torch.get_num_threads()} threads); budget {config.minutes:g} min. Ctrl-C stops early and keeps the "
        "best model.")
    try:
        history = trainer.fit(train, val)
    except (KeyboardInterrupt, Stopped) as stop:
        trainer.net.load_state_dict(trainer.best_state)
        history = trainer.history
        why = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else str(stop)
        history.stopped_because = f"interrupted ({why}); resume with --resume"
        log(f"interrupted ({why}): keeping the best model so far")
        if not history.epochs:
            raise AmpnetError("interrupted before the first epoch ended; nothing to save") from None

    model = trainer.net.to_model(pair.sample_rate, {})
    # The reported figures are null tests: the real-time engine over the dry file as
    # `ampnet render` plays it, against the wet advanced by the latency only.
    source = val_pair if val_pair is not None else pair
    val_null = nulltest.null_test(model, source.source_dry, source.source_wet,
                                  pair.latency_samples, *val_frames)
    test_null = (nulltest.null_test(model, test_pair.source_dry, test_pair.source_wet,
                                    pair.latency_samples) if test_pair else None)
    word, advice = report_files.verdict(val_null.esr)
    train_seconds = train[0].size / pair.sample_rate
    if advice and train_seconds < 120:
        advice = f"only {train_seconds:.0f} s of training audio: record 3+ minutes. Other " + advice
    val_capture = validation or capture
    model.metadata.update(metadata or {})
    model.metadata.update({
        "date": model.metadata.get("date") or datetime.date.today().isoformat(),
        "training_data": f"{Path(capture.dry).name} / {Path(capture.wet).name}: "
                         f"{train_seconds:.1f} s train, "
                         f"{val[0].size / pair.sample_rate:.1f} s validation, {pair.sample_rate} Hz",
        "validation_esr": round(val_null.esr, 6), "latency_samples": pair.latency_samples,
        # Level of the model's output on the validation audio, so that hosts can match
        # levels when switching models (RMS in dBFS; no K-weighting).
        "loudness_dbfs": round(float(20 * np.log10(
            np.sqrt(np.mean(val_null.output.astype(np.float64) ** 2)) + 1e-12)), 2),
    })
    if test_null:
        model.metadata["test_esr"] = round(test_null.esr, 6)

    def described(null, take):
        return {"esr": null.esr, "dry": take.dry, "wet": take.wet,
                "first_frame": null.first_frame, "last_frame": null.last_frame}

    figures = {
        "validation_esr": val_null.esr, "verdict": word, "advice": advice,
        "test_esr": test_null.esr if test_null else None,
        "null_test": {
            "how": f"ampnet render of the dry file against the wet advanced by the latency "
                   f"({pair.latency_samples} samples); frames [first_frame, last_frame) of the "
                   f"dry; DC {nulltest.DC_HANDLING}",
            "latency_samples": pair.latency_samples,
            "validation": described(val_null, val_capture),
            "test": described(test_null, test) if test_null else None,
        },
        "selection_val_esr": history.best_val_esr,
        "latency_samples": pair.latency_samples, "latency_confidence": pair.latency_confidence,
        "latency_peak_samples": pair.latency_peak_samples,
        "training_seconds": round(trainer.elapsed_before, 1),
        "stopped_because": history.stopped_because, "best_epoch": history.best_epoch,
        "epochs": history.epochs, "notes": pair.notes,
        "settings": asdict(config) | {"input_scale": input_scale, "dry": capture.dry,
                                      "wet": capture.wet},
    }
    return model, Report(figures, history, pair.sample_rate, val_null.target, val_null.output)


def save(model, report: Report, path):
    """Write the model file at ``path`` and ``NAME.report.json``/``.png`` beside it
    (each atomically); returns the report's two paths."""
    from ampnet.formats import save_model

    path = Path(path)
    save_model(model, path, overwrite=True)
    report_json, report_png = report_files.report_paths(path)
    report_files.write_report_json(report_json, {"model": str(path)} | report.figures)
    report_files.write_report_png(report_png, report.val_target, report.val_output,
                                  report.sample_rate, report.history)
    return report_json, report_png


def _same_rig(take, role, pair, data, log):
    """A validation or test pair at the training pair's latency and rate, or None."""
    if take is None:
        return None
    extra = train_data.load_pair(take.dry, take.wet, data.channel, data.resample,
                                 pair.latency_samples)
    if extra.sample_rate != pair.sample_rate:
        raise AmpnetError(f"{take.dry}: {role} audio is at {extra.sample_rate} Hz, training audio "
                          f"at {pair.sample_rate} Hz; use one rate")
    for note in extra.notes:
        log(f"note ({role}): {note}")
    return extra
