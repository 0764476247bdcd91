"""``ampnet train DRY WET -o MODEL.json``: from a pair of recordings to a model file.

Also a knob capture set, ``ampnet train DRY WET@drive=2,tone=5 WET@... -o M.json``,
or a manifest, ``ampnet train session.toml -o M.json`` (:mod:`ampnet.train.captures`).
A set of independent captures (a folder of ``NAME/dry.wav``, ``NAME/wet.wav``, or a
manifest of ``[[pair]]`` tables) trains one model each into the folder ``-o``, here or
on a Ray cluster (``--cluster``); ``--sweep`` searches settings for one capture on
Ray Tune (:mod:`ampnet.cluster`).

torch is imported only when this command runs, so the rest of the CLI works
without the ``train`` extra.
"""

import sys
from dataclasses import replace
from pathlib import Path

from ampnet import limits
from ampnet.errors import AmpnetError
from ampnet.formats.model import recurrent_parameter_count


def add_parser(sub):
    p = sub.add_parser("train", help="train a model from a dry (DI) and a wet (device) recording",
                       description="Train an LSTM capture from a dry (DI) recording and the same "
                                   "signal recorded through the device; or, from wets at several "
                                   "knob settings (WET@knob=value,...) or a TOML manifest, one "
                                   "model with the device's knobs.")
    p.add_argument("inputs", nargs="+",
                   metavar="DRY WET | DRY WET@KNOB=V,... ... | MANIFEST.toml | CAPTURE_DIR",
                   help="the dry (DI) recording and the same signal through the device (WAV, "
                        "FLAC or AIFF); for a knob capture, several wets of that dry, each with "
                        "its settings after '@' (e.g. wet2.flac@drive=2,tone=5); or a .toml "
                        "manifest of captures (see the README), or a folder 'ampnet capture' "
                        "wrote; or a set of captures to train one model each: a folder of "
                        "NAME/dry.wav and NAME/wet.wav, or a manifest of [[pair]] tables")
    p.add_argument("-o", "--output", required=True, help="model file to write (.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    data = p.add_argument_group("data")
    data.add_argument("--val-dry", help="separate validation dry recording")
    data.add_argument("--val-wet", action="append",
                      help="separate validation wet recording of --val-dry; for a knob model "
                           "WET@knob=value,... at any setting in the captured range, ideally "
                           "ones not captured (repeatable)")
    data.add_argument("--test-dry", help="test dry recording, e.g. real DI playing: its null-test "
                                         "ESR is reported beside validation's (not used in training)")
    data.add_argument("--test-wet", action="append",
                      help="the test dry through the device (WET@knob=value,... for a knob "
                           "model; repeatable)")
    data.add_argument("--knob", action="append", metavar="NAME=MIN:MAX[:DEFAULT]",
                      help="a knob's range and default in your units (default: the captured "
                           "range and its middle); repeatable")
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
    run.add_argument("--batch", type=int, default=0,
                     help="parallel training streams (default: 16 per captured setting, at most "
                          "64; 64 on a CUDA GPU)")
    run.add_argument("--lr", type=float, default=0.0,
                     help="initial learning rate (default 1e-2 at 16 streams, 1.5e-2 at 64)")
    run.add_argument("--stft-weight", type=float, default=0.0,
                     help="add a multi-resolution STFT loss term with this weight (default 0: off)")
    run.add_argument("--pre-emphasis", type=float, metavar="C",
                     help="the ESR loss's high-pass x[n] - C*x[n-1]: C from 0 (plain ESR, "
                          "bass weighted as in a null test) to 0.95 (default 0.85, the "
                          "published recipe)")
    run.add_argument("--threads", type=int, default=0,
                     help="torch threads (default: 1 up to --hidden 64, where one is fastest; "
                          "else all cores)")
    run.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    run.add_argument("--resume", action="store_true", help="continue from MODEL.ckpt")
    run.add_argument("--cluster", metavar="ADDRESS",
                     help="for a set of captures (one model each) or a --sweep: run on a Ray "
                          "cluster (host:port, auto or local); needs the cluster extra and "
                          "storage every node sees at the same paths")
    run.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                     help="search settings for one capture on Ray Tune (with --cluster): hidden, "
                          "layers, lr, pre-emphasis or minutes, each a list of values "
                          "(repeatable); poor trials stop early (ASHA); the best model is "
                          "written with the sweep's table in its report")
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
    count = recurrent_parameter_count(args.hidden, args.layers)
    if count > limits.MAX_PARAMETERS:
        raise AmpnetError(f"--hidden {args.hidden} --layers {args.layers}: {count:,} weights, more "
                          f"than a model file holds ({limits.MAX_PARAMETERS:,}); choose a smaller "
                          "network (real-time captures use --hidden 16 to 64)")
    whole("batch", args.batch, 0, limits.MAX_BATCH)
    whole("epochs", args.epochs, 1, limits.MAX_EPOCHS)
    whole("threads", args.threads, 0, 1024)
    if args.channel is not None:
        whole("channel", args.channel, 0, limits.MAX_AUDIO_CHANNELS - 1)
    if not limits.finite_in(args.minutes, 1e-3, limits.MAX_MINUTES):
        raise AmpnetError(f"--minutes {args.minutes}: give a time budget above 0 "
                          f"(at most {limits.MAX_MINUTES:g})")
    if args.lr != 0 and not limits.finite_in(args.lr, 1e-7, 1.0):
        raise AmpnetError(f"--lr {args.lr}: give a learning rate above 0 and at most 1 "
                          "(default: 1e-2 for one capture)")
    if not limits.finite_in(args.val_fraction, 0.01, 0.5):
        raise AmpnetError(f"--val-fraction {args.val_fraction}: must be from 0.01 to 0.5")
    if not limits.finite_in(args.stft_weight, 0.0, 100.0):
        raise AmpnetError(f"--stft-weight {args.stft_weight}: must be from 0 to 100")
    if args.pre_emphasis is not None and not limits.finite_in(args.pre_emphasis, 0.0, 0.95):
        raise AmpnetError(f"--pre-emphasis {args.pre_emphasis}: must be from 0 to 0.95")
    if (args.latency is not None
            and abs(args.latency) > limits.MAX_LATENCY_SECONDS * limits.MAX_SAMPLE_RATE):
        raise AmpnetError(f"--latency {args.latency}: more than {limits.MAX_LATENCY_SECONDS:g} s "
                          "at any sample rate; give it in samples")


