"""Hostile run logs and requests against ``conveyor ui``: a log field naming a file outside the
run (or a link planted among its logs) shows no such file, and an item index that is a digit
only to ``str.isdigit`` ('²') is no index, not a server error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.executors.run import execute
from conveyor.runlog.file import FileRunLogStore
from conveyor.spec.config import RunConfig
from conveyor.spec.load import load_pipeline
from conveyor.ui.local import local_app

PIPELINE = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: echo, steps: {echo: {command_type: shell, command: "echo item", next: success}}}
      next: boom
    boom: {command_type: shell, command: "echo the real log; exit 3", next: success}
"""
SECRET = "a secret the run log must not reach"


def run_into(where: Path) -> FileRunLogStore:
    (where / "p.yaml").write_text(PIPELINE)
    store = FileRunLogStore(str(where / "runs"))
    result = execute(load_pipeline(where / "p.yaml"), RunConfig(), {"xs": [1, 2, 3]}, run_id="r", store=store)
    assert str(result.status) == "failed"
    return store


def boom_log(store: FileRunLogStore) -> Path:
    record = store.load("r").steps[("boom",)]
    assert record.last is not None and record.last.log is not None
    return Path(record.last.log)


def point_log_at(store: FileRunLogStore, target: str) -> None:
    """Rewrite the run log so that boom's attempt says its log is ``target``."""
    events = store.root / "r" / "events.jsonl"
    lines = []
    for line in events.read_text().splitlines():
        data = json.loads(line) if line.strip() else None
        if isinstance(data, dict) and data.get("path") == ["boom"] and "log" in data:
            data["log"] = target
        lines.append(json.dumps(data) if data is not None else line)
    events.write_text("\n".join(lines) + "\n")


@pytest.fixture
def store(tmp_path: Path) -> FileRunLogStore:
    (tmp_path / "secret.txt").write_text(SECRET)
    return run_into(tmp_path)


def shown(client: TestClient) -> tuple[str, str, str | None]:
    """boom's log as the log page, the download and the failure summary show it."""
    page = client.get("/ui/api/runs/r/log", params={"step": "boom"}).json()["text"]
    whole = client.get("/ui/api/runs/r/log/download", params={"step": "boom"}).text
    failures = client.get("/ui/api/runs/r").json()["header"]["failures"]
    head = next(f["log"] for f in failures if f["path"] == "boom")
    return page, whole, head


def test_a_log_field_naming_another_file_shows_the_attempts_own_log(store: FileRunLogStore) -> None:
    secret = str(store.root.parent / "secret.txt")
    for target in (
        secret,
        str(store.root / "r" / "logs" / ".." / ".." / ".." / "secret.txt"),
        "../secret.txt",
    ):
        point_log_at(store, target)
        page, whole, head = shown(TestClient(local_app(store)))
        assert SECRET not in page + whole + str(head)
        assert "the real log" in page and "the real log" in whole and "the real log" in str(head)
        assert store.read_log(target) == ""


def test_a_link_planted_among_the_logs_is_not_followed(store: FileRunLogStore) -> None:
    log = boom_log(store)
    log.unlink()
    log.symlink_to(store.root.parent / "secret.txt")
    page, whole, head = shown(TestClient(local_app(store)))
    assert SECRET not in page + whole + str(head)
    assert store.read_log(str(log)) == ""
    # another run's log folder reached through a link is not this run's either
    assert store.read_log(str(store.root / "r" / "run.json")) == ""


@pytest.mark.parametrize("key", ["²", "١", "x"])
def test_an_item_path_with_a_non_ascii_digit_is_no_item(store: FileRunLogStore, key: str) -> None:
    client = TestClient(local_app(store))
    got = client.get("/ui/api/runs/r", params={"path": f"fan/{key}"})
    assert got.status_code == 200, got.text
    assert [c["label"] for c in got.json()["crumbs"]] == ["pipeline", "fan (all)"]
    assert "item" not in got.json()["dag"]
    ok = client.get("/ui/api/runs/r", params={"path": "fan/1"}).json()
    assert [c["label"] for c in ok["crumbs"]] == ["pipeline", "fan [1]"] and ok["dag"]["item"]["index"] == "1"
