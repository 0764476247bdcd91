"""A render batch on a Ray cluster: one task per (input file, model or preset) job.

Each task runs :func:`ampnet.render.render_safely`, the function a local render
runs, so outputs are byte-identical to ``--jobs`` or a plain render. Worker
processes stay up between tasks and keep their loaded chains (:class:`SpecCache`),
and Numba loads the compiled kernels from its cache on each node (compiled there
once, by ``scripts/setup.sh`` or the first task): no task compiles.

A worker that dies mid-file (killed, out of memory, its node lost) leaves its
temporary file behind; Ray runs the task again (up to :data:`MAX_RETRIES` times),
and the new attempt deletes that file first. Files never finish half-written under
their own names (:func:`ampnet.io.files.atomic_output`).
"""

from ampnet.cluster.connect import Cluster
from ampnet.io.files import partial_files
from ampnet.render import RenderResult, SpecCache, render_safely

MAX_RETRIES = 3  # further attempts of a task whose worker died
_POLL_S = 0.25
_specs = None  # this worker process's loaded chains


class ClusterRenderer(Cluster):
    """:class:`~ampnet.cluster.connect.Cluster` that renders batches
    (:func:`ampnet.render.render_batch` with ``cluster=``)."""

    def check_storage_for(self, jobs):
        """:meth:`check_shared_storage` for the files and folders ``jobs`` use."""
        self.check_shared_storage({j.source for j in jobs} | {j.model for j in jobs},
                                  {j.target.parent for j in jobs})

    def render(self, jobs, settings, on_progress, finished):
        """Run ``jobs``; ``on_progress(index, frames)`` as workers report chunks,
        ``finished(index, result)`` as each ends (in the order they end)."""
        ray = self.ray
        progress = ray.remote(num_cpus=0)(_Progress).remote()
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_render_task)
        pending = {task.remote(job, settings, i, progress): i for i, job in enumerate(jobs)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=_POLL_S)
                for index, frames in ray.get(progress.drain.remote()):
                    on_progress(index, frames)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        _remove_partial_files(jobs[index])
                        result = RenderResult(jobs[index], error=(
                            f"{jobs[index].source}: the worker rendering it failed "
                            f"{MAX_RETRIES + 1} times ({type(err).__name__}); see the Ray "
                            "logs of its node"))
                    finished(index, result)
        except BaseException:  # Ctrl-C: stop every task, leave no temporary file
            for ref in pending:
                ray.cancel(ref, force=True)
            ended, _ = ray.wait(list(pending), num_returns=len(pending), timeout=10)
            for ref in ended:  # a file that finished as the batch stopped is kept, and said
                try:
                    finished(pending[ref], ray.get(ref))
                except ray.exceptions.RayError:
                    pass
            for index in pending.values():
                _remove_partial_files(jobs[index])
            raise


class _Progress:
    """An actor the tasks report rendered frames to; the driver drains it."""

    def __init__(self):
        self.frames = {}

    def add(self, index, frames):
        self.frames[index] = self.frames.get(index, 0) + frames

    def drain(self):
        frames, self.frames = self.frames, {}
        return list(frames.items())


def _render_task(job, settings, index, progress):
    global _specs
    if _specs is None or _specs.params != tuple(settings.params):
        _specs = SpecCache(settings.params)
    _remove_partial_files(job)  # an earlier attempt's, killed mid-file
    return render_safely(_specs, job, settings, lambda frames: progress.add.remote(index, frames))


def _remove_partial_files(job):
    for path in partial_files(job.target):
        path.unlink(missing_ok=True)
