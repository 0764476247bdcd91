"""Training as one library call: from recordings to a model and its report.

    model, report = fit(Capture("di.wav", "amp.wav"), TrainConfig(minutes=5),
                        validation=Capture("val_di.wav", "val_amp.wav"))
    save(model, report, "amp.json")

    # a knob capture set: the same DI through the pedal at several settings
    sets = [Capture("di.wav", f"drive{d}.wav", {"drive": d}) for d in (0, 5, 10)]
    model, report = fit(sets, TrainConfig(), validation=Capture("di.wav", "drive7.wav", {"drive": 7}))

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
from ampnet.train import captures as knob_checks
from ampnet.train import data as train_data
from ampnet.train import nulltest, report as report_files
from ampnet.train.alignment import Alignment
from ampnet.train.captures import Capture, CaptureSet
from ampnet.train.trainer import Segment, Trainer, TrainConfig, resolve_defaults


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
    alignment: Alignment | None = None  # the rig's latency, how it was found, its range

    @property
    def validation_esr(self) -> float:
        return self.figures["validation_esr"]

    @property
    def test_esr(self):
        return self.figures["test_esr"]


@dataclass
class Take:
    """One capture or validation/test take, read and aligned: where its null test runs."""

    capture: Capture
    pair: train_data.Pair
    role: str  # "capture", "validation" or "test"


@dataclass
class Scored:
    """A validation or test row of the report: a take's null test at its setting."""

    take: Take
    kind: str  # "held-out tail", "validation take", "test take"
    unseen: bool  # its setting is not one the model was trained on
    frames: tuple  # dry frames [first, last) compared; last None = to the end
    segment: object = None  # the trainer's Segment (validation rows)
    null: object = None  # the NullTest, once the model exists

    def row(self) -> dict:
        return {"setting": dict(self.take.capture.settings), "label": self.take.capture.label(),
                "kind": self.kind, "unseen": self.unseen, "esr": self.null.esr,
                "dry": self.take.capture.dry, "wet": self.take.capture.wet,
                "first_frame": self.null.first_frame, "last_frame": self.null.last_frame}


