"""Running independent jobs on threads: map items and parallel branches, in job order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from conveyor.graph.kinds.base import Job

#: Seconds between the coordinator's looks at the workers; a job running longer than this
#: is *slow*, and when every worker is in a slow job, one more worker starts.
GROW_AFTER = 0.005
#: A worker that has just finished a job shorter than this leaves, unless it is the last:
#: threads added for slow jobs (or for a moment of the machine's own load) go again.
SHRINK_BELOW = 0.0005
#: A chunk (one job of the pool) runs items one after another until it has run this many,
#: or for this long: well under GROW_AFTER, so that a chunk of cheap items never looks
#: like a job that blocks, while one slow item ends its chunk and the pool grows as before.
CHUNK_ITEMS = 256
CHUNK_SECONDS = 0.0004

JobRunner = Callable[[Iterable[Job], int, int | None], list[bool]]


def in_chunks(run_jobs: JobRunner, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
    """Run ``jobs`` (a map's items, a parallel's branches) with ``run_jobs``, handing it one
    job per *chunk* of them rather than one per item (see :func:`indexed_in_chunks`)."""
    if count < 2:
        return run_jobs(jobs, count, limit)
    listed = list(jobs)  # a few branches: a map's items come by index (indexed_in_chunks)
    return indexed_in_chunks(run_jobs, lambda index: listed[index](), count, limit)


def indexed_in_chunks(
    run_jobs: JobRunner, job: Callable[[int], bool], count: int, limit: int | None
) -> list[bool]:
    """Run ``job(0)`` ... ``job(count - 1)`` with ``run_jobs``, handing it one job per
    *chunk* of them rather than one per item.

    Each chunk takes the next index from one shared counter, runs it, and goes on while it
    has run fewer than :data:`CHUNK_ITEMS` for less than :data:`CHUNK_SECONDS`; so a pool
    of width N still runs at most N items at once, in the order they come, and an item that
    blocks (a sleep, a process) ends its chunk, and makes the pool grow, as before. What
    is paid once per job (the pool's bookkeeping, a thread's wake-up) is paid once per
    chunk: for 100,000 cheap items, a few hundred times. Results are in item order.
    """
    if count < 2:
        return run_jobs((lambda: job(0),) if count else (), count, limit)
    results = [False] * count
    lock = threading.Lock()
    at = [0]
    monotonic = time.monotonic

    def chunk() -> bool:
        began = monotonic()
        for _ in range(CHUNK_ITEMS):
            with lock:
                index = at[0]
                if index >= count:
                    break
                at[0] = index + 1
            results[index] = job(index)
            if monotonic() - began >= CHUNK_SECONDS:
                break
        return True

    def chunks() -> Iterator[Job]:
        for _ in range(count):  # never more chunks than items (the pool sizes for count)
            if at[0] >= count:
                return
            yield chunk

    run_jobs(chunks(), count, limit)
    return results


class ThreadJobs:
    """Runs jobs on at most ``width`` threads (per call: ``limit`` lowers it).

    Each worker thread pulls the next job from the shared iterator, so there is no future
    or wake-up per job, and jobs are made only as they are taken: a lazy 100,000-item map
    holds no backlog.

    Threads are added only when they can help. A call starts with one worker; every
    :data:`GROW_AFTER` seconds the calling thread looks, and when every worker is inside a
    job that has run for longer than that (waiting on a process, the network, a sleep, or
    computing in C with the interpreter lock released), it starts one more, up to the
    width; one that finishes a cheap job leaves again while others remain. Jobs of a few
    microseconds (a map of cheap python items) thus run on one thread: several threads
    would only trade the interpreter lock back and forth at each system call, which cost
    cheap maps about 40% more CPU (issue 23) and gave no speed.
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
        #: The live workers, each with when its current job began (None: between jobs).
        since: dict[int, float | None] = {}
        done = threading.Event()
        threads: list[threading.Thread] = []

        def work(slot: int) -> None:
            try:
                while not errors:
                    with lock:
                        taken = next(feed, None)
                    if taken is None:
                        return
                    index, job = taken
                    began = since[slot] = time.monotonic()
                    try:
                        results[index] = job()
                    except BaseException as exc:
                        errors.append(exc)
                    since[slot] = None
                    if time.monotonic() - began < SHRINK_BELOW and len(since) > 1:
                        with lock:  # cheap jobs again: one worker is enough
                            if len(since) > 1:
                                del since[slot]
                                return
            finally:
                with lock:
                    since.pop(slot, None)
                    if not since:
                        done.set()

        def grow() -> None:
            slot = len(threads)
            since[slot] = None
            thread = threading.Thread(target=work, args=(slot,), name=f"conveyor-{slot}", daemon=True)
            threads.append(thread)
            thread.start()

        with lock:
            grow()
        while not done.wait(GROW_AFTER):
            now = time.monotonic()
            with lock:
                slow = all(t is not None and now - t >= GROW_AFTER for t in since.values())
                if 0 < len(since) < width and slow:
                    grow()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results
