"""Measuring what a processing loop allocates from ampnet's own code (tracemalloc)."""

import gc
import itertools
import os
import tracemalloc

import ampnet


def traced_growth_and_peak(run, warm_calls, measured_calls):
    """Run ``run(warm_calls)`` then ``run(measured_calls)`` under tracemalloc, with garbage
    collection off as during live streaming. Returns ``(grown, peak)``: the traces from
    ampnet's code that grew during the measured calls, and the peak of traced memory above
    where it started (bytes)."""
    _stop_tqdm_monitor()
    only_ampnet = [tracemalloc.Filter(True, os.path.join(os.path.dirname(ampnet.__file__), "*"),
                                      all_frames=True)]
    gc.collect()
    gc.disable()
    tracemalloc.start(25)
    try:
        run(warm_calls)  # lets CPython fill its internal caches while traced
        before_snapshot = tracemalloc.take_snapshot().filter_traces(only_ampnet)
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run(measured_calls)
        _, peak = tracemalloc.get_traced_memory()
        after_snapshot = tracemalloc.take_snapshot().filter_traces(only_ampnet)
    finally:
        tracemalloc.stop()
        gc.enable()
    grown = [d for d in after_snapshot.compare_to(before_snapshot, "traceback") if d.size_diff > 0]
    return grown, peak - before


def repeated_calls(*calls):
    """A ``run(count)`` for :func:`traced_growth_and_peak` that makes each ``(process, block,
    out)`` call ``count`` times (``itertools.repeat``: the loop makes no int objects)."""
    def run(count):
        for _ in itertools.repeat(None, count):
            for process, block, out in calls:
                process(block, out)
    return run


def _stop_tqdm_monitor():
    """tqdm leaves a monitor thread behind after a progress bar (in-process renders in
    other tests); its periodic wake-ups allocate and would show in the peak."""
    from tqdm import tqdm

    if tqdm.monitor is not None:
        tqdm.monitor.exit()
        tqdm.monitor = None
