"""The training loop: truncated backpropagation through time over parallel streams.

The training audio (one segment per capture, each with its knob values as extra
input channels) is laid end to end and cut into ``batch`` equally long streams
that are walked in step, ``update_samples`` at a time, so that every update mixes
all captures in proportion to their duration. A stream that runs from one capture
into the next sees the knobs jump there, as when a knob turns while playing. The
streams are walked with the LSTM state carried from one
chunk to the next (detached, so gradients stop at chunk boundaries). Each epoch
starts with ``warmup_samples`` run without gradient so the state is settled
before the first update. Every sample is used once per epoch and no
computation is spent re-warming short segments.

The loss is ESR with pre-emphasis (coefficient ``pre_emphasis``) plus DC (:func:`esr_dc_loss`), plus
``stft_weight`` times a multi-resolution STFT loss when asked for.
Adam with the learning rate annealed along a half cosine over the time budget
(``minutes``: a 3-minute run and a 10-minute run each end with a small rate) or
over ``epochs``, whichever runs out first,
gradient-norm clipping. A diverging run (a non-finite loss, or an epoch whose
validation ESR is ``DIVERGED`` times the best) rolls back to the best weights with half the
learning rate and a fresh optimiser state. Every validation segment is scored (ESR over the whole of it) after each epoch,
and their mean selects the best weights; training stops at ``epochs``, at ``minutes``, or after
``patience`` epochs without improvement once the learning-rate schedule has run
``PATIENCE_AFTER`` of its course. Before that, a stall is the noise of a high
learning rate, not convergence: a 10-minute run on the capture signal through
gx-studiopre sat at 0.25-0.39 validation ESR from minute 3.4 to 6.8 and then fell
to 0.077 as the rate annealed; patience counted from the start would have stopped it
at 0.25. A checkpoint is written atomically
after every epoch so Ctrl-C or a crash loses at most one epoch.
"""

import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from ampnet.errors import AmpnetError
from ampnet.io.files import atomic_output
from ampnet.train.losses import PUBLISHED_PRE_EMPHASIS, MultiResolutionSTFT, esr, esr_dc_loss
from ampnet.train.network import AmpLSTM


@dataclass
class TrainConfig:
    hidden: int = 32
    layers: int = 1
    skip: bool = True
    epochs: int = 200
    minutes: float = 10.0
    batch: int = 0  # parallel streams; 0: auto_batch() of the capture set
    update_samples: int = 256
    warmup_samples: int = 2048
    learning_rate: float = 0.0  # 0: auto_learning_rate() of the batch
    final_lr_fraction: float = 0.02
    stft_weight: float = 0.0  # weight of the optional multi-resolution STFT loss term
    pre_emphasis: float = PUBLISHED_PRE_EMPHASIS  # the loss's high-pass coefficient (0: plain ESR)
    patience: int = 10
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # 0: see choose_threads


@dataclass
class Segment:
    """Aligned audio at one knob setting: ``dry``/``wet`` float32 ``(frames,)``;
    ``knobs`` the network's knob inputs ``(K,)``, normalised to 0..1 (empty: none)."""

    dry: np.ndarray
    wet: np.ndarray
    knobs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


@dataclass
class History:
    epochs: list = field(default_factory=list)  # dicts: epoch, seconds, train_loss, val_esr, lr
    best_val_esr: float = math.inf
    best_epoch: int = 0
    stopped_because: str = ""


PATIENCE_AFTER = 0.75  # share of the schedule (time or epochs) before patience may stop a run
STREAMS_PER_SETTING = 16
MAX_AUTO_STREAMS = 64
ONE_THREAD_HIDDEN = 64
DIVERGED = 10.0  # a validation ESR this many times the best means the run blew up
CHECKPOINT_KEYS = {"config", "history", "net", "best", "optimizer", "input_scale", "rng",
                   "elapsed", "lr_scale", "updates_done", "torch_rng"}
