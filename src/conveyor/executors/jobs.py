"""Running independent jobs on threads: map items and parallel branches, in job order."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from conveyor.graph.kinds.base import Job


class ThreadJobs:
    """Runs jobs on at most ``width`` threads (per call: ``limit`` lowers it).

    Each worker thread pulls the next job from the shared iterator, so there is no future
    or wake-up per job, and jobs are made only as they are taken: a lazy 100,000-item map
    holds no backlog.
    """

    def __init__(self, width: int) -> None:
        self.width = width

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        width = max(1, min(limit or self.width, count))
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
