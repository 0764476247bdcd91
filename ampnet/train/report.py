"""What the user sees after training: the verdict, and the report files next to the model.

ESR scale (error-to-signal ratio on the validation audio, as users of capture
tools know it): < 0.01 great, < 0.035 good, < 0.1 usable, else poor.
"""

import json

import numpy as np

from ampnet.io.files import atomic_output, write_text_atomic

VERDICTS = [(0.01, "great"), (0.035, "good"), (0.1, "usable")]
POOR_CAUSES = ("likely causes: dry and wet misaligned (check the latency found, or pass "
               "--latency), too little or too uniform training audio (play 3+ minutes covering "
               "the dynamics and range you will use), noise or hum in the wet recording, or a "
               "time-based effect (delay, reverb, modulation) that an LSTM this size cannot hold "
               "(capture it without those, add them after the model)")


def report_paths(model_path):
    """``(json, png)`` paths of the report that goes next to ``model_path``."""
    return (model_path.with_name(model_path.stem + ".report.json"),
            model_path.with_name(model_path.stem + ".report.png"))


def verdict(val_esr):
    """``(word, advice)`` for a validation ESR."""
    for limit, word in VERDICTS:
        if val_esr < limit:
            return word, ""
    return "poor", POOR_CAUSES


def write_report_json(path, report: dict):
    write_text_atomic(path, json.dumps(report, indent=1, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def write_report_png(path, target, prediction, sample_rate, history):
    """Target vs prediction (a zoomed waveform window and the spectra) and the loss curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (wave_ax, spec_ax, loss_ax) = plt.subplots(3, 1, figsize=(10, 11))
    # Zoom on 20 ms around the loudest part of the validation audio.
    width = int(0.02 * sample_rate)
    centre = int(np.argmax(np.convolve(target ** 2, np.ones(width), "same")))
    lo = max(0, centre - width // 2)
    t = (np.arange(lo, min(target.size, lo + width)) / sample_rate) * 1000
    wave_ax.plot(t, target[lo:lo + width], label="target (wet)", lw=1.5)
    wave_ax.plot(t, prediction[lo:lo + width], label="model", lw=1, ls="--")
    wave_ax.set(xlabel="time (ms)", ylabel="amplitude", title="Waveform, 20 ms window")
    wave_ax.legend()

    for signal, label in ((target, "target (wet)"), (prediction, "model"),
                          (target - prediction, "error")):
        freqs, level = _spectrum(signal, sample_rate)
        spec_ax.semilogx(freqs, level, label=label, lw=1)
    spec_ax.set(xlabel="frequency (Hz)", ylabel="level (dB)", title="Average spectrum",
                xlim=(20, sample_rate / 2))
    spec_ax.legend()

    epochs = [e["epoch"] for e in history.epochs]
    loss_ax.semilogy(epochs, [e["train_loss"] for e in history.epochs], label="training loss")
    loss_ax.semilogy(epochs, [e["val_esr"] for e in history.epochs], label="validation ESR")
    loss_ax.set(xlabel="epoch", title="Loss curves")
    loss_ax.legend()
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def _spectrum(signal, sample_rate, size=4096):
    """Welch-averaged power spectrum in dB, ``(freqs, level)``."""
    frames = signal[: signal.size // size * size].reshape(-1, size)
    window = np.hanning(size)
    power = np.mean(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, axis=0)
    return np.fft.rfftfreq(size, 1 / sample_rate)[1:], 10 * np.log10(power[1:] + 1e-20)
