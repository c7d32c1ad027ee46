"""The local executor: the whole run in this process; parallel branches and map items on threads.

``isolation: process`` runs each task in a child process instead (a crash or a runaway step
cannot take the run down, and timeouts kill it). Jobs are fed to the pool through a bounded
window, so a map over 100,000 items never holds 100,000 pending futures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Literal

from conveyor.graph.traverse import Job
from conveyor.step.launch import LAUNCHERS, Launcher


class LocalExecutor:
    def __init__(
        self,
        max_workers: int | None = None,
        isolation: Literal["thread", "process"] = "thread",
        stream_output: bool = True,
    ) -> None:
        if isolation not in LAUNCHERS:
            raise ValueError(f"isolation must be 'thread' or 'process', not {isolation!r}")
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive integer, not {max_workers!r}")
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self.isolation = isolation
        self.stream_output = stream_output

    @property
    def launcher(self) -> Launcher:
        return LAUNCHERS[self.isolation]

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        """Run jobs on a pool of at most ``limit`` (default: max_workers) threads, in a window."""
        width = max(1, min(limit or self.max_workers, count))
        if count == 0:
            return []
        if width == 1:
            return [job() for job in jobs]
        results: list[bool] = [False] * count
        iterator: Iterator[tuple[int, Job]] = enumerate(jobs)
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="conveyor") as pool:
            pending: dict[Future[bool], int] = {}

            def fill() -> None:
                while len(pending) < width * 2:
                    try:
                        index, job = next(iterator)
                    except StopIteration:
                        return
                    pending[pool.submit(job)] = index

            fill()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    results[pending.pop(future)] = future.result()
                fill()
        return results
