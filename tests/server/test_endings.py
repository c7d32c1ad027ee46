"""On the server, every ending leaves true statuses: a cancelled run's steps and map items
are cancelled (in the store itself, the API, `runs show` and the UI's run data), their
durations fixed; a run whose worker was killed has its killed attempts recorded as
interrupted when another worker resumes it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from conveyor.runlog.records import Status
from conveyor.runlog.sql import SQLRunLogStore
from support import TASKS, run_cli
from support.server import tarball_of, wait_for
from support.services import Server

MAP = """dag:
  start_at: first
  steps:
    first: {command: endtasks.quick, next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 3
      next: success
      branch:
        start_at: nap
        steps:
          nap: {command: endtasks.nap_until, next: after}
          after: {command: endtasks.quick, next: success}
"""


def _submit(client: httpx.Client, marker: Path) -> str:
    body = {
        "pipeline": MAP,
        "config": "executor: {type: local}\n",
        "parameters": {"x": 0, "xs": [0, 1, 2, 3, 4], "marker": str(marker)},
        "code": tarball_of(TASKS),
    }
    created = client.post("/runs", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _napping(client: httpx.Client, run_id: str, count: int = 3) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        steps = client.get(f"/runs/{run_id}").json().get("steps") or []
        if sum(s["path"][-1] == "nap" and s["status"] == "running" for s in steps) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"the map's items of {run_id} did not start")


def _running(steps: list[dict[str, Any]]) -> list[str]:
    return [
        "/".join(s["path"])
        for s in steps
        if s["status"] == "running" or any(a["status"] == "running" for a in s["attempts"])
    ]


def _ui(server: Server, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with httpx.Client(base_url=server.endpoint) as browser_like:
        assert browser_like.post("/ui/api/login", json={"token": server.tokens["ann"]}).status_code == 200
        run = browser_like.get(f"/ui/api/runs/{run_id}").json()
        fan = browser_like.get(f"/ui/api/runs/{run_id}/map", params={"path": "fan"}).json()
    return run, fan


def test_cancel_ends_every_step_and_item_as_cancelled(server: Server, tmp_path: Path) -> None:
    with server.client("ann") as ann:
        run_id = _submit(ann, tmp_path / "never")
        _napping(ann, run_id)
        assert ann.post(f"/runs/{run_id}/cancel").status_code == 200
        wait_for(ann, run_id, ("cancelled",), timeout=30)
        first = ann.get(f"/runs/{run_id}").json()
        time.sleep(1.2)
        again = ann.get(f"/runs/{run_id}").json()
    # the store itself says it (no reader's settling)
    raw = SQLRunLogStore(server.db, create=False).load(run_id)
    assert raw.run.status is Status.CANCELLED
    assert {k: r.status for k, r in raw.steps.items() if k[-1] == "nap"} == {
        ("fan", str(i), "nap"): Status.CANCELLED for i in range(3)
    }
    assert raw.steps[("fan",)].status is Status.CANCELLED
    # the API: nothing running, the same durations a moment later
    assert first["run_log"]["status"] == "cancelled" and _running(first["steps"]) == []
    assert first["steps"] == again["steps"]
    nap = next(s for s in first["steps"] if s["path"] == ["fan", "0", "nap"])
    assert nap["attempts"][0]["end"] == first["run_log"]["ended_at"]
    assert nap["attempts"][0]["error"].startswith("cancelled")
    # runs show, over the server's database
    config = tmp_path / "server-store.yaml"
    config.write_text(f"run_log_store: {{type: sql, config: {{url: '{server.db}'}}}}\n")
    shown = run_cli("runs", "show", run_id, "-c", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if "│" in line]
    assert not any(" running " in row for row in rows) and sum(" cancelled " in r for r in rows) == 4
    # the UI's run data
    ui, fan = _ui(server, run_id)
    assert ui["header"]["status"] == "cancelled"
    assert not any(row["status"] == "running" for row in ui["tree"])
    assert not any(bar["status"] == "running" for bar in ui["gantt"])
    progress = ui["header"]["progress"]
    assert progress["items_stopped"] == 3 and progress["items_running"] == 0, progress
    assert fan["counts"] == {"cancelled": 3, "pending": 2}
    time.sleep(1.2)
    later, _ = _ui(server, run_id)
    assert later["header"]["duration"] == ui["header"]["duration"] and later["gantt"] == ui["gantt"]


def _driver_of(run_id: str) -> int:
    """The pid of the worker whose child runs ``run_id``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if run_id.encode() in argv and b"execute" in argv:
            return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    raise AssertionError(f"no process runs {run_id}")


def test_a_killed_worker_leaves_its_attempts_interrupted(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "go"
    with server.client("ann") as ann:
        run_id = _submit(ann, marker)
        _napping(ann, run_id)
        os.kill(_driver_of(run_id), signal.SIGKILL)  # its child dies with it
        deadline = time.time() + 30
        while time.time() < deadline:  # its lease expires: interrupted, until another worker resumes it
            seen = ann.get(f"/runs/{run_id}").json()
            if seen["run_log"]["status"] == "interrupted":
                assert _running(seen["steps"]) == [], seen["steps"]
            if seen["run_log"]["status"] != "running" or seen["run_log"]["resumed"]:
                break
            time.sleep(0.1)
        marker.touch()  # the worker that takes the run over finishes it
        done = wait_for(ann, run_id, ("succeeded", "failed"), timeout=90)
    assert done["status"] == "succeeded", done
    assert _running(done["steps"]) == []
    raw = SQLRunLogStore(server.db, create=False).load(run_id)
    nap = raw.steps[("fan", "0", "nap")]
    assert [a.status for a in nap.attempts] == [Status.INTERRUPTED, Status.SUCCEEDED]
    assert nap.attempts[0].error is not None and nap.attempts[0].error.startswith("interrupted")


QUITTER = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      reducer: quitter.reduce
      next: success
      branch:
        start_at: one
        steps:
          one: {command: endtasks.quick, next: success}
"""


def test_a_run_whose_process_exits_0_without_recording_success_fails(server: Server) -> None:
    """The sandbox's exit code is the run's own word (user code can make it 0, here by
    ending the engine when the map's reducer is imported): only the run's record of its
    success makes it succeeded."""
    with server.client("ann") as ann:
        body = {
            "pipeline": QUITTER,
            "config": "executor: {type: local}\n",
            "parameters": {"xs": [0, 1], "x": 0},
            "code": tarball_of(TASKS),
        }
        created = ann.post("/runs", json=body)
        assert created.status_code == 201, created.text
        done = wait_for(ann, str(created.json()["id"]), ("succeeded", "failed"), timeout=90)
    assert done["status"] == "failed", done
    assert "without recording its success" in str(done.get("error")), done