# Settings a resumed run must share with its checkpoint: the network's shape and the streams.
RESUME_MUST_MATCH = ("hidden", "layers", "skip", "batch", "update_samples")


def auto_batch(settings, device="cpu"):
    """Parallel streams for a capture set of ``settings`` captured settings: on the CPU
    16 per setting, at most 64. One capture trains best there on 16 (more streams would
    make each short and leave few updates per epoch); a knob set has several times the
    audio, and more streams keep its epochs short.

    On a CUDA device always 64: an update costs about the same for 16 or 64 streams
    there, so 64 see four times the audio per second. Measured on an H200 (PyTorch 2.11,
    cuDNN 9.19), LSTM-32 on gx-studiopre, 3.5 minutes, the three runs side by side,
    validation ESR: 16 streams 0.046 (11 s an epoch), 64 streams 0.025 (3.4 s), 128
    streams 0.065 (2.2 s; stopped by patience after 2 minutes)."""
    if torch.device(device).type == "cuda":
        return MAX_AUTO_STREAMS
    return max(1, min(MAX_AUTO_STREAMS, STREAMS_PER_SETTING * settings))


def auto_learning_rate(batch):
    """Adam's initial rate for ``batch`` streams: 1e-2 up to 16, then 1.5 times more for
    every 4 times the streams (1.5e-2 at 64; 3 significant digits). Measured with
    benchmarks/train_knobs.py (LSTM-32, one thread, AVX-512 Xeon), validation ESR
    (selection pass, mean over the settings): 9 settings of an overdrive pedal on 64
    streams, 0.0178 after 154 s at 1.5e-2 against 0.0436 after 170 s at 1e-2, and
    0.0071 after 10 min against 0.013 on 16 streams at 1e-2; one capture on 64 streams
    at 1.5e-2, 0.019 after 245 s against 0.0088 on 16 at 1e-2.
    """
    steps = math.log(max(batch, STREAMS_PER_SETTING) / STREAMS_PER_SETTING, 4)
    return float(f"{1e-2 * 1.5 ** steps:.3g}")


def resolve_defaults(config, settings=1):
    """``config`` with the automatic batch and learning rate filled in for a capture set
    of ``settings`` captured settings (fields the caller set are kept)."""
    batch = config.batch or auto_batch(settings, config.device)
    return replace(config, batch=batch,
                   learning_rate=config.learning_rate or auto_learning_rate(batch))


def training_device(name=None):
    """The torch device to train on: ``name`` ("cpu", "cuda", "cuda:N"), or CUDA when
    present; refuses one this machine cannot use, in one line."""
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise AmpnetError(f"--device {name}: not a device; give cpu or cuda (or cuda:N)") from None
    if device.type == "cpu":
        return "cpu"
    if device.type != "cuda":
        raise AmpnetError(f"--device {name}: ampnet trains on cpu or cuda")
    if not torch.cuda.is_available():
        why = ("this PyTorch is a CPU build" if torch.version.cuda is None
               else "no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES?)")
        raise AmpnetError(f"--device {name}: {why}; train with --device cpu, or install a "
                          "CUDA build of PyTorch on a machine with an NVIDIA GPU")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise AmpnetError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s), numbered from 0")
    return str(device)


def choose_threads(config):
    """torch threads: the configured count; else one for networks up to
    ``ONE_THREAD_HIDDEN`` (their matrices are too small to share: LSTM-32 trains about
    1.5x faster on one thread than on two), one per core above."""
    if config.threads:
        return config.threads
    return 1 if config.hidden <= ONE_THREAD_HIDDEN else os.cpu_count() or 1


