"""Offline rendering: audio files through a model or a preset's chain, streamed disk to disk.

Each file is read in chunks, resampled to the models' rate and back when needed
(soxr, streaming), run through the chain (:class:`~ampnet.host.chain.Chain`) in blocks of
``blocksize`` frames, and written to a temporary file that is renamed to the
output only once complete. Memory stays flat whatever the file's length.
"""

import concurrent.futures
import errno
import multiprocessing
import os
import queue as queue_module
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from ampnet.errors import AmpnetError, Stopped
from ampnet.host.preset import load_spec
from ampnet.io.audio import (find_audio_inputs, format_for_path, open_audio, output_subtype,
                             read_frames, replace_nonfinite)
from ampnet.io.files import atomic_output

CHUNK_FRAMES = 65536
FULL_DISK_BYTES = 16 * 2 ** 20  # a write that fails with less free space than this: disk full


@dataclass
class RenderJob:
    """One input file and where its output goes."""

    source: Path
    target: Path


@dataclass
class RenderResult:
    job: RenderJob
    seconds: float = 0.0  # of audio
    error: str | None = None
    notes: tuple = ()


def plan_jobs(inputs, output=None, out_dir=None, overwrite=False):
    """Map inputs (files or folders) to outputs. Returns ``(jobs, failures)``:
    problems that concern one file (output exists, output equals input) become
    failed results so that the rest of the batch still renders."""
    if (output is None) == (out_dir is None):
        raise AmpnetError("give either -o OUTPUT (one input file) or --out-dir DIR")
    found, problems = find_audio_inputs(inputs)
    failures = [RenderResult(RenderJob(path, path), error=message) for path, message in problems]
    if output is not None:
        if len(inputs) != 1 or Path(inputs[0]).is_dir():
            raise AmpnetError(f"-o names one output file but {len(inputs)} inputs were given; "
                              "use --out-dir DIR for several files or a folder")
        pairs = [(src, Path(output)) for src, _ in found]
    else:
        pairs = [(src, Path(out_dir) / rel) for src, rel in found]
    jobs = []
    for src, target in pairs:
        job = RenderJob(src, target)
        if target.resolve() == src.resolve():
            failures.append(RenderResult(job, error=f"{target}: is the input file itself; "
                                         "ampnet never overwrites an input, choose another output"))
        elif target.exists() and not overwrite:
            failures.append(RenderResult(job, error=f"{target}: already exists; pass --overwrite "
                                         "to replace it"))
        else:
            jobs.append(job)
    return jobs, failures


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
                dst = sf.SoundFile(str(tmp), "w", samplerate=rate, channels=channels,
                                   subtype=out_subtype, format=fmt)
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


def render_batch(spec_path, jobs, blocksize=64, subtype=None, job_count=1, show_progress=None,
                 params=()):
    """Render every job, ``job_count`` files at a time in separate processes.

    Shows a progress bar per file and one for the batch (``show_progress=None``:
    only on a terminal). Returns the list of :class:`RenderResult`, one per job,
    in order; a failing file does not stop the others. ``params`` are ``NAME=VALUE``
    knob settings (``--param``).
    """
    disable = None if show_progress is None else not show_progress  # None: terminal only
    total_frames = {i: _frames_or_zero(job.source) for i, job in enumerate(jobs)}
    batch_bar = tqdm(total=sum(total_frames.values()), unit="frame", unit_scale=True,
                     desc=f"{len(jobs)} files", disable=disable, leave=False) if len(jobs) > 1 else None
    file_bars = {}

    def on_progress(index, frames):
        bar = file_bars.get(index)
        if bar is None:
            bar = file_bars[index] = tqdm(total=total_frames[index], unit="frame", unit_scale=True,
                                          desc=jobs[index].source.name, leave=False, disable=disable)
        bar.update(frames)
        if batch_bar is not None:
            batch_bar.update(frames)

    def finish(index):
        bar = file_bars.pop(index, None)
        if bar is not None:
            bar.close()

    results = [None] * len(jobs)
    if job_count <= 1 or len(jobs) <= 1:
        spec = load_spec(spec_path, params)
        for i, job in enumerate(jobs):
            results[i] = _render_safely(spec, job, blocksize, subtype,
                                        lambda frames, i=i: on_progress(i, frames))
            finish(i)
    else:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()  # progress: (job index, frames done), handed to each worker
        stop = threading.Event()
        pump = threading.Thread(target=_pump_progress, args=(queue, on_progress, stop), daemon=True)
        pump.start()
        workers = min(job_count, len(jobs))
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                    initializer=_worker_init,
                                                    initargs=(str(spec_path), params, queue)) as pool:
            futures = {pool.submit(_worker_render, i, job, blocksize, subtype): i
                       for i, job in enumerate(jobs)}
            try:
                for future in concurrent.futures.as_completed(futures):
                    results[futures[future]] = future.result()
            except BaseException:  # Ctrl-C, SIGTERM, SIGHUP: no worker leaves a temp file
                _stop_workers(futures)
                raise
            finally:
                stop.set()
                pump.join()
        for i in range(len(jobs)):
            finish(i)
    if batch_bar is not None:
        batch_bar.close()
    return results


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


def _frames_or_zero(path):
    try:
        return sf.info(str(path)).frames
    except Exception:  # reported properly when the file is rendered
        return 0


def _render_safely(spec, job, blocksize, subtype, progress):
    try:
        return render_file(spec, job, blocksize, subtype, progress)
    except AmpnetError as err:
        return RenderResult(job, error=str(err))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        return RenderResult(job, error=f"{job.source}: failed while rendering ({err})")


_worker_spec = _worker_queue = None
_worker_busy = False
_worker_stop = 0  # the signal that asked a busy worker to stop (0: none)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _worker_init(spec_path, params, queue):
    global _worker_spec, _worker_queue
    _handle_stop_signals(_worker_signal)
    _worker_spec, _worker_queue = load_spec(spec_path, params), queue


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


def _worker_render(index, job, blocksize, subtype):
    global _worker_busy
    _worker_busy = True
    try:
        return _render_safely(_worker_spec, job, blocksize, subtype,
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


def summary_line(results, wall_seconds, startup_seconds=None):
    """One line: files rendered and failed, seconds of audio, real-time factor (of the
    rendering; ``startup_seconds``, compiling or loading the engine, is given apart)."""
    done = [r for r in results if r.error is None]
    failed = len(results) - len(done)
    audio = sum(r.seconds for r in done)
    speed = audio / wall_seconds if wall_seconds > 0 else float("inf")
    line = (f"rendered {len(done)} file(s), {audio:.1f} s of audio in {wall_seconds:.1f} s "
            f"({speed:.1f}x real time)")
    if startup_seconds is not None and done:
        line += f"; start-up {startup_seconds:.1f} s (compiling or loading the engine), not counted"
    if failed:
        line += f"; {failed} failed"
    return line