def run_train(args):
    try:
        import torch  # noqa: F401
    except ImportError:
        raise AmpnetError("training needs PyTorch: install the train extra "
                          "(pip install -c constraints.txt -e '.[train]')") from None
    check_arguments(args)
    pairs = _independent_captures(args.inputs)
    if pairs is not None:
        if args.sweep:
            raise AmpnetError("--sweep searches settings for one capture; give DRY WET")
        return _train_each(args, pairs)
    if args.sweep:
        from ampnet.cluster.sweep import parse_space, sweep

        space = parse_space(args.sweep)
        if not args.cluster:
            raise AmpnetError("--sweep runs on Ray: add --cluster local (this machine) or a "
                              "cluster's address")
        print(sweep(args, _capture_set(args), Path(args.output), space))
        return 0
    if args.cluster:
        raise AmpnetError("--cluster trains a set of independent captures (a folder of "
                          "NAME/dry.wav and NAME/wet.wav, one model each) or runs a --sweep")
    summary = train_to_file(args, _capture_set(args), Path(args.output))
    print(summary["text"])
    return 0


def train_to_file(args, capture_set, output, log=None, on_epoch=None):
    """Train on ``capture_set`` with the command's settings (``args``) and write the
    model at ``output`` with its report, as ``ampnet train`` does; returns
    ``{"output", "validation_esr", "stopped_because", "text"}`` (``text``: the lines the
    command prints). ``on_epoch(figures)`` after every epoch (see :func:`fit`)."""
    import torch

    from ampnet import __version__
    from ampnet.train import report as report_files
    from ampnet.train.pipeline import DataOptions, fit, save
    from ampnet.train.trainer import TrainConfig, choose_threads, training_device

    checkpoint = output.with_suffix(".ckpt")
    if output.suffix.lower() != ".json":
        raise AmpnetError(f"{output}: a model file is JSON; name it with .json (e.g. "
                          f"{output.with_suffix('.json').name})")
    if output.exists() and not (args.overwrite or args.resume):
        raise AmpnetError(f"{output}: already exists; pass --overwrite to replace it")
    if args.resume and not checkpoint.exists():
        raise AmpnetError(f"{checkpoint}: no checkpoint to resume from; start without --resume")
    for take in capture_set.captures + capture_set.validation + capture_set.test:
        for path in (take.dry, take.wet):
            if Path(path).resolve() == output.resolve():
                raise AmpnetError(f"{output}: is an input recording; choose another output file")
    device = training_device(args.device)
    output.parent.mkdir(parents=True, exist_ok=True)

    config = TrainConfig(hidden=args.hidden, layers=args.layers, skip=not args.no_skip,
                         epochs=args.epochs, minutes=args.minutes, batch=args.batch,
                         learning_rate=args.lr, seed=args.seed, device=device, threads=args.threads,
                         stft_weight=args.stft_weight)
    if args.pre_emphasis is not None:
        config = replace(config, pre_emphasis=args.pre_emphasis)
    torch.set_num_threads(choose_threads(config))
    # ampnet's main() turned SIGINT (even when started ignored, as `&` or nohup does),
    # SIGTERM and SIGHUP into exceptions: fit() stops on them and keeps the best model.
    model, report = fit(
        capture_set, config,
        data=DataOptions(args.channel, args.resample, args.latency, args.val_fraction),
        checkpoint=checkpoint, resume=args.resume, on_epoch=on_epoch,
        metadata={"name": args.name or output.stem, "gear": args.gear, "author": args.author,
                  "ampnet_version": __version__},
        log=log or _log)
    report_json, report_png = save(model, report, output)

    figures = report.figures
    lines = []
    rows = figures["null_test"]["validation"] + figures["null_test"]["test"]
    if len(rows) > 1:
        lines += ["", *report_files.settings_table(figures), "",
                  f"validation ESR {figures['validation_esr']:.4f} (mean over the rows); worst "
                  f"{figures['worst_setting']['esr']:.4f} at {figures['worst_setting']['label']}: "
                  f"{figures['verdict']}"]
    else:
        lines += ["", f"validation ESR {figures['validation_esr']:.4f}: {figures['verdict']}"]
    if figures["advice"]:
        lines.append(f"  {figures['advice']}")
    if figures["test_esr"] is not None:
        lines.append(f"test ESR {figures['test_esr']:.4f} "
                     f"({', '.join(r['dry'] for r in figures['null_test']['test'])})")
    lines.append("  (null tests: the model rendered from the dry file, against the wet advanced by "
                 "the latency, DC removed from both)")
    lines.append(f"latency: {report.alignment.describe(report.sample_rate)}")
    lines.append(f"training time: {figures['training_seconds'] / 60:.1f} min "
                 f"({figures['stopped_because']})")
    lines.append(f"model: {output}\nreport: {report_json}, {report_png}")
    first = capture_set.captures[0]
    knobs = "".join(f" --param {k['name']}={k['default']:g}" for k in figures["knobs"])
    lines.append(f"play it: ampnet render {output} {first.dry}{knobs} -o {output.stem}-render.wav")
    return {"output": str(output), "validation_esr": figures["validation_esr"],
            "stopped_because": figures["stopped_because"], "text": "\n".join(lines)}


