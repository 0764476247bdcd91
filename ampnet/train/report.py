"""What the user sees after training: the verdict, and the report files next to the model.

ESR scale (error-to-signal ratio on the validation audio, as users of capture
tools know it): < 0.01 great, < 0.035 good, < 0.1 usable, else poor.
"""

import json

import numpy as np

from ampnet.io.files import atomic_output, write_text_atomic

VERDICTS = [(0.01, "great"), (0.035, "good"), (0.1, "usable")]
MISALIGNED = ("dry and wet misaligned (check the latency found, or pass --latency; the "
              "capture signal's clicks give it exactly)")
OTHER_CAUSES = ("too little or too uniform training audio (play 3+ minutes covering the dynamics "
                "and range you will use), noise or hum in the wet recording, or a time-based "
                "effect (delay, reverb, modulation) that an LSTM this size cannot hold (capture it "
                "without those, add them after the model)")
POOR_CAUSES = f"likely causes: {MISALIGNED}, {OTHER_CAUSES}"


def report_paths(model_path):
    """``(json, png)`` paths of the report that goes next to ``model_path``."""
    return (model_path.with_name(model_path.stem + ".report.json"),
            model_path.with_name(model_path.stem + ".report.png"))


def verdict(val_esr, latency_exact=False):
    """``(word, advice)`` for a validation ESR; ``latency_exact``: the latency came from the
    capture signal's clicks, so misalignment is not among the causes."""
    for limit, word in VERDICTS:
        if val_esr < limit:
            return word, ""
    return "poor", f"likely causes: {OTHER_CAUSES}" if latency_exact else POOR_CAUSES


def settings_table(figures) -> list:
    """The per-setting (without knobs: per-take) null tests of a report as lines for the
    terminal, a title first (validation rows, then test rows), the worst validation row
    marked."""
    null = figures["null_test"]
    rows = null["validation"] + null["test"]  # validation first: the worst is one of them
    worst = max(range(len(null["validation"])), key=lambda i: rows[i]["esr"])
    header = "setting" if any(r["setting"] for r in rows) else "take"
    width = max(len(header), *(len(r["label"]) for r in rows))
    lines = [f"null-test ESR by {header}:", f"  {header:{width}s}  {'ESR':>8s}  audio"]
    for index, r in enumerate(rows):
        what = r["kind"] + (", setting not trained on" if r["unseen"] else "")
        mark = "  <- worst" if index == worst else ""
        lines.append(f"  {r['label']:{width}s}  {r['esr']:8.4f}  {what}{mark}")
    return lines


def write_report_json(path, report: dict):
    write_text_atomic(path, json.dumps(report, indent=1, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)


def write_report_png(path, target, prediction, sample_rate, history, knobs=(), rows=()):
    """Target vs prediction (a zoomed waveform window and the spectra), the loss curves
    and, for a knob model, the validation ESR over the knob settings (``knobs``: the
    knob names; ``rows``: the report's validation rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 4 if knobs else 3
    fig, axes = plt.subplots(panels, 1, figsize=(10, 3.7 * panels))
    wave_ax, spec_ax, loss_ax = axes[:3]
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
    if knobs:
        _knob_panel(axes[3], list(knobs), list(rows))
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def _knob_panel(ax, knobs, rows):
    """Validation ESR over the settings: a line over one knob, a coloured map over two
    (each setting a square, its ESR written beside it), bars for more."""
    import matplotlib.colors

    seen = [r for r in rows if not r["unseen"]]
    unseen = [r for r in rows if r["unseen"]]
    if len(knobs) == 1:
        name = knobs[0]
        for group, label, marker in ((seen, "captured setting (held-out audio)", "o"),
                                     (unseen, "setting not trained on", "s")):
            group = sorted(group, key=lambda r: r["setting"][name])
            ax.semilogy([r["setting"][name] for r in group], [r["esr"] for r in group],
                        marker=marker, label=label, ls="-" if group is seen else "none")
        ax.set(xlabel=name, ylabel="validation ESR", title=f"ESR over {name}")
        ax.legend()
    elif len(knobs) == 2:
        x, y = knobs
        esrs = [r["esr"] for r in rows]
        norm = matplotlib.colors.LogNorm(vmin=min(esrs), vmax=max(max(esrs), min(esrs) * 1.01))
        for group, marker, label in ((seen, "s", "captured"), (unseen, "D", "not trained on")):
            if group:
                points = ax.scatter([r["setting"][x] for r in group], [r["setting"][y] for r in group],
                                    c=[r["esr"] for r in group], norm=norm, cmap="viridis_r",
                                    marker=marker, s=900, edgecolors="black", label=label)
        for r in rows:
            ax.annotate(f"{r['esr']:.4f}", (r["setting"][x], r["setting"][y]), fontsize=8,
                        ha="center", va="center",
                        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "lw": 0})
        ax.figure.colorbar(points, ax=ax, label="validation ESR")
        ax.set(xlabel=x, ylabel=y, title=f"ESR over {x} and {y} (squares: captured, "
                                          "diamonds: not trained on)")
        ax.margins(0.15)
    else:
        ax.bar(range(len(rows)), [r["esr"] for r in rows],
               color=["tab:orange" if r["unseen"] else "tab:blue" for r in rows])
        ax.set_xticks(range(len(rows)), [r["label"] for r in rows], rotation=30, ha="right",
                      fontsize=7)
        ax.set(ylabel="validation ESR", title="ESR by setting (orange: not trained on)")


def _spectrum(signal, sample_rate, size=4096):
    """Welch-averaged power spectrum in dB, ``(freqs, level)``."""
    frames = signal[: signal.size // size * size].reshape(-1, size)
    window = np.hanning(size)
    power = np.mean(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, axis=0)
    return np.fft.rfftfreq(size, 1 / sample_rate)[1:], 10 * np.log10(power[1:] + 1e-20)
