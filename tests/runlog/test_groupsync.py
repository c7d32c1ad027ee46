"""A store's own group commit (``runlog.groupsync``): one sync per group of writes, within
the window, whoever wrote; a failure in the background reaches the next caller."""

from __future__ import annotations

import time

import pytest

from conveyor.runlog.groupsync import GroupSync


def _wait_for(condition: object, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.002)


def test_a_group_of_writes_is_synced_once_within_the_window() -> None:
    synced: list[float] = []
    group = GroupSync(lambda: synced.append(time.monotonic()), window=0.02)
    started = time.monotonic()
    for _ in range(200):
        group.written()
    _wait_for(lambda: synced)
    assert len(synced) == 1 and synced[0] - started < 0.5
    time.sleep(0.05)
    assert len(synced) == 1, "nothing written since: no sync"
    group.written()
    group.sync()  # the caller syncs first: the thread's sync is skipped
    time.sleep(0.05)
    assert len(synced) == 2
    group.close()


def test_close_syncs_what_is_due() -> None:
    synced: list[int] = []
    group = GroupSync(lambda: synced.append(1), window=10.0)
    group.written()
    group.close()
    assert synced == [1]


def test_a_background_failure_is_raised_to_the_next_caller() -> None:
    calls: list[int] = []

    def sync() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")

    group = GroupSync(sync, window=0.001)
    group.written()
    _wait_for(lambda: group.failure is not None)
    with pytest.raises(OSError, match="Input/output error"):
        group.sync()
    group.sync()  # raised once; the next sync runs
    assert len(calls) == 2
    group.close()
