"""A run's steps cannot reach the server: its database (file, credentials, port), its data,
or other runs' files; the run's own steps still work. Needs bubblewrap (CI installs it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support import TASKS, need_service
from support.server import tarball_of, wait_for
from support.services import Server

pytestmark = pytest.mark.sandbox

ESCAPE = """dag:
  start_at: escape
  steps:
    escape: {command: ctasks.try_to_escape, returns: [outcome], next: success}
"""


def test_a_hostile_step_reaches_nothing_of_the_server(tmp_path: Path, postgres_url: str) -> None:
    if shutil.which("bwrap") is None:
        need_service("sandbox", "bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    data = tmp_path / "data"
    server = Server(f"sqlite:///{data / 'server.db'}", tmp_path / "srv", workers=1)
    server.env.update(CONVEYOR_SERVER_SANDBOX="bwrap", CONVEYOR_SANDBOX_EXTRA="", XDG_DATA_HOME=str(data))
    data.mkdir()
    (tmp_path / "srv").mkdir()
    server.start()
    try:
        with server.client("ann") as ann, server.client("bob") as bob:
            code = tarball_of(TASKS)
            theirs = bob.post(
                "/runs",
                json={
                    "pipeline": ESCAPE.replace("escape:", "other:").replace(
                        "start_at: escape", "start_at: other"
                    ),
                    "code": code,
                    "parameters": {"server_db": "x", "other_run": "x", "server_data": "x", "pg_port": 1},
                },
            ).json()
            wait_for(bob, theirs["id"], ("succeeded", "failed"))
            other_file = tmp_path / "srv" / "runs" / theirs["id"] / "pipeline.yaml"
            assert other_file.exists()
            port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
            params = {
                "server_db": str(data / "server.db"),
                "other_run": str(other_file),
                "server_data": str(tmp_path / "srv" / "runs" / ".private" / theirs["id"] / "config.yaml"),
                "pg_port": port,
            }
            mine = ann.post("/runs", json={"pipeline": ESCAPE, "code": code, "parameters": params}).json()
            run = wait_for(ann, mine["id"], ("succeeded", "failed"))
            assert run["status"] == "succeeded", run
            outcome = ann.get(f"/runs/{mine['id']}").json()["run_log"]["final_parameters"]["outcome"]
        assert outcome["environment"] == "clean", outcome
        for attempt in ("database_file", "other_run", "server_data", "database_port"):
            assert outcome[attempt].startswith("refused"), (attempt, json.dumps(outcome))
        assert outcome["own"] == "own work directory is writable"
    finally:
        server.stop()
