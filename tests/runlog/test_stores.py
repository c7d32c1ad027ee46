"""Every run log store behaves the same behind the interface."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.runlog.base import RunLogStore, RunNotFoundError, effective_status
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.memory import MemoryRunLogStore
from conveyor.runlog.sqlite import SQLiteRunLogStore


@pytest.fixture(params=["memory", "file", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunLogStore]:
    made: RunLogStore = {
        "memory": lambda: MemoryRunLogStore(),
        "file": lambda: FileRunLogStore(str(tmp_path / "runs")),
        "sqlite": lambda: SQLiteRunLogStore(str(tmp_path / "runs.db")),
    }[request.param]()
    yield made
    made.close()


def run(run_id: str, started: float, status: str = "running") -> dict[str, object]:
    return {"run_id": run_id, "status": status, "started_at": started, "pipeline_name": "p"}


def test_round_trip_and_fold(store: RunLogStore) -> None:
    store.save_run(run("r1", 1.0))
    store.append("r1", [{"e": "start", "path": ["a"], "type": "task", "attempt": 1, "t": 1.0}])
    store.append(
        "r1",
        [
            {"e": "end", "path": ["a"], "attempt": 1, "t": 2.0, "status": "failed", "error": "E: x"},
            {"e": "start", "path": ["a"], "type": "task", "attempt": 2, "t": 3.0},
            {"e": "end", "path": ["a"], "attempt": 2, "t": 4.0, "status": "succeeded", "returns": {"v": 1}},
            {"e": "node", "path": ["m"], "type": "map", "status": "running", "t": 5.0, "info": {"items": 3}},
        ],
    )
    log = store.load("r1")
    a = log.steps["a"]
    assert a["status"] == "succeeded"
    assert [(x["attempt"], x["status"], x["start"], x["end"]) for x in a["attempts"]] == [
        (1, "failed", 1.0, 2.0),
        (2, "succeeded", 3.0, 4.0),
    ]
    assert log.succeeded(["a"]) is not None and log.succeeded(["a"])["returns"] == {"v": 1}  # type: ignore[index]
    assert log.steps["m"]["info"] == {"items": 3} and log.steps["m"]["status"] == "running"


def test_save_run_replaces_and_lists_newest_first(store: RunLogStore) -> None:
    store.save_run(run("old", 1.0))
    store.save_run(run("new", 2.0))
    store.save_run(run("old", 1.0, status="succeeded"))
    assert [r["run_id"] for r in store.list_runs()] == ["new", "old"]
    assert store.load("old").run["status"] == "succeeded"


def test_unknown_run(store: RunLogStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.load("nope")


def test_logs(store: RunLogStore) -> None:
    store.save_run(run("r", 1.0))
    where = store.write_log("r", "step-1/attempt-1.log", "hello\n")
    assert store.read_log(where) == "hello\n"


def test_file_store_skips_a_line_cut_short_by_a_crash(tmp_path: Path) -> None:
    store = FileRunLogStore(str(tmp_path))
    store.save_run(run("r", 1.0))
    store.append("r", [{"e": "start", "path": ["a"], "type": "task", "attempt": 1, "t": 1.0}])
    store.close()
    with open(tmp_path / "r" / "events.jsonl", "a") as handle:
        handle.write('{"e": "end", "path": ["a"], "attem')
    log = FileRunLogStore(str(tmp_path)).load("r")
    assert log.steps["a"]["status"] == "running"


def test_file_store_appends_instead_of_rewriting(tmp_path: Path) -> None:
    store = FileRunLogStore(str(tmp_path))
    store.save_run(run("r", 1.0))
    events = tmp_path / "r" / "events.jsonl"
    sizes = []
    for i in range(5):
        store.append("r", [{"e": "start", "path": [f"s{i}"], "type": "task", "attempt": 1, "t": 1.0}])
        sizes.append(events.stat().st_size)
    growth = [b - a for a, b in itertools.pairwise(sizes)]
    assert len(set(growth)) == 1  # each step adds one line; nothing is rewritten


def test_dead_process_means_interrupted() -> None:
    import socket

    record = {"status": "running", "pid": 2**22 + 12345, "host": socket.gethostname()}
    assert effective_status(record) == "interrupted"
    import os

    assert effective_status({**record, "pid": os.getpid()}) == "running"