class Trainer:
    """Fits an :class:`AmpLSTM` to ``(dry, wet)`` arrays; see the module docstring."""

    def __init__(self, config: TrainConfig, input_scale: float, checkpoint_path=None,
                 on_epoch=None, knobs=0, captures=None):
        """``knobs``: number of knob inputs; ``captures``: a list of strings that
        describe the training data (files and settings), kept in the checkpoint and
        compared on resume."""
        config = self.config = resolve_defaults(config)
        self.checkpoint_path = checkpoint_path
        self.on_epoch = on_epoch  # called with each epoch's figures (a dict)
        self.captures = list(captures or [])
        torch.manual_seed(config.seed)
        self.device = torch.device(config.device)
        self.net = AmpLSTM(config.hidden, config.layers, config.skip, input_scale,
                           knobs).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate)
        self.stft_loss = MultiResolutionSTFT().to(self.device) if config.stft_weight > 0 else None
        self.history = History()
        self.best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
        self.rng = np.random.default_rng(config.seed)
        self.elapsed_before = 0.0  # seconds trained in earlier (resumed) runs
        self.lr_scale = 1.0  # halved after each divergence
        self.updates_done = 0
        self.schedule_progress = 0.0  # 0..1: how far the learning-rate schedule has run

    def fit(self, train, val, show_progress=None):
        """Train on the :class:`Segment` list ``train``, validate on the list ``val``;
        returns the History."""
        config = self.config
        x, y = self._streams(train)
        x_val, y_val, val_lengths = self._validation_batch(val)
        start = time.monotonic() - self.elapsed_before
        budget = config.minutes * 60
        chunks = (x.shape[1] - config.warmup_samples) // config.update_samples
        first_epoch = len(self.history.epochs) + 1
        for epoch in range(first_epoch, config.epochs + 1):
            bar = tqdm(total=chunks, desc=f"epoch {epoch}", unit="update", leave=False,
                       disable=None if show_progress is None else not show_progress)
            train_loss = self._epoch(x, y, chunks, bar, start, budget)
            bar.close()
            val_esr = float(np.mean(self.validate(x_val, y_val, val_lengths)))
            if not val_esr < DIVERGED * self.history.best_val_esr:  # also NaN; never on epoch 1
                self._recover(f"validation ESR {val_esr:.3g}, best {self.history.best_val_esr:.3g}")
            elapsed = time.monotonic() - start
            lr = self.optimizer.param_groups[0]["lr"]
            self.history.epochs.append({"epoch": epoch, "seconds": round(elapsed, 2),
                                        "train_loss": train_loss, "val_esr": val_esr, "lr": lr})
            if val_esr < self.history.best_val_esr:
                self.history.best_val_esr, self.history.best_epoch = val_esr, epoch
                self.best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            self._log(f"epoch {epoch}: train loss {train_loss:.4f}, validation ESR {val_esr:.4f} "
                      f"(best {self.history.best_val_esr:.4f}), {elapsed:.0f} s of {budget:.0f} s")
            self.elapsed_before = elapsed
            self.save_checkpoint()
            if self.on_epoch is not None:
                self.on_epoch(dict(self.history.epochs[-1], best_val_esr=self.history.best_val_esr))
            if elapsed >= budget:
                self.history.stopped_because = f"time budget of {config.minutes:g} min reached"
                break
            if (epoch - self.history.best_epoch >= config.patience
                    and self.schedule_progress >= PATIENCE_AFTER):
                best_at = next((e["seconds"] for e in self.history.epochs
                               if e["epoch"] == self.history.best_epoch), 0.0)
                self.history.stopped_because = (f"no improvement for {epoch - self.history.best_epoch} "
                                                f"epochs ({elapsed - best_at:.0f} s)")
                break
        else:
            self.history.stopped_because = f"{config.epochs} epochs done"
        self.net.load_state_dict(self.best_state)
        return self.history

    def _streams(self, segments):
        """``(batch, length, 1 + K)`` inputs and ``(batch, length, 1)`` targets: the
        segments end to end, cut into ``batch`` parallel streams."""
        config = self.config
        total = sum(s.dry.size for s in segments)
        length = total // config.batch
        if length < config.warmup_samples + config.update_samples:
            raise AmpnetError(f"{total} samples of training audio are too few for "
                              f"--batch {config.batch}; record more or lower --batch")
        x = np.concatenate([_inputs(s) for s in segments])[:config.batch * length]
        y = np.concatenate([s.wet for s in segments])[:config.batch * length]
        x = torch.from_numpy(x.reshape(config.batch, length, -1))
        y = torch.from_numpy(y.reshape(config.batch, length, 1).copy())
        return x.to(self.device), y.to(self.device)

    def _validation_batch(self, segments):
        """Validation segments as one zero-padded batch ``(S, longest, 1 + K)`` (padding at
        the end leaves a causal network's output over each segment unchanged), the
        targets ``(S, longest, 1)`` and the segments' lengths."""
        lengths = [s.dry.size for s in segments]
        longest = max(lengths)
        x = np.zeros((len(segments), longest, 1 + segments[0].knobs.size), np.float32)
        y = np.zeros((len(segments), longest, 1), np.float32)
        for i, segment in enumerate(segments):
            x[i, :lengths[i]] = _inputs(segment)
            y[i, :lengths[i], 0] = segment.wet
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device), lengths

    def _epoch(self, x, y, chunks, bar, start, budget):
        """One pass over every stream; returns the mean training loss."""
        config = self.config
        self.net.train()
        # A different chunk phase each epoch, so no sample is always at a boundary.
        offset = int(self.rng.integers(0, config.update_samples))
        with torch.no_grad():
            _, state = self.net(x[:, offset:offset + config.warmup_samples])
        losses = []
        position = offset + config.warmup_samples
        for _ in range(chunks):
            if position + config.update_samples > x.shape[1]:
                break
            # Annealed over whichever runs out first: the time budget or the epochs.
            # (A run that ends by its epochs is then repeatable with the same seed.)
            self.updates_done += 1
            self._set_learning_rate(max((time.monotonic() - start) / budget,
                                        self.updates_done / (config.epochs * chunks)))
            window = slice(position, position + config.update_samples)
            prediction, state = self.net(x[:, window], state)
            loss = esr_dc_loss(y[:, window], prediction, config.pre_emphasis)
            if self.stft_loss is not None:
                loss = loss + config.stft_weight * self.stft_loss(y[:, window], prediction)
            value = loss.item()
            if not math.isfinite(value):
                self._recover("non-finite loss")
                state = None
                position += config.update_samples
                continue
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.grad_clip)
            self.optimizer.step()
            state = tuple(s.detach() for s in state)
            losses.append(value)
            position += config.update_samples
            left = budget - (time.monotonic() - start)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", best_val=f"{self.history.best_val_esr:.4f}",
                            left=f"{max(0, left) / 60:.1f} min", refresh=False)
            bar.update()
            if left <= 0:
                break
        return float(np.mean(losses)) if losses else math.nan

    def _set_learning_rate(self, progress):
        """Half-cosine from the initial rate to ``final_lr_fraction`` of it at ``progress`` 1."""
        config = self.config
        self.schedule_progress = min(1.0, progress)
        floor = config.final_lr_fraction
        shape = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        for group in self.optimizer.param_groups:
            group["lr"] = config.learning_rate * self.lr_scale * shape

    def _recover(self, why):
        """Roll back to the best weights, halve the learning rate, restart Adam's moments."""
        self.net.load_state_dict(self.best_state)
        self.optimizer.state.clear()
        self.lr_scale *= 0.5
        if self.lr_scale < 1e-4:
            raise AmpnetError("training diverged repeatedly; check the recordings for clipping "
                              "or noise bursts, or lower --lr")
        self._log(f"training diverged ({why}): rolled back to the best weights, learning rate "
                  "halved")

    @torch.no_grad()
    def validate(self, x_val, y_val, lengths):
        """ESR of each validation segment over its whole length (a list); the network
        takes long segments in pieces itself (``network.LSTM_MAX_FRAMES``)."""
        self.net.eval()
        output, _ = self.net(x_val)
        return [float(esr(y_val[i:i + 1, :n], output[i:i + 1, :n])) for i, n in enumerate(lengths)]

    def save_checkpoint(self):
        if not self.checkpoint_path:
            return
        payload = {"config": asdict(self.config), "history": asdict(self.history),
                   "net": self.net.state_dict(), "best": self.best_state,
                   "optimizer": self.optimizer.state_dict(), "input_scale": self.net.input_scale,
                   "rng": self.rng.bit_generator.state, "elapsed": self.elapsed_before,
                   "lr_scale": self.lr_scale, "updates_done": self.updates_done,
                   "torch_rng": torch.get_rng_state(), "captures": self.captures}
        with atomic_output(self.checkpoint_path) as tmp:
            torch.save(payload, tmp)

    def load_checkpoint(self, path):
        """Continue from the checkpoint at ``path``. It is read as data only (tensors,
        numbers, strings: ``torch.load(weights_only=True)``, so a crafted file cannot run
        code); a damaged one, or one from another network or other training audio, is
        refused with a line that says what differs."""
        try:
            with warnings.catch_warnings():  # torch warns about unusual pickles: we refuse them
                warnings.simplefilter("ignore")
                payload = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # pickle, zip and torch errors alike: not a checkpoint
            detail = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
            raise AmpnetError(f"{path}: not an ampnet checkpoint, or damaged ({detail}); delete it "
                              "and start without --resume") from None
        missing = CHECKPOINT_KEYS - set(payload) if isinstance(payload, dict) else CHECKPOINT_KEYS
        if missing:
            raise AmpnetError(f"{path}: not an ampnet checkpoint (no {', '.join(sorted(missing))}); "
                              "delete it and start without --resume")
        saved = payload["config"] if isinstance(payload["config"], dict) else {}
        ours = asdict(self.config)
        differences = [f"--{key.replace('_', '-')} {saved.get(key)!r} there, {ours[key]!r} now"
                       for key in RESUME_MUST_MATCH if saved.get(key) != ours[key]]
        if payload["input_scale"] != self.net.input_scale:
            differences.append(f"input scale {payload['input_scale']!r} there, "
                               f"{self.net.input_scale!r} now (other training audio?)")
        theirs = payload.get("captures", [])
        if theirs != self.captures:
            gone = [c for c in theirs if c not in self.captures]
            new = [c for c in self.captures if c not in theirs]
            differences.append("training captures differ ("
                               + "; ".join([f"there, not now: {c}" for c in gone[:3]]
                                           + [f"now, not there: {c}" for c in new[:3]]
                                           or ["same captures in another order"]) + ")")
        if differences:
            raise AmpnetError(f"{path}: this checkpoint was made with other settings ("
                              f"{'; '.join(differences)}); resume with the same settings and "
                              "recordings, or start without --resume")
        try:
            self.net.load_state_dict(payload["best"])  # checks every name and shape
            self.best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            self.net.load_state_dict(payload["net"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.history = History(**payload["history"])
            self.rng.bit_generator.state = payload["rng"]
            self.elapsed_before = float(payload["elapsed"])
            self.lr_scale = float(payload["lr_scale"])
            self.updates_done = int(payload["updates_done"])
            # map_location moved every tensor to the training device; the CPU
            # generator's state must be a CPU tensor.
            torch.set_rng_state(payload["torch_rng"].cpu())
        except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as err:
            raise AmpnetError(f"{path}: damaged checkpoint ({str(err).splitlines()[0][:120]}); "
                              "delete it and start without --resume") from None

    def _log(self, message):
        tqdm.write(message)


def _inputs(segment):
    """``(frames, 1 + K)`` float32: the dry audio, then each knob input held constant."""
    columns = np.empty((segment.dry.size, 1 + segment.knobs.size), np.float32)
    columns[:, 0] = segment.dry
    columns[:, 1:] = segment.knobs
    return columns
