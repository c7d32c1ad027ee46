"""conveyor submit --to argo and runs status|logs|stop|retry, against an HTTP server on
loopback that answers the documented Argo Server endpoints (no live cluster is available)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ROOT, run_cli
from support.fake_argo import FakeArgo

CONFIG = """executor: {type: argo, config: {image: "ghcr.io/example/conveyor:0.1", namespace: pipelines}}
run_log_store: {type: file, config: {path: .conveyor/runs}}
"""


@pytest.fixture
def argo(tmp_path: Path) -> Iterator[FakeArgo]:
    (tmp_path / "pipeline.yaml").write_text((ROOT / "examples/hello_world/pipeline.yaml").read_text())
    (tmp_path / "argo.yaml").write_text(CONFIG)
    with FakeArgo() as fake:
        yield fake


def cli(tmp_path: Path, fake: FakeArgo, *args: str, token: str = "secret-token"):  # type: ignore[no-untyped-def]
    return run_cli(*args, cwd=tmp_path, env={"ARGO_SERVER": fake.url, "ARGO_TOKEN": token})


def test_submit_posts_a_named_workflow(tmp_path: Path, argo: FakeArgo) -> None:
    out = cli(
        tmp_path,
        argo,
        "submit",
        "--to",
        "argo",
        "-f",
        "pipeline.yaml",
        "-c",
        "argo.yaml",
        "--run-id",
        "Run_1",
    )
    assert out.returncode == 0, out.stderr
    assert "submitted run Run_1 as workflow pipelines/run-1" in out.stdout
    workflow = argo.workflows[("pipelines", "run-1")]
    assert workflow["kind"] == "Workflow" and workflow["metadata"]["name"] == "run-1"
    assert workflow["spec"]["arguments"]["parameters"] == [{"name": "run_id", "value": "Run_1"}]
    assert ("POST", "/api/v1/workflows/pipelines") in argo.calls
    again = cli(tmp_path, argo, "submit", "-f", "pipeline.yaml", "-c", "argo.yaml", "--run-id", "Run_1")
    assert again.returncode == 2 and "409" in again.stderr and "already exists" in again.stderr


def test_status_logs_stop_retry(tmp_path: Path, argo: FakeArgo) -> None:
    assert (
        cli(tmp_path, argo, "submit", "-f", "pipeline.yaml", "-c", "argo.yaml", "--run-id", "r2").returncode
        == 0
    )
    workflow = argo.workflows[("pipelines", "r2")]
    workflow["status"] = {
        "phase": "Running",
        "nodes": {
            "a": {
                "displayName": "greet",
                "type": "Pod",
                "phase": "Succeeded",
                "startedAt": "2026-11-22T00:00:01Z",
            },
            "b": {
                "displayName": "count",
                "type": "Pod",
                "phase": "Running",
                "startedAt": "2026-11-22T00:00:05Z",
            },
        },
    }
    workflow["logs"] = [("r2-greet-1", "Hello, world!")]
    status = cli(tmp_path, argo, "runs", "status", "r2", "-c", "argo.yaml")
    assert status.returncode == 0, status.stderr
    assert (
        "workflow r2: Running" in status.stdout and "greet" in status.stdout and "Succeeded" in status.stdout
    )
    logs = cli(tmp_path, argo, "runs", "logs", "r2", "-c", "argo.yaml")
    assert logs.returncode == 0 and "r2-greet-1: Hello, world!" in logs.stdout
    stop = cli(tmp_path, argo, "runs", "stop", "r2", "-c", "argo.yaml")
    assert stop.returncode == 0 and "stop: workflow r2 is Running (shutting down: Stop)" in stop.stdout
    assert workflow["spec"]["shutdown"] == "Stop"
    retry = cli(tmp_path, argo, "runs", "retry", "r2", "-c", "argo.yaml")
    assert (
        retry.returncode == 2
        and "400" in retry.stderr
        and "Cannot retry a workflow in phase Running" in retry.stderr
    )
    workflow["status"]["phase"] = "Failed"  # what the controller makes of a stopped workflow
    retry = cli(tmp_path, argo, "runs", "retry", "r2", "-c", "argo.yaml")
    assert retry.returncode == 0 and "retry: workflow r2 is reset, waiting for the controller" in retry.stdout
    assert ("PUT", "/api/v1/workflows/pipelines/r2/stop") in argo.calls


def test_status_of_a_run_with_a_run_log(tmp_path: Path, argo: FakeArgo) -> None:
    """The run log (on shared storage) is combined with the workflow's phase."""
    assert (
        cli(tmp_path, argo, "submit", "-f", "pipeline.yaml", "-c", "argo.yaml", "--run-id", "r3").returncode
        == 0
    )
    started = run_cli("run-start", "r3", "-f", "pipeline.yaml", "-c", "argo.yaml", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    status = cli(tmp_path, argo, "runs", "status", "r3", "-c", "argo.yaml")
    assert "run log: running" in status.stdout


def test_auth_and_unknown_run_errors(tmp_path: Path, argo: FakeArgo) -> None:
    out = cli(tmp_path, argo, "submit", "-f", "pipeline.yaml", "-c", "argo.yaml", token="wrong")
    assert out.returncode == 2 and "401" in out.stderr and "token not valid" in out.stderr
    out = cli(tmp_path, argo, "runs", "status", "nope", "-c", "argo.yaml")
    assert out.returncode == 2 and "404" in out.stderr
    out = run_cli("submit", "-f", "pipeline.yaml", "-c", "argo.yaml", cwd=tmp_path, env={"ARGO_SERVER": ""})
    assert out.returncode == 2 and "ARGO_SERVER" in out.stderr


def test_a_scheduled_config_is_not_submitted_as_one_run(tmp_path: Path, argo: FakeArgo) -> None:
    """A schedule makes the manifest a CronWorkflow, whose runs Argo starts itself: submit
    refuses it with what to do instead, and posts nothing."""
    (tmp_path / "cron.yaml").write_text(
        CONFIG.replace("namespace: pipelines", "namespace: pipelines, schedule: '0 2 * * *'")
    )
    out = cli(tmp_path, argo, "submit", "-f", "pipeline.yaml", "-c", "cron.yaml", "--run-id", "r3")
    assert out.returncode == 2, out.stderr
    assert "makes a CronWorkflow, not one run" in out.stderr and "argo cron create" in out.stderr
    assert not argo.workflows and not any(method == "POST" for method, _ in argo.calls)
