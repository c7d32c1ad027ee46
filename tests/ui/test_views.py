"""Run views fold only what is new, agree with a full read of the run log, and keep map
items compact; every store reads its events from a cursor."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.runlog.base import RunLogStore
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.memory import MemoryRunLogStore
from conveyor.runlog.records import EndEvent, NodeEvent, RunRecord, StartEvent, Status
from conveyor.runlog.sqlite import SQLiteRunLogStore
from conveyor.ui.views import RunView

PIPELINE = {
    "dag": {
        "start_at": "fan",
        "steps": {
            "fan": {
                "type": "map", "iterate_on": "xs", "iterate_as": "x", "next": "after",
                "branch": {"start_at": "t", "steps": {"t": {"command": "m.t", "next": "success"}}},
            },
            "after": {"command": "m.after", "next": "success"},
        },
    }
}  # fmt: skip


def stores(tmp_path: Path) -> dict[str, RunLogStore]:
    return {
        "file": FileRunLogStore(str(tmp_path / "runs")),
        "sqlite": SQLiteRunLogStore(str(tmp_path / "runs.db")),
        "memory": MemoryRunLogStore(),
    }


def item(i: int, status: Status, t: float) -> list[Any]:
    path = ["fan", str(i), "t"]
    return [
        StartEvent(path, 1, t),
        EndEvent(path, 1, t + 0.5, status, started=t, error="bad" if status == "failed" else None),
    ]


@pytest.mark.parametrize("kind", ["file", "sqlite", "memory"])
def test_incremental_views_agree_with_the_run_log(kind: str, tmp_path: Path) -> None:
    store = stores(tmp_path)[kind]
    t = time.time()
    store.save_run(RunRecord(run_id="r", pipeline_name="p", pipeline=PIPELINE, started_at=t), create=True)
    store.append("r", [NodeEvent(["fan"], "map", Status.RUNNING, t, {"items": 6})])
    view = RunView(store, "r")
    assert view.node_state(("fan",), "map")["counts"] == {"pending": 6}
    for i in range(6):
        store.append("r", item(i, Status.FAILED if i == 4 else Status.SUCCEEDED, t + i))
        assert view.refresh() is True
    assert view.refresh() is False  # nothing new: nothing read again
    store.append("r", [NodeEvent(["fan"], "map", Status.SUCCEEDED, t + 9, {"items": 6, "failed": 1})])
    store.append(
        "r",
        [
            StartEvent(["after"], 1, t + 10),
            EndEvent(["after"], 1, t + 11, Status.SUCCEEDED, returns={"n": 2**70}),
        ],
    )
    view.refresh()
    assert view.map_counts(("fan",), 6) == {"succeeded": 5, "failed": 1}
    detail = view.map_detail(("fan",), 0)
    assert (
        detail["failed"] == [{"item": "4", "error": "t: bad", "step": "fan/4/t", "attempt": 1}]
        and sum(b["count"] for b in detail["histogram"]) == 6
    )
    progress = view.progress()
    assert {k: v for k, v in progress.items() if v} == {
        "steps_done": 2, "steps": 2, "steps_succeeded": 2,
        "items_done": 6, "items": 6, "items_succeeded": 5, "items_failed": 1,
    }  # fmt: skip
    # outside maps, records are whole and exact (an integer past 64 bits stays one)
    assert view.steps[("after",)].attempts[0].returns == {"n": 2**70}
    full = store.load("r").steps
    assert {k: r.status for k, r in full.items() if k[0] != "fan" or len(k) == 1} == {
        k: r.status for k, r in view.steps.items()
    }
    assert {k: r.status for k, r in full.items() if len(k) == 3} == {
        k: e.status for k, e in view.items.items()
    }
    assert [b["path"] for b in view.gantt()][:2] == ["fan", "fan/0/t"]


def test_file_store_leaves_a_line_being_written_for_the_next_read(tmp_path: Path) -> None:
    store = FileRunLogStore(str(tmp_path / "runs"))
    store.save_run(RunRecord(run_id="r", pipeline_name="p", pipeline=PIPELINE), create=True)
    store.append("r", item(0, Status.SUCCEEDED, 1.0))
    lines, cursor = store.read_event_lines("r")
    assert len(lines) == 2
    with open(tmp_path / "runs" / "r" / "events.jsonl", "ab") as handle:
        handle.write(b'{"e":"start","path":["fan","1","t"]')  # half a line, as a writer mid-write
    assert store.read_event_lines("r", cursor) == ([], cursor)
    with open(tmp_path / "runs" / "r" / "events.jsonl", "ab") as handle:
        handle.write(b',"attempt":1,"t":2.0}\n')
    lines, _ = store.read_event_lines("r", cursor)
    assert len(lines) == 1


def test_run_json_stays_valid_with_nan_and_keeps_text_as_is(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from conveyor.ui.local import local_app

    store = FileRunLogStore(str(tmp_path / "runs"))
    store.save_run(
        RunRecord(run_id="r", pipeline_name="p", pipeline=PIPELINE, initial_parameters={"word": "NaNa"}),
        create=True,
    )
    store.append("r", [EndEvent(["after"], 1, 1.0, Status.SUCCEEDED, metrics={"m": float("nan")})])
    with TestClient(local_app(store)) as client:
        body = client.get("/ui/api/runs/r")
    assert body.status_code == 200
    data = body.json()
    assert data["header"]["initial_parameters"] == {"word": "NaNa"}
    (after,) = [s for s in data["tree"] if s["path"] == ["after"]]
    assert after["attempts"][0]["metrics"] == {"m": "NaN"}
    assert "default-src 'self'" in body.headers["content-security-policy"]


def test_runs_table_and_run_header_carry_the_tag(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from conveyor.ui.local import local_app

    store = FileRunLogStore(str(tmp_path / "runs"))
    for run_id, extra in (("tagged", {"tag": "nightly"}), ("plain", {})):
        store.save_run(
            RunRecord(
                run_id=run_id, pipeline_name="p", pipeline=PIPELINE, started_at=time.time(), extra=extra
            ),
            create=True,
        )
    with TestClient(local_app(store)) as client:
        rows = {row["id"]: row for row in client.get("/ui/api/runs").json()["runs"]}
        header = client.get("/ui/api/runs/tagged").json()["header"]
    assert rows["tagged"]["tag"] == "nightly" and rows["plain"]["tag"] is None
    assert header["tag"] == "nightly"
