"""Executors run tasks and yield their results as they finish.

An executor has one method, ``map_unordered(fn, arg_tuples)``, yielding ``fn(*args)`` for
every tuple in completion order; ``fn`` and the arguments must be picklable, and tasks
write their own results, so any executor can serve any store. ``LocalExecutor`` is the
default; ``harness.slurm.SlurmExecutor`` submits a Slurm job array through submitit.

``LocalExecutor`` runs in-process for one worker, or in a process pool for several. Pool
workers are forked from a ``forkserver`` that has already imported torch and the harness
(``WORKER_PRELOAD``), so a worker starts in milliseconds instead of re-importing torch
(about 3 s of every worker's life on this machine); the server itself is a clean process
that never ran a torch kernel, so forking it is safe, unlike forking the harness process.
The server lives as long as the harness process, so every later pool (dense parents, then
cells) reuses it. Platforms without ``forkserver`` fall back to ``spawn``. The server and
every worker die with the harness process (``harness.lifeline``), so a ``kill -9`` of the
harness leaves no process of the run behind.

Every task runs with ``CELL_THREADS`` (one) torch thread, whatever the executor:
parallelism comes from workers, never from intra-op threads. That keeps workers x threads
within the cores, and it keeps results bit-identical across ``--workers`` values,
executors and machines with different core counts (CPU kernels such as oneDNN's
convolution backward reduce in a thread-count-dependent order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from typing import Any, Protocol


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


CELL_THREADS = 1
WORKER_PRELOAD = (
    "harness.lifeline",  # first: the server dies with the harness process
    "torch",
    "torch._dynamo",  # FLOP counting (torch.utils.flop_counter) imports it: about 1.5 s
    "harness.tasks",
    "benchmarks.pipeline",
    "benchmarks.evaluation",
    "pruners",
)


def worker_context() -> BaseContext:
    """The start method for pool workers: a preloaded ``forkserver``, else ``spawn``."""
    if "forkserver" not in get_all_start_methods():  # pragma: no cover - not Linux or macOS
        return get_context("spawn")
    context = get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_PRELOAD))  # no effect once the server runs
    return context


def pin_threads(threads: int = CELL_THREADS) -> None:
    """Set this process's torch intra-op threads (and OpenMP's, for any child)."""
    import torch

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def init_worker(threads: int = CELL_THREADS) -> None:
    """A pool worker's start: die with the server that forked it, one torch thread."""
    from harness.lifeline import server_pid, tie_to_parent

    tie_to_parent(parent=server_pid())
    pin_threads(threads)


class Executor(Protocol):
    def map_unordered(self, fn: Callable[..., Any], arg_tuples: Iterable[tuple]) -> Iterator[Any]: ...


class WorkerCrash(RuntimeError):
    """Worker processes kept dying (killed by the OS, out of memory, a crash in native code)."""


class LocalExecutor:
    """Runs jobs in this process (one worker) or in a pool of worker processes.

    A pool whose worker dies (``BrokenProcessPool``) is restarted for the jobs that have
    not reported yet, up to ``max_restarts`` times; finished jobs are never run again.
    """

    def __init__(self, workers: int = 1, max_restarts: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"--workers {workers}: must be at least 1")
        self.workers = workers
        self.max_restarts = max_restarts

    def map_unordered(self, fn: Callable[..., Any], arg_tuples: Iterable[tuple]) -> Iterator[Any]:
        jobs = list(arg_tuples)
        if self.workers == 1 or len(jobs) <= 1:
            pin_threads()
            for args in jobs:
                yield fn(*args)
            return
        remaining = dict(enumerate(jobs))
        for attempt in range(self.max_restarts + 1):
            try:
                yield from self._pool_run(fn, remaining)
                return
            except BrokenProcessPool:
                if attempt == self.max_restarts:
                    raise WorkerCrash(
                        f"worker processes died {attempt + 1} times; {len(remaining)} jobs not run "
                        f"(out of memory? try fewer --workers)"
                    ) from None

    def _pool_run(self, fn: Callable[..., Any], remaining: dict[int, tuple]) -> Iterator[Any]:
        with ProcessPoolExecutor(
            max_workers=min(self.workers, len(remaining)),
            mp_context=worker_context(),
            initializer=init_worker,
        ) as pool:
            pending = {pool.submit(fn, *args): key for key, args in remaining.items()}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()  # raises BrokenProcessPool if a worker died
                        del remaining[pending.pop(future)]
                        yield result
            except BaseException:  # a task's error (a full disk) or an interrupt: start nothing more
                pool.shutdown(wait=True, cancel_futures=True)
                raise


def describe_executor(executor: Executor) -> str:
    if isinstance(executor, LocalExecutor):
        return f"{executor.workers} local worker{'s' if executor.workers > 1 else ''}"
    return type(executor).__name__
