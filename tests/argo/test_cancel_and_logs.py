"""An Argo run cancelled on request ends ``cancelled`` in the run log, though Argo reports a
stopped workflow only as "Failed"; ``runs logs`` of an Argo run reads the run log's captured
output (the Argo Server's pod logs only when the run log does not hold the run). The real
Argo Server tier (tests/argoreal/test_server_client.py) runs the same on a real cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.executors.contract import POD_CONTRACT
from conveyor.executors.pods import execute_single_node, kind_verb, run_end, run_start
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from support import ROOT, run_cli
from support.fake_argo import FakeArgo

CONFIG = """executor: {type: argo, config: {image: "ghcr.io/example/conveyor:0.1", namespace: pipelines}}
run_log_store: {type: file, config: {path: .conveyor/runs}}
"""
MAP = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: sq, steps: {sq: {command: ctasks.square, returns: [y], next: success}}}
      next: success
"""


def store(where: Path) -> FileRunLogStore:
    return FileRunLogStore(str(where / ".conveyor/runs"))


@pytest.fixture
def pods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(POD_CONTRACT.outputs_env, str(tmp_path / "out"))
    (tmp_path / "pipeline.yaml").write_text(MAP)
    (tmp_path / "argo.yaml").write_text(CONFIG)
    (tmp_path / "params.yaml").write_text("xs: [2, 3, 4]\n")
    run_start("r1", "pipeline.yaml", "argo.yaml", "params.yaml")
    kind_verb("fan-out", "r1", "fan", "pipeline.yaml", "argo.yaml")
    assert execute_single_node("r1", "fan/0/sq", "pipeline.yaml", "argo.yaml") is True
    return tmp_path


def request_cancel(where: Path) -> None:
    run = store(where).load("r1").run
    run.cancel_requested = 1234.5
    store(where).save_run(run)


def test_a_requested_stop_ends_the_run_cancelled(pods: Path) -> None:
    request_cancel(pods)
    assert store(pods).load("r1").run.cancel_requested == 1234.5  # the record keeps it
    assert run_end("r1", "Failed", "pipeline.yaml", "argo.yaml") is Status.CANCELLED
    log = store(pods).load("r1")
    assert log.status is Status.CANCELLED and log.run.orchestrator_status == "Failed"
    assert log.run.error == "cancelled: the workflow was stopped on request"
    assert log.step(["fan"]).status is Status.CANCELLED  # type: ignore[union-attr]
    assert log.step(["fan", "0", "sq"]).status is Status.SUCCEEDED  # type: ignore[union-attr]
    assert log.run.final_parameters["xs"] == [2, 3, 4]


def test_without_a_request_a_failed_workflow_is_a_failed_run(pods: Path) -> None:
    assert run_end("r1", "Failed", "pipeline.yaml", "argo.yaml") is Status.FAILED
    assert store(pods).load("r1").run.cancel_requested is None


def test_a_stop_asked_too_late_leaves_a_succeeded_run_succeeded(pods: Path) -> None:
    for index in (1, 2):
        execute_single_node("r1", f"fan/{index}/sq", "pipeline.yaml", "argo.yaml")
    kind_verb("fan-in", "r1", "fan", "pipeline.yaml", "argo.yaml")
    request_cancel(pods)
    assert run_end("r1", "Succeeded", "pipeline.yaml", "argo.yaml") is Status.SUCCEEDED


# --- the CLI against the emulated Argo Server ---------------------------------------------


@pytest.fixture
def argo(tmp_path: Path) -> Iterator[FakeArgo]:
    (tmp_path / "pipeline.yaml").write_text((ROOT / "examples/hello_world/pipeline.yaml").read_text())
    (tmp_path / "argo.yaml").write_text(CONFIG)
    with FakeArgo() as fake:
        yield fake


def cli(tmp_path: Path, fake: FakeArgo, *args: str):  # type: ignore[no-untyped-def]
    env = {"ARGO_SERVER": fake.url, "ARGO_TOKEN": fake.token}
    return run_cli(*args, cwd=tmp_path, env=env)


