"""The server runs pipelines with the executor their config names: dask and argo too."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from support import TASKS, need_service
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
                # The run's id, and its parameters as the workflow's arguments (issue 22).
                arguments = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
                assert arguments == {"run_id": run_id, "a": "1", "b": "2"}
                assert ann.get(f"/runs/{run_id}").json()["status"] == "running"
                workflow["status"]["phase"] = "Succeeded"
                run = wait_for(ann, run_id, ("succeeded", "failed"), timeout=30)
            assert run["status"] == "succeeded"
        finally:
            server.stop()


@pytest.mark.dask
def test_dask_runs_on_the_operators_cluster_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TASKS), os.environ.get("PYTHONPATH", "")]))
    try:
        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
    except Exception as exc:  # the cluster could not start here
        need_service("dask", f"a Dask cluster could not start on loopback: {exc}")
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1)
    server.env.update(
        CONVEYOR_SERVER_EXECUTORS="local,dask", CONVEYOR_SERVER_DASK_ADDRESS=cluster.scheduler_address
    )
    server.start()
    try:
        with server.client("ann") as ann:
            body = {"pipeline": PIPELINE, "parameters": {"a": 1, "b": 2}, "code": tarball_of(TASKS)}
            for elsewhere in ("{address: 'tcp://10.1.2.3:8786'}", "{local: {n_workers: 1}}"):
                refused = ann.post(
                    "/runs", json={**body, "config": f"executor: {{type: dask, config: {elsewhere}}}"}
                )
                assert refused.status_code == 422 and "the operator's cluster" in refused.text, refused.text
            run_id = ann.post("/runs", json={**body, "config": "executor: {type: dask}\n"}).json()["id"]
            run = wait_for(ann, run_id, ("succeeded", "failed"), timeout=120)
        assert run["status"] == "succeeded", run
        assert run["run_log"]["final_parameters"]["c"] == 3
        assert run["run_log"]["config"]["executor"]["config"]["address"] == cluster.scheduler_address
    finally:
        server.stop()
        cluster.close()
