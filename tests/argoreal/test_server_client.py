"""conveyor's Argo client against the real Argo Server (``argo server`` built from source),
used as a user would: ``conveyor submit --to argo``, ``runs status``, ``runs logs``, ``runs
cancel``/``stop`` and ``runs retry``, as subprocesses with ARGO_SERVER, ARGO_TOKEN,
ARGO_NAMESPACE and ARGO_SECURE=false. The real workflow-controller drives the workflows and
the fake kubelet runs their pods in the project's directory (the volume claim)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from argo.test_e2e import ARGO_CONFIG, EXAMPLES
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from support import run_cli
from support.argo_real import Namespace
from support.argo_server import ArgoServerProcess

pytestmark = pytest.mark.argoreal

#: A step that holds until the test writes ``release`` (so a cancel meets a running pod and
#: the kubelet's worker is freed as soon as the test is done with it).
HELD = """dag:
  start_at: hold
  steps:
    hold:
      command_type: shell
      command: "n=0; while [ ! -f release ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done"
      next: after
    after: {command: ctasks.noop, next: success}
"""

#: Fails at ``flaky`` the first time (its counter file is empty), succeeds when retried.
FAILS_ONCE = """dag:
  start_at: first
  steps:
    first: {command: ctasks.add, returns: [c], next: flaky}
    flaky: {command: ctasks.flaky, returns: [r], next: success}
