"""Many clients at once, and workers killed mid-run."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support import TASKS
from support.runs import steps_of, variant
from support.server import PIPELINE, payload, tarball_of, wait_for
from support.services import Server


def test_200_submissions_from_20_clients_complete_exactly_once(server: Server, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    code = tarball_of(TASKS)
    quick = variant(PIPELINE, lambda d: steps_of(d)["two"].update(command="ctasks.noop"))

    def client_submits(index: int) -> list[str]:
        ids = []
        with server.client("ann") as ann:
            for j in range(10):
                body = payload(counter, code=code)
                body["pipeline"] = quick
                body["parameters"]["tag"] = f"run-{index}-{j}"
                response = ann.post("/runs", json=body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
        return ids

    with ThreadPoolExecutor(20) as pool:
        run_ids = [i for ids in pool.map(client_submits, range(20)) for i in ids]
    assert len(set(run_ids)) == 200
    with server.client("root") as root:
        deadline = time.time() + 600
        while time.time() < deadline:
            page = root.get("/runs", params={"limit": 500}).json()
            if all(r["status"] in ("succeeded", "failed") for r in page["runs"]) and page["total"] == 200:
                break
            time.sleep(1)
        runs = page["runs"]
    assert sorted(r["id"] for r in runs) == sorted(run_ids)
    assert {r["status"] for r in runs} == {"succeeded"}
    assert {r["claims"] for r in runs} == {1}
    firsts = [line for line in counter.read_text().splitlines() if line.startswith("run-")]
    assert sorted(firsts) == sorted(f"run-{i}-{j}" for i in range(20) for j in range(10))  # each once


def test_killed_worker_run_is_reclaimed_and_resumed(server: Server, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    with server.client("ann") as ann:
        run_id = ann.post("/runs", json=payload(counter, seconds=4, code=tarball_of(TASKS))).json()["id"]
        deadline = time.time() + 30

        def one_recorded() -> bool:  # the step wrote the counter *and* its end was recorded
            steps = ann.get(f"/runs/{run_id}").json().get("steps") or []
            return any(s["path"] == ["one"] and s["status"] == "succeeded" for s in steps)

        while not (counter.exists() and one_recorded()) and time.time() < deadline:
            time.sleep(0.05)
        worker = ann.get(f"/runs/{run_id}").json()["worker"]
        pid = int(worker.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        run = wait_for(ann, run_id, ("succeeded", "failed"), timeout=90)
    assert run["status"] == "succeeded", run
    assert run["claims"] == 2 and run["worker"] != worker
    assert counter.read_text().splitlines() == ["one", "item-three"]  # `one` was not run again
    steps = {"/".join(s["path"]): s for s in run["steps"]}
    assert len(steps["one"]["attempts"]) == 1
    assert run["run_log"]["resumed"] == 1
