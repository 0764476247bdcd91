"""Offline rendering: audio files through a model or a preset's chain, streamed disk to disk.

Each file is read in chunks, resampled to the models' rate and back when needed
(soxr, streaming), run through the chain (:class:`~ampnet.host.chain.Chain`) in blocks of
``blocksize`` frames, and written to a temporary file that is renamed to the
output only once complete. Memory stays flat whatever the file's length.

A batch is one job per (input file, model or preset) pair, run here, in a local
process pool (``--jobs``) or on a Ray cluster (:mod:`ampnet.cluster.render`), with
the same :func:`render_file`, so outputs are byte-identical wherever they were made.
Each finished output gets a line in the output folder's journal
(:class:`RenderJournal`): what was rendered from what, and what a re-run of the same
command skips.
"""

import concurrent.futures
import errno
import json
import multiprocessing
import os
import queue as queue_module
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from ampnet.errors import AmpnetError, Stopped
from ampnet.host.preset import load_spec
from ampnet.io.audio import (find_audio_inputs, format_for_path, open_audio, output_subtype,
                             read_frames, replace_nonfinite, without_peak_chunk)
from ampnet.io.files import atomic_output

CHUNK_FRAMES = 65536
JOURNAL_NAME = "ampnet-render.jsonl"  # in the output folder: one line per finished output
MODEL_SUFFIXES = (".json", ".nam", ".aidax", ".toml")  # what a batch's models are named
FULL_DISK_BYTES = 16 * 2 ** 20  # a write that fails with less free space than this: disk full


@dataclass
class RenderJob:
    """One input file, the model or preset it goes through, and where its output goes."""

    source: Path
    target: Path
    model: Path


@dataclass
class RenderSettings:
    """What besides the files decides an output's bytes (a journal entry matches on them)."""

    blocksize: int = 64
    subtype: str | None = None
    params: tuple = ()  # NAME=VALUE knob settings


@dataclass
class RenderResult:
    job: RenderJob
    seconds: float = 0.0  # of audio
    error: str | None = None
    notes: tuple = ()


def split_models(arguments):
    """``MODEL|PRESET... INPUT...`` as ``(models, inputs)``: the first argument is a model;
    the files after it named like models (:data:`MODEL_SUFFIXES`) are too, up to the
    first that is not."""
    models = [Path(arguments[0])]
    rest = list(arguments[1:])
    while rest and Path(rest[0]).suffix.lower() in MODEL_SUFFIXES and not Path(rest[0]).is_dir():
        models.append(Path(rest.pop(0)))
    return models, rest


def plan_jobs(models, inputs, output=None, out_dir=None, overwrite=False, settings=None):
    """Map (model, input) pairs to outputs: ``--out-dir`` mirrors the input folders, in a
    folder per model when there are several. Returns ``(jobs, failures, skipped)``:
    problems that concern one file (output exists, output equals input) become failed
    results so that the rest of the batch still renders; ``skipped`` are jobs whose
    output the journal lists as finished with these ``settings``
    (:class:`RenderSettings`), which a re-run does not redo."""
    models = [Path(m) for m in models]
    if (output is None) == (out_dir is None):
        raise AmpnetError("give either -o OUTPUT (one input file) or --out-dir DIR")
    names = [m.stem for m in models]
    for name in set(names):
        if names.count(name) > 1:
            raise AmpnetError(f"two models named {name!r} would share the output folder "
                              f"{Path(out_dir or '.') / name}; rename one")
    found, problems = find_audio_inputs(inputs)
    failures = [RenderResult(RenderJob(path, path, models[0]), error=message)
                for path, message in problems]
    if output is not None:
        if len(inputs) != 1 or Path(inputs[0]).is_dir() or len(models) > 1:
            raise AmpnetError(f"-o names one output file but {len(inputs)} input(s) and "
                              f"{len(models)} model(s) were given; use --out-dir DIR for several")
        pairs = [(models[0], src, Path(output)) for src, _ in found]
    else:
        folder = lambda model: Path(out_dir) / model.stem if len(models) > 1 else Path(out_dir)
        pairs = [(model, src, folder(model) / rel) for model in models for src, rel in found]
    journal = RenderJournal(out_dir) if out_dir is not None else None
    jobs, skipped = [], []
    for model, src, target in pairs:
        job = RenderJob(src, target, model)
        if target.resolve() == src.resolve():
            failures.append(RenderResult(job, error=f"{target}: is the input file itself; "
                                         "ampnet never overwrites an input, choose another output"))
        elif target.exists() and not overwrite:
            if journal is not None and journal.finished(job, settings or RenderSettings()):
                skipped.append(job)
            else:
                failures.append(RenderResult(job, error=f"{target}: already exists; pass "
                                             "--overwrite to replace it"))
        else:
            jobs.append(job)
    return jobs, failures, skipped


