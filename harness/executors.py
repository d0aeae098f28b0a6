"""Executors run tasks and yield their results as they finish.

``LocalExecutor`` runs in-process for one worker, or in a spawn-started process pool for
several; each worker gets ``max(1, cores // workers)`` torch threads so that workers x
threads never exceeds the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, available_cores() // max(1, workers))


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


class LocalExecutor:
    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"--workers {workers}: must be at least 1")
        self.workers = workers

    def map_unordered(self, fn: Callable[..., Any], arg_tuples: Iterable[tuple]) -> Iterator[Any]:
        jobs = list(arg_tuples)
        threads = threads_per_worker(self.workers)
        if self.workers == 1 or len(jobs) <= 1:
            _init_worker(threads if self.workers == 1 else available_cores())
            for args in jobs:
                yield fn(*args)
            return
        with ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        ) as pool:
            pending = {pool.submit(fn, *args) for args in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
