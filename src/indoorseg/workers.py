"""Work spread over processes, one per CPU core, results in order.

This module imports nothing but the standard library, so that a worker can pin its
numerical libraries to one thread before they are first imported: the parallelism is the
processes, and BLAS threads competing with them only burn CPU.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def available_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_order(fn: Callable, items: Sequence, workers: int | None = None) -> Iterator:
    """``map(fn, items)`` in ``workers`` processes (default: one per core); results in order.

    ``fn`` must be picklable (a module-level function or a partial of one). Workers ignore
    Ctrl-C (the parent stops them); on any error the work not yet started is cancelled.
    """
    workers = min(workers or available_cpus(), len(items))
    if workers <= 1:
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("spawn")  # never fork a process that holds threads
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker)
    try:
        yield from pool.map(fn, items, chunksize=4)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker() -> None:
    for name in ONE_THREAD:
        os.environ[name] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
