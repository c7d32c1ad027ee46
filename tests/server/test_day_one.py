"""A new team's first runs on the server: a run is shown under the name it was submitted
with and the file it was submitted from, and a pipeline whose code was not sent says to
send it."""

from __future__ import annotations

from pathlib import Path

from support import TASKS, run_cli
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


def test_a_run_shows_the_file_it_was_submitted_from_never_the_workers_copy(
    server: Server, tmp_path: Path
) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "nightly.yaml").write_text(ONE)
    env = {"CONVEYOR_ENDPOINT": server.endpoint, "CONVEYOR_TOKEN": server.tokens["ann"]}
    args = ["submit", "-f", "pipelines/nightly.yaml", "--code", str(TASKS), "--param", "lines=1"]
    done = run_cli(*args, "--param", "pause=0", "--run-id", "from-file", "--wait", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    with server.client("ann") as ann:
        detail = ann.get("/runs/from-file").json()
        assert detail["pipeline_name"] == "nightly" and detail["pipeline_file"] == "pipelines/nightly.yaml"
        assert detail["run_log"]["pipeline_file"] == "pipelines/nightly.yaml"  # what the run page shows
        listed = ann.get("/runs").json()["runs"]
        assert [r["pipeline_file"] for r in listed if r["id"] == "from-file"] == ["pipelines/nightly.yaml"]

        # sent without a file name (the API, or a pipe): none is shown, not the worker's path
        body = {"pipeline": ONE, "parameters": {"lines": 1, "pause": 0}, "code": tarball_of(TASKS)}
        bare = ann.post("/runs", json=body).json()
        assert bare["pipeline_file"] is None
        assert wait_for(ann, bare["id"], ("succeeded", "failed"))["status"] == "succeeded"
        assert ann.get(f"/runs/{bare['id']}").json()["run_log"]["pipeline_file"] is None

        for shown_otherwise in ("a\nb.yaml", "x\u202egnp.exe", "a\x85b", "a\u2028b", "  "):
            refused = ann.post("/runs", json={**body, "file": shown_otherwise})
            assert refused.status_code == 422 and "file" in refused.text, shown_otherwise
