"""Status polling follows a run's log (server.following): what each poll answers is exactly
what reading the run whole answers, as the run goes on, ends, is retried or is replaced."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.endings import settle
from conveyor.runlog.records import EndEvent, RunRecord, StartEvent, Status
from conveyor.runlog.sql import SQLRunLogStore
from conveyor.server.db import migrate
from conveyor.server.following import FollowedRuns


def _whole(store: SQLRunLogStore, run_id: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    log = settle(store.load(run_id))
    return {**log.run.to_json(), "status": str(log.status)}, [r.to_json() for r in log.steps.values()]


def _followed(followed: FollowedRuns, run_id: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    log, steps = followed.read(run_id)
    return {**log.run.to_json(), "status": str(log.status)}, steps


def _item(i: int, status: Status = Status.SUCCEEDED) -> list[StartEvent | EndEvent]:
    path = ["fan", str(i), "one"]
    return [
        StartEvent(path, 1, 10.0 + i),
        EndEvent(path, 1, 11.0 + i, status, started=10.0 + i, returns={"y": i}),
    ]


def test_each_poll_answers_what_reading_the_run_whole_answers(db_url: str) -> None:
    migrate(db_url)
    store = SQLRunLogStore(db_url, create=False)
    followed = FollowedRuns(store, kept=2)
    with pytest.raises(RunNotFoundError):
        followed.read("r1")
    run = RunRecord(run_id="r1", status=Status.RUNNING, started_at=time.time(), lease_until=time.time() + 600)
    store.save_run(run, create=True)
    assert _followed(followed, "r1") == _whole(store, "r1")
    for i in range(5):
        store.append("r1", _item(i))
        assert _followed(followed, "r1") == _whole(store, "r1")
    store.append("r1", [StartEvent(["fan", "5", "one"], 1, 20.0)])  # still running: open
    store.append("r1", [StartEvent(["fan", "1", "one"], 2, 21.0)])  # a step already folded, again
    assert _followed(followed, "r1") == _whole(store, "r1")
    # the run ends with a step open: the reader sees it closed, in its copy only
    run.status, run.ended_at = Status.FAILED, 30.0
    store.save_run(run)
    answered = _followed(followed, "r1")
    assert answered == _whole(store, "r1")
    assert answered[1][5]["status"] == str(Status.INTERRUPTED)
    # retried: the same steps go on; what the ending closed is not carried over
    run.status, run.ended_at = Status.RUNNING, None
    store.save_run(run)
    store.append("r1", [EndEvent(["fan", "5", "one"], 1, 40.0, Status.SUCCEEDED, started=20.0)])
    answered = _followed(followed, "r1")
    assert answered == _whole(store, "r1")
    assert answered[1][5]["status"] == str(Status.SUCCEEDED)
    # other runs read meanwhile push r1 out of the two kept; it is read whole again, the same
    for other in ("r2", "r3"):
        store.save_run(RunRecord(run_id=other, status=Status.RUNNING, started_at=1.0), create=True)
        store.append(other, _item(0))
        assert _followed(followed, other) == _whole(store, other)
    assert _followed(followed, "r1") == _whole(store, "r1")
    store.close()


def test_a_run_replaced_under_the_same_id_is_read_anew(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    migrate(url)
    store = SQLRunLogStore(url, create=False)
    followed = FollowedRuns(store)
    store.save_run(RunRecord(run_id="r", status=Status.RUNNING, started_at=1.0), create=True)
    store.append("r", _item(0) + _item(1))
    assert len(followed.read("r")[1]) == 2
    with store.engine.begin() as conn:  # purged, then a new run of that id
        conn.execute(store.events.delete())
        conn.execute(store.runs.delete())
    store.save_run(RunRecord(run_id="r", status=Status.RUNNING, started_at=2.0), create=True)
    store.append("r", _item(7))
    assert _followed(followed, "r") == _whole(store, "r")
    assert [s["path"] for s in followed.read("r")[1]] == [["fan", "7", "one"]]
    store.close()
