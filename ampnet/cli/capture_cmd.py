"""``ampnet capture -o DIR``: play the capture signal through a device and record it.

Writes ``DIR/dry.wav`` (the signal), ``DIR/wet.wav`` (or ``wet-KNOB-VALUE....wav`` for a
knob capture) and ``DIR/capture.toml``: the capture manifest ``ampnet train DIR``
reads, with each capture's notes (interface, rate, levels, latency, date). Nothing is
written until a take is complete; Ctrl-C leaves the folder as it was.
"""

import datetime
import re
import sys
import tomllib
from pathlib import Path

from ampnet.errors import AmpnetError
from ampnet.io.toml_text import toml_text

MANIFEST = "capture.toml"
DRY = "dry.wav"


def add_parser(sub):
    p = sub.add_parser("capture", help="capture an amp or pedal: play the capture signal through "
                                       "it and record it in one go",
                       description="Play ampnet's capture signal out of an interface output, "
                                   "through the device, back into an input, and write dry.wav, "
                                   "wet.wav and capture.toml into DIR. Connect the interface "
                                   "output to the device's input (a reamp box for an amp) and "
                                   "the device's output (line out, or a load box) to the "
                                   "interface input; run --check first.")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the capture folder")
    p.add_argument("--device", help="interface index or name, for both input and output")
    p.add_argument("--input-device", help="input device index or name (default: the system's)")
    p.add_argument("--output-device", help="output device index or name (default: the system's)")
    p.add_argument("--input-channel", type=int, default=1,
                   help="the input the device's output comes back on, from 1")
    p.add_argument("--output-channel", type=int, default=1,
                   help="the output that feeds the device, from 1")
    p.add_argument("--blocksize", type=int, default=0,
                   help="frames per callback (default: the interface's choice)")
    p.add_argument("--check", action="store_true",
                   help="play 5 seconds and report the level and the round-trip latency")
    p.add_argument("--force", action="store_true",
                   help="capture even when the check finds clipping or no signal")
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="the device's knob setting for this take (repeat per knob); each take "
                        "adds a capture to DIR's manifest for a knob model")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a take already in DIR (same knob setting)")
    p.add_argument("--train", action="store_true",
                   help="train a model on DIR's captures afterwards (DIR/model.json)")
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget (--train)")
    p.set_defaults(run=run)


def run(args):
    from ampnet.capture import recorder, signal as capture_signal
    from ampnet.train.captures import FILE_KEYS, NOTE_KEYS  # the manifest's own keys

    folder = Path(args.output)
    knobs = _parse_knobs(args.knob)
    if folder.exists() and not folder.is_dir():
        raise AmpnetError(f"{folder}: not a folder; give the folder to write the capture into")
    manifest = _read_manifest(folder / MANIFEST)
    wet_name = "wet" + "".join(f"-{name}{_number(value)}" for name, value in knobs.items()) + ".wav"
    taken = [c for c in manifest.get("capture", []) if c.get("wet") == wet_name]
    if not args.check:
        if taken and not args.overwrite:
            raise AmpnetError(f"{folder / wet_name}: this take is already in {folder / MANIFEST}; "
                              "pass --overwrite to record it again")
        kinds = {tuple(sorted(k for k in c if k not in FILE_KEYS + NOTE_KEYS))
                 for c in manifest.get("capture", []) if c.get("wet") != wet_name}
        if kinds and kinds != {tuple(sorted(knobs))}:
            raise AmpnetError(f"{folder / MANIFEST}: its captures set the knobs "
                              f"{', '.join(sorted(next(iter(kinds)))) or '(none)'}; give the same "
                              "--knob names for every take of one device, or use another folder")
    rig = recorder.open_rig(args.input_device or args.device, args.output_device or args.device,
                            args.input_channel, args.output_channel, args.blocksize)
    print(f"ampnet capture: {rig.describe()}")
    print("checking the level: 5 seconds of clicks and the signal's loudest passage ...", flush=True)
    audio = capture_signal.generate(rig.rate)
    check, xruns = recorder.play_and_record(rig, recorder.check_signal(audio, rig.rate))
    verdict = recorder.assess(check, rig.rate, rig.input_channel)
    for line in verdict.lines(rig.rate, rig.input_channel):
        print(f"  {line}")
    if xruns:
        print(f"  {xruns} xrun(s) during the check: choose a larger --blocksize")
    if args.check:
        print("ready to capture" if not verdict.problem else "fix that, then check again")
        return 0 if not verdict.problem else 1
    if (verdict.clipping or verdict.silent) and not args.force:
        raise AmpnetError(f"{verdict.problem.split(':')[0]} on input {rig.input_channel}: fix it "
                          "and run again (--check to try), or pass --force")

    _check_folder_rate(folder / DRY, rig.rate)
    if knobs:
        setting = ", ".join(f"{k}={_number(v)}" for k, v in knobs.items())
        if sys.stdin.isatty():
            input(f"set the device's knobs to {setting}, then press Enter ")
        else:
            print(f"capturing at {setting}")
    wet, xruns = _record_with_progress(recorder, rig, audio)
    plan = capture_signal.layout(rig.rate)
    timing = capture_signal.click_timing(wet, plan)
    verdict = recorder.assess(wet, rig.rate, rig.input_channel)
    if timing.samples is None:
        raise AmpnetError(f"the take is not usable: {timing.problem}; nothing was written")
    if timing.drift:
        raise AmpnetError(f"the end clicks arrived {timing.drift:+d} samples from where the start "
                          f"clicks put them ({xruns} xrun(s)): samples were lost; choose a larger "
                          "--blocksize and capture again. Nothing was written")
    _write_take(folder, manifest, wet_name, knobs, audio, wet, rig, timing, verdict, xruns)
    print(f"{folder}: {DRY}, {wet_name}, {MANIFEST} (round-trip latency {timing.samples} samples, "
          f"{1000 * timing.samples / rig.rate:.2f} ms; end clicks agree)")
    if xruns:
        print(f"  {xruns} xrun(s) were reported during the take; the end clicks agree, so no "
              "sample was lost, but a larger --blocksize is safer")
    if args.train:
        from ampnet.cli import build_parser, train_cmd
        train_args = build_parser().parse_args(
            ["train", str(folder), "-o", str(folder / "model.json"), "--minutes", str(args.minutes),
             "--overwrite"])
        return train_cmd.run_train(train_args)
    count = len(_read_manifest(folder / MANIFEST).get("capture", []))
    print(f"next: ampnet train {folder} -o {folder / 'model.json'}"
          + (f"  ({count} capture(s); a knob model needs two or more settings per knob)"
             if knobs else ""))
    return 0