def started(tmp_path: Path, fake: FakeArgo, run_id: str) -> None:
    out = cli(tmp_path, fake, "submit", "-f", "pipeline.yaml", "-c", "argo.yaml", "--run-id", run_id)
    assert out.returncode == 0, out.stderr
    out = run_cli("run-start", run_id, "-f", "pipeline.yaml", "-c", "argo.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("verb", ["cancel", "stop"])
def test_cancel_tells_the_run_log_then_stops_the_workflow(verb: str, tmp_path: Path, argo: FakeArgo) -> None:
    started(tmp_path, argo, "r5")
    out = cli(tmp_path, argo, "runs", verb, "r5", "-c", "argo.yaml")
    assert out.returncode == 0, out.stderr
    assert ("PUT", "/api/v1/workflows/pipelines/r5/stop") in argo.calls
    assert argo.workflows[("pipelines", "r5")]["spec"]["shutdown"] == "Stop"
    assert store(tmp_path).load("r5").run.cancel_requested is not None
    # the exit handler's run-end then records it cancelled
    out = run_cli(
        "run-end", "r5", "--status", "Failed", "-f", "pipeline.yaml", "-c", "argo.yaml", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert store(tmp_path).load("r5").status is Status.CANCELLED
    # a retry clears the request: the retried run ends as its workflow does
    argo.workflows[("pipelines", "r5")]["status"]["phase"] = "Failed"  # as the controller ends it
    out = cli(tmp_path, argo, "runs", "retry", "r5", "-c", "argo.yaml")
    assert out.returncode == 0, out.stderr
    assert store(tmp_path).load("r5").run.cancel_requested is None


def test_a_refused_stop_leaves_the_run_log_untold(tmp_path: Path, argo: FakeArgo) -> None:
    started(tmp_path, argo, "r6")
    del argo.workflows[("pipelines", "r6")]  # the workflow was deleted meanwhile
    out = cli(tmp_path, argo, "runs", "cancel", "r6", "-c", "argo.yaml")
    assert out.returncode == 2 and "404" in out.stderr, out.stderr
    assert store(tmp_path).load("r6").run.cancel_requested is None


def test_logs_of_an_argo_run_come_from_its_run_log(tmp_path: Path, argo: FakeArgo) -> None:
    started(tmp_path, argo, "r7")
    out = run_cli(
        "execute-single-node", "r7", "greet", "--file", "pipeline.yaml", "--config-file", "argo.yaml",
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT / "examples/hello_world")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    argo.workflows[("pipelines", "r7")]["logs"] = [("r7-greet-1", "from the pod")]
    logs = cli(tmp_path, argo, "runs", "logs", "r7", "-c", "argo.yaml")
    assert logs.returncode == 0, logs.stderr
    assert "==> greet (attempt 1, succeeded) <==" in logs.stdout and "Hello, world!" in logs.stdout
    assert "from the pod" not in logs.stdout
    assert not any(path.endswith("/log") for _, path in argo.calls)


def test_logs_written_where_the_volume_had_another_path_are_read(tmp_path: Path) -> None:
    """A pod writes its log at the volume's path in the pod (/data/...); the run log read
    where the volume is mounted elsewhere finds it under its own folder. Found on the real
    tier once pods ran under bubblewrap with the claim at its mountPath: runs logs printed
    the attempts' headers with no output."""
    pod_side = FileRunLogStore(str(tmp_path / "data" / "runs"))
    location = pod_side.write_log("r1", "greet/attempt-1.log", "Hello, world!\n")
    (tmp_path / "data").rename(tmp_path / "elsewhere")
    here = FileRunLogStore(str(tmp_path / "elsewhere" / "runs"))
    assert here.read_log(location) == "Hello, world!\n"
    assert here.read_log(location.replace("/r1/", "/r2/")) == ""  # no such run here
    assert here.read_log("/data/runs/r1/logs/../../../etc/passwd") == ""


def test_a_503_is_sent_again(tmp_path: Path, argo: FakeArgo) -> None:
    """The real argo server's gateway once answered 503 (it could not reach its own gRPC
    side): the client sends the request again, and gives up with the answer after four."""
    argo.unavailable = 2
    out = cli(tmp_path, argo, "submit", "-f", "pipeline.yaml", "-c", "argo.yaml", "--run-id", "r8")
    assert out.returncode == 0, out.stderr
    assert argo.calls.count(("POST", "/api/v1/workflows/pipelines")) == 3
    argo.unavailable = 9
    out = cli(tmp_path, argo, "runs", "status", "r8", "-c", "argo.yaml")
    assert out.returncode == 2 and "503" in out.stderr, out.stderr
    assert argo.calls.count(("GET", "/api/v1/workflows/pipelines/r8")) == 4
