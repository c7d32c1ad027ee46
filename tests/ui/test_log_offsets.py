"""A step log is read from an offset the client gives: a negative or absurd one is refused
(422), never answered with a broken body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.runlog.file import FileRunLogStore
from support import run_cli

PIPELINE = """
dag:
  start_at: say
  steps:
    say: {type: task, command_type: shell, command: "echo hello from the step", next: success}
"""
CONFIG = "run_log_store: {type: file, config: {path: runs}}\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local UI over a file run log holding run 'r', whose one step printed a line."""
    from fastapi.testclient import TestClient

    from conveyor.ui.local import local_app

    tmp_path = tmp_path_factory.mktemp("offsets")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "config.yaml").write_text(CONFIG)
    out = run_cli("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "r", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with TestClient(local_app(FileRunLogStore(str(tmp_path / "runs")))) as test_client:
        yield test_client


@pytest.mark.parametrize("endpoint", ["log", "log/stream"])
@pytest.mark.parametrize("offset", ["-1", "-999999", str(2**41), "9" * 30])
def test_negative_and_absurd_offsets_are_refused(client: Any, endpoint: str, offset: str) -> None:
    answer = client.get(f"/ui/api/runs/r/{endpoint}", params={"step": "say", "attempt": 1, "offset": offset})
    assert answer.status_code == 422, answer.text
    assert "offset" in answer.text


def test_an_offset_inside_the_log_reads_from_there(client: Any) -> None:
    whole = client.get("/ui/api/runs/r/log", params={"step": "say", "attempt": 1}).json()
    assert "hello from the step" in whole["text"]
    part = client.get("/ui/api/runs/r/log", params={"step": "say", "attempt": 1, "offset": 6}).json()
    assert part["text"] == whole["text"][6:] and part["offset"] == 6
    past = client.get("/ui/api/runs/r/log", params={"step": "say", "attempt": 1, "offset": 10**9}).json()
    assert past["text"] == "" and past["size"] == whole["size"]
