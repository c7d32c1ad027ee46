"""Every run log store behaves the same behind the interface, with typed records."""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.runlog.base import RunExistsError, RunLogStore, RunNotFoundError, effective_status
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.memory import MemoryRunLogStore
from conveyor.runlog.records import EndEvent, NodeEvent, RunRecord, StartEvent, Status
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


def run(run_id: str, started: float, status: Status = Status.RUNNING) -> RunRecord:
    return RunRecord(run_id=run_id, status=status, started_at=started, pipeline_name="p")


def test_round_trip_and_fold(store: RunLogStore) -> None:
    store.save_run(run("r1", 1.0))
    store.append("r1", [StartEvent(["a"], 1, 1.0)])
    store.append(
        "r1",
        [
            EndEvent(["a"], 1, 2.0, Status.FAILED, error="E: x"),
            StartEvent(["a"], 2, 3.0),
            EndEvent(["a"], 2, 4.0, Status.SUCCEEDED, returns={"v": 1}),
            NodeEvent(["m"], "map", Status.RUNNING, 5.0, {"items": 3}),
        ],
    )
    log = store.load("r1")
    a = log.steps[("a",)]
    assert a.status is Status.SUCCEEDED
    assert [(x.attempt, x.status, x.start, x.end) for x in a.attempts] == [
        (1, "failed", 1.0, 2.0),
        (2, "succeeded", 3.0, 4.0),
    ]
    reused = log.succeeded(["a"])
    assert reused is not None and reused.returns == {"v": 1}
    assert log.steps[("m",)].info == {"items": 3} and log.steps[("m",)].status is Status.RUNNING


def test_step_names_holding_separators_stay_apart(store: RunLogStore) -> None:
    """Paths are keys as tuples: names with '/', the old \\x1f separator, newlines or unicode
    never fold two steps into one record."""
    store.save_run(run("r", 1.0))
    paths = [["a\x1fb"], ["a", "b"], ["a/b"], ["a", "b\nc"], ["ä", "β"]]
    store.append("r", [EndEvent(p, 1, 1.0, Status.SUCCEEDED) for p in paths[:-1]])
    store.append("r", [EndEvent(paths[-1], 1, 1.0, Status.FAILED)])
    steps = store.load("r").steps
    assert sorted(steps) == sorted(tuple(p) for p in paths)
    assert steps[("ä", "β")].status is Status.FAILED and steps[("a", "b")].status is Status.SUCCEEDED


def test_save_run_replaces_and_lists_newest_first(store: RunLogStore) -> None:
    store.save_run(run("old", 1.0))
    store.save_run(run("new", 2.0))
    store.save_run(run("old", 1.0, status=Status.SUCCEEDED))
    assert [r.run_id for r in store.list_runs()] == ["new", "old"]
    assert store.load("old").run.status is Status.SUCCEEDED


def test_unknown_run(store: RunLogStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.load("nope")


def test_logs(store: RunLogStore) -> None:
    store.save_run(run("r", 1.0))
    where = store.write_log("r", "step-1/attempt-1.log", "hello\n")
    assert store.read_log(where) == "hello\n"


LEGACY_RUN = {
    "run_id": "old-run",
    "pipeline_name": "p",
    "pipeline_hash": "abc",
    "status": "failed",
    "started_at": 1.0,
    "ended_at": 2.0,
    "initial_parameters": {"x": 1},
    "final_parameters": {},
    "pid": 12,
    "host": "h",
    "resumed": 0,
    "submitted_by": "kept as is",
}
LEGACY_EVENTS = [
    {"e": "start", "path": ["a"], "type": "task", "attempt": 1, "t": 1.0},
    {
        "e": "end",
        "path": ["a"],
        "attempt": 1,
        "t": 1.5,
        "started": 1.0,
        "status": "succeeded",
        "returns": {"y": 2},
    },
    {
        "e": "node",
        "path": ["m"],
        "type": "map",
        "status": "failed",
        "t": 1.6,
        "info": {"items": 2, "failed": 1},
    },
]


def test_files_written_before_typed_records_load_unchanged(tmp_path: Path) -> None:
    """A run directory in the format every earlier conveyor wrote loads, and saving it back
    keeps keys this version does not know."""
    directory = tmp_path / "old-run"
    directory.mkdir()
    (directory / "run.json").write_text(json.dumps(LEGACY_RUN, indent=1))
    (directory / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in LEGACY_EVENTS))
    store = FileRunLogStore(str(tmp_path))
    log = store.load("old-run")
    assert log.run.status is Status.FAILED and log.run.initial_parameters == {"x": 1}
    assert log.steps[("a",)].last is not None and log.steps[("a",)].last.returns == {"y": 2}
    assert log.steps[("m",)].info == {"items": 2, "failed": 1}
    store.save_run(log.run)
    again = json.loads((directory / "run.json").read_text())
    assert again["submitted_by"] == "kept as is"
    assert {k: again[k] for k in LEGACY_RUN} == LEGACY_RUN