def fit(captures, config: TrainConfig, validation=None, test=None, knobs=None,
        data: DataOptions | None = None, checkpoint=None, resume=False, metadata=None,
        on_epoch=None, log=print):
    """Train a model on ``captures``; returns ``(model, report)``.

    ``captures`` is a :class:`Capture`, a list of them (a knob capture set: each with
    its ``settings``) or a :class:`~ampnet.train.captures.CaptureSet`. ``validation``
    and ``test`` are further takes through the same rig (a Capture or a list; at any
    setting inside the captured ranges); ``knobs`` declares ranges and defaults
    (name -> :class:`~ampnet.train.captures.KnobDeclaration`). Each captured setting is
    validated on the validation takes at that setting, else on the last
    ``data.val_fraction`` of its playing, held out. ``checkpoint`` (a path) is written
    every epoch; ``resume`` continues from it. ``on_epoch(dict)`` is called after
    every epoch with its figures. Ctrl-C or :class:`~ampnet.errors.Stopped` during
    training ends it early and keeps the best weights (``report.figures
    ["stopped_because"]`` says so). ``log`` receives the notes (one line each).
    """
    capture_set = _as_set(captures, validation, test, knobs)
    model_knobs = knob_checks.knobs_of(capture_set)
    data = data or DataOptions()
    if model_knobs:
        for label in knob_checks.repeated_settings(capture_set.captures):
            log(f"note: {label} is captured more than once (fine: more data at that setting)")
    elif len(capture_set.captures) > 1:
        log(f"note: {len(capture_set.captures)} takes without knob settings: one model of "
            "one setting, trained on all of them")
    takes = [_load(c, "capture", data, data.latency, log) for c in capture_set.captures]
    rate = takes[0].pair.sample_rate
    for take in takes[1:]:
        if take.pair.sample_rate != rate:
            raise AmpnetError(f"{take.capture.wet}: at {take.pair.sample_rate} Hz, "
                              f"{takes[0].capture.wet} at {rate} Hz; export every capture at one rate")
    alignment = _rig_alignment(takes, log)
    # Validation and test takes come from the same rig: its latency holds for them (a
    # separate estimate could differ by a sample, which alone costs a bright model
    # several hundredths of ESR).
    val_takes = [_load(c, "validation", data, alignment.samples, log, rate)
                 for c in capture_set.validation]
    test_takes = [_load(c, "test", data, alignment.samples, log, rate) for c in capture_set.test]

    def normalized(settings):
        return np.array([(settings[k.name] - k.minimum) / (k.maximum - k.minimum)
                         for k in model_knobs], np.float32)

    captured = {_key(c.settings) for c in capture_set.captures}
    with_takes = {_key(t.capture.settings) for t in val_takes}
    train_segments, scored = [], []
    for take in takes:
        pair, inputs = take.pair, normalized(take.capture.settings)
        if _key(take.capture.settings) in with_takes:
            train_segments.append(Segment(pair.dry, pair.wet, inputs))
            continue
        on_signal = pair.signal is not None and pair.dry_offset == 0
        train, val, cut = (train_data.split_capture_signal(pair) if on_signal
                           else train_data.split_validation(pair, data.val_fraction))
        train_segments.append(Segment(*train, inputs))
        scored.append(Scored(take, "held-out tail", False,
                             (pair.dry_offset + cut, pair.dry_offset + cut + val[0].size),
                             Segment(*val, inputs)))
        if len(takes) == 1:
            held = "the capture signal's validation section" if on_signal else f"last {val[0].size / rate:.1f} s"
            log(f"note: {held} held out for validation ({scored[-1].frames[0] / rate:.2f} to "
                f"{scored[-1].frames[1] / rate:.2f} s of {take.capture.dry})")
    for take in val_takes:
        scored.append(Scored(take, "validation take", _key(take.capture.settings) not in captured,
                             (0, None), Segment(take.pair.dry, take.pair.wet,
                                                normalized(take.capture.settings))))
    if len(takes) > 1:
        log(f"note: validation: {sum(s.kind == 'held-out tail' for s in scored)} held-out "
            f"tail(s), {len(val_takes)} validation take(s) "
            f"({sum(s.unseen for s in scored)} at settings not trained on)")
    config = resolve_defaults(config, len(captured))
    input_scale = train_data.input_scale_for(np.concatenate([s.dry for s in train_segments]))
    train_seconds = sum(s.dry.size for s in train_segments) / rate

    trainer = Trainer(config, input_scale, checkpoint, on_epoch=on_epoch, knobs=len(model_knobs),
                      captures=[f"{c.dry} | {c.wet} | {c.label()}" for c in capture_set.captures])
    if resume:
        trainer.load_checkpoint(checkpoint)
        log(f"resuming from {checkpoint} after epoch {len(trainer.history.epochs)}")
    knob_text = f", knobs {', '.join(k.name for k in model_knobs)}" if model_knobs else ""
    log(f"training LSTM-{config.hidden} x {config.layers} layer(s), skip "
        f"{'on' if config.skip else 'off'}{knob_text}, on {train_seconds:.1f} s in "
        f"{config.batch} streams "
        f"({config.device}, {torch.get_num_threads()} threads); budget {config.minutes:g} min. "
        "Ctrl-C stops early and keeps the best model.")
    try:
        history = trainer.fit(train_segments, [s.segment for s in scored])
    except (KeyboardInterrupt, Stopped) as stop:
        trainer.net.load_state_dict(trainer.best_state)
        history = trainer.history
        why = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else str(stop)
        history.stopped_because = f"interrupted ({why}); resume with --resume"
        log(f"interrupted ({why}): keeping the best model so far")
        if not history.epochs:
            raise AmpnetError("interrupted before the first epoch ended; nothing to save") from None

    model = trainer.net.to_model(rate, {}, model_knobs)
    # The reported figures are null tests: the real-time engine over the dry file as
    # `ampnet render --param ...` plays it, against the wet advanced by the latency only.
    val_rows = scored
    test_rows = [Scored(t, "test take", _key(t.capture.settings) not in captured, (0, None))
                 for t in test_takes]
    rendered = {}  # one render per (dry file, setting): held-out tails share them
    for row in val_rows + test_rows:
        pair, capture = row.take.pair, row.take.capture
        key = (capture.dry, _key(capture.settings))
        if key not in rendered:
            rendered[key] = nulltest.render_output(model, pair.source_dry, capture.settings)
        row.null = nulltest.null_test(model, pair.source_dry, pair.source_wet,
                                      pair.latency_samples, *row.frames, output=rendered[key])
    val_esr = float(np.mean([s.null.esr for s in val_rows]))
    worst = max(val_rows, key=lambda s: s.null.esr)
    test_esr = float(np.mean([s.null.esr for s in test_rows])) if test_rows else None
    word, advice = report_files.verdict(worst.null.esr, latency_exact=alignment.method == "clicks"
                                        and alignment.is_exact)
    if advice and train_seconds < 120:
        advice = f"only {train_seconds:.0f} s of training audio: record 3+ minutes. Other " + advice
    model.metadata.update(metadata or {})
    first = capture_set.captures[0]
    if len(takes) == 1:
        described_data = f"{Path(first.dry).name} / {Path(first.wet).name}"
    elif model_knobs:
        described_data = (f"{len(takes)} captures at {len(captured)} settings of "
                          f"{', '.join(k.name for k in model_knobs)}")
    else:
        described_data = f"{len(takes)} takes of one setting"
    val_seconds = sum(s.segment.dry.size for s in val_rows) / rate
    model.metadata.update({
        "date": model.metadata.get("date") or datetime.date.today().isoformat(),
        "training_data": f"{described_data}: {train_seconds:.1f} s train, {val_seconds:.1f} s "
                         f"validation, {rate} Hz",
        "validation_esr": round(val_esr, 6),
        **{k: v for k, v in alignment.figures().items() if v is not None},
        # Level of the model's output on the validation audio, so that hosts can match
        # levels when switching models (RMS in dBFS; no K-weighting).
        "loudness_dbfs": round(float(20 * np.log10(
            np.sqrt(np.mean(val_rows[0].null.output.astype(np.float64) ** 2)) + 1e-12)), 2),
    })
    if test_esr is not None:
        model.metadata["test_esr"] = round(test_esr, 6)

    figures = {
        "validation_esr": val_esr, "verdict": word, "advice": advice, "test_esr": test_esr,
        "worst_setting": {"label": worst.take.capture.label(), "esr": worst.null.esr},
        "knobs": [asdict(k) for k in model_knobs],
        "null_test": {
            "how": f"ampnet render of the dry file (knobs at the take's setting) against the wet "
                   f"advanced by the latency; frames [first_frame, last_frame) of the dry; DC "
                   f"{nulltest.DC_HANDLING}; validation_esr and test_esr are the means over the "
                   "rows, the verdict is on the worst validation row",
            "latency_samples": alignment.samples,
            "validation": [s.row() for s in val_rows],
            "test": [s.row() for s in test_rows],
        },
        "selection_val_esr": history.best_val_esr,
        **alignment.figures(),
        "latency_by_capture": [{"wet": t.capture.wet, "setting": t.capture.label()}
                               | t.pair.alignment.figures() for t in takes],
        "training_seconds": round(trainer.elapsed_before, 1),
        "stopped_because": history.stopped_because, "best_epoch": history.best_epoch,
        "epochs": history.epochs, "notes": [n for t in takes for n in t.pair.notes],
        "settings": asdict(config) | {"input_scale": input_scale, "dry": first.dry,
                                      "wet": first.wet},
    }
    return model, Report(figures, history, rate, worst.null.target, worst.null.output, alignment)


