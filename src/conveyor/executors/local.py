"""The local executor: the whole run in this process; parallel branches and map items on threads.

``isolation: process`` runs each task in a child process instead (a crash or a runaway step
cannot take the run down, and timeouts kill it). Worker threads pull jobs one at a time from
a lazy iterator, so a map over 100,000 items never holds 100,000 pending jobs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
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
        """Run jobs on at most ``limit`` (default: max_workers) threads; results in job order.

        Each worker thread pulls the next job from the shared iterator, so there is no future
        or wake-up per job, and jobs are made only as they are taken (a lazy 100,000-item map
        holds no backlog).
        """
        width = max(1, min(limit or self.max_workers, count))
        if count == 0:
            return []
        if width == 1:
            return [job() for job in jobs]
        results: list[bool] = [False] * count
        feed: Iterator[tuple[int, Job]] = enumerate(jobs)
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work() -> None:
            while not errors:
                with lock:
                    taken = next(feed, None)
                if taken is None:
                    return
                index, job = taken
                try:
                    results[index] = job()
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=work, name=f"conveyor-{i}", daemon=True) for i in range(width)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results
