"""``ampnet devices``: the audio devices PortAudio sees."""

from ampnet.errors import AmpnetError
from ampnet.live.audio_api import device_table, import_sounddevice


def add_parser(sub):
    p = sub.add_parser("devices", help="list audio devices")
    p.set_defaults(run=run)


def run(args):
    sd = import_sounddevice()
    rows = device_table(sd)
    if not rows:
        raise AmpnetError("no audio devices found: connect an interface, or start an audio "
                          "server (JACK) before running ampnet")
    print(f"{'#':>3}  {'host API':<28} {'name':<40} {'in':>3} {'out':>3} {'rate':>7}")
    for index, api, name, ins, outs, rate, marks in rows:
        print(f"{index:>3}  {api:<28.28} {name:<40.40} {ins:>3} {outs:>3} {rate:>7.0f}"
              + (f"  <- {marks}" if marks else ""))
