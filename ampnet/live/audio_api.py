"""sounddevice (PortAudio) behind clear errors; imported only by ``live`` and ``devices``."""

from ampnet.errors import AmpnetError


def import_sounddevice():
    """The sounddevice module, or an AmpnetError naming the missing system package."""
    try:
        import sounddevice
    except OSError:
        raise AmpnetError("the PortAudio library is not installed; install it with "
                          "'sudo apt-get install libportaudio2' (Debian/Ubuntu)") from None
    return sounddevice


def device_table(sd):
    """Rows ``(index, host_api, name, inputs, outputs, default_rate, marks)`` of every device."""
    apis = sd.query_hostapis()
    default_in, default_out = sd.default.device
    rows = []
    for index, dev in enumerate(sd.query_devices()):
        marks = []
        if index == default_in:
            marks.append("default input")
        if index == default_out:
            marks.append("default output")
        rows.append((index, apis[dev["hostapi"]]["name"], dev["name"], dev["max_input_channels"],
                     dev["max_output_channels"], dev["default_samplerate"], ", ".join(marks)))
    return rows


def resolve_device(sd, spec, kind):
    """A device index from ``spec`` (an index or part of a name) for ``kind`` 'input'/'output'."""
    if spec is None:
        index = sd.default.device[0 if kind == "input" else 1]
        if index is None or index < 0:
            raise AmpnetError(f"no default {kind} device; list them with 'ampnet devices' and "
                              f"pass --{kind}-device")
        return index
    try:
        return sd.query_devices(int(spec) if str(spec).isdigit() else spec, kind)["index"]
    except (ValueError, sd.PortAudioError) as err:
        raise AmpnetError(f"{kind} device {spec!r} not found ({err}); list them with "
                          "'ampnet devices'") from None


def open_duplex_stream(sd, rate, blocksize, devices, channels, callback_address,
                       userdata_address, finished=None, latency="low"):
    """A duplex float32 stream whose callback is a compiled C function (``callback_address``,
    PortAudio's ``PaStreamCallback``) given ``userdata_address``: no Python on the audio
    thread. The one place that reaches into sounddevice's internals (``_StreamBase``,
    ``_ffi``) to pass a C function pointer through. ``devices``/``channels``:
    ``(input, output)`` pairs. Not started: use it as a context manager."""
    try:
        return sd._StreamBase(
            "duplex", samplerate=rate, blocksize=blocksize, device=devices, channels=channels,
            dtype="float32", latency=latency,
            callback=sd._ffi.cast("PaStreamCallback *", callback_address),
            userdata=sd._ffi.cast("void *", userdata_address), wrap_callback=None,
            finished_callback=finished)
    except sd.PortAudioError as err:
        raise AmpnetError(f"cannot open the audio stream: {err}") from None
