"""The server runs pipelines with the executor their config names: dask and argo too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support import TASKS
from support.fake_argo import FakeArgo
from support.server import tarball_of, wait_for
from support.services import Server

PIPELINE = "dag:\n  start_at: add\n  steps:\n    add: {command: ctasks.add, returns: [c], next: success}\n"


def test_argo_runs_are_submitted_and_followed(tmp_path: Path) -> None:
    with FakeArgo() as argo:
        server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1)
        server.env.update(ARGO_SERVER=argo.url, ARGO_TOKEN=argo.token, CONVEYOR_SERVER_EXECUTORS="local,argo")
        server.start()
        try:
            config = "executor: {type: argo, config: {image: ghcr.io/example/conveyor:0.1}}\n"
            with server.client("ann") as ann:
                run_id = ann.post(
                    "/runs",
                    json={
                        "pipeline": PIPELINE,
                        "config": config,
                        "run_id": "argo-1",
                        "parameters": {"a": 1, "b": 2},
                    },
                ).json()["id"]
                deadline = time.time() + 30
                while ("default", "argo-1") not in argo.workflows and time.time() < deadline:
                    time.sleep(0.1)
                workflow = argo.workflows[("default", "argo-1")]
                assert workflow["spec"]["arguments"]["parameters"] == [{"name": "run_id", "value": run_id}]
                assert ann.get(f"/runs/{run_id}").json()["status"] == "running"
                workflow["status"]["phase"] = "Succeeded"
                run = wait_for(ann, run_id, ("succeeded", "failed"), timeout=30)
            assert run["status"] == "succeeded"
        finally:
            server.stop()


@pytest.mark.dask
def test_dask_runs(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1)
    server.env.update(CONVEYOR_SERVER_EXECUTORS="local,dask")
    server.start()
    try:
        config = "executor: {type: dask, config: {local: {n_workers: 1, threads_per_worker: 1}}}\n"
        with server.client("ann") as ann:
            body = {
                "pipeline": PIPELINE,
                "config": config,
                "parameters": {"a": 1, "b": 2},
                "code": tarball_of(TASKS),
            }
            run_id = ann.post("/runs", json=body).json()["id"]
            run = wait_for(ann, run_id, ("succeeded", "failed"), timeout=120)
        assert run["status"] == "succeeded", run
        assert run["run_log"]["final_parameters"]["c"] == 3
        assert run["run_log"]["config"]["executor"]["type"] == "dask"
    finally:
        server.stop()