class RenderJournal:
    """``OUT_DIR/ampnet-render.jsonl``: one JSON line per finished output (``output``
    relative to the folder, ``source`` and ``model`` absolute, their sizes and
    modification times, the settings, ``seconds`` of audio, the output's ``bytes``).
    Lines are appended and flushed as outputs finish, so an interrupted batch keeps
    what it finished; a line cut short by a crash is ignored."""

    def __init__(self, out_dir):
        self.folder = Path(out_dir)
        self.path = self.folder / JOURNAL_NAME
        self.entries = {}
        if self.path.is_file():
            with open(self.path, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    try:
                        entry = json.loads(line)
                        self.entries[entry["output"]] = entry
                    except (ValueError, KeyError, TypeError):
                        continue

    def _key(self, job):
        return Path(os.path.relpath(job.target, self.folder)).as_posix()

    def _entry(self, job, settings):
        source, model = Path(job.source).resolve(), Path(job.model).resolve()
        source_stat, model_stat = source.stat(), model.stat()
        return {"output": self._key(job), "source": str(source), "model": str(model),
                "source_bytes": source_stat.st_size, "source_mtime_ns": source_stat.st_mtime_ns,
                "model_bytes": model_stat.st_size, "model_mtime_ns": model_stat.st_mtime_ns,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}}

    def finished(self, job, settings):
        """Whether the journal lists ``job``'s output as rendered from the same source and
        model (unchanged since) with the same settings, and the file is still that size."""
        entry = self.entries.get(self._key(job))
        if entry is None:
            return False
        try:
            now = self._entry(job, settings)
            size = Path(job.target).stat().st_size
        except OSError:
            return False
        return all(entry.get(k) == v for k, v in now.items()) and entry.get("bytes") == size

    def record(self, result, settings):
        """Append ``result`` (a finished output)."""
        entry = {**self._entry(result.job, settings), "seconds": round(result.seconds, 6),
                 "bytes": Path(result.job.target).stat().st_size,
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.entries[entry["output"]] = entry
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())