"""


class Project:
    """A project directory served as the namespace's claim, and the CLI run in it."""

    def __init__(self, where: Path, namespace: Namespace, server: ArgoServerProcess) -> None:
        self.where, self.namespace, self.server = where, namespace, server
        (where / "argo.yaml").write_text(ARGO_CONFIG)
        namespace.cluster.kubelet.serve(namespace.name, {"conveyor-data": where})
        self.env = {
            "ARGO_SERVER": server.address,
            "ARGO_SECURE": "false",
            "ARGO_TOKEN": server.token,
            "ARGO_NAMESPACE": namespace.name,
        }

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=self.where, env=self.env, timeout=timeout)

    def submit(self, run_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
        params = ["-p", "params.yaml"] if (self.where / "params.yaml").exists() else []
        return self.cli(
            "submit", "--to", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", *params, "--run-id", run_id,
            *extra, timeout=240,
        )  # fmt: skip

    def workflow(self, name: str) -> dict:  # type: ignore[type-arg]
        """The workflow as the server has it (straight HTTP, not conveyor's client)."""
        answer = httpx.get(
            f"{self.server.url}/api/v1/workflows/{self.namespace.name}/{name}",
            headers={"Authorization": f"Bearer {self.server.token}"},
            timeout=30,
        )
        answer.raise_for_status()
        return dict(answer.json())

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.namespace.cluster.plane.controller_alive()
            self.server.alive()
            if time.monotonic() > deadline:
                tail = self.namespace.cluster.plane.log_tail("workflow-controller", 30)
                raise AssertionError(
                    f"not {what} after {timeout}s; kubelet errors: "
                    f"{self.namespace.cluster.kubelet.errors}\ncontroller:\n{tail}"
                )
            time.sleep(0.5)

    def phase(self, name: str) -> str:
        return str(self.workflow(name).get("status", {}).get("phase", ""))

    def run_log(self, run_id: str):  # type: ignore[no-untyped-def]
        return FileRunLogStore(str(self.where / ".conveyor/runs")).load(run_id)

    def pods(self, command: str) -> list[str]:
        """The step paths the kubelet ran ``command`` for in this namespace, in order."""
        runs = self.namespace.cluster.kubelet.runs
        return [r.argv[5] for r in runs if r.namespace == self.namespace.name and r.argv[3] == command]


@pytest.fixture
def project(tmp_path: Path, namespace: Namespace, argo_server: ArgoServerProcess) -> Project:
    return Project(tmp_path, namespace, argo_server)


def test_submit_status_and_logs_of_an_example(project: Project) -> None:
    shutil.copytree(EXAMPLES / "hello_world", project.where, dirs_exist_ok=True)
    out = project.submit("Hello_1", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"submitted run Hello_1 as workflow {project.namespace.name}/hello-1" in out.stdout
    assert "workflow hello-1: Succeeded" in out.stdout
    workflow = project.workflow("hello-1")
    assert workflow["status"]["phase"] == "Succeeded"
    arguments = workflow["spec"]["arguments"]["parameters"]
    assert {"name": "run_id", "value": "Hello_1"} in arguments
    assert project.run_log("Hello_1").status == Status.SUCCEEDED

    status = project.cli("runs", "status", "Hello_1", "-c", "argo.yaml")
    assert status.returncode == 0, status.stderr
    assert "workflow hello-1: Succeeded; run log: succeeded" in status.stdout
    # the real controller names the exit handler's node "<workflow>.onExit"
    for step in ("run-start", "greet", "count", "hello-1.onExit"):
        assert step in status.stdout, status.stdout

    logs = project.cli("runs", "logs", "Hello_1", "-c", "argo.yaml")
    assert logs.returncode == 0, logs.stderr
    assert "==> greet (attempt 1, succeeded) <==" in logs.stdout
    assert "Hello, world!" in logs.stdout


def test_a_wrong_token_and_an_unknown_run_are_clear_errors(project: Project) -> None:
    shutil.copytree(EXAMPLES / "hello_world", project.where, dirs_exist_ok=True)
    project.env["ARGO_TOKEN"] = "not-the-token"
    out = project.submit("refused")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Argo Server answered 401" in out.stderr, out.stderr
    project.env["ARGO_TOKEN"] = project.server.token
    out = project.cli("runs", "status", "no-such-run", "-c", "argo.yaml")
    assert out.returncode == 2 and "404" in out.stderr and "not found" in out.stderr, out.stderr


@pytest.mark.parametrize("verb", ["cancel", "stop"])
def test_a_cancelled_workflow_ends_cancelled_in_the_run_log(verb: str, project: Project) -> None:
    (project.where / "pipeline.yaml").write_text(HELD)
    run_id = f"held-{verb}-{uuid.uuid4().hex[:6]}"
    try:
        out = project.submit(run_id)
        assert out.returncode == 0, out.stdout + out.stderr

        def holding() -> bool:  # the controller sees the step's pod running
            nodes = project.workflow(run_id).get("status", {}).get("nodes") or {}
            return any(n.get("displayName") == "hold" and n.get("phase") == "Running" for n in nodes.values())

        project.wait_for("holding", holding)
        out = project.cli("runs", verb, run_id, "-c", "argo.yaml")
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"stop: workflow {run_id} is Running (shutting down: Stop)" in out.stdout
        project.wait_for("ended", lambda: project.phase(run_id) in ("Failed", "Error", "Succeeded"))
        assert project.phase(run_id) == "Failed"
        project.wait_for("recorded", lambda: project.run_log(run_id).run.ended_at is not None)
    finally:
        (project.where / "release").write_text("")
    log = project.run_log(run_id)
    assert log.status == Status.CANCELLED, (log.status, log.run.orchestrator_status, log.run.error)
    assert log.run.orchestrator_status == "Failed"
    assert ("after",) not in log.steps  # the step after the cancelled one never ran
    status = project.cli("runs", "status", run_id, "-c", "argo.yaml")
    assert f"workflow {run_id}: Failed; run log: cancelled" in status.stdout, status.stdout


def test_retry_reruns_the_failed_step_only_and_succeeds(project: Project) -> None:
    (project.where / "pipeline.yaml").write_text(FAILS_ONCE)
    (project.where / "params.yaml").write_text("a: 1\nb: 2\ncounter: calls.txt\nfail_times: 1\n")
    out = project.submit("flaky-1", "--wait")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "workflow flaky-1: Failed" in out.stdout
    assert project.run_log("flaky-1").status == Status.FAILED

    out = project.cli("runs", "retry", "flaky-1", "-c", "argo.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    # the real server answers with the workflow reset: no phase until the controller runs it
    assert "retry: workflow flaky-1 is reset, waiting for the controller" in out.stdout
    project.wait_for("succeeded", lambda: project.phase("flaky-1") in ("Succeeded", "Failed", "Error"))
    assert project.phase("flaky-1") == "Succeeded"
    project.wait_for("recorded", lambda: project.run_log("flaky-1").status == Status.SUCCEEDED, 60)
    log = project.run_log("flaky-1")
    assert [a.status for a in log.steps[("flaky",)].attempts] == ["failed", "succeeded"]
    assert [a.status for a in log.steps[("first",)].attempts] == ["succeeded"]
    assert project.pods("execute-single-node") == ["first", "flaky", "flaky"]
    assert (project.where / "calls.txt").read_text().count("call") == 2
    assert log.run.final_parameters["r"] == "ok" and log.run.final_parameters["c"] == 3
    status = project.cli("runs", "status", "flaky-1", "-c", "argo.yaml")
    assert "workflow flaky-1: Succeeded; run log: succeeded" in status.stdout, status.stdout