def _independent_captures(inputs):
    """``{name: (dry, wet)}`` for a set of independent captures: a folder of ``NAME/dry.*``
    and ``NAME/wet.*`` (audio files; a folder with a ``capture.toml`` is one knob
    session instead) or a manifest of ``[[pair]]`` tables; else None."""
    from ampnet.io.audio import AUDIO_EXTENSIONS
    from ampnet.train.captures import read_pairs

    if len(inputs) != 1:
        return None
    if inputs[0].lower().endswith(".toml") and Path(inputs[0]).is_file():
        return read_pairs(inputs[0])
    if not Path(inputs[0]).is_dir() or (Path(inputs[0]) / "capture.toml").exists():
        return None

    def one(folder, stem):
        found = [p for p in folder.iterdir() if p.stem == stem and p.suffix.lower() in AUDIO_EXTENSIONS]
        return found[0] if len(found) == 1 else None

    pairs = {}
    for folder in sorted(p for p in Path(inputs[0]).iterdir() if p.is_dir()):
        dry, wet = one(folder, "dry"), one(folder, "wet")
        if dry and wet:
            pairs[folder.name] = (dry, wet)
    if not pairs:
        raise AmpnetError(f"{inputs[0]}: no capture.toml and no NAME/dry.wav + NAME/wet.wav "
                          "folders in it; give DRY WET, a manifest, or such a folder")
    return pairs


