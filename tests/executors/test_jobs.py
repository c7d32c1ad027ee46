"""ThreadJobs: results in job order, errors raised, and threads only where they help."""

from __future__ import annotations

import threading
import time

import pytest

from conveyor.executors.jobs import CHUNK_ITEMS, ThreadJobs, in_chunks


def test_cheap_jobs_run_on_one_thread_in_order() -> None:
    seen: set[str] = set()

    def job(n: int):  # type: ignore[no-untyped-def]
        def run() -> bool:
            seen.add(threading.current_thread().name)
            return n % 3 != 0

        return run

    results = ThreadJobs(8).run_jobs((job(n) for n in range(20_000)), 20_000, None)
    assert results == [n % 3 != 0 for n in range(20_000)]
    # Microsecond jobs never all sit in a job for GROW_AFTER: a busy machine may add one
    # worker for a moment, which leaves again after its next cheap job.
    assert len(seen) <= 2, seen


def test_waiting_jobs_get_more_threads_up_to_the_width() -> None:
    active, peak = [0], [0]
    lock = threading.Lock()

    def run() -> bool:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return True

    began = time.monotonic()
    assert ThreadJobs(8).run_jobs((run for _ in range(12)), 12, 4) == [True] * 12
    took = time.monotonic() - began
    assert peak[0] == 4  # the limit, never more
    assert took < 12 * 0.2 / 2, took  # far from one at a time (2.4 s): about 3 rounds of 4


def test_jobs_that_wait_for_each_other_all_run_at_once() -> None:
    """Parallel branches (or items) that meet at a barrier need every worker started."""
    barrier = threading.Barrier(5, timeout=10)

    def run() -> bool:
        barrier.wait()
        return True

    assert ThreadJobs(5).run_jobs((run for _ in range(5)), 5, None) == [True] * 5


def test_an_error_in_a_job_is_raised_after_the_workers_stop() -> None:
    def job(n: int):  # type: ignore[no-untyped-def]
        def run() -> bool:
            if n == 7:
                raise RuntimeError("job 7 broke")
            return True

        return run

    with pytest.raises(RuntimeError, match="job 7 broke"):
        ThreadJobs(4).run_jobs((job(n) for n in range(100)), 100, None)


def test_items_run_in_chunks_in_order_and_a_slow_item_ends_its_chunk() -> None:
    """``in_chunks`` hands the pool one job per chunk of items: cheap items share a job
    (a few hundred jobs for 20,000 items), results stay in item order, and an item that
    blocks ends its chunk, so that the others go on in another (the pool grows as before)."""
    handed = [0]

    def counting(jobs, count, limit):  # type: ignore[no-untyped-def]
        def each():  # type: ignore[no-untyped-def]
            for job in jobs:
                handed[0] += 1
                yield job

        return ThreadJobs(4).run_jobs(each(), count, limit)

    def cheap(n: int):  # type: ignore[no-untyped-def]
        return lambda: n % 7 != 0

    results = in_chunks(counting, (cheap(n) for n in range(20_000)), 20_000, None)
    assert results == [n % 7 != 0 for n in range(20_000)]
    assert 20_000 / CHUNK_ITEMS <= handed[0] < 2_000, handed  # not one job per item

    active, peak = [0], [0]
    lock = threading.Lock()

    def slow() -> bool:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return True

    started = time.monotonic()
    assert in_chunks(ThreadJobs(4).run_jobs, (slow for _ in range(8)), 8, None) == [True] * 8
    # Serial, 8 sleeps take 0.8 s; a chunk holding every item would never let a second run.
    assert peak[0] >= 2 and time.monotonic() - started < 0.7


def test_chunks_keep_the_limit_of_items_at_once() -> None:
    active, peak = [0], [0]
    lock = threading.Lock()

    def run() -> bool:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return True

    assert in_chunks(ThreadJobs(8).run_jobs, (run for _ in range(30)), 30, 2) == [True] * 30
    assert peak[0] <= 2