def save(model, report: Report, path):
    """Write the model file at ``path`` and ``NAME.report.json``/``.png`` beside it
    (each atomically); returns the report's two paths."""
    from ampnet.formats import save_model

    path = Path(path)
    save_model(model, path, overwrite=True)
    report_json, report_png = report_files.report_paths(path)
    report_files.write_report_json(report_json, {"model": str(path)} | report.figures)
    report_files.write_report_png(report_png, report.val_target, report.val_output,
                                  report.sample_rate, report.history,
                                  [k["name"] for k in report.figures["knobs"]],
                                  report.figures["null_test"]["validation"])
    return report_json, report_png


def _as_set(captures, validation, test, knobs) -> CaptureSet:
    def listed(value):
        return [] if value is None else [value] if isinstance(value, Capture) else list(value)
    if isinstance(captures, CaptureSet):
        if validation is not None or test is not None or knobs is not None:
            raise TypeError("give validation, test and knobs inside the CaptureSet")
        return captures
    captures = listed(captures)
    if not captures:
        raise AmpnetError("no captures to train on")
    return CaptureSet(captures, listed(validation), listed(test), dict(knobs or {}))


def _key(settings):
    return tuple(sorted(settings.items()))


def _load(capture, role, data, latency, log, rate=None) -> Take:
    """Read, check and align one take (``latency`` None: measure it)."""
    pair = train_data.load_pair(capture.dry, capture.wet, data.channel, data.resample, latency)
    if rate is not None and pair.sample_rate != rate:
        raise AmpnetError(f"{capture.dry}: {role} audio is at {pair.sample_rate} Hz, training "
                          f"audio at {rate} Hz; use one rate")
    prefix = "note" if role == "capture" else f"note ({role})"
    for note in pair.notes:
        log(f"{prefix}: {note}")
    return Take(capture, pair, role)


LATENCY_SPREAD = 2  # samples: captures of one session that disagree by more are worth a word


def _rig_alignment(takes, log) -> Alignment:
    """The alignment of the rig, which validation and test takes use: the one take's,
    else the median of the captures' (after showing each) with their range."""
    if len(takes) == 1:
        return takes[0].pair.alignment
    found = [t.pair.alignment for t in takes]
    log("latency by capture (samples):")
    for take in takes:
        log(f"  {take.pair.latency_samples:6d}  {take.capture.label():30s} {take.capture.wet}")
    samples = [a.samples for a in found]
    if max(samples) - min(samples) > LATENCY_SPREAD:
        log(f"warning: the captures' latencies differ by {max(samples) - min(samples)} samples; "
            "captures of one reamp session normally agree within a couple of samples. Check "
            "the outliers, or pass --latency N to use one value for all")
    methods = {a.method for a in found}
    median = int(np.median(samples))
    if len(set(samples)) == 1 and all(a.is_exact for a in found) and len(methods) == 1:
        return Alignment.exact(median, methods.pop())
    return Alignment(median, "estimated" if "estimated" in methods else methods.pop(),
                     min(a.low for a in found), max(a.high for a in found))
