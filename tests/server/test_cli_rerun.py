"""``conveyor runs rerun`` against a real server (issue 24): a new run of the run's pipeline
and code with its parameters changed by ``--param`` (or replaced by ``-p``), linked back and
keeping its tags, its id printed; and each mistake said clearly with exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

from support import TASKS, run_cli
from support.server import tarball_of, wait_for
from support.services import Server

ONE = """dag:
  start_at: one
  steps:
    one: {command: ctasks.add, returns: [total], next: success}
"""


def test_runs_rerun_on_a_server(tmp_path: Path) -> None:
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1).start()
    try:
        env = {"CONVEYOR_ENDPOINT": server.endpoint, "CONVEYOR_TOKEN": server.tokens["ann"]}
        with server.client("ann") as ann:
            body = {
                "pipeline": ONE,
                "parameters": {"a": 1, "b": 2},
                "code": tarball_of(TASKS),
                "tags": ["nightly"],
            }
            old = ann.post("/runs", json=body).json()["id"]
            assert wait_for(ann, old, ("succeeded", "failed"))["status"] == "succeeded"

        done = run_cli("runs", "rerun", old, "--param", "a=40", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"re-ran run {old} as "), done.stdout
        new = done.stdout.split(" as ", 1)[1].split()[0]
        with server.client("ann") as ann:
            ran = wait_for(ann, new, ("succeeded", "failed"))
            assert ran["status"] == "succeeded", ran  # the old run's code came along
            detail = ann.get(f"/runs/{new}").json()
            assert detail["parameters"] == {"a": 40, "b": 2}  # b kept, a changed
            assert detail["run_log"]["final_parameters"]["total"] == 42
            assert detail["rerun_of"] == old and detail["tags"] == ["nightly"]

        (tmp_path / "params.yaml").write_text("a: 5\nb: 5\n")
        quiet = run_cli(
            "runs", "rerun", old, "-p", "params.yaml", "--param", "b=6", "-q", cwd=tmp_path, env=env
        )
        assert quiet.returncode == 0, quiet.stderr
        third = quiet.stdout.strip()
        assert third and " " not in third  # the id alone, for scripts
        with server.client("ann") as ann:
            assert ann.get(f"/runs/{third}").json()["parameters"] == {"a": 5, "b": 6}
            before = len(ann.get("/runs").json()["runs"])

        # mistakes: exit 2, said clearly, no run made
        missing = run_cli("runs", "rerun", "no-such-run", cwd=tmp_path, env=env)
        assert missing.returncode == 2 and "404" in missing.stderr and "no-such-run" in missing.stderr
        malformed = run_cli("runs", "rerun", old, "--param", "a", cwd=tmp_path, env=env)
        assert malformed.returncode == 2 and "NAME=VALUE" in malformed.stderr, malformed.stderr
        other = run_cli(
            "runs", "rerun", old, cwd=tmp_path, env={**env, "CONVEYOR_TOKEN": server.tokens["bob"]}
        )
        assert other.returncode == 2 and "404" in other.stderr  # bob may not see ann's run
        bad_id = run_cli("runs", "rerun", "../etc", cwd=tmp_path, env=env)
        assert bad_id.returncode == 2 and "run id" in bad_id.stderr
        with server.client("ann") as ann:
            assert len(ann.get("/runs").json()["runs"]) == before
    finally:
        server.stop()
    alone = tmp_path / "alone"
    alone.mkdir()
    no_profile = run_cli(
        "runs",
        "rerun",
        "r1",
        cwd=alone,
        env={"HOME": str(alone), "XDG_CONFIG_HOME": str(alone), "CONVEYOR_ENDPOINT": ""},
    )
    assert no_profile.returncode == 2 and "conveyor profile add" in no_profile.stderr, no_profile.stderr
