"""``ampnet live MODEL|PRESET``: play through a model or a preset's chain in real time."""

from pathlib import Path

from ampnet.errors import AmpnetError
from ampnet.host.preset import load_spec


def add_parser(sub):
    p = sub.add_parser("live", help="play through a model or a preset in real time",
                       description="Run a model or a preset's chain on an audio interface: guitar "
                                   "in, processed sound out. On a terminal, keys 1-9 bypass the "
                                   "chain's processors. --ui adds a control surface in the "
                                   "browser: meters, knobs, bypass, rig switching, recording.")
    p.add_argument("model", metavar="MODEL|PRESET", help="model file or preset (.toml)")
    p.add_argument("--device", help="device index or name, for both input and output")
    p.add_argument("--input-device", help="input device index or name (default: the system's)")
    p.add_argument("--output-device", help="output device index or name (default: the system's)")
    p.add_argument("--input-channel", type=int, default=1, help="guitar input channel, from 1")
    p.add_argument("--output-channels", default="1,2",
                   help="output channels that get the model, from 1 (default 1,2)")
    p.add_argument("--blocksize", type=int, default=64, help="frames per callback (default 64)")
    p.add_argument("--samplerate", type=float,
                   help="device rate in Hz (default: the model's, else the device's own); "
                        "a rate other than the model's is resampled in the stream")
    p.add_argument("--strict-rate", action="store_true",
                   help="refuse to run the device at another rate than the model's "
                        "instead of resampling")
    p.add_argument("--latency", default="low", help="low, high or seconds (PortAudio's latency hint)")
    p.add_argument("--input-gain", type=float, default=0.0, help="dB before the model")
    p.add_argument("--output-gain", type=float, default=0.0, help="dB after the model")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a knob value of a conditioned model, e.g. --param gain=0.7 (repeatable)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--record", help="also write the processed output to this file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --record file")
    ui = p.add_argument_group("control surface (a page in the browser, on this machine only)")
    ui.add_argument("--ui", action="store_true",
                    help="serve the control surface on 127.0.0.1 and open it in the browser")
    ui.add_argument("--ui-port", type=int, default=0, metavar="N",
                    help="port for --ui (default: a free one)")
    ui.add_argument("--no-browser", action="store_true",
                    help="print the control surface's URL without opening a browser")
    ui.add_argument("--library", metavar="DIR",
                    help="presets and models to switch between from the page (saved presets "
                         "go here too)")
    ui.add_argument("--record-dir", metavar="DIR", default=".",
                    help="where the page's recordings go, made if missing (default: the current folder)")
    p.set_defaults(run=run)


def run(args):
    from ampnet.live.control import CROSSFADE_MS
    from ampnet.live.session import LiveOptions, LiveSession

    spec = load_spec(args.model, args.param)
    try:
        outputs = [int(c) for c in args.output_channels.split(",") if c.strip()]
    except ValueError:
        raise AmpnetError(f"--output-channels {args.output_channels!r}: give channel numbers "
                          "separated by commas, e.g. 1,2") from None
    latency = args.latency if args.latency in ("low", "high") else _seconds(args.latency)
    options = LiveOptions(input_device=args.input_device or args.device,
                          output_device=args.output_device or args.device,
                          input_channel=args.input_channel, output_channels=outputs,
                          blocksize=args.blocksize, samplerate=args.samplerate,
                          strict_rate=args.strict_rate, latency=latency,
                          input_gain_db=args.input_gain, output_gain_db=args.output_gain,
                          duration=args.duration, record=args.record, overwrite=args.overwrite)
    controllers = []
    if args.ui:
        from ampnet.live.server import ControlServer

        if not 0 <= args.ui_port <= 65535:
            raise AmpnetError(f"--ui-port {args.ui_port}: give 1 to 65535, or 0 for a free port")
        record_dir = Path(args.record_dir)
        if record_dir.exists() and not record_dir.is_dir():
            raise AmpnetError(f"--record-dir {args.record_dir}: not a folder")
        record_dir.mkdir(parents=True, exist_ok=True)
        controllers.append(ControlServer(args.ui_port, args.library, args.record_dir,
                                         open_browser=not args.no_browser))
    elif args.library or args.ui_port or args.no_browser:
        raise AmpnetError("--library, --ui-port and --no-browser go with --ui")
    summary = LiveSession(spec, options).run(controllers)
    period = summary["block_period_ms"]
    print(f"stopped ({summary['stopped_because']}) after {summary['seconds']:.1f} s: "
          f"{summary['callbacks']} callbacks, {summary['xruns']} xruns "
          f"({summary['late_callbacks']} callbacks longer than the block period), callback median "
          f"{summary['median_callback_ms']:.3f} ms, p99 {summary['p99_callback_ms']:.3f} ms, "
          f"p99.9 {summary['p999_callback_ms']:.3f} ms, worst {summary['worst_callback_ms']:.3f} ms"
          + (f" (block period {period:.3f} ms)" if period else "")
          + f"; {summary['nonfinite_input']} non-finite input samples"
          + (f"; resampled {summary['device_rate']:g} Hz <-> {summary['model_rate']:g} Hz, "
             f"+{summary['resampling_latency_ms']:.2f} ms" if summary["resampling_latency_ms"] else ""))
    if summary["oversized_callbacks"]:
        print(f"warning: {summary['oversized_callbacks']} callbacks brought more frames than "
              f"ampnet's buffers hold and were played as silence; set --blocksize")
    if summary["nonfinite_input"] or summary["state_resets"]:
        print(f"warning: {summary['nonfinite_input']} NaN or infinite input samples were replaced "
              f"by silence and {summary['state_resets']} processor state(s) reset after an "
              "overflow; check the interface's driver and cable")
    if summary["rig_switches"]:
        print(f"{summary['rig_switches']} rig switch(es), each a {CROSSFADE_MS:g} ms crossfade")
    if summary["recorded"]:
        print(f"recorded {summary['recorded_frames']} frames to {summary['recorded']}"
              + (f"; {summary['lost_frames']} frames LOST (disk too slow)" if summary["lost_frames"] else ""))
    return 0


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise AmpnetError(f"--latency {text!r}: use low, high or a number of seconds") from None
    if value <= 0:
        raise AmpnetError("--latency must be positive")
    return value