def _record_with_progress(recorder, rig, audio):
    import numpy as np
    from tqdm import tqdm

    seconds = audio.size / rig.rate
    bar = tqdm(total=round(seconds, 1), unit="s", desc="capturing",
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s, "
                          "{remaining} left{postfix}")

    def progress(position, recording):
        position = min(position, audio.size)
        recent = recording[max(0, position - rig.rate // 4):position]
        peak = float(np.max(np.abs(recent))) if recent.size else 0.0
        bar.set_postfix_str(f"input {20 * np.log10(max(peak, 1e-9)):5.1f} dBFS", refresh=False)
        bar.update(round(position / rig.rate, 1) - bar.n)

    try:
        return recorder.play_and_record(rig, audio, progress)
    finally:
        bar.close()


def _write_take(folder, manifest, wet_name, knobs, audio, wet, rig, timing, verdict, xruns):
    """Write the take's files, each atomically, the manifest last."""
    import soundfile as sf

    from ampnet.io.files import atomic_output, write_text_atomic

    folder.mkdir(parents=True, exist_ok=True)
    dry_path = folder / DRY
    if not dry_path.exists():
        with atomic_output(dry_path) as tmp:
            sf.write(str(tmp), audio, rig.rate, subtype="PCM_24")
    with atomic_output(folder / wet_name) as tmp:
        sf.write(str(tmp), wet, rig.rate, subtype="FLOAT")
    recorded = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                "input": f"{rig.input_name} ch {rig.input_channel}",
                "output": f"{rig.output_name} ch {rig.output_channel}", "rate": rig.rate,
                "peak_dbfs": round(verdict.peak_dbfs, 1), "rms_dbfs": round(verdict.rms_dbfs, 1),
                "noise_floor_dbfs": round(timing.floor_dbfs, 1),
                "latency_samples": timing.samples, "xruns": xruns}
    captures = [c for c in manifest.get("capture", []) if c.get("wet") != wet_name]
    captures.append({"wet": wet_name, **knobs, "recorded": recorded})
    doc = {"dry": DRY, "capture": captures}
    doc.update({k: v for k, v in manifest.items() if k not in ("dry", "capture")})
    write_text_atomic(folder / MANIFEST, manifest_text(doc))


def _check_folder_rate(dry_path, rate):
    """A folder holds takes of one signal at one rate: refuse before recording."""
    if not dry_path.exists():
        return
    import soundfile as sf

    from ampnet.capture import signal as capture_signal
    info = sf.info(str(dry_path))
    if info.samplerate != rate or info.frames != capture_signal.layout(rate).frames:
        raise AmpnetError(f"{dry_path}: holds a signal at {info.samplerate} Hz, the interface "
                          f"runs at {rate} Hz; capture at one rate per folder, or use another one")


def _parse_knobs(texts):
    knobs = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or number is None:
            raise AmpnetError(f"--knob {text!r}: write NAME=VALUE with the knob's number as "
                              "marked on the device, e.g. --knob drive=5")
        knobs[name] = number
    return knobs


def _number(value):
    return f"{value:g}"


def _read_manifest(path):
    if not path.exists():
        return {}
    from ampnet.train.captures import read_manifest  # checks it as train will
    read_manifest(path)
    return tomllib.loads(path.read_text(encoding="utf-8"))


def manifest_text(doc):
    """The manifest as TOML, with a header saying what reads it."""
    return toml_text(doc, ["ampnet capture manifest: 'ampnet train THIS_FOLDER' reads it; paths "
                           "are relative", "to this file. Each capture's 'recorded' notes say "
                           "how it was made."])