def render_file(spec, job, blocksize=64, subtype=None, progress=None):
    """Render ``job.source`` through ``spec`` (a :class:`~ampnet.host.preset.ChainSpec`)
    into ``job.target``.

    The output has the input's sample rate, channels, length and (unless
    ``subtype`` is given) subtype. NaN or infinite input samples are replaced by
    silence before they reach the resampler or the chain, and counted in the notes.
    ``progress(frames)`` is called after each chunk with the number of input frames
    done. Returns a :class:`RenderResult`.
    """
    notes = []
    with open_audio(job.source) as src:
        rate, channels, frames = src.samplerate, src.channels, src.frames
        fmt = format_for_path(job.target)
        out_subtype = output_subtype(fmt, subtype, src.subtype)
        model_rate = int(round(spec.sample_rate or rate))
        resample = rate != model_rate
        if resample:
            notes.append(f"{rate} Hz input resampled to the model's {model_rate} Hz and back (soxr HQ)")
        clip = out_subtype.startswith("PCM") or out_subtype in ("ULAW", "ALAW")
        chain = spec.build(model_rate, channels=channels, max_block=blocksize)
        to_model = soxr.ResampleStream(rate, model_rate, channels, dtype="float32") if resample else None
        from_model = soxr.ResampleStream(model_rate, rate, channels, dtype="float32") if resample else None
        job.target.parent.mkdir(parents=True, exist_ok=True)
        written = clipped = nonfinite = 0
        first_bad = None  # (frame, channel)
        with atomic_output(job.target) as tmp:
            try:
                dst = without_peak_chunk(sf.SoundFile(str(tmp), "w", samplerate=rate,
                                                      channels=channels, subtype=out_subtype,
                                                      format=fmt))
                with dst:
                    read = 0
                    while read < frames:
                        chunk = read_frames(src, min(CHUNK_FRAMES, frames - read), job.source)
                        count, first = replace_nonfinite(chunk)
                        if count:
                            nonfinite += count
                            if first_bad is None:
                                first_bad = (read + first // channels, first % channels)
                        read += chunk.shape[0]
                        out = _process_chunk(chain, chunk, to_model, from_model, read >= frames)
                        out = out[: frames - written]
                        if clip:
                            clipped += int(np.count_nonzero(np.abs(out) > 1.0))
                            np.clip(out, -1.0, 1.0, out=out)
                        dst.write(out)
                        written += out.shape[0]
                        if progress:
                            progress(chunk.shape[0])
                    if written < frames:  # resampler tail shorter by a frame or two
                        dst.write(np.zeros((frames - written, channels), dtype=np.float32))
            except (sf.LibsndfileError, OSError) as err:
                raise _write_error(job.target, err) from None
        if clipped:
            notes.append(f"{clipped} samples clipped at full scale for {out_subtype}; "
                         "use --subtype FLOAT to keep them")
        notes += guard_notes(nonfinite, first_bad, rate, chain.health())
    return RenderResult(job, seconds=frames / rate, notes=tuple(notes))


def guard_notes(nonfinite, first_bad, rate, health):
    """Warnings for the file's non-finite samples (``nonfinite``, the first at ``first_bad``
    = ``(frame, channel)`` at ``rate`` Hz, replaced before the resampler) and for what the
    chain's own guard saw (:meth:`~ampnet.host.chain.Chain.health`): non-finite samples
    that only the resampler made (an overflow), and processor resets."""
    notes = []
    if nonfinite:
        frame, channel = first_bad
        notes.append(f"warning: {nonfinite} NaN or infinite input sample(s) replaced by silence, "
                     f"the first at {frame / rate:.3f} s (frame {frame}, channel {channel + 1}); "
                     "the input file is damaged")
    if health["nonfinite"]:
        notes.append(f"warning: {health['nonfinite']} sample(s) overflowed in the resampler and "
                     "were replaced by silence (the input has extreme levels)")
    if health["resets"]:
        notes.append(f"warning: a processor's state overflowed {health['resets']} time(s) and was "
                     "reset (the input has extreme levels)")
    return notes


def _write_error(target, err):
    """The one-line error for a failed write: a full disk says so."""
    folder = Path(target).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if getattr(err, "errno", None) == errno.ENOSPC or (free is not None and free < FULL_DISK_BYTES):
        return AmpnetError(f"{target}: the disk is full ({(free or 0) / 2 ** 20:.1f} MB free in "
                           f"{folder}); free some space or choose another output folder")
    return AmpnetError(f"{target}: cannot be written ({err}); check that {folder} is writable")


def _process_chunk(chain, chunk, to_model, from_model, last):
    """Run one ``(frames, channels)`` chunk through resampler, chain, resampler. The
    chain runs it in blocks of exactly ``--blocksize`` frames (its ``max_block``)."""
    if to_model is not None:
        chunk = to_model.resample_chunk(chunk, last=last)
    block = chain.process(np.ascontiguousarray(chunk.T))  # (channels, frames), in place
    out = block.T
    if from_model is not None:
        out = from_model.resample_chunk(np.ascontiguousarray(out), last=last)
    return np.ascontiguousarray(out)


class SpecCache:
    """Chains' specifications by model path, each loaded once per process (with the
    batch's ``--param`` settings)."""

    def __init__(self, params=()):
        self.params, self.specs = tuple(params), {}

    def get(self, model):
        key = str(model)
        if key not in self.specs:
            self.specs[key] = load_spec(model, self.params)
        return self.specs[key]


class BatchProgress:
    """One bar for a batch: seconds of audio done of the total, files done, the rate
    (seconds of audio per second) and the time left. Shown on a terminal only unless
    ``show`` says otherwise."""

    def __init__(self, jobs, show=None):
        infos = {source: _info_or_none(source) for source in {job.source for job in jobs}}
        self.rates, frames = [], []
        for job in jobs:
            info = infos[job.source]
            self.rates.append(info.samplerate if info else 1.0)
            frames.append(info.frames if info else 0)
        self.files, self.done = len(jobs), 0
        self.bar = tqdm(total=round(sum(f / r for f, r in zip(frames, self.rates)), 1), unit="s",
                        unit_scale=False, desc=self._label(), leave=False,
                        disable=None if show is None else not show,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of "
                                   "audio [{elapsed}<{remaining}, {rate_fmt}]")

    def _label(self):
        return f"{self.done}/{self.files} files"

    def update(self, index, frames):
        """``frames`` more of job ``index``'s input rendered."""
        self.bar.update(frames / self.rates[index])

    def file_done(self):
        self.done += 1
        self.bar.set_description_str(self._label())

    def close(self):
        self.bar.close()


def render_batch(jobs, settings=None, job_count=1, show_progress=None, on_result=None,
                 cluster=None, specs=None):
    """Render every job: here, ``job_count`` files at a time in separate processes, or on
    ``cluster`` (a :class:`ampnet.cluster.render.ClusterRenderer`).

    Shows one progress bar for the batch (``show_progress=None``: only on a terminal)
    and calls ``on_result(result)`` as each file finishes. Returns the list of
    :class:`RenderResult`, one per job, in order; a failing file does not stop the
    others. ``settings``: a :class:`RenderSettings`; ``specs``: the caller's
    :class:`SpecCache`, for the chains it has loaded already (rendering here).
    """
    settings = settings or RenderSettings()
    progress = BatchProgress(jobs, show_progress)
    results = [None] * len(jobs)

    def finished(index, result):
        results[index] = result
        progress.file_done()
        if on_result is not None:
            on_result(result)

    try:
        if cluster is not None:
            cluster.render(jobs, settings, progress.update, finished)
        elif job_count <= 1 or len(jobs) <= 1:
            specs = specs or SpecCache(settings.params)
            for i, job in enumerate(jobs):
                finished(i, render_safely(specs, job, settings,
                                          lambda frames, i=i: progress.update(i, frames)))
        else:
            _render_in_processes(jobs, settings, job_count, progress.update, finished)
    finally:
        progress.close()
    return results


def _render_in_processes(jobs, settings, job_count, on_progress, finished):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()  # progress: (job index, frames done), handed to each worker
    stop = threading.Event()
    pump = threading.Thread(target=_pump_progress, args=(queue, on_progress, stop), daemon=True)
    pump.start()
    workers = min(job_count, len(jobs))
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                initializer=_worker_init,
                                                initargs=(settings.params, queue)) as pool:
        futures = {pool.submit(_worker_render, i, job, settings): i for i, job in enumerate(jobs)}
        try:
            for future in concurrent.futures.as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: no worker leaves a temp file
            _stop_workers(futures)
            raise
        finally:
            stop.set()
            pump.join()


