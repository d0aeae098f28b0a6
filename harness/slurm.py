"""Run tasks as a Slurm job array through submitit.

The jobs (each a tuple of JSON-able arguments, e.g. a cell spec) are written to
``<results>/slurm/<batch>/jobs.json``; array task ``i`` reads chunk ``i`` of that file,
runs it and returns its results, which the submitting process yields as tasks finish.
Concurrency is capped with ``--max-parallel`` (``slurm_array_parallelism``); job logs stay
in the batch folder. The workers write cells into the same store as a local run, so a
resubmission skips what any earlier run finished.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


def run_chunk(fn: Callable[..., Any], jobs_file: str, chunk: int) -> list[Any]:
    """Entry point of one array task: run every job of its chunk in order, with the same
    torch thread count as a local worker (so the numbers equal a local run's)."""
    from harness.executors import pin_threads

    pin_threads()
    chunks = json.loads(Path(jobs_file).read_text())["chunks"]
    return [fn(*args) for args in chunks[chunk]]


class SlurmExecutor:
    def __init__(
        self,
        folder: Path | str,
        partition: str | None = None,
        gpus_per_cell: int = 0,
        max_parallel: int = 16,
        time_limit_min: int = 60,
        cpus_per_task: int = 1,
        jobs_per_task: int | None = None,
        poll_seconds: float = 2.0,
    ) -> None:
        if max_parallel < 1 or time_limit_min < 1 or gpus_per_cell < 0 or cpus_per_task < 1:
            raise ValueError(
                "--max-parallel and --time-limit must be >= 1 and --gpus-per-cell >= 0 "
                f"(got {max_parallel}, {time_limit_min}, {gpus_per_cell})"
            )
        self.folder = Path(folder)
        self.partition = partition
        self.gpus_per_cell = gpus_per_cell
        self.max_parallel = max_parallel
        self.time_limit_min = time_limit_min
        self.cpus_per_task = cpus_per_task
        self.jobs_per_task = jobs_per_task
        self.poll_seconds = poll_seconds

    def _executor(self, batch: Path):
        import logging

        import submitit

        # without accounting, submitit warns on every poll that sacct failed; harmless here
        logging.getLogger("submitit").setLevel(logging.ERROR)

        executor = submitit.AutoExecutor(folder=batch / "logs" / "%j", cluster="slurm")
        params: dict[str, Any] = {
            "timeout_min": self.time_limit_min,
            "cpus_per_task": self.cpus_per_task,
            "slurm_array_parallelism": self.max_parallel,
            "name": "prunebench",
        }
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.gpus_per_cell:
            params["gpus_per_node"] = self.gpus_per_cell
        executor.update_parameters(**params)
        return executor

    def map_unordered(self, fn: Callable[..., Any], arg_tuples: Iterable[tuple]) -> Iterator[Any]:
        jobs = [list(args) for args in arg_tuples]
        if not jobs:
            return
        per_task = self.jobs_per_task or max(1, math.ceil(len(jobs) / (4 * self.max_parallel)))
        chunks = [jobs[i : i + per_task] for i in range(0, len(jobs), per_task)]
        batch = self.folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        batch.mkdir(parents=True, exist_ok=True)
        jobs_file = batch / "jobs.json"
        jobs_file.write_text(json.dumps({"chunks": chunks}))
        executor = self._executor(batch)
        n = len(chunks)
        submitted = executor.map_array(run_chunk, [fn] * n, [str(jobs_file)] * n, list(range(n)))
        pending = dict(enumerate(submitted))
        while pending:
            for key, job in list(pending.items()):
                if job.done():
                    del pending[key]
                    try:
                        results = job.result()
                    except Exception as exc:  # the task died outside our own error handling
                        raise SlurmJobError(
                            f"Slurm job {job.job_id} failed: {failure_line(exc)[:300]} "
                            f"(log: {job.paths.stderr})"
                        ) from None
                    yield from results
            if pending:
                time.sleep(self.poll_seconds)


RULE = "----------------------\n"  # submitit's FailedJobError puts the task's traceback between two rules


def failure_line(exc: BaseException) -> str:
    """The line that says what went wrong: the last line of the traceback a failed task sent back
    (e.g. ``pruners.plugins.PluginError: plugin 'x' not found: ...``), else the first line."""
    parts = str(exc).split(RULE)
    if len(parts) >= 3:
        trace = [line.strip() for line in parts[1].splitlines() if line.strip()]
        if trace:
            return trace[-1]
    return (str(exc).splitlines() or [""])[0]


class SlurmJobError(RuntimeError):
    """A Slurm array task failed outside the per-cell error handling (killed, timed out)."""
