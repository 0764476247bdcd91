"""``ampnet train DRY WET -o MODEL.json``: from a pair of recordings to a model file.

torch is imported only when this command runs, so the rest of the CLI works
without the ``train`` extra.
"""

import datetime
import sys
from pathlib import Path

import numpy as np

from ampnet import limits
from ampnet.errors import AmpnetError, Stopped
from ampnet.formats.model import lstm_parameter_count
from ampnet.train import data as train_data


def add_parser(sub):
    p = sub.add_parser("train", help="train a model from a dry (DI) and a wet (device) recording",
                       description="Train an LSTM capture from a dry (DI) recording and the same "
                                   "signal recorded through the device.")
    p.add_argument("dry", help="dry (DI) recording: WAV, FLAC or AIFF")
    p.add_argument("wet", help="the same signal through the device")
    p.add_argument("-o", "--output", required=True, help="model file to write (.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    data = p.add_argument_group("data")
    data.add_argument("--val-dry", help="separate validation dry recording")
    data.add_argument("--val-wet", help="separate validation wet recording")
    data.add_argument("--test-dry", help="test dry recording, e.g. real DI playing: its null-test "
                                         "ESR is reported beside validation's (not used in training)")
    data.add_argument("--test-wet", help="the test dry through the device")
    data.add_argument("--val-fraction", type=float, default=0.15,
                      help="share of the pair held out for validation when no --val-* (default 0.15)")
    data.add_argument("--channel", type=int, help="channel of multichannel files (default 0)")
    data.add_argument("--resample", action="store_true", help="resample the wet to the dry's rate")
    data.add_argument("--latency", type=int, help="dry-to-wet latency in samples (default: measured)")
    model = p.add_argument_group("model")
    model.add_argument("--hidden", type=int, default=32, help="LSTM hidden size (default 32)")
    model.add_argument("--layers", type=int, default=1, help="LSTM layers (default 1)")
    model.add_argument("--no-skip", action="store_true",
                       help="no input-to-output skip path (needed for NAM plugin export)")
    run = p.add_argument_group("training")
    run.add_argument("--minutes", type=float, default=10.0, help="time budget (default 10)")
    run.add_argument("--epochs", type=int, default=200, help="epoch limit (default 200)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument("--batch", type=int, default=16, help="parallel training streams (default 16)")
    run.add_argument("--lr", type=float, default=1e-2, help="initial learning rate (default 1e-2)")
    run.add_argument("--stft-weight", type=float, default=0.0,
                     help="add a multi-resolution STFT loss term with this weight (default 0: off)")
    run.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    run.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    run.add_argument("--resume", action="store_true", help="continue from MODEL.ckpt")
    meta = p.add_argument_group("metadata")
    meta.add_argument("--name", help="model name (default: the output file's name)")
    meta.add_argument("--gear", default="", help="the captured device and its settings")
    meta.add_argument("--author", default="", help="who made the capture")
    p.set_defaults(run=run_train)


def check_arguments(args):
    """Refuse impossible settings before any file is read or any time is spent: the
    network must be one ampnet can write and play (:mod:`ampnet.limits`)."""
    def whole(name, value, low, high):
        if not low <= value <= high:
            raise AmpnetError(f"--{name} {value}: must be from {low} to {high}")

    whole("hidden", args.hidden, 1, limits.MAX_HIDDEN)
    whole("layers", args.layers, 1, limits.MAX_LAYERS)
    count = lstm_parameter_count(args.hidden, args.layers)
    if count > limits.MAX_PARAMETERS:
        raise AmpnetError(f"--hidden {args.hidden} --layers {args.layers}: {count:,} weights, more "
                          f"than a model file holds ({limits.MAX_PARAMETERS:,}); choose a smaller "
                          "network (real-time captures use --hidden 16 to 64)")
    whole("batch", args.batch, 1, limits.MAX_BATCH)
    whole("epochs", args.epochs, 1, limits.MAX_EPOCHS)
    whole("threads", args.threads, 0, 1024)
    if args.channel is not None:
        whole("channel", args.channel, 0, limits.MAX_AUDIO_CHANNELS - 1)
    if not limits.finite_in(args.minutes, 1e-3, limits.MAX_MINUTES):
        raise AmpnetError(f"--minutes {args.minutes}: give a time budget above 0 "
                          f"(at most {limits.MAX_MINUTES:g})")
    if not limits.finite_in(args.lr, 1e-7, 1.0):
        raise AmpnetError(f"--lr {args.lr}: give a learning rate above 0 and at most 1 "
                          "(default 1e-2)")
    if not limits.finite_in(args.val_fraction, 0.01, 0.5):
        raise AmpnetError(f"--val-fraction {args.val_fraction}: must be from 0.01 to 0.5")
    if not limits.finite_in(args.stft_weight, 0.0, 100.0):
        raise AmpnetError(f"--stft-weight {args.stft_weight}: must be from 0 to 100")
    if (args.latency is not None
            and abs(args.latency) > limits.MAX_LATENCY_SECONDS * limits.MAX_SAMPLE_RATE):
        raise AmpnetError(f"--latency {args.latency}: more than {limits.MAX_LATENCY_SECONDS:g} s "
                          "at any sample rate; give it in samples")


def run_train(args):
    try:
        import torch
    except ImportError:
        raise AmpnetError("training needs PyTorch: install the train extra "
                          "(pip install -c constraints.txt -e '.[train]')") from None
    from ampnet import __version__
    from ampnet.formats import save_model
    from ampnet.train import nulltest, report
    from ampnet.train.trainer import Trainer, TrainConfig, choose_threads

    check_arguments(args)
    output = Path(args.output)
    checkpoint = output.with_suffix(".ckpt")
    if output.suffix.lower() != ".json":
        raise AmpnetError(f"{output}: a model file is JSON; name it with .json (e.g. "
                          f"{output.with_suffix('.json').name})")
    if output.exists() and not (args.overwrite or args.resume):
        raise AmpnetError(f"{output}: already exists; pass --overwrite to replace it")
    if args.resume and not checkpoint.exists():
        raise AmpnetError(f"{checkpoint}: no checkpoint to resume from; start without --resume")
    for path in (args.dry, args.wet, args.val_dry, args.val_wet, args.test_dry, args.test_wet):
        if path and Path(path).resolve() == output.resolve():
            raise AmpnetError(f"{output}: is an input recording; choose another output file")
    for kind in ("val", "test"):
        if (getattr(args, f"{kind}_dry") is None) != (getattr(args, f"{kind}_wet") is None):
            raise AmpnetError(f"give both --{kind}-dry and --{kind}-wet, or neither")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    output.parent.mkdir(parents=True, exist_ok=True)

    pair = train_data.load_pair(args.dry, args.wet, args.channel, args.resample, args.latency)
    for note in pair.notes:
        print(f"note: {note}")
    # Validation and test pairs come from the same rig: the training pair's latency
    # holds for them (a separate estimate could differ by a sample, which alone costs
    # a bright model several hundredths of ESR).
    val_pair = _extra_pair(args.val_dry, args.val_wet, "validation", pair, args)
    test_pair = _extra_pair(args.test_dry, args.test_wet, "test", pair, args)
    if val_pair:
        train, val = (pair.dry, pair.wet), (val_pair.dry, val_pair.wet)
        val_frames = (0, None)
    else:
        train, val, cut = train_data.split_validation(pair, args.val_fraction)
        val_frames = (pair.dry_offset + cut, pair.dry_offset + pair.dry.size)
        print(f"note: last {val[0].size / pair.sample_rate:.1f} s held out for validation "
              f"(from {val_frames[0] / pair.sample_rate:.2f} s of {args.dry})")
    input_scale = train_data.input_scale_for(train[0])

    config = TrainConfig(hidden=args.hidden, layers=args.layers, skip=not args.no_skip,
                         epochs=args.epochs, minutes=args.minutes, batch=args.batch,
                         learning_rate=args.lr, seed=args.seed, device=device, threads=args.threads,
                         stft_weight=args.stft_weight)
    torch.set_num_threads(choose_threads(config))
    trainer = Trainer(config, input_scale, checkpoint)
    if args.resume:
        trainer.load_checkpoint(checkpoint)
        print(f"resuming from {checkpoint} after epoch {len(trainer.history.epochs)}")
    print(f"training LSTM-{config.hidden} x {config.layers} layer(s), skip {'on' if config.skip else 'off'}, "
          f"on {train[0].size / pair.sample_rate:.1f} s ({device}, {torch.get_num_threads()} threads); "
          f"budget {config.minutes:g} min. Ctrl-C stops early and keeps the best model.")
    # ampnet's main() turned SIGINT (even when started ignored, as `&` or nohup does),
    # SIGTERM and SIGHUP into exceptions: each stops the run and keeps the best model.
    try:
        history = trainer.fit(train, val)
    except (KeyboardInterrupt, Stopped) as stop:
        trainer.net.load_state_dict(trainer.best_state)
        history = trainer.history
        why = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else str(stop)
        history.stopped_because = f"interrupted ({why}); resume with --resume"
        print(f"\ninterrupted ({why}): keeping the best model so far", file=sys.stderr)
        if not history.epochs:
            raise AmpnetError("interrupted before the first epoch ended; nothing to save") from None
    seconds = trainer.elapsed_before

    model = trainer.net.to_model(pair.sample_rate, {})
    # The reported figures are null tests: the real-time engine over the dry file as
    # `ampnet render` plays it, against the wet advanced by the latency only.
    source = val_pair or pair
    val_null = nulltest.null_test(model, source.source_dry, source.source_wet, pair.latency_samples,
                                  *val_frames)
    test_null = (nulltest.null_test(model, test_pair.source_dry, test_pair.source_wet,
                                    pair.latency_samples) if test_pair else None)
    val_esr = val_null.esr
    word, advice = report.verdict(val_esr)
    train_seconds = train[0].size / pair.sample_rate
    if advice and train_seconds < 120:
        advice = f"only {train_seconds:.0f} s of training audio: record 3+ minutes. Other " + advice
    val_file = args.val_dry or args.dry
    model.metadata.update({
        "name": args.name or output.stem, "gear": args.gear, "author": args.author,
        "date": datetime.date.today().isoformat(), "ampnet_version": __version__,
        "training_data": f"{Path(args.dry).name} / {Path(args.wet).name}: "
                         f"{train_seconds:.1f} s train, "
                         f"{val[0].size / pair.sample_rate:.1f} s validation, {pair.sample_rate} Hz",
        "validation_esr": round(val_esr, 6), "latency_samples": pair.latency_samples,
    })
    if test_null:
        model.metadata["test_esr"] = round(test_null.esr, 6)
    # Level of the model's output on the validation audio, so that hosts can match
    # levels when switching models (RMS in dBFS; no K-weighting).
    model.metadata["loudness_dbfs"] = round(float(
        20 * np.log10(np.sqrt(np.mean(val_null.output.astype(np.float64) ** 2)) + 1e-12)), 2)
    save_model(model, output, overwrite=True)

    def described(null, dry, wet):
        return {"esr": null.esr, "dry": dry, "wet": wet, "first_frame": null.first_frame,
                "last_frame": null.last_frame}

    report_json, report_png = report.report_paths(output)
    report.write_report_json(report_json, {
        "model": str(output), "validation_esr": val_esr, "verdict": word,
        "test_esr": test_null.esr if test_null else None,
        "null_test": {
            "how": f"ampnet render of the dry file against the wet advanced by the latency "
                   f"({pair.latency_samples} samples); frames [first_frame, last_frame) of the "
                   f"dry; DC {nulltest.DC_HANDLING}",
            "latency_samples": pair.latency_samples,
            "validation": described(val_null, val_file, args.val_wet or args.wet),
            "test": described(test_null, args.test_dry, args.test_wet) if test_null else None,
        },
        "selection_val_esr": history.best_val_esr,
        "latency_samples": pair.latency_samples, "latency_confidence": pair.latency_confidence,
        "latency_peak_samples": pair.latency_peak_samples,
        "training_seconds": round(seconds, 1), "stopped_because": history.stopped_because,
        "best_epoch": history.best_epoch, "epochs": history.epochs, "notes": pair.notes,
        "settings": vars(config) | {"input_scale": input_scale, "dry": args.dry, "wet": args.wet},
    })
    report.write_report_png(report_png, val_null.target, val_null.output, pair.sample_rate, history)
    print(f"\nvalidation ESR {val_esr:.4f}: {word}" + (f"\n  {advice}" if advice else ""))
    if test_null:
        print(f"test ESR {test_null.esr:.4f} ({args.test_dry})")
    print(f"  (null tests: the model rendered from {Path(val_file).name} against the wet advanced "
          f"by the latency, DC removed from both)")
    print(f"latency found: {pair.latency_samples} samples "
          f"({1000 * pair.latency_samples / pair.sample_rate:.2f} ms)")
    print(f"training time: {seconds / 60:.1f} min ({history.stopped_because})")
    print(f"model: {output}\nreport: {report_json}, {report_png}")
    print(f"play it: ampnet render {output} {args.dry} -o {output.stem}-render.wav")


def _extra_pair(dry, wet, role, pair, args):
    """A validation or test pair at the training pair's latency and rate, or None."""
    if not dry:
        return None
    extra = train_data.load_pair(dry, wet, args.channel, args.resample, pair.latency_samples)
    if extra.sample_rate != pair.sample_rate:
        raise AmpnetError(f"{dry}: {role} audio is at {extra.sample_rate} Hz, training audio at "
                          f"{pair.sample_rate} Hz; use one rate")
    for note in extra.notes:
        print(f"note ({role}): {note}")
    return extra