def _stop_workers(futures, timeout=10.0):
    """Cancel the files not started and stop the worker processes (this process's only
    children) with SIGTERM: a worker in the middle of a file unwinds through
    :func:`~ampnet.io.files.atomic_output`, which deletes its temporary file
    (:func:`_worker_signal`)."""
    for future in futures:
        future.cancel()
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout)


def _info_or_none(path):
    try:
        return sf.info(str(path))
    except Exception:  # reported properly when the file is rendered
        return None


def render_safely(specs, job, settings, progress=None):
    """:func:`render_file` for ``job`` with its model from ``specs`` (a
    :class:`SpecCache`), any failure returned as a result with its one-line error."""
    try:
        return render_file(specs.get(job.model), job, settings.blocksize, settings.subtype, progress)
    except AmpnetError as err:
        return RenderResult(job, error=str(err))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        return RenderResult(job, error=f"{job.source}: failed while rendering ({err})")


_worker_specs = _worker_queue = None
_worker_busy = False
_worker_stop = 0  # the signal that asked a busy worker to stop (0: none)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _worker_init(params, queue):
    global _worker_specs, _worker_queue
    _handle_stop_signals(_worker_signal)
    _worker_specs, _worker_queue = SpecCache(params), queue


def _handle_stop_signals(handler):
    for signum in _STOP_SIGNALS:
        signal.signal(signum, handler)


def _worker_signal(signum, frame):
    """A worker told to stop: when idle it just exits; while it renders, it notes the
    signal, and the render stops at its next chunk (:func:`_worker_progress` raises
    :class:`Stopped` there, which deletes the temporary file), then exits. Raising from
    the handler itself could land inside a library's finalizer (llvmlite frees compiled
    code while a chain loads), where Python prints the exception and drops it."""
    global _worker_stop
    if not _worker_busy:
        os._exit(128 + signum)
    _worker_stop = signum


def _worker_progress(index, frames):
    if _worker_stop:
        raise Stopped(_worker_stop)
    _worker_queue.put((index, frames))


def _worker_render(index, job, settings):
    global _worker_busy
    _worker_busy = True
    try:
        return render_safely(_worker_specs, job, settings,
                             lambda frames: _worker_progress(index, frames))
    except Stopped as stop:  # the temporary file is gone; take no further work
        os._exit(128 + stop.signum)
    finally:
        _worker_busy = False
        if _worker_stop:  # asked to stop as the file ended: take no further work either
            os._exit(128 + _worker_stop)


def _pump_progress(queue, on_progress, stop):
    while not (stop.is_set() and queue.empty()):
        try:
            index, frames = queue.get(timeout=0.1)
        except queue_module.Empty:
            continue
        on_progress(index, frames)


def summary_line(results, wall_seconds, startup_seconds=None, skipped=0):
    """One line: files rendered, skipped (finished by an earlier run) and failed, the
    audio's duration, real-time factor (of the rendering; ``startup_seconds``, compiling
    or loading the engine, is given apart)."""
    done = [r for r in results if r.error is None]
    failed = len(results) - len(done)
    audio = sum(r.seconds for r in done)
    speed = audio / wall_seconds if wall_seconds > 0 else float("inf")
    duration = f"{audio:.1f} s" if audio < 3600 else f"{audio / 3600:.2f} h"
    line = (f"rendered {len(done)} file(s), {duration} of audio in {wall_seconds:.1f} s "
            f"({speed:.1f}x real time)" if done else "rendered 0 files")
    if startup_seconds is not None and done:
        line += f"; start-up {startup_seconds:.1f} s (compiling or loading the engine), not counted"
    if skipped:
        line += f"; {skipped} already rendered by an earlier run, skipped"
    if failed:
        line += f"; {failed} failed"
    return line