def _train_each(args, pairs):
    """One model per capture (``{name: (dry, wet)}``) into the folder ``-o``: here one
    after another, or on a Ray cluster (``--cluster``). A model already written is
    kept; one with a checkpoint resumes from it."""
    from ampnet.train.captures import Capture, CaptureSet

    out_dir = Path(args.output)
    if out_dir.suffix.lower() == ".json":
        raise AmpnetError(f"{out_dir}: a folder of captures trains one model each; give -o a "
                          "folder for them (NAME.json each)")
    out_dir.mkdir(parents=True, exist_ok=True)
    todo, done = {}, []
    for name, (dry, wet) in pairs.items():
        output = out_dir / f"{name}.json"
        if args.overwrite:  # start afresh: an earlier run's checkpoint is not resumed
            output.with_suffix(".ckpt").unlink(missing_ok=True)
        elif output.exists() and not _was_interrupted(output):
            done.append(name)
            continue
        todo[name] = (dry, wet, output)
    if done:
        print(f"{len(done)} model(s) already in {out_dir} (kept): {', '.join(done)}")
    jobs = [(name, CaptureSet([Capture(dry, wet)]), output) for name, (dry, wet, output) in todo.items()]
    print(f"training {len(jobs)} model(s), {args.minutes:g} min each at most"
          + (f", on the cluster {args.cluster}" if args.cluster else ", one after another"))
    failures = 0
    if args.cluster:
        from ampnet.cluster.train import train_on_cluster

        results = train_on_cluster(args, jobs)
    else:
        results = (train_one(args, name, capture_set, output)
                   for name, capture_set, output in jobs)
    for name, result in results:
        if result.get("stopped_because", "").startswith("interrupted"):
            print(f"interrupted: {name} kept its best model so far and continues from its "
                  "checkpoint when the same command runs again; the rest did not start",
                  file=sys.stderr)
            return 130
        if "error" in result:
            failures += 1
            print(f"ampnet: error: {name}: {result['error']}", file=sys.stderr)
        else:
            print(f"{name}: validation ESR {result['validation_esr']:.4f} "
                  f"({result['stopped_because']}) -> {result['output']}")
    print(f"trained {len(jobs) - failures} of {len(jobs)} model(s)"
          + (f"; {failures} failed" if failures else ""))
    return 1 if failures else 0


def _was_interrupted(output):
    """Whether the model at ``output`` was saved by an interrupted run (its report says)."""
    import json

    from ampnet.train.report import report_paths
    try:
        figures = json.loads(report_paths(output)[0].read_text())
    except (OSError, ValueError):
        return True  # a model without its report is not a finished run's
    return str(figures.get("stopped_because", "")).startswith("interrupted")


def train_one(args, name, capture_set, output):
    """``(name, summary)`` of :func:`train_to_file` for one capture of a set, resuming from
    a checkpoint left by an interrupted run; a failure is ``{"error": message}``."""
    import argparse
    args = argparse.Namespace(**{**vars(args), "resume": output.with_suffix(".ckpt").exists(),
                                 "overwrite": True, "name": name})
    try:
        return name, train_to_file(args, capture_set, output, log=lambda line: None)
    except AmpnetError as err:
        return name, {"error": str(err)}


def _capture_set(args):
    """The captures, validation and test takes and knob declarations the arguments give."""
    from ampnet.train.captures import (Capture, CaptureSet, KnobDeclaration,
                                       parse_wet_argument, read_manifest)

    inputs = args.inputs
    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        manifest = Path(inputs[0]) / "capture.toml"
        if not manifest.exists():
            raise AmpnetError(f"{inputs[0]}: no capture.toml in this folder; make one with "
                              "'ampnet capture -o FOLDER', or give DRY WET")
        capture_set = read_manifest(manifest)
    elif len(inputs) == 1 and inputs[0].lower().endswith(".toml"):
        capture_set = read_manifest(inputs[0])
    elif len(inputs) >= 2:
        dry = inputs[0]
        if "@" in Path(dry).name and not Path(dry).exists():
            raise AmpnetError(f"{dry}: the first file is the dry (DI) recording, without knob "
                              "settings: ampnet train DRY WET@knob=value,... WET@...")
        capture_set = CaptureSet([Capture(dry, *parse_wet_argument(w, "wet")) for w in inputs[1:]])
    else:
        raise AmpnetError(f"{inputs[0]}: give a dry and a wet recording (ampnet train DRY WET -o "
                          "M.json), several wets with their knob settings, or a .toml manifest")
    for kind, role in (("val", capture_set.validation), ("test", capture_set.test)):
        dry, wets = getattr(args, f"{kind}_dry"), getattr(args, f"{kind}_wet")
        if (dry is None) != (wets is None):
            raise AmpnetError(f"give both --{kind}-dry and --{kind}-wet, or neither")
        role.extend(Capture(dry, *parse_wet_argument(w, f"--{kind}-wet")) for w in wets or [])
    for text in args.knob or []:
        name, _, spec = text.partition("=")
        parts = spec.split(":")
        try:
            values = [float(v) for v in parts]
        except ValueError:
            values = []
        if not name or len(values) not in (2, 3):
            raise AmpnetError(f"--knob {text}: write NAME=MIN:MAX or NAME=MIN:MAX:DEFAULT, e.g. "
                              "--knob drive=0:10:5")
        capture_set.knobs[name] = KnobDeclaration(*values)
    return capture_set


def _log(line):
    """Notes to stdout; an interruption to stderr, on a line of its own."""
    if line.startswith("interrupted"):
        print(f"\n{line}", file=sys.stderr)
    else:
        print(line)
