"""A new team's first runs on the server: a run is shown under the name it was submitted
with, and a pipeline whose code was not sent says to send it."""

from __future__ import annotations

from support import TASKS
from support.server import tarball_of, wait_for
from support.services import Server

ONE = """dag:
  start_at: one
  steps:
    one: {command: ctasks.ticker, returns: [n], next: success}
"""


def test_a_run_is_named_as_submitted_and_missing_code_says_to_send_it(server: Server) -> None:
    with server.client("ann") as ann:
        body = {"pipeline": ONE, "parameters": {"lines": 1, "pause": 0}, "name": "nightly-report"}
        sent = ann.post("/runs", json={**body, "code": tarball_of(TASKS)}).json()
        assert wait_for(ann, sent["id"], ("succeeded", "failed"))["status"] == "succeeded"
        detail = ann.get(f"/runs/{sent['id']}").json()
        assert detail["pipeline_name"] == "nightly-report"
        assert detail["run_log"]["pipeline_name"] == "nightly-report"
        without = ann.post("/runs", json=body).json()
        run = wait_for(ann, without["id"], ("succeeded", "failed"))
    assert run["status"] == "failed"
    assert "--code" in run["error"], run["error"]
