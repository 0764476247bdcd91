"""Training a set of independent captures on Ray: one task per capture, each the very
:func:`ampnet.cli.train_cmd.train_one` a local run calls (same seeds, same models).

Every epoch writes the capture's checkpoint beside its model (on the shared storage);
a task whose worker or node is lost is run again and continues from that checkpoint,
and Ctrl-C stops every task, leaving finished models as they are and the others to
resume when the same command runs again.
"""

from ampnet.cluster.connect import Cluster

MAX_RETRIES = 2


def train_on_cluster(args, jobs):
    """``jobs``: ``[(name, CaptureSet, output path)]``; yields ``(name, summary)`` as each
    model finishes (:func:`~ampnet.cli.train_cmd.train_one`'s)."""
    with Cluster(args.cluster) as cluster:
        ray = cluster.ray
        cluster.check_shared_storage(
            {p for _, capture_set, _ in jobs for c in capture_set.captures for p in (c.dry, c.wet)},
            {output.parent for _, _, output in jobs})
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_train_task)
        pending = {task.remote(args, name, capture_set, output): name
                   for name, capture_set, output in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    name = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as err:
                        yield name, {"error": f"its worker failed {MAX_RETRIES + 1} times "
                                              f"({type(err).__name__}); see the Ray logs"}
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise


def _train_task(args, name, capture_set, output):
    from ampnet.cli.train_cmd import train_one

    return train_one(args, name, capture_set, output)