def test_file_store_skips_a_line_cut_short_by_a_crash(tmp_path: Path) -> None:
    store = FileRunLogStore(str(tmp_path))
    store.save_run(run("r", 1.0))
    store.append("r", [StartEvent(["a"], 1, 1.0)])
    store.close()
    with open(tmp_path / "r" / "events.jsonl", "a") as handle:
        handle.write('{"e": "end", "path": ["a"], "attem')
    assert FileRunLogStore(str(tmp_path)).load("r").steps[("a",)].status is Status.RUNNING


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_torn_last_line_never_swallows_the_next_event(tmp_path: Path, cut: int) -> None:
    """Cut the log inside its last event at every offset: a writer then starts on a fresh line,
    so the next event is read back whole."""
    store = FileRunLogStore(str(tmp_path))
    store.save_run(run("r", 1.0))
    store.append("r", [StartEvent(["a"], 1, 1.0), EndEvent(["a"], 1, 2.0, Status.FAILED)])
    store.close()
    events = tmp_path / "r" / "events.jsonl"
    data = events.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    if last_start + cut >= len(data):
        pytest.skip("past the end of the last event")
    events.write_bytes(data[: last_start + cut])
    later = FileRunLogStore(str(tmp_path))
    later.append("r", [EndEvent(["b"], 1, 3.0, Status.SUCCEEDED)])
    log = later.load("r")
    assert log.steps[("b",)].status is Status.SUCCEEDED
    assert log.steps[("a",)].status is Status.RUNNING  # the torn end event is ignored
    assert log.torn == 1  # and said so (runs show prints it)


def test_file_store_appends_instead_of_rewriting(tmp_path: Path) -> None:
    store = FileRunLogStore(str(tmp_path))
    store.save_run(run("r", 1.0))
    events = tmp_path / "r" / "events.jsonl"
    sizes = []
    for i in range(5):
        store.append("r", [StartEvent([f"s{i}"], 1, 1.0)])
        sizes.append(events.stat().st_size)
    growth = [b - a for a, b in itertools.pairwise(sizes)]
    assert len(set(growth)) == 1  # each step adds one line; nothing is rewritten


def test_dead_process_means_interrupted() -> None:
    record = RunRecord(run_id="r", status=Status.RUNNING, pid=2**22 + 12345, host=socket.gethostname())
    assert effective_status(record) is Status.INTERRUPTED
    record.pid = os.getpid()
    assert effective_status(record) is Status.RUNNING


def test_creating_a_run_is_atomic_and_exclusive(store: RunLogStore) -> None:
    store.save_run(run("once", 1.0), create=True)
    with pytest.raises(RunExistsError, match="run 'once' already exists"):
        store.save_run(run("once", 2.0), create=True)
    assert store.load("once").run.started_at == 1.0
    store.save_run(run("once", 1.0, status=Status.SUCCEEDED))  # updates are not creations
    assert store.load("once").run.status is Status.SUCCEEDED


@pytest.mark.postgres
def test_creating_a_run_on_postgres_is_exclusive(postgres_url: str) -> None:
    from conveyor.runlog.sql import SQLRunLogStore

    store = SQLRunLogStore(postgres_url)
    name = f"pg-{os.getpid()}-{int(time.time() * 1000)}"
    store.save_run(run(name, 1.0), create=True)
    with pytest.raises(RunExistsError):
        store.save_run(run(name, 2.0), create=True)
    store.close()


def test_the_lease_decides_liveness_on_any_host() -> None:
    record = RunRecord(run_id="r", status=Status.RUNNING, pid=1, host="another-host", lease_until=100.0)
    assert effective_status(record, now=99.0) is Status.RUNNING
    assert effective_status(record, now=101.0) is Status.INTERRUPTED
