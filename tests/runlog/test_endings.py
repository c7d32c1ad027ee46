"""What an ended run left open reads, and is recorded, as the run's ending: never running."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conveyor.runlog import base
from conveyor.runlog.endings import Ending, close, end_run, ending_of, settle
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import EndEvent, NodeEvent, RunRecord, StartEvent, Status
from conveyor.runlog.sqlite import SQLiteRunLogStore


def _open_run(store: base.RunLogStore, t: float, **record: object) -> None:
    """A run with a finished step, a map with one item done and one open, a loop open."""
    store.save_run(RunRecord(run_id="r", started_at=t, **record), create=True)  # type: ignore[arg-type]
    store.append(
        "r",
        [
            StartEvent(["a"], 1, t),
            EndEvent(["a"], 1, t + 1, Status.SUCCEEDED, started=t),
            NodeEvent(["fan"], "map", Status.RUNNING, t + 1, {"items": 2}),
            StartEvent(["fan", "0", "t"], 1, t + 1),
            EndEvent(["fan", "0", "t"], 1, t + 2, Status.SUCCEEDED, started=t + 1),
            StartEvent(["fan", "1", "t"], 1, t + 1.5),
            NodeEvent(["again"], "loop", Status.RUNNING, t + 2),
        ],
    )


def _running(log: base.RunLog) -> list[tuple[str, ...]]:
    return [k for k, r in log.steps.items() if r.status is Status.RUNNING or any(
        a.status is Status.RUNNING for a in r.attempts
    )]  # fmt: skip


def test_a_running_run_is_left_as_it_is(tmp_path: Path) -> None:
    store = FileRunLogStore(str(tmp_path))
    _open_run(store, time.time(), lease_until=time.time() + 60)
    log = settle(store.load("r"))
    assert log.closed == [] and _running(log) == [("fan",), ("fan", "1", "t"), ("again",)]


def test_an_expired_lease_closes_open_steps_at_the_last_sign_of_life(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "LEASE_SECONDS", 10.0)
    store = FileRunLogStore(str(tmp_path))
    t = time.time() - 100
    _open_run(store, t, lease_until=t + 15)  # last heartbeat at t + 5, lease gone since t + 15
    first = settle(store.load("r"))
    assert first.status is Status.INTERRUPTED and _running(first) == []
    item = first.step(["fan", "1", "t"])
    assert item is not None and item.status is Status.INTERRUPTED
    assert item.last is not None and item.last.end == t + 5 and "interrupted" in str(item.last.error)
    assert first.steps[("fan",)].status is Status.INTERRUPTED and first.steps[("fan",)].end == t + 5
    assert first.steps[("a",)].status is Status.SUCCEEDED  # what ended stays as it ended
    later = settle(store.load("r"), now=time.time() + 500)  # durations do not grow
    assert later.steps[("fan", "1", "t")].last.end == t + 5  # type: ignore[union-attr]
    assert later.steps[("fan",)].info == {"items": 2}  # the map's plan is kept for resume


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_end_run_records_the_ending_in_the_store(kind: str, tmp_path: Path) -> None:
    store: base.RunLogStore = (
        FileRunLogStore(str(tmp_path)) if kind == "file" else SQLiteRunLogStore(str(tmp_path / "r.db"))
    )
    t = time.time() - 50
    _open_run(store, t, lease_until=time.time() + 60)
    written = end_run(store, store.load("r"), Status.CANCELLED, "cancelled by request")
    assert {tuple(e.path) for e in written} == {("fan",), ("fan", "1", "t"), ("again",)}
    raw = store.load("r")  # read back with no settling: the store itself says it
    assert raw.run.status is Status.CANCELLED and raw.run.error == "cancelled by request"
    assert _running(raw) == []
    assert {k: r.status for k, r in raw.steps.items()} == {
        ("a",): Status.SUCCEEDED,
        ("fan",): Status.CANCELLED,
        ("fan", "0", "t"): Status.SUCCEEDED,
        ("fan", "1", "t"): Status.CANCELLED,
        ("again",): Status.CANCELLED,
    }
    ended = raw.steps[("fan", "1", "t")].last
    assert ended is not None and ended.end == raw.run.ended_at and ended.start == t + 1.5


def test_an_older_open_attempt_closes_without_changing_its_step() -> None:
    from conveyor.runlog.records import fold

    # Attempt 1 was left open by a killed driver; attempt 2 (a resume) succeeded.
    steps = fold(
        [
            StartEvent(["s"], 1, 1.0),
            StartEvent(["s"], 2, 5.0),
            EndEvent(["s"], 2, 6.0, Status.SUCCEEDED, started=5.0),
        ]
    )
    events = close(steps.values(), Ending(Status.INTERRUPTED, 3.0))
    record = steps[("s",)]
    assert len(events) == 1 and record.status is Status.SUCCEEDED
    assert [(a.status, a.end) for a in record.attempts] == [
        (Status.INTERRUPTED, 3.0),
        (Status.SUCCEEDED, 6.0),
    ]
    # Folded again from the store, in the order written, it reads the same.
    again = fold([*[StartEvent(["s"], 1, 1.0), StartEvent(["s"], 2, 5.0)], events[0]])
    again[("s",)].apply(EndEvent(["s"], 2, 6.0, Status.SUCCEEDED, started=5.0))
    assert again[("s",)].status is Status.SUCCEEDED


def test_a_run_that_ended_on_record_ends_its_steps_then() -> None:
    run = RunRecord(run_id="r", status=Status.FAILED, started_at=1.0, ended_at=9.0)
    assert ending_of(run) == Ending(Status.INTERRUPTED, 9.0)
    run.status = Status.CANCELLED
    assert ending_of(run) == Ending(Status.CANCELLED, 9.0)
    run.status = Status.RUNNING
    run.lease_until = time.time() + 60
    assert ending_of(run) is None
