"""The HTTP API: auth, visibility, errors, the run life cycle."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from support import TASKS
from support.server import PIPELINE, payload, tarball_of, wait_for
from support.services import Server


def test_run_life_cycle_with_code_bundle(server: Server, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    with server.client("ann") as ann:
        created = ann.post("/runs", json=payload(counter, code=tarball_of(TASKS)))
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        run = wait_for(ann, run_id, ("succeeded", "failed"))
        assert run["status"] == "succeeded", run
        assert counter.read_text().splitlines() == ["one", "item-three"]
        steps = {"/".join(s["path"]): s for s in run["steps"]}
        assert steps["one"]["status"] == "succeeded" and steps["one"]["attempts"][0]["returns"] == {
            "first": "one"
        }
        assert run["run_log"]["final_parameters"]["third"] == "three"
        assert run["parameters"]["tag"] == "one" and run["user"] == "ann"
        listed = ann.get("/runs", params={"status": "succeeded", "pipeline": "pipeline", "limit": 5}).json()
        assert listed["total"] == 1 and listed["runs"][0]["id"] == run_id
        assert ann.get("/runs", params={"status": "queued"}).json()["total"] == 0
        assert ann.get("/version").json()["version"]


def test_auth(server: Server, tmp_path: Path) -> None:
    anonymous = httpx.Client(base_url=server.endpoint + "/api/v1")
    response = anonymous.get("/runs")
    assert response.status_code == 401 and "bearer token" in response.json()["error"]["message"]
    wrong = anonymous.get("/runs", headers={"Authorization": "Bearer cvt_nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid token"
    revoked = server.cli("server", "tokens", "create", "bob", "--db", server.db).stdout.strip()
    assert anonymous.get("/runs", headers={"Authorization": f"Bearer {revoked}"}).status_code == 200
    assert server.cli("server", "tokens", "revoke", revoked, "--db", server.db).returncode == 0
    gone = anonymous.get("/runs", headers={"Authorization": f"Bearer {revoked}"})
    assert gone.status_code == 401 and gone.json()["error"]["message"] == "token revoked"
    assert anonymous.get("/health").status_code == 200  # probes need no token
    with server.client("ann") as ann, server.client("bob") as bob, server.client("root") as root:
        run_id = ann.post("/runs", json=payload(tmp_path / "c", code=tarball_of(TASKS))).json()["id"]
        theirs, missing = bob.get(f"/runs/{run_id}"), bob.get("/runs/no-such-run")
        assert theirs.status_code == missing.status_code == 404  # another user's run: as if missing
        assert theirs.json()["error"]["message"] == f"no run '{run_id}'"
        assert bob.post(f"/runs/{run_id}/cancel").status_code == 404
        assert bob.get("/runs").json()["total"] == 0
        assert root.get(f"/runs/{run_id}").status_code == 200
        assert root.get("/runs", params={"user": "ann"}).json()["total"] == 1
        assert ann.get("/runs/nope").status_code == 404
        wait_for(ann, run_id, ("succeeded", "failed"))


def test_bad_input(server: Server, tmp_path: Path) -> None:
    with server.client("ann") as ann:
        bad = ann.post(
            "/runs", json={"pipeline": "dag:\n  start_at: a\n  steps:\n    a: {comand: x.y, next: b}\n"}
        )
        assert bad.status_code == 422
        issues = bad.json()["error"]["issues"]
        assert any(
            i["message"] == "unknown key 'comand'"
            and i["line"] == 4
            and i["hint"] == "did you mean 'command'?"
            for i in issues
        )
        assert any("next names an unknown step 'b'" in i["message"] for i in issues)
        config = ann.post(
            "/runs", json={"pipeline": PIPELINE, "config": "executor: {type: local}\nrunlog: {}\n"}
        )
        assert (
            config.status_code == 422
            and config.json()["error"]["issues"][0]["message"] == "unknown key 'runlog'"
        )
        huge = ann.post(
            "/runs",
            content=b'{"pipeline": "' + b"x" * (17 * 1024 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413 and "error" in huge.json()
        assert (
            ann.post("/runs", content=b"{not json", headers={"Content-Type": "application/json"}).status_code
            == 422
        )
        assert ann.post("/runs", json={"pipeline": PIPELINE, "code": "%%%"}).status_code == 422


def test_cancel_stops_the_run_and_its_processes(server: Server, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    with server.client("ann") as ann:
        run_id = ann.post("/runs", json=payload(counter, seconds=60, code=tarball_of(TASKS))).json()["id"]
        deadline = time.time() + 30
        while not counter.exists() and time.time() < deadline:
            time.sleep(0.1)
        started = time.time()
        assert ann.post(f"/runs/{run_id}/cancel").json()["cancel_requested"] is True
        run = wait_for(ann, run_id, ("cancelled",), timeout=30)
        assert time.time() - started < 15
        assert run["run_log"]["status"] == "cancelled"
        time.sleep(1)
        assert counter.read_text().splitlines() == ["one"]  # `three` never ran


def test_retry_resumes_a_failed_run(server: Server, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    with server.client("ann") as ann:
        body = payload(counter, code=tarball_of(TASKS))
        body["parameters"]["seconds"] = "not a number"  # `two` fails to cast its parameter
        run_id = ann.post("/runs", json=body).json()["id"]
        failed = wait_for(ann, run_id, ("succeeded", "failed"))
        assert failed["status"] == "failed"
        assert ann.post(f"/runs/{run_id}/retry").status_code == 200
        again = wait_for(ann, run_id, ("succeeded", "failed"))
        assert again["status"] == "failed" and again["claims"] == 2
        assert counter.read_text().splitlines() == ["one"]  # `one` was not run a second time
        done = ann.post(f"/runs/{run_id}/retry")
        assert done.status_code == 200
        ok = ann.post("/runs", json=payload(tmp_path / "c2", code=tarball_of(TASKS)))
        finished = wait_for(ann, ok.json()["id"], ("succeeded",))
        assert ann.post(f"/runs/{finished['id']}/retry").status_code == 422


def test_loop_runs_on_the_server(server: Server, tmp_path: Path) -> None:
    from executors.test_loop import LOOP

    with server.client("ann") as ann:
        body = {
            "pipeline": LOOP,
            "parameters": {"total": 0, "stop_at": 2, "fail_at": -1, "marker": "m"},
            "code": tarball_of(TASKS),
        }
        run_id = ann.post("/runs", json=body).json()["id"]
        run = wait_for(ann, run_id, ("succeeded", "failed"))
    assert run["status"] == "succeeded", run
    assert run["run_log"]["final_parameters"]["total"] == 3
    paths = {"/".join(s["path"]) for s in run["steps"]}
    assert {"grow/0/body", "grow/1/body", "grow/2/body"} <= paths
