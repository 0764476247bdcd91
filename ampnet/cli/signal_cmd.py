"""``ampnet signal -o reamp.wav``: write the capture signal (:mod:`ampnet.capture.signal`)."""

from pathlib import Path

from ampnet.capture import signal as capture_signal
from ampnet.errors import AmpnetError
from ampnet.io.files import atomic_output


def add_parser(sub):
    p = sub.add_parser("signal", help="write the capture signal: the reamp file to play through "
                                      "an amp or pedal to capture it",
                       description="Write ampnet's capture signal: calibration clicks, a noise-floor "
                                   "silence, sweeps, noise and synthesised guitar playing (about "
                                   "3.5 minutes). Play it through the device and record the "
                                   "result; 'ampnet train reamp.wav recorded.wav' recognises it "
                                   "and takes the latency from its clicks, exactly.")
    p.add_argument("-o", "--output", required=True, help="the WAV file to write")
    p.add_argument("--rate", type=int, default=capture_signal.DEFAULT_RATE,
                   help="sample rate in Hz: your interface's (default 48000)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(run=run)


def run(args):
    import soundfile as sf

    output = Path(args.output)
    if output.suffix.lower() != ".wav":
        raise AmpnetError(f"{output}: the capture signal is written as WAV; name it .wav")
    if output.exists() and not args.overwrite:
        raise AmpnetError(f"{output}: already exists; pass --overwrite to replace it")
    if not capture_signal.MIN_RATE <= args.rate <= capture_signal.MAX_RATE:
        raise AmpnetError(f"--rate {args.rate}: give your interface's rate, from "
                          f"{capture_signal.MIN_RATE} to {capture_signal.MAX_RATE} Hz")
    if not output.parent.is_dir():
        raise AmpnetError(f"{output.parent}: no such folder")
    audio = capture_signal.generate(args.rate)
    with atomic_output(output) as tmp:
        sf.write(str(tmp), audio, args.rate, subtype="PCM_24")
    plan = capture_signal.layout(args.rate)
    print(f"{output}: the capture signal, {plan.frames / args.rate:.1f} s at {args.rate} Hz "
          "(24-bit WAV)")
    for section in plan.sections:
        print(f"  {section.start / args.rate:7.2f} s  {section.name}")
    print("Play it through the device at the level you play at, record the device's output at "
          "the same rate and from the start, then:\n"
          f"  ampnet train {output} recorded.wav -o my-amp.json")
